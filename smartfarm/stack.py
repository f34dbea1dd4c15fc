"""``smartfarm up``: the local stack, on the ports the component settings name.

For now the stack is the three services and what the pipeline declares in them (Kafka topics, the InfluxDB
database); the edge fleet, the bridge and the agents join it as they are built.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import threading
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from edge.settings import MqttSettings
from smartfarm.console import add_settings_options, say, settings_from
from smartfarm.errors import ConfigError
from smartfarm.services import InfluxDB, Kafka, Mosquitto, fetch_kafka_jars
from smartfarm.services.base import port_open
from smartfarm.services.settings import ServicesSettings
from storage.influx import InfluxClient
from storage.settings import InfluxSettings
from stream.admin import ensure_topics
from stream.settings import KafkaSettings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser("up", help="run the local stack until Ctrl-C or SIGTERM")
    up.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: run until stopped)")
    up.add_argument("--fresh", action="store_true", help="delete the services' data from earlier runs first")
    add_settings_options(up, ServicesSettings, "workdir", "cache_dir", "kafka_version", "kafka_heap")
    add_settings_options(up, MqttSettings, "port")
    add_settings_options(up, KafkaSettings, "bootstrap_servers", "topic_prefix", "partitions")
    add_settings_options(up, InfluxSettings, "url", "database")
    up.set_defaults(run=run_up)


def _loopback_port(what: str, env: str, host: str | None, port: int | None) -> int:
    if host not in ("127.0.0.1", "localhost") or port is None:
        raise ConfigError(f"{env} must name a loopback host and a port for the local stack (got {host}:{port})")
    if port_open(port):
        raise ConfigError(f"port {port} for {what} is in use; stop what holds it or set {env} to a free port")
    return port


def run_up(args: argparse.Namespace) -> int:
    services = settings_from(ServicesSettings, args)
    mqtt = settings_from(MqttSettings, args)
    kafka = settings_from(KafkaSettings, args)
    influx = settings_from(InfluxSettings, args)

    mqtt_port = _loopback_port("Mosquitto", "SMARTFARM_MQTT_PORT", mqtt.host, mqtt.port)
    kafka_host, _, kafka_port_text = kafka.servers[0].rpartition(":")
    kafka_port = _loopback_port(
        "Kafka",
        "SMARTFARM_KAFKA_BOOTSTRAP_SERVERS",
        kafka_host,
        int(kafka_port_text) if kafka_port_text.isdigit() else None,
    )
    url = urlsplit(influx.url)
    influx_port = _loopback_port("InfluxDB", "SMARTFARM_INFLUX_URL", url.hostname, url.port)

    workdir = Path(services.workdir).resolve()
    if args.fresh and workdir.exists():
        shutil.rmtree(workdir)
    fetch_kafka_jars(services.kafka_home, services.kafka_version)

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    with ExitStack() as stack:
        broker = stack.enter_context(Mosquitto(workdir / "mosquitto", port=mqtt_port))
        influxd = stack.enter_context(InfluxDB(workdir / "influxdb", port=influx_port))
        kafkad = stack.enter_context(
            Kafka(
                workdir / "kafka",
                services.kafka_home,
                port=kafka_port,
                partitions=kafka.partitions,
                heap=services.kafka_heap,
            )
        )
        created = ensure_topics(kafka)
        with InfluxClient(influx) as client:
            client.create_database()
        say("SmartFarm local stack is up (Ctrl-C stops it):")
        say(f"  Mosquitto  {broker.url:<28} ready in {broker.ready_seconds:.1f}s")
        say(
            f"  Kafka      {kafkad.bootstrap_servers:<28} ready in {kafkad.ready_seconds:.1f}s, "
            f"{len(created)} topics created under {kafka.topic_prefix}."
        )
        say(f"  InfluxDB   {influxd.url:<28} ready in {influxd.ready_seconds:.1f}s, database {influx.database}")
        say(f"  data and logs in {workdir}")
        stop.wait(args.duration or None)
        say("stopping the local stack")
    say("stopped")
    return 0
