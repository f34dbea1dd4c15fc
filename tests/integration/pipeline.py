"""Helpers for tests that run the pipeline: a bridge in this process, workers as processes, reading topics back."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from kafka import KafkaConsumer, TopicPartition
from pydantic import SecretStr

from cli.brokerauth import write_broker_auth
from cli.services import Kafka, Mosquitto
from cli.services.mosquitto import broker_answers
from cli.worker import WorkerProcess
from edge.settings import EdgeSettings
from smartfarm import kafkaclient
from smartfarm.certificates import installation_tls
from smartfarm.credentials import device_password
from smartfarm.layout import Layout, load_layout, replicate
from smartfarm.settings import InfluxSettings, InfluxUsers, KafkaSecurity, KafkaSettings, MqttSettings, environment
from smartfarm.topics import KafkaTopic, topic_specs
from storage.accounts import declare
from storage.influx import InfluxClient
from stream.admin import ensure_topics
from stream.bridge import Bridge
from stream.clean import RawMessage, Refused, opened
from stream.settings import BridgeSettings
from tests.helpers import FLEET_SECRET, unique
from tests.hostile import FARM, good

SecuredBroker = tuple[Mosquitto, MqttSettings, Layout]

INFLUX_USERS = InfluxUsers()
"""The session InfluxDB's admin and reader: the development defaults, as the benchmarks' and ``smartfarm up``'s, each
password its own (a reader logging in with the writer's password is refused)."""


@contextmanager
def influx_database(url: str, prefix: str = "t") -> Iterator[InfluxClient]:
    """A database of the caller's own on the InfluxDB at ``url``, declared as ``smartfarm up`` declares it (the
    writer ALL, the reader READ), and a client on it logged in as the writer; dropped after."""
    settings = InfluxSettings(url=url, database=unique(prefix))
    declare(settings, INFLUX_USERS)
    try:
        with InfluxClient(settings) as client:
            yield client
    finally:
        with InfluxClient(settings, INFLUX_USERS.admin) as admin:
            admin.drop_database()


SASL_USER = "smartfarm-tests"
SASL_PASSWORD = SecretStr("sasl,test=password")
"""The SCRAM user of the session Kafka's SASL listener (a comma and an equals sign: Kafka's --add-scram syntax
cuts values there, so the launcher must not pass the password through it)."""


def kafka_client(kafka: Kafka, topic_prefix: str, sasl: bool = False) -> KafkaSettings:
    """Settings for the session Kafka: its plaintext listener, or with ``sasl`` its SASL_PLAINTEXT one and the
    SCRAM user."""
    if not sasl:
        return KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_prefix=topic_prefix)
    return KafkaSettings(
        bootstrap_servers=kafka.sasl_bootstrap_servers,
        topic_prefix=topic_prefix,
        security_protocol=KafkaSecurity.SASL_PLAINTEXT,
        sasl_username=SASL_USER,
        sasl_password=SASL_PASSWORD,
    )


@contextmanager
def securing(tmp_path: Path, tls: bool = False, client_certs: bool = False) -> Iterator[SecuredBroker]:
    """A broker under ``tmp_path`` with the credentials and ACL ``smartfarm broker-auth`` writes for the layout, on
    a topic root of its own: the service user ``tester`` has the bridge's role. With ``tls`` it listens over TLS
    only, with a CA and certificate made in ``tmp_path/tls`` (the settings it yields trust that CA);
    ``client_certs`` adds its listener for devices' client certificates."""
    layout = replicate(load_layout(), 50)
    root = unique("t")
    tester = MqttSettings(topic_root=root, username="tester", password=SecretStr("tester-password"))
    write_broker_auth(tmp_path, layout, EdgeSettings(device_secret=FLEET_SECRET), tester)
    files = installation_tls(tmp_path / "tls") if tls else None
    broker = Mosquitto(
        tmp_path / "broker",
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
        tls=files,
        client_certs=client_certs,
    )
    with broker:
        yield broker, broker.client_settings(MqttSettings(topic_root=root)), layout


def plaintext_answers(host: str, port: int) -> bool:
    """Whether a plaintext MQTT CONNECT gets a CONNACK at ``host:port`` (a TLS listener hangs up on it)."""
    try:
        return broker_answers(host, port)
    except OSError:
        return False


def read_topic(kafka: KafkaSettings, topic: KafkaTopic, expect: int, timeout_s: float = 60) -> list:
    """Every record of a pipeline topic, once it holds at least ``expect`` and has stopped growing for 0.5 s.

    Reads up to the end offsets seen then, so duplicates beyond ``expect`` are read too."""
    name = topic_specs(kafka.topic_prefix)[topic].name
    consumer = KafkaConsumer(**kafkaclient.kafka_python(kafka), enable_auto_commit=False)
    partitions = [TopicPartition(name, p) for p in range(kafka.partitions)]
    deadline = time.monotonic() + timeout_s
    ends = consumer.end_offsets(partitions)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = consumer.end_offsets(partitions)
        if now == ends and sum(now.values()) >= expect:
            break
        ends = now
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    records: list = []
    while any(consumer.position(p) < ends[p] for p in partitions):
        for batch in consumer.poll(timeout_ms=500).values():
            records += batch
    consumer.close()
    return records


class RawRecord(NamedTuple):
    """One device message of ``telemetry.raw`` as a record of its own would hold it (out of its envelope)."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    partition: int
    offset: int


def raw_messages(records: Iterable) -> list[RawRecord]:
    """The device messages of ``telemetry.raw`` records, envelopes opened (by the worker's own ``opened``)."""
    out = []
    for record in records:
        inside = opened(record.key or b"", RawMessage(record.value, record.headers, record.topic, record.partition))
        assert not isinstance(inside, Refused), f"a broken envelope at offset {record.offset}: {inside}"
        out += [RawRecord(key, raw.value, raw.headers or [], record.partition, record.offset) for key, raw in inside]
    return out


def read_raw(kafka: KafkaSettings, expect: int, timeout_s: float = 60) -> list[RawRecord]:
    """The device messages in ``telemetry.raw`` once there are at least ``expect`` and they stopped coming."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = raw_messages(
            read_topic(kafka, KafkaTopic.TELEMETRY_RAW, 1, timeout_s=max(1, deadline - time.monotonic()))
        )
        if len(found) >= expect or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def read_distinct(kafka: KafkaSettings, messages: list[tuple[str, bytes]], timeout_s: float = 120) -> list:
    """The telemetry messages, waiting until every one is there at least once (duplicates come along)."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = read_raw(kafka, len(messages), timeout_s=10)
        if len(distinct(records)) == len(messages) or time.monotonic() > deadline:
            return records


def distinct(records: list) -> set[tuple[bytes, int]]:
    return {(r.key, json.loads(r.value)["seq"]) for r in records}


def settings_for(
    mosquitto: Mosquitto, kafka: Kafka, **bridge: object
) -> tuple[MqttSettings, KafkaSettings, BridgeSettings]:
    tag = uuid.uuid4().hex[:8]
    mqtt_settings = MqttSettings(host=mosquitto.host, port=mosquitto.port, topic_root=f"t{tag}")
    kafka_settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_prefix=f"t{tag}")
    values = {"bridge_id": f"b-{tag}", "share_group": f"g{tag}", "metrics_port": 0, **bridge}
    ensure_topics(kafka_settings)  # as `smartfarm up` and `smartfarm bridge` do before a bridge starts
    return mqtt_settings, kafka_settings, BridgeSettings(**values)


class Running:
    """A bridge running in this process."""

    def __init__(self, mqtt_settings: MqttSettings, kafka: KafkaSettings, bridge: BridgeSettings) -> None:
        self.bridge = Bridge(mqtt_settings, kafka, bridge)
        self.bridge.start()
        assert self.bridge.ingress.connected.wait(10)
        time.sleep(0.3)  # the SUBACK

    def metric(self, name: str) -> float:
        assert self.bridge.metrics_port is not None
        return metric_value(self.bridge.metrics_port, name)

    def stop(self) -> None:
        self.bridge.stop()


def metric_value(port: int, name: str) -> float:
    """The sum of a Prometheus metric's samples whose line starts with ``name`` (labels included)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def start_worker(
    kafka: KafkaSettings,
    influx: InfluxSettings,
    workdir: Path,
    worker_id: str,
    extra_env: Mapping[str, str] | None = None,
    **settings: str,
) -> WorkerProcess:
    """``smartfarm worker`` on this test's topics and database, as a process of its own (so it can be killed).

    Its model registry is ``workdir/models``: empty (the baselines score) unless the test registers models there."""
    env = {
        **environment(kafka),
        **environment(influx),
        "SMARTFARM_WORKER_WORKER_ID": worker_id,
        "SMARTFARM_WORKER_METRICS_PORT": "0",
        "SMARTFARM_WORKER_DATA_DIR": str(workdir / worker_id),
        "SMARTFARM_MODELS_STORE": str(workdir / "models"),  # an empty registry: the transparent baselines score
        **{f"SMARTFARM_WORKER_{k.upper()}": v for k, v in settings.items()},
        **(extra_env or {}),
    }
    worker = WorkerProcess(env, workdir / f"{worker_id}.log", worker_id, log_level="INFO")
    worker.start()
    return worker


class Pipeline:
    """A bridge on a secured broker, a worker process and a database, all of one test's own; with ``sasl`` every
    Kafka client logs in at the session Kafka's SASL listener."""

    def __init__(
        self, broker: SecuredBroker, kafka: Kafka, influx: InfluxClient, workdir: Path, sasl: bool = False
    ) -> None:
        _, mqtt, self.layout = broker
        tag = unique("")
        self.mqtt = mqtt
        self.kafka = kafka_client(kafka, f"t{tag}", sasl)
        self.influx = influx
        self.workdir = workdir
        ensure_topics(self.kafka)
        service = mqtt.model_copy(update={"username": "tester", "password": SecretStr("tester-password")})
        bridge = BridgeSettings(bridge_id=f"b{tag}", share_group=f"g{tag}", metrics_port=0)
        self.bridge = Running(service, self.kafka, bridge)
        self.workers: list[WorkerProcess] = []

    def worker(self, name: str = "w1", extra_env: Mapping[str, str] | None = None, **settings: str) -> WorkerProcess:
        worker = start_worker(self.kafka, self.influx.settings, self.workdir, name, extra_env, **settings)
        self.workers.append(worker)
        return worker

    def device(self, device: str) -> MqttSettings:
        """MQTT settings that log in as ``device`` with its real password."""
        password = SecretStr(device_password(FLEET_SECRET, device))
        return self.mqtt.model_copy(update={"username": device, "password": password})

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.bridge.stop()


def wait_for(what: str, check, timeout_s: float = 60, explain=lambda: "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what} {explain()}"
        time.sleep(0.25)


def stored_count(influx: InfluxClient) -> int:
    rows = influx.query("SELECT count(value) AS n FROM reading")
    return int(rows[0]["n"]) if rows else 0


def telemetry(
    mqtt: MqttSettings, device: str, start: datetime, seqs: Iterable[int], moisture: float
) -> list[tuple[str, bytes]]:
    """(topic, payload) of a soil node's messages every 5 minutes from ``start``, values drifting slowly (readings
    that repeat exactly are flagged stuck, and aggregates take only good ones)."""
    out = []
    for s in seqs:
        doc = good(start + timedelta(minutes=5 * s), s, device=device)
        drift = s * 0.001
        for reading, base in zip(doc["readings"], (moisture, moisture + 4, 19.0, 3.7), strict=True):
            reading["value"] = round(base - drift, 4)
        out.append((mqtt.topics.telemetry(FARM, device), json.dumps(doc).encode()))
    return out
