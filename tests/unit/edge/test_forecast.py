"""The simulated forecast provider: the simulator's weather, forecast with the errors its model states."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest

from edge.forecast import ForecastErrors, SimulatedForecasts, issue_times, verify
from edge.weather import Climate, FarmWeather, WeatherEvent
from smartfarm.forecast import HOUR
from smartfarm.layout import load_layout

FARM = load_layout().farms[0]
ISSUED = datetime(2026, 7, 1, 6, tzinfo=UTC)
PERFECT = ForecastErrors.perfect()
DOWNPOUR = WeatherEvent.rain(ISSUED + 5 * HOUR, timedelta(hours=2), rain_mm=30.0)
DRY = Climate(p_wet_after_dry=0.0, p_wet_after_wet=0.0)


def test_the_same_seed_issues_the_same_forecast() -> None:
    weather = FarmWeather(FARM, 3)
    assert SimulatedForecasts(weather, 3).issue(ISSUED) == SimulatedForecasts(weather, 3).issue(ISSUED)
    assert SimulatedForecasts(weather, 3).issue(ISSUED) != SimulatedForecasts(weather, 4).issue(ISSUED)


def test_a_forecast_covers_the_next_48_hours_from_the_hour() -> None:
    forecast = SimulatedForecasts(FarmWeather(FARM, 3), 3).issue(ISSUED + timedelta(minutes=20))
    assert forecast.issued_at == ISSUED
    assert [h.time for h in forecast.hours] == [ISSUED + (i + 1) * HOUR for i in range(48)]


def test_a_perfect_provider_forecasts_the_weather_that_comes() -> None:
    weather = FarmWeather(FARM, 5, Climate(events=(DOWNPOUR,)))
    forecast = SimulatedForecasts(weather, 5, PERFECT).issue(ISSUED)
    truth = [weather.at(h.time, 3600) for h in forecast.hours]
    assert forecast.rain_mm(ISSUED, 24) == pytest.approx(sum(t.rain_mm for t in truth[:24]), abs=0.05)
    assert [h.air_temp_c for h in forecast.hours] == pytest.approx([t.air_temp_c for t in truth], abs=0.01)
    assert all(skill.hit_rate == 1.0 and skill.temp_rmse_c < 0.01 for skill in verify([forecast], weather))


def test_a_downpour_a_few_hours_ahead_is_forecast_about_as_often_as_the_hit_rate_says() -> None:
    errors = ForecastErrors()
    found = []
    for seed in range(200):
        weather = FarmWeather(FARM, seed, Climate(p_wet_after_dry=0.0, p_wet_after_wet=0.0, events=(DOWNPOUR,)))
        found.append(SimulatedForecasts(weather, seed, errors).issue(ISSUED, hours=24).rain_mm(ISSUED, 24))
    hits = [rain for rain in found if rain > 0]
    assert len(hits) / len(found) == pytest.approx(errors.at("hit_rate", 5), abs=0.07)
    assert statistics.median(hits) == pytest.approx(30.0, rel=0.2), "the amount is off by a factor centred on 1"


def test_false_alarms_grow_with_lead_time() -> None:
    early, late = 0, 0
    for seed in range(150):
        forecast = SimulatedForecasts(FarmWeather(FARM, seed, DRY), seed).issue(ISSUED)
        early += forecast.rain_mm(ISSUED, 12) > 0
        late += forecast.rain_mm(ISSUED + 36 * HOUR, 12) > 0
    assert early < late, (early, late)


def test_rain_probability_is_what_a_calibrated_provider_says() -> None:
    errors = ForecastErrors()
    assert errors.event_probability(0, 0.18) == pytest.approx(0.83, abs=0.01)
    assert errors.event_probability(48, 0.18) == pytest.approx(0.54, abs=0.01)
    assert errors.event_probability(0, 0.0) == 0.0
    assert errors.missed_probability(0, 0.18) < errors.missed_probability(48, 0.18)


def test_temperature_error_grows_with_lead_as_stated() -> None:
    weather = FarmWeather(FARM, 11)
    provider = SimulatedForecasts(weather, 11)
    skills = verify([provider.issue(ISSUED + i * timedelta(days=1)) for i in range(30)], weather)
    day1, day2 = skills
    assert day1.lead_h == (0, 24) and day2.lead_h == (24, 48)
    assert day1.temp_rmse_c < day2.temp_rmse_c
    assert day1.temp_rmse_c == pytest.approx(statistics.mean([0.8 + 1.4 * h / 48 for h in range(1, 25)]), rel=0.35)


def test_issues_come_at_00_06_12_and_18_utc_from_the_start_on() -> None:
    assert issue_times(ISSUED, ISSUED + timedelta(hours=12)) == [ISSUED + timedelta(hours=h) for h in (0, 6, 12)]
    assert issue_times(ISSUED + timedelta(minutes=1), ISSUED + timedelta(hours=6)) == [ISSUED + timedelta(hours=6)]
    assert issue_times(ISSUED - timedelta(hours=5), ISSUED - timedelta(minutes=1)) == []
    assert [f.issued_at for f in SimulatedForecasts(FarmWeather(FARM, 3), 3).issues(ISSUED, ISSUED + HOUR)] == [ISSUED]
