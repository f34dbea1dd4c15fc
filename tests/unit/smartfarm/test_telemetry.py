"""The device wire contract: topics, telemetry and status payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from smartfarm.errors import ContractError, RejectReason
from smartfarm.layout import SensorKind
from smartfarm.telemetry import ConnectionState, Reading, Status, Telemetry

TS = datetime(2026, 6, 1, 13, 30, tzinfo=UTC)


def telemetry(**overrides: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "schema_version": 1,
        "device": "soil-tomato-north-1",
        "seq": 1042,
        "ts": "2026-06-01T13:30:00Z",
        "readings": [
            {"sensor": "sm-15", "kind": "soil_moisture", "value": 23.4},
            {"sensor": "bat", "kind": "battery", "value": 3.71},
        ],
    }
    doc.update(overrides)
    return doc


def test_telemetry_round_trips_through_json() -> None:
    message = Telemetry.create(
        device="d-1", seq=7, ts=TS, readings=[Reading(sensor="air-t", kind=SensorKind.AIR_TEMPERATURE, value=21.5)]
    )
    assert Telemetry.decode(message.encode()) == message
    assert Telemetry.decode(json.dumps(telemetry()).encode()).readings[0].kind is SensorKind.SOIL_MOISTURE


def test_status_round_trips_through_json() -> None:
    for status in (
        Status.create(device="d-1", state=ConnectionState.ONLINE, ts=TS, firmware="sim-1.0"),
        Status.create(device="d-1", state=ConnectionState.OFFLINE, ts=TS, will=True),
    ):
        assert Status.decode(status.encode()) == status


@pytest.mark.parametrize(
    ("payload", "reason", "says"),
    [
        (b"", RejectReason.EMPTY_PAYLOAD, "empty"),
        (b"\xff\xfe{}", RejectReason.NOT_UTF8, "byte 0"),
        (b"{not json", RejectReason.INVALID_JSON, "Expecting property name"),
        (json.dumps(telemetry(schema_version=2)).encode(), RejectReason.UNKNOWN_SCHEMA_VERSION, "this build reads 1"),
        (json.dumps(telemetry(seq="many")).encode(), RejectReason.INVALID_PAYLOAD, "seq"),
        (json.dumps(telemetry(seq=-1)).encode(), RejectReason.NEGATIVE_SEQUENCE, "seq -1 is negative"),
        (b"[" * 5000 + b"]" * 5000, RejectReason.INVALID_JSON, "nested too deeply"),
        (b'{"seq": ' + b"9" * 5000 + b"}", RejectReason.INVALID_JSON, "digits"),
        (json.dumps(telemetry(seq=2**70)).encode(), RejectReason.INVALID_PAYLOAD, "seq"),
        (json.dumps({k: v for k, v in telemetry().items() if k != "ts"}).encode(), RejectReason.INVALID_PAYLOAD, "ts"),
        (json.dumps(telemetry(ts="2026-06-01T13:30:00")).encode(), RejectReason.INVALID_PAYLOAD, "timezone"),
        (json.dumps(telemetry(firmware="x")).encode(), RejectReason.INVALID_PAYLOAD, "firmware: Extra inputs"),
        (json.dumps(telemetry(readings=[])).encode(), RejectReason.INVALID_PAYLOAD, "readings"),
        (json.dumps(telemetry(device="Bad Id")).encode(), RejectReason.INVALID_PAYLOAD, "device"),
        (
            json.dumps(telemetry(readings=[{"sensor": "x", "kind": "moonlight", "value": 1}])).encode(),
            RejectReason.INVALID_PAYLOAD,
            "readings.0.kind",
        ),
        (
            b'{"schema_version":1,"device":"d","seq":1,"ts":"2026-06-01T13:30:00Z",'
            b'"readings":[{"sensor":"x","kind":"battery","value":NaN}]}',
            RejectReason.INVALID_PAYLOAD,
            "finite",
        ),
        (
            json.dumps(telemetry(readings=[{"sensor": "x", "kind": "battery", "value": 3.0}] * 2)).encode(),
            RejectReason.DUPLICATE_SENSOR,
            "sensor 'x' appears more than once",
        ),
        (
            b'{"schema_version":1,"device":"d","seq":1,"ts":"2026-06-01T13:30:00Z",'
            b'"readings":[{"sensor":"x","kind":"battery","value":1e999}]}',
            RejectReason.INVALID_PAYLOAD,
            "finite",
        ),
        (b"{" + b" " * Telemetry.MAX_BYTES + b"}", RejectReason.PAYLOAD_TOO_LARGE, "16384-byte limit"),
        (b"[1, 2]", RejectReason.INVALID_PAYLOAD, "Telemetry"),
    ],
)
def test_invalid_telemetry_is_rejected_with_its_reason(payload: bytes, reason: RejectReason, says: str) -> None:
    with pytest.raises(ContractError) as caught:
        Telemetry.decode(payload)
    assert caught.value.reason is reason
    assert says in str(caught.value)


def test_status_refuses_an_unknown_state() -> None:
    bad = {"schema_version": 1, "device": "d", "state": "sleeping", "ts": "2026-06-01T13:30:00Z"}
    with pytest.raises(ContractError, match="state"):
        Status.decode(json.dumps(bad).encode())
