"""The zone stage's hourly soil points: the state at the hour's close, each forecast at the time it is for."""

from __future__ import annotations

from datetime import date, timedelta

from ml.scoring import Baselines
from smartfarm.layout import SensorKind
from stream.zones import ZoneOutput, soil_points
from tests.unit.ml.builders import END, context, day, series

NS = 10**9


def test_the_state_is_stamped_at_the_hours_end_and_each_forecast_at_its_horizon() -> None:
    ctx = context(aggregates=series(SensorKind.SOIL_MOISTURE, [21.0] * 6), days=[day(date(2026, 7, 14))])
    points = soil_points(Baselines(), ctx)
    lines = ZoneOutput(soil=points).lines()
    assert [line.split(",", 1)[0] for line in lines] == ["zone_state", "soil_forecast", "soil_forecast"]
    state, six, day_ahead = lines
    assert state.startswith("zone_state,farm=valley-farm,zone=tomato-north ")
    assert state.endswith(f" {int(END.timestamp()) * NS}")
    for field in ("moisture_pct=21", "trigger_pct=", "field_capacity_pct=25", "depletion_mm=40", "raw_mm=", "taw_mm="):
        assert field in state, field
    assert 'model="fao56-baseline@1"' in state
    assert six.startswith("soil_forecast,farm=valley-farm,horizon=6h,zone=tomato-north ")
    assert six.endswith(f" {int((END + timedelta(hours=6)).timestamp()) * NS}")
    assert day_ahead.endswith(f" {int((END + timedelta(hours=24)).timestamp()) * NS}")
    assert 'model="fao56-physics@1"' in six and "horizon=24h" in day_ahead


def test_an_hour_without_soil_moisture_has_no_points() -> None:
    ctx = context(aggregates=series(SensorKind.AIR_TEMPERATURE, [21.0] * 6))
    assert soil_points(Baselines(), ctx) == []
