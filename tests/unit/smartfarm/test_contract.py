"""``Strict.trusted``, the clean stage's fast construction, builds what pydantic builds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from smartfarm.layout import SensorKind
from smartfarm.records import CleanMessage, CleanValue, Flag, Quality

TS = datetime(2026, 6, 1, 13, 30, 0, 123456, tzinfo=UTC)

VALUES = [
    dict(
        sensor="sm-15",
        kind=SensorKind.SOIL_MOISTURE,
        value=23.4,
        unit="%",
        quality=Quality.GOOD,
        flags=(),
        depth_cm=15.0,
    ),
    dict(
        sensor="at",
        kind=SensorKind.AIR_TEMPERATURE,
        value=80.0,
        unit="degC",
        quality=Quality.SUSPECT,
        flags=(Flag.OUT_OF_RANGE, Flag.SPIKE),
        depth_cm=None,
    ),
    dict(sensor="b", kind=SensorKind.BATTERY, value=-0.0, unit="V", quality=Quality.GOOD, flags=(), depth_cm=None),
    dict(sensor="r", kind=SensorKind.RAINFALL, value=1e-7, unit="mm", quality=Quality.GOOD, flags=(), depth_cm=0.0),
]


@pytest.mark.parametrize("fields", VALUES, ids=lambda f: str(f["sensor"]))
def test_a_trusted_value_is_what_pydantic_builds(fields: dict) -> None:
    trusted = CleanValue.trusted(**fields)
    assert trusted == CleanValue.model_validate(fields) == CleanValue.model_construct(**fields)
    assert trusted.model_dump_json() == CleanValue.model_validate(fields).model_dump_json()
    assert trusted.model_fields_set == CleanValue.model_construct(**fields).model_fields_set
    assert hash(trusted) == hash(CleanValue.model_validate(fields))


@pytest.mark.parametrize("late", [False, True])
def test_a_trusted_message_encodes_and_decodes_as_a_validated_one(late: bool) -> None:
    fields = dict(
        schema_version=CleanMessage.SCHEMA_VERSION,
        farm="farm-1",
        zone="zone-a",
        device="9-dev",
        seq=2**40,
        ts=TS,
        received_at=TS + timedelta(seconds=3),
        out_of_order=not late,
        late=late,
        readings=tuple(CleanValue.trusted(**f) for f in VALUES),
    )
    trusted = CleanMessage.trusted(**fields)
    validated = CleanMessage.model_validate(fields)
    assert trusted == validated
    assert trusted.encode() == validated.encode()
    assert CleanMessage.decode(trusted.encode()) == trusted
    assert trusted.model_copy(update={"seq": 1}).seq == 1


def test_a_trusted_model_stays_frozen() -> None:
    value = CleanValue.trusted(**VALUES[0])
    with pytest.raises(ValidationError):
        value.value = 1.0  # type: ignore[misc]
