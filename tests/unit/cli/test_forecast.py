"""``smartfarm forecast``'s pure parts: a round publishes each farm's forecast and reports a farm that fails
without stopping the others; the farm's clock; the verification table by lead time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from cli.forecast import FarmClock, describe, farm_clock, publish_round
from cli.main import main
from edge.providers import SimulatedProvider
from edge.settings import EdgeSettings, ForecastSettings, ForecastSource
from smartfarm.forecast import WeatherForecast
from smartfarm.layout import load_layout

LAYOUT = load_layout()
FARM = LAYOUT.farms[0]
AT = datetime(2026, 7, 15, 18, 20, tzinfo=UTC)


def test_a_round_publishes_each_farms_forecast_and_reports_one_that_fails_going_on() -> None:
    stranger = FARM.model_copy(update={"id": "hill-farm"})  # not a farm the provider was made for
    provider = SimulatedProvider([FARM], EdgeSettings(seed=7))
    sent: list[WeatherForecast] = []
    done = publish_round(provider, [stranger, FARM], sent.append, AT)
    assert [f.farm for f in sent] == [f.farm for f in done.published] == [FARM.id]
    assert sent[0].issued_at == AT.replace(minute=0), "the simulated provider issues on the hour"
    assert done.failed == [("hill-farm", "farm 'hill-farm' is not one the simulated provider was made for")]

    def refusing(forecast: WeatherForecast) -> None:
        raise RuntimeError("a bug in the publisher")

    broken = publish_round(provider, [FARM, FARM], refusing, AT)
    assert not broken.published and [f for f, _ in broken.failed] == [FARM.id, FARM.id]
    assert "unexpected RuntimeError: a bug in the publisher" in broken.failed[0][1]


def test_a_published_forecast_is_described_with_its_next_days_rain_and_et0() -> None:
    forecast = SimulatedProvider([FARM], EdgeSettings(seed=7)).forecast(FARM, AT)
    line = describe(forecast)
    assert line.startswith("valley-farm: issued 2026-07-15 18:00 UTC by simulated, 48 h; next 24 h: rain ")
    assert f"{forecast.rain_mm(forecast.issued_at, 24):.1f} mm" in line and "ET0 " in line


def test_the_simulated_providers_clock_is_the_simulated_farms_and_open_meteos_the_real_one() -> None:
    start = datetime(2026, 7, 1, tzinfo=UTC)
    clock = farm_clock(ForecastSettings(), EdgeSettings(start=start, speed=3600))
    assert (clock.start, clock.speed) == (start, 3600)
    assert clock.real_seconds(360) == 6.0, "six hours of the farm at 3600x: six seconds"
    real = farm_clock(ForecastSettings(provider=ForecastSource.OPEN_METEO), EdgeSettings(start=start, speed=3600))
    assert real.speed == 1 and abs(real.now() - datetime.now(UTC)) < timedelta(seconds=5)
    ten_seconds_ago = FarmClock(start, 60, began=time.monotonic() - 10)
    assert start + timedelta(minutes=10) <= ten_seconds_ago.now() < start + timedelta(minutes=11)


def test_verify_prints_the_simulated_providers_skill_by_lead_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast", "--verify", "4", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "The simulated provider (seed 3) against the simulated weather, 4 days from 2026-03-01 00:00 UTC" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("0-24", "24-48"))]
    assert [r[0] for r in rows] == ["0-24", "24-48"]
    assert [int(r[1]) for r in rows] == [16, 16], "4 issues a day over 4 days, one block in each band"
    assert main(["forecast", "--verify", "1"]) == 2
    assert "--verify 1: give at least 2 days" in capsys.readouterr().err
