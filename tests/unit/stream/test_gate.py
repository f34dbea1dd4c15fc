"""The bridge's door and router, table-driven: no broker needed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kafka.partitioner.default import murmur2

from smartfarm.envelope import is_envelope, unpack
from smartfarm.errors import ContractError, RejectReason
from smartfarm.records import DeadLetter, DeviceStatus, RawHeaders, RejectStage
from smartfarm.telemetry import ConnectionState, Status
from smartfarm.topics import DeviceAddress, DeviceTopic, MqttTopics, topic_specs
from stream.gate import DEADLETTER, Door, Packer, Router, status_record

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


PACKING_ROUTER = Router(DOOR, topic_specs("t", 6), {s.name: 6 for s in topic_specs("t", 6).values()}, "b-1")


def telemetry_routes(devices: int, each: int) -> list:
    return [
        PACKING_ROUTER.route(f"smartfarm/v1/f-1/devices/d-{d}/telemetry", b'{"seq":%d}' % s, 1_782_907_200.0 + s)
        for s in range(each)
        for d in range(devices)
    ]


def test_envelopes_hold_each_partitions_messages_in_order_with_their_headers() -> None:
    packer = Packer("b-1", hold_s=0.05)
    routes = telemetry_routes(20, 5)
    assert all(packer.add(r, i, now=10.0) is None for i, r in enumerate(routes))
    assert packer.seal(now=10.01) == [], "not due before they waited hold_s"
    assert len(packer) == 100
    parcels = packer.seal(now=10.05)
    assert len(packer) == 0 and sorted(p.partition for p in parcels) == sorted({r.partition for r in routes})
    for parcel in parcels:
        assert is_envelope(parcel.headers) and ("bridge_id", b"b-1") in (parcel.headers or [])
        mine = [(i, r) for i, r in enumerate(routes) if r.partition == parcel.partition]
        assert parcel.tokens == [i for i, _ in mine], "acknowledged together, in arrival order"
        letters = unpack(parcel.value)
        assert [(x.key, x.payload) for x in letters] == [(r.key, r.value) for _, r in mine]
        assert [(x.topic, x.received_at) for x in letters] == [(r.headers[0][1], r.headers[1][1]) for _, r in mine]


def test_a_full_envelope_leaves_at_once_and_the_next_one_keeps_the_order() -> None:
    packer = Packer("b-1", hold_s=1.0, max_bytes=300)
    routes = telemetry_routes(1, 12)
    sent = [p for p in (packer.add(r, i, now=0.0) for i, r in enumerate(routes)) if p is not None]
    sent += packer.seal(now=0.0, everything=True)
    assert len(sent) > 1 and all(len(p.value) <= 300 for p in sent)
    assert [t for p in sent for t in p.tokens] == list(range(12))
    assert [x.payload for p in sent for x in unpack(p.value)] == [r.value for r in routes]
