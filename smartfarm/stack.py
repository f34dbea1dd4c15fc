"""``smartfarm up``: the local stack, on the ports the component settings name.

For now the stack is the three services, what the pipeline declares in them (Kafka topics, the InfluxDB
database), the bridge, and the simulated farm publishing into Mosquitto; the agents join it as they are built.
The broker lets in only the layout's devices (passwords derived from ``SMARTFARM_EDGE_DEVICE_SECRET``), the
valves, the bridge, and the service user ``SMARTFARM_MQTT_USERNAME`` when one is set.
"""

from __future__ import annotations

import argparse
import shutil
import threading
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from edge.credentials import acl, device_password, write_password_file
from edge.fleet import prepare
from edge.settings import EdgeSettings, MqttSettings
from smartfarm.console import add_settings_options, say, settings_from, stop_on_signals
from smartfarm.errors import ConfigError
from smartfarm.layout import Layout, load_layout, replicate
from smartfarm.services import InfluxDB, Kafka, Mosquitto, fetch_kafka_jars
from smartfarm.services.base import port_open
from smartfarm.services.settings import ServicesSettings
from smartfarm.settings import LayoutSettings
from storage.influx import InfluxClient
from storage.settings import InfluxSettings
from stream.admin import ensure_topics
from stream.bridge import Bridge
from stream.settings import BridgeSettings, KafkaSettings


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
    up.set_defaults(run=run_up)


def _loopback_port(what: str, env: str, host: str | None, port: int | None) -> int:
    if host not in ("127.0.0.1", "localhost") or port is None:
        raise ConfigError(f"{env} must name a loopback host and a port for the local stack (got {host}:{port})")
    if port_open(port):
        raise ConfigError(f"port {port} for {what} is in use; stop what holds it or set {env} to a free port")
    return port


BRIDGE_USER = "smartfarm-bridge"


def write_broker_auth(folder: Path, layout: Layout, edge: EdgeSettings, mqtt: MqttSettings) -> MqttSettings:
    """The broker's password file and ACL: the layout's devices, the valves, the bridge, and the service user
    ``SMARTFARM_MQTT_USERNAME`` if set. Returns the MQTT settings the bridge logs in with."""
    folder.mkdir(parents=True, exist_ok=True)
    users = {d: device_password(edge.device_secret, d) for d in layout.placements}
    index, count = edge.shard_index
    valves = f"valves-{index}-of-{count}"
    users[valves] = device_password(edge.device_secret, valves)
    bridge_password = device_password(edge.device_secret, BRIDGE_USER)
    users[BRIDGE_USER] = bridge_password
    services = [BRIDGE_USER]
    if mqtt.username:
        users[mqtt.username] = mqtt.password.get_secret_value()
        services.append(mqtt.username)
    write_password_file(folder / "passwd", users)
    (folder / "acl").write_text(acl(mqtt.topic_root, tuple(services)))
    return mqtt.model_copy(update={"username": BRIDGE_USER, "password": SecretStr(bridge_password)})


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

    edge = settings_from(EdgeSettings, args)
    layout = load_layout(settings_from(LayoutSettings, args).layout)
    if edge.devices:
        layout = replicate(layout, edge.devices)
    auth = workdir / "mosquitto-auth"
    bridge_mqtt = write_broker_auth(auth, layout, edge, mqtt)
    bridge_settings = settings_from(BridgeSettings, args)

    stop = stop_on_signals()
    if args.duration:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()

    with ExitStack() as stack:
        broker = stack.enter_context(
            Mosquitto(workdir / "mosquitto", port=mqtt_port, password_file=auth / "passwd", acl_file=auth / "acl")
        )
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
        bridge = Bridge(bridge_mqtt, kafka, bridge_settings)
        bridge.start()
        stack.callback(bridge.stop)
        say(
            f"  Bridge     {bridge_settings.bridge_id:<28} metrics on "
            f"http://{bridge_settings.metrics_host}:{bridge.metrics_port}/metrics"
        )
        say(f"  data and logs in {workdir}")
        fleet, source = prepare(layout, mqtt.model_copy(update={"host": broker.host}), edge)
        say(f"  Edge       {len(fleet.links)} simulated devices at {edge.speed:g}x real time (seed {edge.seed})")
        fleet.run(source, stop, edge.speed, on_progress=lambda s: say(f"  {s.line()}"))
        stop.wait()
        say("stopping the local stack")
    say("stopped")
    return 0
