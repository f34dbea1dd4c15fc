"""``smartfarm up``: the local stack, on the ports the component settings name.

The stack is an ordered list of components, each with ``start``, ``stop`` and a status line, entered into one
exit stack: they start in order, stop in reverse, and a failure while starting stops what already runs. Today the
list is the three services, what the pipeline declares in them (Kafka topics, the InfluxDB database), the bridge,
the stream worker (a child process) and the simulated farm publishing into Mosquitto; aggregation and advice,
Prometheus and the trainer join it as they are built.
The broker lets in only what ``cli.brokerauth`` writes: the layout's devices, the valves, the bridge and the
service user ``SMARTFARM_MQTT_USERNAME`` when one is set.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import yaml

from cli.brokerauth import write_broker_auth
from cli.console import add_settings_options, say, settings_from, stop_on_signals
from cli.farmclock import SeasonWindow, recent_season, season_window
from cli.services import InfluxDB, Kafka, LocalService, Mosquitto, fetch_kafka_jars
from cli.services.base import port_open
from cli.services.mosquitto import broker_answers
from cli.services.prometheus import Prometheus
from cli.services.settings import ServicesSettings
from cli.status import collect, render
from cli.worker import WorkerProcess, advice_horizon
from edge.fleet import AdviceGate, FleetStats, prepare
from edge.settings import EdgeSettings
from ml.settings import ModelSettings
from smartfarm.errors import ConfigError, ServiceError
from smartfarm.layout import Layout, load_layout, replicate
from smartfarm.settings import InfluxSettings, KafkaSettings, LayoutSettings, MqttSettings
from smartfarm.stop import StopFlag
from storage.influx import InfluxClient
from stream.admin import ensure_topics
from stream.bridge import Bridge
from stream.settings import BridgeSettings, WorkerSettings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser(
        "up",
        help="run the whole stack with a simulated farm until Ctrl-C or SIGTERM",
        description="Starts Mosquitto, InfluxDB and Kafka (or uses the ones that answer at the configured "
        "addresses), trains the models when the registry is empty, runs the bridge, the workers, Prometheus and the "
        "simulated farm, then shows a live status. With no start set, the farm plays its layout's season so far as "
        "fast as the pipeline takes it and goes live just before the first harvest.",
    )
    up.add_argument(
        "--duration", type=float, default=0, help="stop after this many real seconds (0: run until stopped)"
    )
    up.add_argument("--fresh", action="store_true", help="delete the services' data from earlier runs first")
    up.add_argument("--workers", type=int, default=1, help="stream workers sharing the partitions (default 1)")
    up.add_argument(
        "--no-train",
        action="store_true",
        help="when the model registry is empty, serve the FAO-56 baselines rather than train first (about a minute)",
    )
    up.add_argument("--train-days", type=int, default=90, help="days per simulated season when it trains (default 90)")
    up.add_argument("--status-s", type=float, default=10.0, help="real seconds between live status blocks (default 10)")
    add_settings_options(up, ServicesSettings, "workdir", "cache_dir", "kafka_version", "kafka_heap", "prometheus_port")
    add_settings_options(
        up, EdgeSettings, "speed", "devices", "seed", "interval_s", "start", "catch_up", "device_secret"
    )
    add_settings_options(up, MqttSettings, "host", "port", "username", "password")
    add_settings_options(up, KafkaSettings, "bootstrap_servers", "topic_prefix", "partitions")
    add_settings_options(up, InfluxSettings, "url", "database")
    add_settings_options(up, LayoutSettings, "layout")
    add_settings_options(up, BridgeSettings, "metrics_port")
    add_settings_options(up, WorkerSettings, "worker_id")
    add_settings_options(up, ModelSettings, "store")
    up.set_defaults(run=run_up)


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
    """What the pipeline declares in the services: its Kafka topics and the InfluxDB database."""

    kafka: KafkaSettings
    influx: InfluxSettings
    created: int = 0

    def start(self) -> None:
        self.created = len(ensure_topics(self.kafka))
        with InfluxClient(self.influx) as client:
            client.create_database()

    def stop(self) -> None:
        """Topics and the database stay, with the services' data."""

    def status(self) -> str:
        return (
            f"{'Declared':<10} {self.created} topics created under {self.kafka.topic_prefix}. in Kafka, "
            f"database {self.influx.database} in InfluxDB"
        )

    def check(self) -> None:
        """Nothing runs."""


class Models:
    """The models the workers serve: trained first (``smartfarm train``'s defaults) when the registry is empty."""

    def __init__(self, settings: ModelSettings, train: bool, days: int) -> None:
        self.settings = settings
        self.train = train
        self.days = days
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


class FarmRunner:
    """The simulated farm, on a thread of its own; its last statistics are kept for the live status."""

    def __init__(
        self,
        layout: Layout,
        mqtt: MqttSettings,
        edge: EdgeSettings,
        season: SeasonWindow | None,
        workers: Sequence[WorkerProcess] = (),
    ) -> None:
        self.layout = layout
        self.workers = workers
        self.mqtt = mqtt
        self.edge = edge
        self.season = season
        self.stats: FleetStats | None = None
        self.error: BaseException | None = None
        self._stop = StopFlag()
        self._thread = threading.Thread(target=self._run, name="farm", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            fleet, source = prepare(self.layout, self.mqtt, self.edge)
            # The catch-up waits for the workers' advice, so the valves water as on a live farm.
            gate = AdviceGate(partial(advice_horizon, self.workers)) if self.workers else None
            stats = fleet.run(source, self._stop, self.edge.speed, on_progress=self._progress, advice=gate)
            if not self._stop.is_set():
                say(f"  Edge       the simulated farm finished its run: {stats.line()}")
        except BaseException as exc:  # surfaced by check() on the main thread
            self.error = exc

    def _progress(self, stats: FleetStats) -> None:
        self.stats = stats

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def status(self) -> str:
        edge = self.edge
        devices = len(self.layout.placements)
        line = f"{'Edge':<10} {devices} simulated devices at {edge.speed:g}x real time (seed {edge.seed})"
        return line + (f"\n             {self.season.describe()}" if self.season else "")

    def check(self) -> None:
        if self.error is not None:
            raise self.error


ACCELERATED_MAX_FUTURE_S = 10 * 365 * 86400.0
"""A simulated farm faster than real time, or in a season of its own, stamps readings ahead of the clock; the
worker's clock check is relaxed to this (ten years) for it, rather than dead-lettering the farm after a minute."""


def worker_env(
    worker: WorkerSettings,
    accelerated: bool,
    kafka: KafkaSettings,
    influx: InfluxSettings,
    layout_file: Path,
    models: ModelSettings,
) -> dict[str, str]:
    """The environment of one of the stack's workers: the stack's Kafka, InfluxDB, layout and models."""
    return {
        "SMARTFARM_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "SMARTFARM_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "SMARTFARM_KAFKA_PARTITIONS": str(kafka.partitions),
        "SMARTFARM_INFLUX_URL": influx.url,
        "SMARTFARM_INFLUX_DATABASE": influx.database,
        "SMARTFARM_LAYOUT": str(layout_file),
        "SMARTFARM_MODELS_STORE": str(models.store),
        "SMARTFARM_WORKER_WORKER_ID": worker.worker_id,
        "SMARTFARM_WORKER_METRICS_PORT": str(worker.metrics_port),
        "SMARTFARM_WORKER_DATA_DIR": str(layout_file.parent / "workers" / worker.worker_id),
        "SMARTFARM_WORKER_MAX_FUTURE_S": str(ACCELERATED_MAX_FUTURE_S if accelerated else worker.max_future_s),
    }


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
    devices: int


def _broker(
    workdir: Path, layout: Layout, edge: EdgeSettings, mqtt: MqttSettings
) -> tuple[Component, MqttSettings, MqttSettings]:
    """Mosquitto, or the configured broker; the fleet's and the bridge's MQTT settings."""
    host, port = _address("the MQTT broker", "SMARTFARM_MQTT_PORT", mqtt.host, mqtt.port)
    auth = workdir / "mosquitto-auth"
    if _free_or_running("the MQTT broker", "SMARTFARM_MQTT_HOST/PORT", host, port):
        bridge_mqtt = write_broker_auth(auth, layout, edge, mqtt)
        broker = Mosquitto(workdir / "mosquitto", port=port, password_file=auth / "passwd", acl_file=auth / "acl")
        return Service("Mosquitto", broker, broker.url), mqtt.model_copy(update={"host": broker.host}), bridge_mqtt
    # A broker of its own: it lets in the service user when one is set, else what `smartfarm broker-auth` wrote.
    bridge_mqtt = mqtt if mqtt.username else write_broker_auth(auth, layout, edge, mqtt)
    running = _running(
        "Mosquitto", f"mqtt://{host}:{port}", "SMARTFARM_MQTT_HOST/PORT", lambda: _mqtt_answers(host, port)
    )
    return running, mqtt, bridge_mqtt


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
        kafkad = Kafka(
            workdir / "kafka", services.kafka_home, port=port, partitions=kafka.partitions, heap=services.kafka_heap
        )
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

    broker, mqtt, bridge_mqtt = _broker(workdir, layout, edge, mqtt)
    stack: list[Component] = [broker, _influx(workdir, influx), _kafka(workdir, kafka, services)]
    if port_open(services.prometheus_port):
        raise ConfigError(
            f"port {services.prometheus_port} for Prometheus is in use; stop what holds it or set "
            "SMARTFARM_SERVICES_PROMETHEUS_PORT to a free port"
        )
    stack.append(Declarations(kafka, influx))
    stack.append(Models(models, train=not args.no_train, days=args.train_days))
    bridge = Bridge(bridge_mqtt, kafka, settings_from(BridgeSettings, args))
    stack.append(BridgeComponent(bridge))
    workers = _workers(args, edge.speed > 1 or season is not None, kafka, influx, layout_file, models)
    stack += workers
    prometheus = PrometheusComponent(workdir / "prometheus", services.prometheus_port, bridge, workers)
    stack.append(prometheus)
    farm = FarmRunner(layout, mqtt, edge, season, workers)
    stack.append(farm)
    return Stack(stack, farm, prometheus, influx, len(layout.placements))


def _mqtt_answers(host: str, port: int) -> None:
    if not broker_answers(host, port, timeout_s=2):
        raise ServiceError("no MQTT CONNACK")


def _kafka_answers(kafka: KafkaSettings) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka.servers, request_timeout_ms=5000)
    try:
        admin.list_topics()
    finally:
        admin.close()


def run_up(args: argparse.Namespace) -> int:
    services = settings_from(ServicesSettings, args)
    workdir = Path(services.workdir).resolve()
    if args.fresh and workdir.exists():
        shutil.rmtree(workdir)
    stack = components(args, workdir)
    stop = stop_on_signals()
    if args.duration:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    with ExitStack() as running:
        say("SmartFarm local stack (Ctrl-C stops it):")
        for component in stack.components:
            if stop.is_set():
                break
            component.start()
            running.callback(component.stop)
            say(f"  {component.status()}")
        say(f"  data and logs in {workdir}")
        with InfluxClient(stack.influx) as influx:
            next_status = time.monotonic() + min(args.status_s, 5)
            while not stop.wait(0.5):
                for component in stack.components:
                    component.check()
                if time.monotonic() >= next_status:
                    next_status = time.monotonic() + args.status_s
                    snapshot = collect(stack.prometheus.url, influx, stack.devices)
                    for line in render(snapshot, datetime.now(UTC), stack.farm.stats):
                        say(line)
        say("stopping the local stack")
    say("stopped")
    return 0
