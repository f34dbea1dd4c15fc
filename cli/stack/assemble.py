"""The local stack put together from the settings and options: which services run here, which answer elsewhere, in
what order everything starts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from api.settings import ApiSettings
from cli.brokerauth import write_broker_auth
from cli.console import settings_from
from cli.farmclock import recent_season, season_window
from cli.services import InfluxDB, Kafka, Mosquitto, fetch_kafka_jars
from cli.services.base import port_open
from cli.services.mosquitto import broker_answers
from cli.services.settings import ServicesSettings
from cli.stack.components import (
    ApiComponent,
    BridgeComponent,
    BrokerAuthComponent,
    Component,
    Declarations,
    Models,
    PrometheusComponent,
    Running,
    Service,
)
from cli.stack.farm import FarmRunner, ForecastRunner, worker_env
from cli.worker import WorkerProcess
from edge.settings import EdgeSettings
from ml.settings import ModelSettings
from smartfarm.certificates import TlsFiles, installation_tls
from smartfarm.errors import ConfigError, ServiceError
from smartfarm.layout import Layout, load_layout, replicate
from smartfarm.mqtt import tls_context
from smartfarm.settings import InfluxSettings, InfluxUsers, KafkaSettings, LayoutSettings, MqttSettings
from storage.influx import InfluxClient
from stream.admin import check_login
from stream.bridge import Bridge
from stream.settings import BridgeSettings, WorkerSettings

LOOPBACK = ("127.0.0.1", "localhost")


def _address(what: str, env: str, host: str | None, port: int | None) -> tuple[str, int]:
    if not host or port is None:
        raise ConfigError(f"{env} must name a host and a port for {what} (got {host}:{port})")
    return host, port


def _free_or_running(what: str, env: str, host: str, port: int) -> bool:
    """True when the stack should start its own service here: a loopback address nothing answers at. False
    when something answers (a configured service, which the stack then uses); ConfigError for a remote host
    that does not answer."""
    if host not in LOOPBACK:
        if not port_open(port, host):
            raise ConfigError(f"nothing answers at {host}:{port} for {what} ({env}); start it or unset {env}")
        return False
    return not port_open(port, "127.0.0.1")


@dataclass
class Stack:
    """The components in starting order, and what the live status reads."""

    components: list[Component]
    farm: FarmRunner
    prometheus: PrometheusComponent
    influx: InfluxSettings
    users: InfluxUsers
    devices: int


def _broker(
    workdir: Path, layout: Layout, edge: EdgeSettings, mqtt: MqttSettings, services: ServicesSettings
) -> tuple[Component, MqttSettings, MqttSettings, Mosquitto | None]:
    """Mosquitto, or the configured broker; the fleet's and the bridge's MQTT settings; the Mosquitto the stack
    runs (None for a configured broker).

    The stack's own broker listens over TLS only (``SMARTFARM_SERVICES_MQTT_TLS``, on by default: on 8883 unless
    ``SMARTFARM_MQTT_PORT`` is set), with the installation's CA and certificate in ``workdir/tls`` (made the first
    time, reused after); the fleet, the bridge and the API's device configuration then trust that CA."""
    tls = TlsFiles(workdir / "tls")
    wanted = mqtt.over_tls(tls.ca_file) if services.mqtt_tls and not mqtt.tls else mqtt
    host, port = _address("the MQTT broker", "SMARTFARM_MQTT_PORT", wanted.host, wanted.port)
    auth = workdir / "mosquitto-auth"
    if _free_or_running("the MQTT broker", "SMARTFARM_MQTT_HOST/PORT", host, port):
        broker = Mosquitto(
            workdir / "mosquitto",
            port=port,
            password_file=auth / "passwd",
            acl_file=auth / "acl",
            tls=installation_tls(tls.folder) if wanted.tls else None,
            client_certs=services.mqtt_cert_port is not None,
            cert_port=services.mqtt_cert_port,
        )
        fleet = broker.client_settings(mqtt)
        bridge_mqtt = write_broker_auth(auth, layout, edge, fleet)
        return Service("Mosquitto", broker, broker.url), fleet, bridge_mqtt, broker
    # A broker of its own, spoken to as SMARTFARM_MQTT_* say (TLS with SMARTFARM_MQTT_TLS and its CA): it lets in
    # the service user when one is set, else what `smartfarm broker-auth` wrote.
    configured = mqtt.model_copy(update={"port": port})
    bridge_mqtt = configured if configured.username else write_broker_auth(auth, layout, edge, configured)
    running = _running("Mosquitto", configured.url, "SMARTFARM_MQTT_HOST/PORT", lambda: _mqtt_answers(configured))
    return running, configured, bridge_mqtt, None


def _running(label: str, address: str, env: str, probe: Callable[[], object]) -> Running:
    """A configured service, asked at once: what holds the port and is not the service is refused before
    anything starts."""
    running = Running(label, address, env, probe)
    running.ask()
    return running


def _influx_answers(influx: InfluxSettings) -> None:
    with InfluxClient(influx) as client:
        client.ping()


def _influx(workdir: Path, influx: InfluxSettings) -> Component:
    url = urlsplit(influx.url)
    host, port = _address("InfluxDB", "SMARTFARM_INFLUX_URL", url.hostname, url.port)
    if _free_or_running("InfluxDB", "SMARTFARM_INFLUX_URL", host, port):
        influxd = InfluxDB(workdir / "influxdb", port=port)
        return Service("InfluxDB", influxd, influxd.url)
    return _running("InfluxDB", influx.url, "SMARTFARM_INFLUX_URL", lambda: _influx_answers(influx))


def _kafka(workdir: Path, kafka: KafkaSettings, services: ServicesSettings) -> Component:
    host, _, port_text = kafka.servers[0].rpartition(":")
    env = "SMARTFARM_KAFKA_BOOTSTRAP_SERVERS"
    host, port = _address("Kafka", env, host, int(port_text) if port_text.isdigit() else None)
    if _free_or_running("Kafka", env, host, port):
        fetch_kafka_jars(services.kafka_home, services.kafka_version)
        # With SASL the configured address is the SASL listener the clients log in at, and the plaintext one
        # (inter-broker, readiness) takes a free loopback port.
        sasl = kafka.sasl
        kafkad = Kafka(
            workdir / "kafka",
            services.kafka_home,
            port=None if sasl else port,
            partitions=kafka.partitions,
            heap=services.kafka_heap,
            scram_users={kafka.sasl_username: kafka.sasl_password} if sasl else None,
            sasl_port=port if sasl else None,
        )
        if sasl:
            return Service("Kafka", kafkad, f"{kafkad.sasl_bootstrap_servers} (SASL {kafka.sasl_mechanism.value})")
        return Service("Kafka", kafkad, kafkad.bootstrap_servers)
    return _running("Kafka", kafka.bootstrap_servers, env, lambda: _kafka_answers(kafka))


def _workers(
    args: argparse.Namespace,
    accelerated: bool,
    kafka: KafkaSettings,
    influx: InfluxSettings,
    layout_file: Path,
    models: ModelSettings,
) -> list[WorkerProcess]:
    """``--workers`` worker processes: ids ``ID-1``.., metrics ports counting up from the setting's (0: free)."""
    worker = settings_from(WorkerSettings, args)
    (layout_file.parent / "workers").mkdir(parents=True, exist_ok=True)
    workers = []
    for i in range(args.workers):
        one = worker.model_copy(
            update={
                "worker_id": worker.worker_id if args.workers == 1 else f"{worker.worker_id}-{i + 1}",
                "metrics_port": worker.metrics_port + i if worker.metrics_port else 0,
            }
        )
        env = worker_env(one, accelerated, kafka, influx, layout_file, models)
        workers.append(WorkerProcess(env, layout_file.parent / f"{one.worker_id}.log", one.worker_id))
    return workers


def components(args: argparse.Namespace, workdir: Path) -> Stack:
    """The stack's components in starting order, from the settings; writes the broker's credentials."""
    services = settings_from(ServicesSettings, args)
    mqtt = settings_from(MqttSettings, args)
    kafka = settings_from(KafkaSettings, args)
    influx = settings_from(InfluxSettings, args)
    users = settings_from(InfluxUsers, args)
    edge = settings_from(EdgeSettings, args)
    models = settings_from(ModelSettings, args)
    models = models.model_copy(update={"store": Path(models.store).resolve()})
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: give at least 1")
    layout = load_layout(settings_from(LayoutSettings, args).layout)
    if edge.devices:
        layout = replicate(layout, edge.devices)
    season = None
    if edge.start is None:
        layout = recent_season(layout, datetime.now(UTC).date())
        season = season_window(layout, edge.seed, edge.climate, edge.interval_s)
        edge = edge.model_copy(update={"start": season.start, "catch_up": season.catch_up})
    layout_file = workdir / "layout.yaml"  # the farm as grown by --devices, which the workers must know too
    layout_file.parent.mkdir(parents=True, exist_ok=True)
    layout_file.write_text(yaml.safe_dump(layout.model_dump(mode="json"), sort_keys=False))

    broker, mqtt, bridge_mqtt, mosquitto = _broker(workdir, layout, edge, mqtt, services)
    stack: list[Component] = [broker, _influx(workdir, influx), _kafka(workdir, kafka, services)]
    if port_open(services.prometheus_port):
        raise ConfigError(
            f"port {services.prometheus_port} for Prometheus is in use; stop what holds it or set "
            "SMARTFARM_SERVICES_PROMETHEUS_PORT to a free port"
        )
    stack.append(Declarations(kafka, influx, users))
    stack.append(Models(models, train=not args.no_train, days=args.train_days, seasons=args.train_seasons))
    bridge = Bridge(bridge_mqtt, kafka, settings_from(BridgeSettings, args))
    stack.append(BridgeComponent(bridge))
    if mosquitto is not None:  # a broker of the stack's own: its credentials follow the farm registry
        stack.append(BrokerAuthComponent(workdir / "mosquitto-auth", layout, edge, mqtt, kafka, mosquitto))
    workers = _workers(args, edge.speed > 1 or season is not None, kafka, influx, layout_file, models)
    stack += workers
    prometheus = PrometheusComponent(workdir / "prometheus", services.prometheus_port, bridge, workers)
    stack.append(prometheus)
    api = settings_from(ApiSettings, args)
    stack.append(ApiComponent(workdir / "registry.db", layout, influx, models, api.host, api.port, kafka, mqtt, edge))
    farm = FarmRunner(layout, mqtt, edge, season, workers)
    stack += [farm, ForecastRunner(layout, edge, kafka, farm)]  # the forecasts follow the farm's clock
    return Stack(stack, farm, prometheus, influx, users, len(layout.placements))


def _mqtt_answers(mqtt: MqttSettings) -> None:
    tls = tls_context(mqtt.ca_file) if mqtt.tls else None
    if not broker_answers(mqtt.host, mqtt.port, timeout_s=2, tls=tls):
        raise ServiceError("no MQTT CONNACK")


def _kafka_answers(kafka: KafkaSettings) -> None:
    check_login(kafka, timeout_s=5)
