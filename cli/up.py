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
import shutil
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import yaml

from cli.brokerauth import write_broker_auth
from cli.console import add_settings_options, say, settings_from, stop_on_signals
from cli.services import InfluxDB, Kafka, LocalService, Mosquitto, fetch_kafka_jars
from cli.services.base import port_open
from cli.services.settings import ServicesSettings
from cli.worker import WorkerProcess
from edge.fleet import FleetStats, prepare
from edge.settings import EdgeSettings
from smartfarm.errors import ConfigError
from smartfarm.layout import Layout, load_layout, replicate
from smartfarm.settings import InfluxSettings, KafkaSettings, LayoutSettings, MqttSettings
from smartfarm.stop import StopFlag
from storage.influx import InfluxClient
from stream.admin import ensure_topics
from stream.bridge import Bridge
from stream.settings import BridgeSettings, WorkerSettings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser("up", help="run the local stack until Ctrl-C or SIGTERM")
    up.add_argument(
        "--duration", type=float, default=0, help="stop after this many real seconds (0: run until stopped)"
    )
    up.add_argument("--fresh", action="store_true", help="delete the services' data from earlier runs first")
    add_settings_options(up, ServicesSettings, "workdir", "cache_dir", "kafka_version", "kafka_heap")
    add_settings_options(up, EdgeSettings, "speed", "devices", "seed", "interval_s", "device_secret")
    add_settings_options(up, MqttSettings, "port", "username", "password")
    add_settings_options(up, KafkaSettings, "bootstrap_servers", "topic_prefix", "partitions")
    add_settings_options(up, InfluxSettings, "url", "database")
    add_settings_options(up, LayoutSettings, "layout")
    add_settings_options(up, BridgeSettings, "metrics_port")
    add_settings_options(up, WorkerSettings, "worker_id")
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
    """A local service process (Mosquitto, Kafka, InfluxDB)."""

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
        """The launcher's own readiness wait reports a service that dies while starting."""


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


class Farm:
    """The simulated farm, on a thread of its own, printing its progress."""

    def __init__(self, layout: Layout, mqtt: MqttSettings, edge: EdgeSettings) -> None:
        self.layout = layout
        self.mqtt = mqtt
        self.edge = edge
        self.error: BaseException | None = None
        self._stop = StopFlag()
        self._thread = threading.Thread(target=self._run, name="farm", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            fleet, source = prepare(self.layout, self.mqtt, self.edge)
            fleet.run(source, self._stop, self.edge.speed, on_progress=self._progress)
        except BaseException as exc:  # surfaced by check() on the main thread
            self.error = exc

    @staticmethod
    def _progress(stats: FleetStats) -> None:
        say(f"  {stats.line()}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def status(self) -> str:
        edge = self.edge
        devices = len(self.layout.placements)
        return f"{'Edge':<10} {devices} simulated devices at {edge.speed:g}x real time (seed {edge.seed})"

    def check(self) -> None:
        if self.error is not None:
            raise self.error


ACCELERATED_MAX_FUTURE_S = 10 * 365 * 86400.0
"""A simulated farm faster than real time stamps readings ahead of the clock; the worker's clock check is relaxed
to this (ten years) for it, rather than dead-lettering the farm after its first minute."""


def worker_env(
    args: argparse.Namespace, kafka: KafkaSettings, influx: InfluxSettings, layout_file: Path
) -> dict[str, str]:
    """The environment of the stack's worker: the stack's Kafka and InfluxDB, its layout, its own settings."""
    worker = settings_from(WorkerSettings, args)
    edge = settings_from(EdgeSettings, args)
    max_future = worker.max_future_s if edge.speed <= 1 else ACCELERATED_MAX_FUTURE_S
    return {
        "SMARTFARM_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "SMARTFARM_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "SMARTFARM_KAFKA_PARTITIONS": str(kafka.partitions),
        "SMARTFARM_INFLUX_URL": influx.url,
        "SMARTFARM_INFLUX_DATABASE": influx.database,
        "SMARTFARM_LAYOUT": str(layout_file),
        "SMARTFARM_WORKER_WORKER_ID": worker.worker_id,
        "SMARTFARM_WORKER_METRICS_PORT": str(worker.metrics_port),
        "SMARTFARM_WORKER_DATA_DIR": str(layout_file.parent / "worker"),
        "SMARTFARM_WORKER_MAX_FUTURE_S": str(max_future),
    }


def _loopback_port(what: str, env: str, host: str | None, port: int | None) -> int:
    if host not in ("127.0.0.1", "localhost") or port is None:
        raise ConfigError(f"{env} must name a loopback host and a port for the local stack (got {host}:{port})")
    if port_open(port):
        raise ConfigError(f"port {port} for {what} is in use; stop what holds it or set {env} to a free port")
    return port


@dataclass(frozen=True)
class Ports:
    mqtt: int
    kafka: int
    influx: int


def free_loopback_ports(mqtt: MqttSettings, kafka: KafkaSettings, influx: InfluxSettings) -> Ports:
    """The services' ports from the settings; ConfigError naming the variable when one is not a free loopback port."""
    kafka_host, _, kafka_port = kafka.servers[0].rpartition(":")
    url = urlsplit(influx.url)
    return Ports(
        _loopback_port("Mosquitto", "SMARTFARM_MQTT_PORT", mqtt.host, mqtt.port),
        _loopback_port(
            "Kafka", "SMARTFARM_KAFKA_BOOTSTRAP_SERVERS", kafka_host, int(kafka_port) if kafka_port.isdigit() else None
        ),
        _loopback_port("InfluxDB", "SMARTFARM_INFLUX_URL", url.hostname, url.port),
    )


def components(args: argparse.Namespace, workdir: Path) -> list[Component]:
    """The stack's components in starting order, from the settings; writes the broker's credentials."""
    services = settings_from(ServicesSettings, args)
    mqtt = settings_from(MqttSettings, args)
    kafka = settings_from(KafkaSettings, args)
    influx = settings_from(InfluxSettings, args)
    edge = settings_from(EdgeSettings, args)
    ports = free_loopback_ports(mqtt, kafka, influx)
    layout = load_layout(settings_from(LayoutSettings, args).layout)
    if edge.devices:
        layout = replicate(layout, edge.devices)
    auth = workdir / "mosquitto-auth"
    bridge_mqtt = write_broker_auth(auth, layout, edge, mqtt)
    layout_file = workdir / "layout.yaml"  # the farm as grown by --devices, which the worker must know too
    layout_file.write_text(yaml.safe_dump(layout.model_dump(mode="json"), sort_keys=False))
    worker_id = settings_from(WorkerSettings, args).worker_id
    worker = WorkerProcess(worker_env(args, kafka, influx, layout_file), workdir / "worker.log", worker_id)
    broker = Mosquitto(workdir / "mosquitto", port=ports.mqtt, password_file=auth / "passwd", acl_file=auth / "acl")
    kafkad = Kafka(
        workdir / "kafka", services.kafka_home, port=ports.kafka, partitions=kafka.partitions, heap=services.kafka_heap
    )
    influxd = InfluxDB(workdir / "influxdb", port=ports.influx)
    return [
        Service("Mosquitto", broker, broker.url),
        Service("InfluxDB", influxd, influxd.url),
        Service("Kafka", kafkad, kafkad.bootstrap_servers),
        Declarations(kafka, influx),
        BridgeComponent(Bridge(bridge_mqtt, kafka, settings_from(BridgeSettings, args))),
        worker,
        Farm(layout, mqtt.model_copy(update={"host": broker.host}), edge),
    ]


def run_up(args: argparse.Namespace) -> int:
    services = settings_from(ServicesSettings, args)
    workdir = Path(services.workdir).resolve()
    if args.fresh and workdir.exists():
        shutil.rmtree(workdir)
    fetch_kafka_jars(services.kafka_home, services.kafka_version)
    stack = components(args, workdir)
    stop = stop_on_signals()
    if args.duration:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    with ExitStack() as running:
        say("SmartFarm local stack (Ctrl-C stops it):")
        for component in stack:
            component.start()
            running.callback(component.stop)
            say(f"  {component.status()}")
        say(f"  data and logs in {workdir}")
        while not stop.wait(0.5):
            for component in stack:
                component.check()
        say("stopping the local stack")
    say("stopped")
    return 0
