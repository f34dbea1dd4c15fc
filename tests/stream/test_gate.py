"""The bridge's door, table-driven: no broker needed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge.contract import DeviceState, DeviceTopic, Status
from smartfarm.errors import ContractError, RejectReason
from stream.gate import Admitted, Door, status_record

DOOR = Door("smartfarm", 1024)
GOOD = b'{"schema_version":1}'


@pytest.mark.parametrize(
    ("topic", "payload", "expected"),
    [
        ("smartfarm/v1/f-1/devices/d-1/telemetry", GOOD, Admitted("f-1", "d-1", DeviceTopic.TELEMETRY)),
        ("smartfarm/v1/f-1/devices/d-1/status", GOOD, Admitted("f-1", "d-1", DeviceTopic.STATUS)),
        (
            "smartfarm/v1/f-1/devices/d-1/telemetry",
            b"not json but utf-8",
            Admitted("f-1", "d-1", DeviceTopic.TELEMETRY),
        ),
        ("smartfarm/v1/f-1/devices/d-1/telemetry", b"x" * 1024, Admitted("f-1", "d-1", DeviceTopic.TELEMETRY)),
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
def test_the_door(topic: str, payload: bytes, expected: Admitted | RejectReason) -> None:
    if isinstance(expected, Admitted):
        assert DOOR.admit(topic, payload) == expected
    else:
        with pytest.raises(ContractError) as caught:
            DOOR.admit(topic, payload)
        assert caught.value.reason is expected


def test_a_dead_letter_is_keyed_by_the_device_when_the_topic_names_one() -> None:
    assert DOOR.device_of("smartfarm/v1/F_1/devices/d-1/telemetry") == "d-1"
    assert DOOR.device_of("random/topic") is None


def test_status_messages_become_records_of_their_farm() -> None:
    now = datetime(2026, 7, 1, tzinfo=UTC)
    admitted = Admitted("f-1", "d-1", DeviceTopic.STATUS)
    record = status_record(
        admitted, Status.create(device="d-1", state=DeviceState.OFFLINE, ts=now, will=True).encode(), now
    )
    assert (record.farm, record.device, record.state, record.will, record.received_at) == (
        "f-1",
        "d-1",
        DeviceState.OFFLINE,
        True,
        now,
    )
    with pytest.raises(ContractError, match="status of device 'd-2'"):
        status_record(admitted, Status.create(device="d-2", state=DeviceState.ONLINE, ts=now).encode(), now)
    with pytest.raises(ContractError) as caught:
        status_record(admitted, b"{}", now)
    assert caught.value.reason is RejectReason.INVALID_PAYLOAD
