"""The weather forecast contract: hourly, strict, and read the same way by every consumer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from smartfarm.errors import ContractError
from smartfarm.forecast import HOUR, ForecastHour, WeatherForecast, newest

ISSUED = datetime(2026, 7, 1, 6, tzinfo=UTC)


def hour(i: int, rain: float = 0.0, chance: float = 0.0, et0: float | None = 0.2) -> ForecastHour:
    return ForecastHour(
        time=ISSUED + (i + 1) * HOUR,
        rain_mm=rain,
        rain_probability=chance,
        air_temp_c=20.0,
        humidity_pct=60.0,
        wind_ms=2.0,
        et0_mm=et0,
    )


def forecast(hours: list[ForecastHour], issued: datetime = ISSUED) -> WeatherForecast:
    return WeatherForecast.create(farm="valley-farm", issued_at=issued, source="test", hours=tuple(hours))


def test_round_trip_through_bytes() -> None:
    sent = forecast([hour(i, rain=1.5 * (i == 3), chance=0.7 * (i == 3)) for i in range(48)])
    assert WeatherForecast.decode(sent.encode()) == sent


@pytest.mark.parametrize(
    ("hours", "why"),
    [
        ([hour(0), hour(2)], "one hour apart"),
        ([hour(1), hour(0)], "one hour apart"),
        ([hour(-3)], "must reach past it"),
    ],
)
def test_hours_must_follow_each_other_past_the_issue(hours: list[ForecastHour], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        forecast(hours)


@pytest.mark.parametrize("field", [{"rain_mm": -0.1}, {"rain_probability": 1.2}, {"humidity_pct": 101}, {"et0_mm": -1}])
def test_impossible_values_are_refused(field: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        ForecastHour(**({"time": ISSUED + HOUR, "rain_mm": 0, "rain_probability": 0, "air_temp_c": 20,
                         "humidity_pct": 50, "wind_ms": 1} | field))  # fmt: skip


def test_a_payload_of_another_schema_is_a_contract_error() -> None:
    payload = forecast([hour(0)]).encode().replace(b'"schema_version":1', b'"schema_version":9')
    with pytest.raises(ContractError, match="schema_version"):
        WeatherForecast.decode(payload)


def test_rain_chance_and_et0_over_a_window() -> None:
    f = forecast([hour(i, rain=2.0 if 3 <= i < 6 else 0.0, chance=0.8 if 3 <= i < 6 else 0.05) for i in range(48)])
    assert f.rain_mm(ISSUED, 24) == pytest.approx(6.0)
    assert f.rain_mm(ISSUED + 6 * HOUR, 24) == 0.0
    assert f.rain_chance(ISSUED, 24) == 0.8
    assert f.rain_chance(ISSUED + 6 * HOUR, 6) == 0.05
    assert f.et0_mm(ISSUED, 24) == pytest.approx(24 * 0.2)
    assert f.et0_mm(ISSUED + 40 * HOUR, 24) is None, "only 8 of those hours are forecast"
    assert f.covers(ISSUED, 48) and not f.covers(ISSUED, 49)


def test_et0_is_unknown_where_an_hour_lacks_it() -> None:
    f = forecast([hour(i, et0=None if i == 5 else 0.2) for i in range(24)])
    assert f.et0_mm(ISSUED, 24) is None
    assert f.et0_mm(ISSUED + 6 * HOUR, 12) == pytest.approx(2.4)


def test_newest_never_sees_a_forecast_before_its_issue() -> None:
    early, late = forecast([hour(i) for i in range(48)]), forecast([hour(i + 6) for i in range(48)], ISSUED + 6 * HOUR)
    assert newest([late, early], ISSUED + timedelta(hours=5)) == early
    assert newest([early, late], ISSUED + 6 * HOUR) == late
    assert newest([late], ISSUED) is None
