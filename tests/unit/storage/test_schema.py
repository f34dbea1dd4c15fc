"""The measurement schema: tags are bounded layout identifiers, everything else is a field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from smartfarm.layout import SensorKind
from smartfarm.records import ZoneAggregate
from storage.schema import (
    MEASUREMENTS,
    DeviceStatusPoint,
    ReadingPoint,
    RecommendationPoint,
    ZoneAggregatePoint,
    aggregate_point,
)

TS = datetime(2026, 6, 1, 13, 30, tzinfo=UTC)
TS_NS = 1780320600000000000


def test_reading_line_protocol_puts_identifiers_in_tags_and_values_in_fields() -> None:
    point = ReadingPoint(
        time=TS,
        farm="f",
        zone="z",
        device="d",
        sensor="sm-15",
        kind="soil_moisture",
        value=23.4,
        seq=9,
        quality="good",
        depth_cm=15,
    )
    assert point.to_line() == (
        "reading,device=d,farm=f,kind=soil_moisture,sensor=sm-15,zone=z "
        f'depth_cm=15,quality="good",seq=9i,value=23.4 {TS_NS}'
    )


def test_free_text_is_escaped_and_unset_fields_are_left_out() -> None:
    point = RecommendationPoint(
        time=TS,
        farm="f",
        zone="z",
        kind="frost",
        severity="warning",
        id=uuid.UUID(int=1),
        message='Frost "likely", cover seedlings',
        model="frost-xgb@2",
        confidence=0.9,
    )
    line = point.to_line()
    assert 'message="Frost \\"likely\\", cover seedlings"' in line
    assert "amount_mm" not in line and "device" not in line


@pytest.mark.parametrize("measurement", MEASUREMENTS, ids=lambda m: m.MEASUREMENT)
def test_no_unbounded_value_is_a_tag(measurement: type) -> None:
    unbounded = {"value", "seq", "id", "message", "model", "confidence", "count", "mean", "min", "max"}
    assert not unbounded & set(measurement.tag_names())  # type: ignore[attr-defined]
    assert "farm" in measurement.tag_names()  # type: ignore[attr-defined]


def test_points_refuse_bad_tags_and_naive_times() -> None:
    with pytest.raises(ValidationError, match="farm"):
        DeviceStatusPoint(time=TS, farm="Bad Farm", device="d", online=True, will=False)
    with pytest.raises(ValidationError, match="timezone"):
        DeviceStatusPoint(time=datetime(2026, 6, 1), farm="f", device="d", online=True, will=False)


def test_a_record_maps_to_its_point_by_name_and_the_rest_is_given() -> None:
    a = ZoneAggregate.create(
        farm="f",
        zone="z",
        kind=SensorKind.SOIL_MOISTURE,
        window_start=TS,
        window_end=TS + timedelta(minutes=15),
        count=3,
        mean=21.5,
        min=20.0,
        max=23.0,
        last=21.0,
        revision=2,
    )
    point = aggregate_point(a)
    assert point.to_line() == (
        "zone_aggregate,farm=f,kind=soil_moisture,width=15m,zone=z "
        f"count=3i,last=21,max=23,mean=21.5,min=20,revision=2i {TS_NS}"
    )
    with pytest.raises(ValidationError):  # what the record does not carry must be given, or the point is refused
        ZoneAggregatePoint.of(a, time=TS)
