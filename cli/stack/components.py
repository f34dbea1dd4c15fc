"""The parts of the local stack: each starts, stops, checks itself and says its status in one line."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from cli.api import changes_for
from cli.brokerauth import follow_broker_auth
from cli.console import say
from cli.services import LocalService
from cli.services.base import port_open
from cli.services.prometheus import Prometheus
from cli.train import HOLDOUT, SEASONS
from cli.worker import WorkerProcess
from edge.settings import EdgeSettings
from ml.settings import ModelSettings
from smartfarm.errors import ConfigError, ServiceError
from smartfarm.layout import Layout
from smartfarm.settings import InfluxSettings, InfluxUsers, KafkaSettings, MqttSettings
from storage.accounts import declare
from storage.influx import InfluxClient
from storage.registry.store import FarmRegistry, Scope
from stream.admin import ensure_topics
from stream.bridge import Bridge
from stream.layouts import LayoutFollower
from stream.publisher import FarmPublisher


class Component(Protocol):
    """One part of the local stack."""

    def start(self) -> None:
        """Start, and return once the component does its job."""

    def stop(self) -> None:
        """Stop cleanly; called once, in reverse order of starting, also when a later component failed."""

    def status(self) -> str:
        """One line for the terminal, once started."""

    def check(self) -> None:
        """Raise if the component failed while running."""


@dataclass
class Service:
    """A local service process (Mosquitto, Kafka, InfluxDB, Prometheus)."""

    label: str
    service: LocalService
    address: str

    def start(self) -> None:
        self.service.start()

    def stop(self) -> None:
        self.service.stop()

    def status(self) -> str:
        return f"{self.label:<10} {self.address:<28} ready in {self.service.ready_seconds or 0:.1f}s"

    def check(self) -> None:
        if not self.service.running:
            raise ServiceError(f"{self.label} stopped while the stack ran:\n{self.service.log_tail()}")


@dataclass
class Running:
    """A service the settings point at that already answers: the stack uses it and leaves it running."""

    label: str
    address: str
    env: str
    probe: Callable[[], object]

    def start(self) -> None:
        """Ask it once more as the stack starts (``components`` asked when choosing it)."""
        self.ask()

    def ask(self) -> None:
        try:
            self.probe()
        except ConfigError:  # the service answered and refused our settings (a login): that says it all
            raise
        except Exception as exc:  # each client fails in its own way; all mean "not this service"
            raise ConfigError(
                f"{self.address} ({self.env}) does not answer as {self.label} ({exc}); stop what holds it, or set "
                f"{self.env} to a free loopback port for the stack to start its own"
            ) from exc

    def stop(self) -> None:
        """Not ours: it keeps running."""

    def status(self) -> str:
        return f"{self.label:<10} {self.address:<28} already running (configured), used as it is"

    def check(self) -> None:
        """Its health is its operator's; the stages that use it report what fails."""


@dataclass
class Declarations:
    """What the pipeline declares in the services: its Kafka topics, and InfluxDB's admin (at its first start),
    database, writer and reader with their grants (``storage.accounts.declare``, as the admin)."""

    kafka: KafkaSettings
    influx: InfluxSettings
    users: InfluxUsers
    created: int = 0
    changed: int = 0

    def start(self) -> None:
        self.created = len(ensure_topics(self.kafka))
        self.changed = len(declare(self.influx, self.users))

    def stop(self) -> None:
        """Topics, the database and its users stay, with the services' data."""

    def status(self) -> str:
        return (
            f"{'Declared':<10} {self.created} topics created under {self.kafka.topic_prefix}. in Kafka; database "
            f"{self.influx.database} in InfluxDB, writer {self.influx.username} (ALL), reader "
            f"{self.users.reader_username} (READ): {self.changed} changes"
        )

    def check(self) -> None:
        """Nothing runs."""


class Models:
    """The models the workers serve: trained first (``smartfarm train``'s defaults) when the registry is empty."""

    def __init__(
        self, settings: ModelSettings, train: bool, days: int, seasons: int = SEASONS, holdout: int = HOLDOUT
    ) -> None:
        self.settings = settings
        self.train = train
        self.days = days
        self.seasons = seasons
        self.holdout = holdout
        self.summary = ""

    def start(self) -> None:
        from ml.registry import Registry  # MLflow takes seconds to import; only this component pays

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # its store's table creation is no news here
        registry = Registry(self.settings)
        if not registry.versions() and self.train:
            say(f"  Models     the registry {self.settings.store} is empty: training them first (about a minute)")
            command = [
                sys.executable,
                "-m",
                "cli",
                "train",
                "--store",
                str(self.settings.store),
                "--days",
                str(self.days),
                "--seasons",
                str(self.seasons),
                "--holdout",
                str(self.holdout),
            ]
            with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
                assert proc.stdout is not None
                for line in proc.stdout:
                    say(f"             {line.rstrip()}")
            if proc.returncode != 0:
                raise ServiceError(f"smartfarm train failed (exit {proc.returncode}); see its lines above")
        promoted = [v for v in registry.versions() if v.promoted]
        self.summary = (
            ", ".join(f"{v.name} v{v.version}" for v in promoted)
            if promoted
            else "none promoted: the workers serve the FAO-56 baselines"
        )

    def stop(self) -> None:
        """The registry stays."""

    def status(self) -> str:
        return f"{'Models':<10} {self.summary} (store {self.settings.store})"

    def check(self) -> None:
        """The workers follow the registry and say what they load in their logs."""


@dataclass
class BridgeComponent:
    bridge: Bridge

    def start(self) -> None:
        self.bridge.start()

    def stop(self) -> None:
        self.bridge.stop()

    def status(self) -> str:
        return f"{'Bridge':<10} {self.bridge.settings.bridge_id:<28} metrics on {self.bridge.metrics_url}"

    def check(self) -> None:
        self.bridge.check()


class PrometheusComponent:
    """Prometheus, started once the bridge and the workers it scrapes run (their ports are known then)."""

    def __init__(self, workdir: Path, port: int, bridge: Bridge, workers: Sequence[WorkerProcess]) -> None:
        self.workdir = workdir
        self.port = port
        self.bridge = bridge
        self.workers = workers
        self.service: Prometheus | None = None

    def start(self) -> None:
        bridge = urlsplit(self.bridge.metrics_url)
        targets = {
            "bridge": [f"{bridge.hostname}:{bridge.port}"],
            "worker": [f"127.0.0.1:{w.metrics_port}" for w in self.workers],
        }
        self.service = Prometheus(self.workdir, targets, port=self.port)
        self.service.start()

    @property
    def url(self) -> str:
        return self.service.url if self.service else f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()

    def status(self) -> str:
        ready = self.service.ready_seconds if self.service else 0
        scraped = f"scraping the bridge and {len(self.workers)} worker(s)"
        return f"{'Prometheus':<10} {self.url:<28} ready in {ready or 0:.1f}s, {scraped}"

    def check(self) -> None:
        if self.service is not None and not self.service.running:
            raise ServiceError(f"Prometheus stopped while the stack ran:\n{self.service.log_tail()}")


class BrokerAuthComponent:
    """Keeps the broker's password file and ACL those of the farm registry's layout: follows the layout topic,
    writes both files again when a farm changes and has Mosquitto read them (SIGHUP), so a device registered
    through the API can log in and a retired one cannot, without a restart."""

    def __init__(
        self, folder: Path, layout: Layout, edge: EdgeSettings, mqtt: MqttSettings, kafka: KafkaSettings, broker: Any
    ) -> None:
        self.folder, self.layout, self.edge, self.mqtt, self.kafka = folder, layout, edge, mqtt, kafka
        self.broker = broker
        self._follower: LayoutFollower | None = None

    def start(self) -> None:
        self._follower = follow_broker_auth(
            self.folder, self.layout, self.edge, self.mqtt, self.kafka, self.broker.reload
        )

    def stop(self) -> None:
        if self._follower is not None:
            self._follower.stop()

    def status(self) -> str:
        return f"{'Broker':<10} credentials follow the farm registry ({self.folder})"

    def check(self) -> None:
        """Its thread survives whatever a record holds (``stream.layouts``)."""


class ApiComponent:
    """The farm API over a registry of the stack's own (the layout imported into it), the stack's InfluxDB and its
    model store, on a thread of this process; a token per farm (read, write, ingest) is written once to ``tokens`` (mode
    0600). Its changes are published on the stack's Kafka (``cli.api.changes_for``)."""

    def __init__(
        self,
        registry_path: Path,
        layout: Layout,
        influx: InfluxSettings,
        models: ModelSettings,
        host: str,
        port: int,
        kafka: KafkaSettings,
        mqtt: MqttSettings,
        edge: EdgeSettings,
    ) -> None:
        self.registry_path = registry_path
        self.layout = layout
        self.influx = influx
        self.models = models
        self.host = host
        self.port = port
        self.kafka, self.mqtt, self.edge = kafka, mqtt, edge
        self.tokens = registry_path.parent / "api-tokens.txt"
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._registry: FarmRegistry | None = None
        self._client: InfluxClient | None = None
        self._publisher: FarmPublisher | None = None

    def start(self) -> None:
        from api.app import create_app, serve_in_thread

        if port_open(self.port, self.host):
            raise ConfigError(f"port {self.port} for the farm API is in use; set SMARTFARM_API_PORT to a free port")
        self._registry = FarmRegistry.at(self.registry_path)
        self._registry.migrate()
        self._registry.import_layout(self.layout)
        if not self.tokens.exists():
            lines = [
                f"{farm.id} {self._registry.issue_token(farm.id, 'smartfarm up', list(Scope))}\n"
                for farm in self.layout.farms
            ]
            self.tokens.touch(mode=0o600)
            self.tokens.write_text("".join(lines))
        changes, self._publisher = changes_for(self._registry, self.kafka, self.mqtt, self.edge)
        self._client = InfluxClient(self.influx)
        app = create_app(self._registry, self._client, changes, self.models)
        self._server, self._thread = serve_in_thread(app, self.host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._client is not None:
            self._client.close()
        if self._publisher is not None:
            self._publisher.close()
        if self._registry is not None:
            self._registry.close()

    def status(self) -> str:
        return f"{'API':<10} {self.url:<28} farmer's app at /app, docs at /docs, tokens in {self.tokens}"

    def check(self) -> None:
        if self._thread is not None and not self._thread.is_alive():
            raise ServiceError("the farm API stopped while the stack ran")
