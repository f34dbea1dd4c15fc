"""The bridge against the real Mosquitto and Kafka: placement and order, crashes, a Kafka outage, two
instances, bad input, status records and recommendations going back out."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2
from paho.mqtt.enums import CallbackAPIVersion

from cli.services import Kafka, Mosquitto
from edge.loadgen import publish_messages
from smartfarm.records import DeadLetter, DeviceStatus, RawHeaders, Recommendation
from smartfarm.settings import KafkaSettings, MqttSettings
from smartfarm.telemetry import ConnectionState, Reading, Status, Telemetry
from smartfarm.topics import KafkaTopic, topic_specs, zone_key
from stream.admin import ensure_topics
from stream.settings import BridgeSettings
from tests.integration.pipeline import (
    Running,
    distinct,
    raw_messages,
    read_distinct,
    read_raw,
    read_topic,
    settings_for,
)

T0 = datetime(2026, 7, 1, tzinfo=UTC)


def telemetry(mqtt_settings: MqttSettings, devices: int, per_device: int) -> list[tuple[str, bytes]]:
    """Interleaved messages of ``devices`` devices, each with seq 0..per_device-1."""
    out = []
    for seq in range(per_device):
        for d in range(devices):
            device = f"dev-{d:03d}"
            body = Telemetry.create(
                device=device,
                seq=seq,
                ts=T0 + timedelta(minutes=5 * seq),
                readings=[Reading(sensor="sm-15", kind="soil_moisture", value=20 + seq % 7)],
            )
            out.append((mqtt_settings.topics.telemetry("farm-1", device), body.encode()))
    return out


@pytest.fixture
def bridge_settings(mosquitto: Mosquitto, kafka: Kafka) -> tuple[MqttSettings, KafkaSettings, BridgeSettings]:
    return settings_for(mosquitto, kafka)


def by_device(records: list) -> dict[str, list[int]]:
    seqs: dict[str, list[int]] = defaultdict(list)
    for record in records:
        seqs[record.key.decode()].append(json.loads(record.value)["seq"])
    return seqs


def first_occurrences(seqs: list[int]) -> list[int]:
    seen: set[int] = set()
    return [s for s in seqs if not (s in seen or seen.add(s))]  # type: ignore[func-returns-value]


def test_100_devices_x_100_messages_land_where_their_key_says_in_order(bridge_settings) -> None:
    mqtt_settings, kafka_settings, settings = bridge_settings
    running = Running(mqtt_settings, kafka_settings, settings)
    messages = telemetry(mqtt_settings, 100, 100)
    try:
        publish_messages(mqtt_settings, messages, client_id=f"pub-{settings.bridge_id}")
        records = read_raw(kafka_settings, 10_000)
        deadline = time.monotonic() + 10
        while (
            running.metric('smartfarm_bridge_forwarded_total{kind="telemetry"}') < 10_000
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert running.metric('smartfarm_bridge_forwarded_total{kind="telemetry"}') == 10_000
        assert running.metric("smartfarm_bridge_kafka_delivery_seconds_count") == 10_000
        assert running.metric("smartfarm_bridge_in_flight") == 0
    finally:
        running.stop()
    assert len(records) == 10_000, "exactly once in a run without failures"
    sent = set(messages)
    for record in records:
        device = record.key.decode()
        assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % 6, device
        headers = RawHeaders.from_kafka(record.headers)
        assert (headers.mqtt_topic, record.value) in sent, "the payload is forwarded untouched"
        assert headers.bridge_id == settings.bridge_id and headers.received_at > T0
    for device, seqs in by_device(records).items():
        assert seqs == list(range(100)), device


def test_a_killed_bridge_restarted_loses_nothing_and_duplicates_are_counted(bridge_settings) -> None:
    mqtt_settings, kafka_settings, settings = bridge_settings
    ensure_topics(kafka_settings)
    env = {
        **os.environ,
        "SMARTFARM_MQTT_PORT": str(mqtt_settings.port),
        "SMARTFARM_MQTT_TOPIC_ROOT": mqtt_settings.topic_root,
        "SMARTFARM_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "SMARTFARM_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "SMARTFARM_BRIDGE_BRIDGE_ID": settings.bridge_id,
        "SMARTFARM_BRIDGE_SHARE_GROUP": settings.share_group,
        "SMARTFARM_BRIDGE_METRICS_PORT": "0",
    }

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "bridge"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None and "metrics on" in proc.stdout.readline()
        time.sleep(0.5)
        return proc

    bridge = start()
    messages = telemetry(mqtt_settings, 50, 400)
    publisher = threading.Thread(
        target=publish_messages,
        args=(mqtt_settings, messages),
        kwargs={"client_id": f"pub-{settings.bridge_id}", "window": 200},
    )
    publisher.start()
    raw = KafkaConsumer(bootstrap_servers=kafka_settings.servers)
    partitions = [
        TopicPartition(topic_specs(kafka_settings.topic_prefix)[KafkaTopic.TELEMETRY_RAW].name, p) for p in range(6)
    ]
    raw.assign(partitions)
    seen = 0
    while seen < 3000:  # device messages in Kafka (the bridge packs them into envelopes)
        seen += sum(len(raw_messages(records)) for records in raw.poll(timeout_ms=50).values())
    raw.close()
    bridge.send_signal(signal.SIGKILL)
    bridge.wait(10)
    in_kafka_at_kill = len(read_raw(kafka_settings, 1, timeout_s=5))
    bridge = start()
    publisher.join(120)
    records = read_distinct(kafka_settings, messages)
    bridge.send_signal(signal.SIGTERM)
    assert bridge.wait(30) == 0, "SIGTERM stops the bridge cleanly"

    keys = distinct(records)
    assert in_kafka_at_kill < len(messages), "the bridge was killed mid-stream"
    assert len(keys) == len(messages), f"lost {len(messages) - len(keys)}"
    for device, seqs in by_device(records).items():
        assert first_occurrences(seqs) == list(range(400)), device
    print(f"\nSIGKILL after {in_kafka_at_kill} records: {len(records) - len(keys)} duplicates, none lost")


@pytest.mark.long(36)
def test_kafka_stopped_for_15_seconds_loses_nothing(mosquitto: Mosquitto, kafka: Kafka) -> None:
    mqtt_settings, kafka_settings, settings = settings_for(mosquitto, kafka, receive_maximum=500)
    running = Running(mqtt_settings, kafka_settings, settings)
    messages = telemetry(mqtt_settings, 40, 250)
    publisher = threading.Thread(
        target=publish_messages,
        args=(mqtt_settings, messages),
        kwargs={"client_id": f"pub-{settings.bridge_id}", "window": 100},
    )
    try:
        publisher.start()
        time.sleep(1.0)
        kafka.stop()
        held = []
        for _ in range(15):
            time.sleep(1)
            held.append(running.bridge.ingress.unacknowledged)
        kafka.start()
        publisher.join(120)
        records = read_distinct(kafka_settings, messages)
    finally:
        running.stop()
    assert max(held) <= 500, "the broker hands the bridge no more than receive_maximum unacknowledged messages"
    assert min(held[3:]) > 0, "nothing is acknowledged while Kafka is away"
    keys = distinct(records)
    assert len(keys) == len(messages)
    for device, seqs in by_device(records).items():
        assert first_occurrences(seqs) == list(range(250)), device
    print(f"\nKafka down 15 s: at most {max(held)} messages held, {len(records) - len(keys)} duplicates")


def test_a_bridge_back_from_downtime_drains_the_backlog_its_session_kept(mosquitto: Mosquitto, kafka: Kafka) -> None:
    # A backlog of many times receive_maximum makes the broker slow to answer CONNECT: the bridge must wait for
    # its CONNACK rather than reconnect (it once reconnected every loop turn and never drained anything).
    mqtt_settings, kafka_settings, settings = settings_for(mosquitto, kafka, receive_maximum=500)
    Running(mqtt_settings, kafka_settings, settings).stop()  # the session now exists and keeps what comes
    messages = telemetry(mqtt_settings, 50, 600)
    publish_messages(mqtt_settings, messages, client_id=f"pub-{settings.bridge_id}")
    began = time.monotonic()
    running = Running(mqtt_settings, kafka_settings, settings)
    try:
        records = read_distinct(kafka_settings, messages, timeout_s=60)
        drained_s = time.monotonic() - began
        reconnects = running.metric('smartfarm_bridge_reconnects_total{link="ingress"}')
    finally:
        running.stop()
    assert len(distinct(records)) == len(messages)
    assert len(records) == len(messages), "no duplicates: nothing was lost to a reconnect"
    assert reconnects == 0
    for device, seqs in by_device(records).items():
        assert seqs == list(range(600)), device
    print(f"\nbacklog of {len(messages)} drained in {drained_s:.1f} s")


def test_two_bridges_share_one_stream(mosquitto: Mosquitto, kafka: Kafka) -> None:
    mqtt_settings, kafka_settings, first = settings_for(mosquitto, kafka)
    second = first.model_copy(update={"bridge_id": first.bridge_id + "-2"})
    one = Running(mqtt_settings, kafka_settings, first)
    two = Running(mqtt_settings, kafka_settings, second)
    messages = telemetry(mqtt_settings, 100, 60)
    try:
        publish_messages(mqtt_settings, messages, client_id=f"pub-{first.bridge_id}")
        records = read_raw(kafka_settings, len(messages))
        time.sleep(0.5)
        shares = [r.metric('smartfarm_bridge_forwarded_total{kind="telemetry"}') for r in (one, two)]
    finally:
        one.stop()
        two.stop()
    assert all(share > 0 for share in shares), shares
    assert sum(shares) == len(messages) == len({(r.key, r.value) for r in records})
    bridges = Counter(RawHeaders.from_kafka(r.headers).bridge_id for r in records)
    assert set(bridges) == {first.bridge_id, second.bridge_id}


def test_bad_inputs_are_dead_lettered_with_their_reason_while_good_ones_flow(bridge_settings) -> None:
    mqtt_settings, kafka_settings, settings = bridge_settings
    running = Running(mqtt_settings, kafka_settings, settings)
    root = mqtt_settings.topic_root
    good = telemetry(mqtt_settings, 5, 20)
    bad = [
        (f"{root}/v1/farm-1/devices/dev-900/telemetry", b"{" + b" " * (17 * 1024) + b"}", "payload_too_large"),
        (f"{root}/v1/farm-1/devices/dev-901/telemetry", b"\xff\xfe\x00\x81garbage", "not_utf8"),
        (f"{root}/v1/Farm_X/devices/dev-902/telemetry", b'{"schema_version":1}', "unknown_topic"),
        (f"{root}/v1/farm-1/devices/dev-903/telemetry", b"", "empty_payload"),
        (f"{root}/v1/farm-1/devices/dev-904/status", b'{"state":"asleep"}', "invalid_payload"),
    ]
    mixed: list[tuple[str, bytes]] = []
    for i, message in enumerate(good):
        mixed.append(message)
        if i % 20 == 10:
            topic, payload, _ = bad[i // 20]
            mixed.append((topic, payload))
    try:
        publish_messages(mqtt_settings, mixed, client_id=f"pub-{settings.bridge_id}")
        letters = [DeadLetter.decode(r.value) for r in read_topic(kafka_settings, KafkaTopic.DEADLETTER, len(bad))]
        raw = read_raw(kafka_settings, len(good))
        dead_metric = running.metric("smartfarm_bridge_dead_lettered_total")
    finally:
        running.stop()
    assert len(raw) == len(good), "good messages keep flowing around the bad ones"
    assert len(letters) == len(bad) == dead_metric
    found = {letter.mqtt_topic: letter for letter in letters}
    for topic, payload, reason in bad:
        letter = found[topic]
        assert letter.reason.value == reason and letter.stage.value == "bridge"
        assert letter.payload == payload, "the original bytes are kept"
        assert letter.detail
    raw_json = json.loads(next(r.value for r in read_topic(kafka_settings, KafkaTopic.DEADLETTER, 1)))
    assert base64.b64decode(raw_json["payload"]) in {p for _, p, _ in bad}


def test_status_messages_become_device_status_records(bridge_settings) -> None:
    mqtt_settings, kafka_settings, settings = bridge_settings
    running = Running(mqtt_settings, kafka_settings, settings)
    topic = mqtt_settings.topics.status("farm-1", "dev-7")
    will = Status.create(device="dev-7", state=ConnectionState.OFFLINE, ts=T0, will=True)
    try:
        publish_messages(mqtt_settings, [(topic, will.encode())], client_id=f"p-{settings.bridge_id}")
        records = read_topic(kafka_settings, KafkaTopic.DEVICE_STATUS, 1)
    finally:
        running.stop()
    status = DeviceStatus.decode(records[0].value)
    assert records[0].key == b"dev-7"
    assert (status.farm, status.device, status.state, status.will) == ("farm-1", "dev-7", ConnectionState.OFFLINE, True)


def test_recommendations_on_kafka_appear_on_their_zone_topics(bridge_settings) -> None:
    mqtt_settings, kafka_settings, settings = bridge_settings
    running = Running(mqtt_settings, kafka_settings, settings)
    zones = [("farm-1", "zone-a"), ("farm-1", "zone-b"), ("farm-2", "zone-a")]
    recommendations = [
        Recommendation.create(
            id=uuid.uuid4(),
            farm=farm,
            zone=zone,
            kind="irrigation",
            severity="advisory",
            issued_at=T0 + timedelta(hours=i),
            valid_until=T0 + timedelta(days=1),
            message=f"irrigate {i} mm",
            model="irrigation-xgb@1",
            confidence=0.8,
            amount_mm=float(i + 1),
        )
        for i, (farm, zone) in enumerate(zones * 3)
    ]
    got: dict[str, list[bytes]] = defaultdict(list)
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{settings.bridge_id}", protocol=mqtt.MQTTv5)
    sub.on_message = lambda _c, _u, msg: got[msg.topic].append(msg.payload)
    sub.connect(mqtt_settings.host, mqtt_settings.port)
    sub.subscribe(f"{mqtt_settings.topic_root}/v1/+/zones/+/recommendations", qos=1)
    sub.loop_start()
    producer = KafkaProducer(bootstrap_servers=kafka_settings.servers, acks="all")
    topic = topic_specs(kafka_settings.topic_prefix)[KafkaTopic.RECOMMENDATIONS].name
    try:
        for rec in recommendations:
            producer.send(topic, key=zone_key(rec.farm, rec.zone), value=rec.encode())
        producer.send(topic, key=b"farm-1/zone-a", value=b"{broken")
        producer.flush()
        deadline = time.monotonic() + 20
        while sum(map(len, got.values())) < len(recommendations) and time.monotonic() < deadline:
            time.sleep(0.05)
        letters = read_topic(kafka_settings, KafkaTopic.DEADLETTER, 1)
        time.sleep(1)
    finally:
        sub.loop_stop()
        sub.disconnect()
        producer.close()
        running.stop()
    for farm, zone in zones:
        mqtt_topic = mqtt_settings.topics.recommendations(farm, zone)
        expected = [r.encode() for r in recommendations if (r.farm, r.zone) == (farm, zone)]
        assert got[mqtt_topic] == expected, "each zone's recommendations, in order, on its own topic"
    letter = DeadLetter.decode(letters[0].value)
    assert letter.source_topic == topic and letter.payload == b"{broken" and letter.reason.value == "invalid_json"

    # Retained: a valve that subscribes later gets its zone's latest recommendation at once.
    latest: list[bytes] = []
    late = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"late-{settings.bridge_id}", protocol=mqtt.MQTTv5)
    late.on_message = lambda _c, _u, msg: latest.append(msg.payload)
    late.connect(mqtt_settings.host, mqtt_settings.port)
    late.subscribe(mqtt_settings.topics.recommendations("farm-1", "zone-b"), qos=1)
    late.loop_start()
    deadline = time.monotonic() + 5
    while not latest and time.monotonic() < deadline:
        time.sleep(0.05)
    late.loop_stop()
    late.disconnect()
    assert latest == [recommendations[-2].encode()]

    # Offsets were committed only for what went out: the group is at the end of the topic.
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_settings.servers, group_id=f"{kafka_settings.topic_prefix}.bridge-egress"
    )
    partitions = [TopicPartition(topic, p) for p in range(6)]
    ends = consumer.end_offsets(partitions)
    committed = {tp: consumer.committed(tp) or 0 for tp in partitions}
    consumer.close()
    assert committed == ends
