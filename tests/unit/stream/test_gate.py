"""The bridge's door and router, table-driven: no broker needed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kafka.partitioner.default import murmur2

from smartfarm.errors import ContractError, RejectReason
from smartfarm.records import DeadLetter, DeviceStatus, RawHeaders, RejectStage
from smartfarm.telemetry import ConnectionState, Status
from smartfarm.topics import DeviceAddress, DeviceTopic, MqttTopics, topic_specs
from stream.gate import DEADLETTER, Door, Router, status_record

DOOR = Door(MqttTopics("smartfarm"), 1024)
GOOD = b'{"schema_version":1}'


@pytest.mark.parametrize(
    ("topic", "payload", "expected"),
    [
        ("smartfarm/v1/f-1/devices/d-1/telemetry", GOOD, DeviceAddress("f-1", "d-1", DeviceTopic.TELEMETRY)),
        ("smartfarm/v1/f-1/devices/d-1/status", GOOD, DeviceAddress("f-1", "d-1", DeviceTopic.STATUS)),
        (
            "smartfarm/v1/f-1/devices/d-1/telemetry",
            b"not json but utf-8",
            DeviceAddress("f-1", "d-1", DeviceTopic.TELEMETRY),
        ),
        ("smartfarm/v1/f-1/devices/d-1/telemetry", b"x" * 1024, DeviceAddress("f-1", "d-1", DeviceTopic.TELEMETRY)),
        ("smartfarm/v1/f-1/devices/d-1/telemetry", b"x" * 1025, RejectReason.PAYLOAD_TOO_LARGE),
        ("smartfarm/v1/f-1/devices/d-1/telemetry", b"", RejectReason.EMPTY_PAYLOAD),
        ("smartfarm/v1/f-1/devices/d-1/telemetry", b"\xff\xfe\x00garbage", RejectReason.NOT_UTF8),
        ("smartfarm/v1/F_1/devices/d-1/telemetry", GOOD, RejectReason.UNKNOWN_TOPIC),
        ("smartfarm/v1/f-1/devices/-d/telemetry", GOOD, RejectReason.UNKNOWN_TOPIC),
        ("smartfarm/v1/f-1/devices/d-1/config", GOOD, RejectReason.UNKNOWN_TOPIC),
        ("smartfarm/v2/f-1/devices/d-1/telemetry", GOOD, RejectReason.UNKNOWN_TOPIC),
        ("other/v1/f-1/devices/d-1/telemetry", GOOD, RejectReason.UNKNOWN_TOPIC),
        ("smartfarm/v1/f-1/zones/z-1/telemetry", GOOD, RejectReason.UNKNOWN_TOPIC),
        ("smartfarm/v1/f-1/devices/d-1/telemetry/x", GOOD, RejectReason.UNKNOWN_TOPIC),
        ("smartfarm/v1/f-1/devices/" + "d" * 64 + "/telemetry", GOOD, RejectReason.UNKNOWN_TOPIC),
    ],
)
def test_the_door(topic: str, payload: bytes, expected: DeviceAddress | RejectReason) -> None:
    if isinstance(expected, DeviceAddress):
        assert DOOR.admit(topic, payload) == expected
    else:
        with pytest.raises(ContractError) as caught:
            DOOR.admit(topic, payload)
        assert caught.value.reason is expected


def test_a_dead_letter_is_keyed_by_the_device_when_the_topic_names_one() -> None:
    assert MqttTopics.device_named("smartfarm/v1/F_1/devices/d-1/telemetry") == "d-1"
    assert MqttTopics.device_named("random/topic") is None


def test_status_messages_become_records_of_their_farm() -> None:
    now = datetime(2026, 7, 1, tzinfo=UTC)
    admitted = DeviceAddress("f-1", "d-1", DeviceTopic.STATUS)
    record = status_record(
        admitted, Status.create(device="d-1", state=ConnectionState.OFFLINE, ts=now, will=True).encode(), now
    )
    assert (record.farm, record.device, record.state, record.will, record.received_at) == (
        "f-1",
        "d-1",
        ConnectionState.OFFLINE,
        True,
        now,
    )
    with pytest.raises(ContractError, match="status of device 'd-2'"):
        status_record(admitted, Status.create(device="d-2", state=ConnectionState.ONLINE, ts=now).encode(), now)
    with pytest.raises(ContractError) as caught:
        status_record(admitted, b"{}", now)
    assert caught.value.reason is RejectReason.INVALID_PAYLOAD


SPECS = topic_specs("t", 6)
ROUTER = Router(DOOR, SPECS, {spec.name: 6 for spec in SPECS.values()}, "bridge-7")
RECEIVED = datetime(2026, 7, 1, 12, 0, 0, 123_456, tzinfo=UTC).timestamp()


def test_telemetry_is_routed_untouched_to_the_partition_kafka_would_choose() -> None:
    payload = b'{"schema_version":1,"device":"d-1"}'
    route = ROUTER.route("smartfarm/v1/f-1/devices/d-1/telemetry", payload, RECEIVED)
    assert (route.kind, route.topic, route.key, route.value, route.reason) == (
        "telemetry",
        "t.telemetry.raw",
        b"d-1",
        payload,
        None,
    )
    headers = RawHeaders.from_kafka(route.headers)
    assert headers.mqtt_topic == "smartfarm/v1/f-1/devices/d-1/telemetry"
    assert headers.received_at == datetime(2026, 7, 1, 12, 0, 0, 123_000, tzinfo=UTC)
    assert headers.bridge_id == "bridge-7"
    assert route.partition == (murmur2(b"d-1") & 0x7FFFFFFF) % 6, "kafka-python's (and Java's) default partitioner"


def test_a_status_becomes_a_device_status_record_keyed_by_its_device() -> None:
    status = Status.create(device="d-1", state=ConnectionState.ONLINE, ts=datetime(2026, 7, 1, tzinfo=UTC))
    route = ROUTER.route("smartfarm/v1/f-1/devices/d-1/status", status.encode(), RECEIVED)
    assert (route.kind, route.topic, route.key, route.headers) == ("status", "t.device.status", b"d-1", None)
    assert DeviceStatus.decode(route.value).farm == "f-1"


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "key"),
    [
        ("smartfarm/v1/F_1/devices/d-1/telemetry", GOOD, RejectReason.UNKNOWN_TOPIC, b"d-1"),
        ("some/other/topic", GOOD, RejectReason.UNKNOWN_TOPIC, b"some/other/topic"),
        ("smartfarm/v1/f-1/devices/d-1/telemetry", b"", RejectReason.EMPTY_PAYLOAD, b"d-1"),
        ("smartfarm/v1/f-1/devices/d-1/status", b"{}", RejectReason.INVALID_PAYLOAD, b"d-1"),
    ],
)
def test_what_is_refused_is_routed_to_the_dead_letters_with_its_reason(
    topic: str, payload: bytes, reason: RejectReason, key: bytes
) -> None:
    route = ROUTER.route(topic, payload, RECEIVED)
    assert (route.kind, route.topic, route.key, route.reason) == (DEADLETTER, "t.deadletter", key, reason)
    letter = DeadLetter.decode(route.value)
    assert (letter.reason, letter.stage, letter.payload, letter.mqtt_topic) == (
        reason,
        RejectStage.BRIDGE,
        payload,
        topic,
    )
