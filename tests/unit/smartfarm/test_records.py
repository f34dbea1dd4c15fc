"""The Kafka records: every model round-trips through JSON, and breaks are refused with a reason."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from smartfarm.contract import Contract
from smartfarm.errors import ContractError, RejectReason
from smartfarm.records import (
    CleanMessage,
    CleanValue,
    DeadLetter,
    DeviceStatus,
    RawHeaders,
    Recommendation,
    RejectStage,
    ZoneAggregate,
    ZoneDay,
    event_times_header,
    read_event_times,
)
from smartfarm.telemetry import ConnectionState

TS = datetime(2026, 6, 1, 13, 30, tzinfo=UTC)

VALID: list[Contract] = [
    CleanMessage.create(
        farm="f",
        zone="z",
        device="d",
        seq=3,
        ts=TS,
        received_at=TS + timedelta(seconds=2),
        readings=[
            CleanValue(sensor="sm-15", kind="soil_moisture", value=23.4, unit="%", quality="good", depth_cm=15),
            CleanValue(
                sensor="at",
                kind="air_temperature",
                value=80,
                unit="degC",
                quality="suspect",
                flags=["out_of_range", "spike"],
            ),
        ],
    ),
    DeadLetter.of(
        ContractError(RejectReason.NOT_UTF8, "byte 0 is not UTF-8"),
        b"\xff\x00garbage",
        RejectStage.BRIDGE,
        TS,
        mqtt_topic="smartfarm/v1/f/devices/d/telemetry",
        device="d",
    ),
    ZoneAggregate.create(
        farm="f",
        zone="z",
        kind="air_temperature",
        window_start=TS,
        window_end=TS + timedelta(minutes=5),
        count=10,
        mean=20.5,
        min=19.0,
        max=22.0,
        last=21.0,
        revision=1,
    ),
    ZoneDay.create(
        farm="f",
        zone="z",
        day=TS.date(),
        tmin=9.5,
        tmax=27.0,
        et0_mm=5.4,
        gdd=8.2,
        hours=24,
        estimated=("solar_radiation", "wind_speed"),
        revision=1,
    ),
    Recommendation.create(
        id=uuid.uuid4(),
        farm="f",
        zone="z",
        kind="irrigation",
        severity="advisory",
        issued_at=TS,
        valid_until=TS + timedelta(hours=6),
        message="Irrigate 12 mm tonight",
        model="irrigation-xgb@3",
        confidence=0.83,
        amount_mm=12.0,
    ),
    DeviceStatus.create(farm="f", device="d", state=ConnectionState.OFFLINE, will=True, ts=TS, received_at=TS),
]


@pytest.mark.parametrize("record", VALID, ids=lambda r: type(r).__name__)
def test_every_record_round_trips_through_json(record: Contract) -> None:
    assert type(record).decode(record.encode()) == record


def test_dead_letter_carries_the_original_bytes() -> None:
    letter = DeadLetter.decode(VALID[1].encode())
    assert letter.payload == b"\xff\x00garbage"
    assert json.loads(VALID[1].encode())["payload"] == base64.b64encode(b"\xff\x00garbage").decode()
    assert letter.reason is RejectReason.NOT_UTF8


@pytest.mark.parametrize("record", VALID, ids=lambda r: type(r).__name__)
def test_every_record_refuses_unknown_version_missing_fields_and_wrong_types(record: Contract) -> None:
    doc = json.loads(record.encode())
    cls = type(record)

    with pytest.raises(ContractError) as caught:
        cls.decode(json.dumps({**doc, "schema_version": 99}).encode())
    assert caught.value.reason is RejectReason.UNKNOWN_SCHEMA_VERSION

    first = next(k for k in doc if k != "schema_version")
    with pytest.raises(ContractError, match=f"{first}: Field required"):
        cls.decode(json.dumps({k: v for k, v in doc.items() if k != first}).encode())

    with pytest.raises(ContractError, match="Extra inputs are not permitted"):
        cls.decode(json.dumps({**doc, "surprise": 1}).encode())

    with pytest.raises(ContractError) as caught:
        cls.decode(json.dumps({**doc, first: {"nested": []}}).encode())
    assert caught.value.reason is RejectReason.INVALID_PAYLOAD

    with pytest.raises(ContractError) as caught:
        cls.decode(b" " * (cls.MAX_BYTES + 1))
    assert caught.value.reason is RejectReason.PAYLOAD_TOO_LARGE


def test_recommendation_confidence_is_a_probability() -> None:
    doc = json.loads(VALID[3].encode())
    with pytest.raises(ContractError, match="confidence"):
        Recommendation.decode(json.dumps({**doc, "confidence": 1.5}).encode())


def test_raw_headers_round_trip_through_kafka_headers() -> None:
    headers = RawHeaders(mqtt_topic="smartfarm/v1/f/devices/d/telemetry", received_at=TS, bridge_id="bridge-1")
    assert RawHeaders.from_kafka(headers.to_kafka()) == headers
    with pytest.raises(ContractError, match="bridge_id"):
        RawHeaders.from_kafka(headers.to_kafka()[:2])


def test_event_times_header_gives_back_the_very_floats_of_the_timestamps() -> None:
    base = datetime(2026, 7, 1, 5, 0, tzinfo=UTC)
    stamps = [base + timedelta(microseconds=us) for us in (0, 1, 123, 999_999, 86_400_000_001, 7 * 10**12 + 3)]
    stamps.append(datetime(1970, 1, 1, tzinfo=UTC))
    header = event_times_header(stamps)
    assert header.count(b",") == len(stamps) - 1 and b" " not in header
    assert read_event_times(header) == [t.timestamp() for t in stamps]
    with pytest.raises(ValueError):
        read_event_times(b"1780000000000000,soon")
