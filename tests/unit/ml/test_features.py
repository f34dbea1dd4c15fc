"""Degree days, a zone's day of weather, and reference ET against pyfao56 and the FAO-56 worked examples."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from pyfao56.refet import ascedaily

from ml.features import (
    FEATURES,
    WEATHER_FORECAST_FEATURES,
    DayWeather,
    daily_weather,
    extraterrestrial_radiation,
    growing_degree_days,
    hargreaves_radiation,
    reference_et_daily,
    zone_features,
)
from smartfarm.layout import Crop, SensorKind
from smartfarm.records import ZoneAggregate
from tests.unit.ml.builders import END, FARM, HOUR, context, hour, series, weather_forecast


@pytest.mark.parametrize(
    ("crop", "tmin", "tmax", "expected"),
    [
        (Crop.TOMATO, 15, 25, 10.0),  # plain average above base 10
        (Crop.TOMATO, 20, 36, 15.0),  # tmax capped at 30
        (Crop.TOMATO, 32, 40, 20.0),  # a day hot all round counts as a day at the cap
        (Crop.TOMATO, 2, 12, 0.0),  # below base: never negative
        (Crop.MAIZE, 5, 25, 7.5),  # modified method: tmin floored at base 10
        (Crop.MAIZE, 5, 8, 0.0),
        (Crop.MAIZE, 22, 38, 16.0),
        (Crop.WHEAT, 2, 10, 6.0),  # base 0, no cap
        (Crop.WHEAT, -8, 4, 0.0),
        (Crop.WHEAT, 25, 41, 33.0),
        (Crop.POTATO, 5, 7, 0.0),  # mean 6 under base 7
        (Crop.POTATO, 25, 40, 25.5),  # no cap for potato
        (Crop.LETTUCE, 4, 14, 5.0),
        (Crop.GRAPE, 18, 34, 14.0),
    ],
)
def test_growing_degree_days(crop: Crop, tmin: float, tmax: float, expected: float) -> None:
    assert growing_degree_days(tmin, tmax, crop) == pytest.approx(expected)


def test_maize_modified_method_differs_from_the_plain_average_on_a_cold_night() -> None:
    # Plain averaging would give (2 + 28) / 2 - 10 = 5; the 86/50 method floors the night at 10.
    assert growing_degree_days(2, 28, Crop.MAIZE) == pytest.approx(9.0)
    assert growing_degree_days(2, 28, Crop.TOMATO) == pytest.approx(5.0)


DAY = date(2026, 7, 15)
START = datetime(2026, 7, 15, 7, tzinfo=UTC)  # midnight at the farm


def hours_of(kind: SensorKind, means: list[float], count: int = 12) -> list[ZoneAggregate]:
    return [hour(kind, START + (i + 1) * HOUR, m, m - 1, m + 1, count=count) for i, m in enumerate(means)]


def test_daily_weather_from_a_full_day() -> None:
    temps = [15.0 + i * 0.5 for i in range(24)]  # 15..26.5, min 14, max 27.5
    found = daily_weather(
        DAY,
        hours_of(SensorKind.AIR_TEMPERATURE, temps)
        + hours_of(SensorKind.AIR_HUMIDITY, [60.0] * 12 + [40.0] * 12)
        + hours_of(SensorKind.SOLAR_RADIATION, [0.0] * 10 + [600.0] * 14)
        + hours_of(SensorKind.WIND_SPEED, [1.0] * 12 + [3.0] * 12)
        + hours_of(SensorKind.RAINFALL, [0.2, 0.1, 0.0], count=12),
    )
    assert found is not None
    assert (found.tmin, found.tmax, found.hours) == (14.0, 27.5, 24)
    assert found.rh_mean == pytest.approx(50.0)
    assert found.solar_mj_m2 == pytest.approx(600 * 14 / 24 * 0.0864)  # 30.24 MJ/m2
    assert found.wind_ms == pytest.approx(2.0)
    assert found.rain_mm == pytest.approx((0.2 + 0.1) * 12)  # each reading is the rain since the last one


def test_daily_weather_leaves_out_what_is_missing_or_too_thin() -> None:
    found = daily_weather(
        DAY,
        hours_of(SensorKind.AIR_TEMPERATURE, [20.0] * 5) + hours_of(SensorKind.SOLAR_RADIATION, [500.0] * 19),
    )
    assert found == DayWeather(DAY, 19.0, 21.0, None, None, None, None, 5)


def test_daily_weather_ignores_other_widths_and_keeps_the_latest_revision() -> None:
    first = hour(SensorKind.AIR_TEMPERATURE, START + HOUR, 20.0, 19.0, 21.0, revision=1)
    later = hour(SensorKind.AIR_TEMPERATURE, START + HOUR, 20.0, 12.0, 21.0, revision=2)
    ten_min = hour(SensorKind.AIR_TEMPERATURE, START + HOUR, 5.0, 0.0, 40.0, width=timedelta(minutes=10))
    found = daily_weather(DAY, [later, first, ten_min])
    assert found is not None
    assert (found.tmin, found.tmax, found.hours) == (12.0, 21.0, 1)


def test_no_air_temperature_no_day() -> None:
    assert daily_weather(DAY, hours_of(SensorKind.AIR_HUMIDITY, [50.0] * 24)) is None


def test_extraterrestrial_radiation_fao56_example_8() -> None:
    # 3 September (day 246) at 20 degS: Ra = 32.2 MJ/m2/day, given to 0.1 in the book.
    assert extraterrestrial_radiation(-20.0, 246) == pytest.approx(32.2, abs=0.05)


def test_hargreaves_radiation_fao56_example_10() -> None:
    # Lyon (45 deg 43' N), 15 July, Tmax 26.6 and Tmin 14.8: Ra 40.6, Rs = 0.16 sqrt(11.8) 40.6 = 22.3 MJ/m2/day.
    latitude = 45 + 43 / 60
    assert extraterrestrial_radiation(latitude, 196) == pytest.approx(40.6, abs=0.1)
    assert hargreaves_radiation(14.8, 26.6, latitude, 196) == pytest.approx(22.3, abs=0.05)


def test_reference_et_fao56_example_18_brussels() -> None:
    # Brussels (50 deg 48' N, 100 m), 6 July: Tmax 21.5, Tmin 12.3, ea 1.409 kPa (from RHmax 84 / RHmin 63),
    # u2 2.078 m/s, Rs 22.07 MJ/m2/day: ET0 = 3.9 mm/day. Our input is mean humidity (eq. 19), so the example's
    # ea is given as the RH mean that yields it, 1.409 / 1.997 = 70.55 %. The tolerance of 0.1 mm is the book's
    # rounding to 0.1 plus the ASCE standardized form's small departures from FAO-56 (273.16 K in the longwave
    # term, unrounded intermediates); a wrong Rs, ea or wind moves ET0 by several tenths.
    brussels = FARM.model_copy(update={"latitude": 50.8, "elevation_m": 100.0})
    weather = DayWeather(date(2026, 7, 6), 12.3, 21.5, 70.55, 22.07, 2.078, 0.0, 24)
    et0, estimated = reference_et_daily(weather, brussels)
    assert et0 == pytest.approx(3.9, abs=0.1)
    assert estimated == ()


def test_reference_et_with_every_sensor_is_pyfao56_ascedaily() -> None:
    weather = DayWeather(date(2026, 7, 15), 14.0, 33.0, 45.0, 29.5, 2.6, None, 24)
    # FAO-56 eq. 19: ea = RHmean / 100 * (e0(Tmax) + e0(Tmin)) / 2, spelt out here apart from the code under test.
    es = (math.exp(17.27 * 33 / (33 + 237.3)) + math.exp(17.27 * 14 / (14 + 237.3))) * 0.6108 / 2
    expected = ascedaily("S", 18.0, 38.54, 196, 29.5, 33.0, 14.0, vapr=0.45 * es, wndsp=2.6)
    et0, estimated = reference_et_daily(weather, FARM)
    assert et0 == pytest.approx(expected, rel=1e-9)
    assert 6.0 < et0 < 9.0  # a hot, dry Central Valley July day
    assert estimated == ()


def test_reference_et_fills_in_what_the_zone_does_not_measure() -> None:
    weather = DayWeather(date(2026, 7, 15), 14.0, 33.0, None, None, None, None, 24)
    rs = 0.16 * (33.0 - 14.0) ** 0.5 * extraterrestrial_radiation(38.54, 196)
    ea = 0.6108 * math.exp(17.27 * 14 / (14 + 237.3))  # FAO-56 eq. 48: dew point at tmin
    expected = ascedaily("S", 18.0, 38.54, 196, rs, 33.0, 14.0, vapr=ea, wndsp=2.0)
    et0, estimated = reference_et_daily(weather, FARM)
    assert et0 == pytest.approx(expected, rel=1e-9)
    assert estimated == ("solar_radiation", "air_humidity", "wind_speed")


@pytest.mark.parametrize(
    ("rh", "solar", "wind", "estimated"),
    [
        (50.0, None, 2.0, ("solar_radiation",)),
        (None, 25.0, 2.0, ("air_humidity",)),
        (50.0, 25.0, None, ("wind_speed",)),
    ],
)
def test_reference_et_names_each_fallback(
    rh: float | None, solar: float | None, wind: float | None, estimated: tuple[str, ...]
) -> None:
    _, found = reference_et_daily(DayWeather(date(2026, 7, 15), 14.0, 33.0, rh, solar, wind, None, 24), FARM)
    assert found == estimated


def test_reference_et_is_never_negative() -> None:
    # A dark, saturated, calm winter day: no sun, so the longwave loss makes the raw equation negative (dew).
    weather = DayWeather(date(2026, 1, 5), -2.0, -1.0, 100.0, 0.0, 0.5, None, 24)
    es = (math.exp(17.27 * -1 / (-1 + 237.3)) + math.exp(17.27 * -2 / (-2 + 237.3))) * 0.6108 / 2
    assert ascedaily("S", 18.0, 38.54, 5, 0.0, -1.0, -2.0, vapr=es, wndsp=0.5) < 0
    et0, _ = reference_et_daily(weather, FARM)
    assert et0 == 0.0


# --- the weather forecast -----------------------------------------------------------------------------------


def test_the_forecast_features_read_the_context_s_forecast() -> None:
    forecast = weather_forecast({2: 3.0, 10: 5.0}, chance=0.8, et0_mm_h=0.25)
    row = zone_features(context(aggregates=series(SensorKind.SOIL_MOISTURE, [20.0] * 30), forecast=forecast))
    assert (row["forecast_rain_6h"], row["forecast_rain_24h"]) == (3.0, 8.0)
    assert (row["forecast_rain_chance_6h"], row["forecast_rain_chance_24h"]) == (0.8, 0.8)
    assert (row["forecast_et0_6h"], row["forecast_et0_24h"]) == pytest.approx((1.5, 6.0))
    assert set(WEATHER_FORECAST_FEATURES) <= set(FEATURES)


SIX_H = {"forecast_rain_6h", "forecast_rain_chance_6h", "forecast_et0_6h"}
RAIN = {"forecast_rain_6h", "forecast_rain_chance_6h", "forecast_rain_24h", "forecast_rain_chance_24h"}


@pytest.mark.parametrize(
    ("forecast", "known"),
    [
        (None, set()),
        (weather_forecast({3: 2.0}, issued=END - 30 * HOUR), SIX_H),
        (weather_forecast(et0_mm_h=None), RAIN),
    ],
    ids=["no forecast (before a provider publishes)", "an old one reaching 18 h ahead", "one without ET0"],
)
def test_what_the_forecast_does_not_say_is_nan_not_dry(forecast, known: set[str]) -> None:  # type: ignore[no-untyped-def]
    row = zone_features(context(aggregates=series(SensorKind.SOIL_MOISTURE, [20.0] * 30), forecast=forecast))
    assert {name for name in WEATHER_FORECAST_FEATURES if not math.isnan(row[name])} == known
