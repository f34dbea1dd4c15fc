"""``smartfarm api``: serve the farm API (uvicorn), or issue an API token of a farm.

- ``smartfarm api`` (or ``api serve``): the API on ``SMARTFARM_API_HOST``:``SMARTFARM_API_PORT`` (127.0.0.1:8000),
  its pages at ``/docs``, over the farm registry (``SMARTFARM_REGISTRY_URL``), InfluxDB and the model store
  (``SMARTFARM_MODELS_STORE``);
  A zone added or a device registered or retired through it is published on Kafka's layout topic, which the
  workers and the broker's credentials follow (without Kafka it serves read-only: changes answer 503);
- ``smartfarm api token --farm F --scopes read,write --name N``: a new token, printed once (only its hash is kept).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from cli.console import KAFKA_LOGIN, add_settings_options, say, settings_from, warn
from edge.settings import EdgeSettings
from ml.settings import ModelSettings
from smartfarm.errors import ConfigError, ServiceError
from smartfarm.layout import load_layout
from smartfarm.settings import InfluxSettings, KafkaSettings, LayoutSettings, MqttSettings
from storage.influx import InfluxClient
from storage.registry.settings import RegistrySettings
from storage.registry.store import FarmRegistry, Scope, migrated
from stream.admin import ensure_topics
from stream.publisher import FarmPublisher

if TYPE_CHECKING:
    from api.changes import Changes

ACTIONS = ("serve", "token")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from api.settings import ApiSettings

    api = commands.add_parser(
        "api",
        help="serve the farm API (OpenAPI at /docs), or issue a farm's API token",
        description="serve: the farm API over the farm registry. token: a new API token of a farm with the scopes "
        "given, printed once; only its SHA-256 is kept.",
    )
    api.add_argument("action", nargs="?", choices=ACTIONS, default="serve", help="default: serve")
    api.add_argument("--farm", help="token: the farm it may see")
    api.add_argument("--scopes", default="read", help="token: comma-separated of read, write, ingest (default read)")
    api.add_argument("--name", default="api client", help="token: who holds it, for the record")
    add_settings_options(api, ApiSettings, "host", "port")
    add_settings_options(api, RegistrySettings, "url")
    add_settings_options(api, InfluxSettings, "database")
    add_settings_options(api, ModelSettings, "store")
    add_settings_options(api, KafkaSettings, "bootstrap_servers", "topic_prefix", *KAFKA_LOGIN)
    add_settings_options(api, MqttSettings, "topic_root")
    add_settings_options(api, EdgeSettings, "device_secret")
    add_settings_options(api, LayoutSettings, "layout")
    api.set_defaults(run=run_api)


def run_api(args: argparse.Namespace) -> int:
    with migrated(settings_from(RegistrySettings, args).url.get_secret_value()) as registry:
        if args.action == "token":
            return _token(registry, args)
        return _serve(registry, args)


def _token(registry: FarmRegistry, args: argparse.Namespace) -> int:
    if not args.farm:
        raise ConfigError("api token needs --farm: the farm the token may see")
    try:
        scopes = [Scope(s.strip()) for s in args.scopes.split(",") if s.strip()]
    except ValueError as exc:
        raise ConfigError(f"--scopes {args.scopes!r}: each of read, write, ingest") from exc
    token = registry.issue_token(args.farm, args.name, scopes)
    say(f"API token of farm {args.farm} ({', '.join(s.value for s in scopes)}), shown this once:")
    print(token)  # noqa: T201 - the token alone on its line, for a pipe
    return 0


def changes_for(
    registry: FarmRegistry, kafka: KafkaSettings, mqtt: MqttSettings, edge: EdgeSettings
) -> tuple[Changes, FarmPublisher]:
    """What lets the API change farms: a publisher of the layout topic (declared if missing) that has published
    every farm of the registry once. ServiceError when Kafka does not answer."""
    from api.changes import Changes, publish_farms

    ensure_topics(kafka)
    publisher = FarmPublisher(kafka)
    try:
        publish_farms(registry, publisher)
    except BaseException:
        publisher.close()
        raise
    ca_pem = mqtt.ca_file.read_text() if mqtt.tls and mqtt.ca_file is not None else None
    return Changes(publisher, edge.device_secret, mqtt.topics, mqtt.url, ca_pem), publisher


def _serve(registry: FarmRegistry, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings

    settings = settings_from(ApiSettings, args)
    if not registry.has_farms():
        layout = settings_from(LayoutSettings, args)
        registry.import_layout(load_layout(layout.layout))
        say(f"the registry held no farm: imported {layout.layout or 'the bundled layout'}")
    kafka = settings_from(KafkaSettings, args)
    changes: Changes | None = None
    publisher: FarmPublisher | None = None
    try:
        changes, publisher = changes_for(
            registry, kafka, settings_from(MqttSettings, args), settings_from(EdgeSettings, args)
        )
    except ServiceError as exc:
        warn(f"{exc}: serving read-only (changes answer 503) until restarted with Kafka reachable")
    influx = InfluxClient(settings_from(InfluxSettings, args))
    say(f"farm API on http://{settings.host}:{settings.port} (pages at /docs), registry {registry.engine.url!r}")
    try:
        app = create_app(registry, influx, changes, settings_from(ModelSettings, args))
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        influx.close()
        if publisher is not None:
            publisher.close()
    return 0
