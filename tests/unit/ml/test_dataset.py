"""Training tables: the hours a model learns from are the hours the stream shows it, feature for feature."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from edge.season import SeasonRecipe, farmer_valves, run_season, season_forecasts
from ml.dataset import (
    feature_rows,
    forecast_table,
    hourly_aggregates,
    irrigated_within,
    table_hash,
    targets,
    zone_aggregates,
)
from ml.features import FEATURES, zone_features
from ml.timeline import ZoneTimeline, hour_aggregates, zone_days
from smartfarm.forecast import newest
from smartfarm.layout import SensorKind, load_layout
from smartfarm.records import ZoneAggregate
from tests.unit.ml import builders

START = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def season():  # type: ignore[no-untyped-def]
    return run_season(load_layout(), SeasonRecipe(seed=5, start=START, days=5), farmer_valves(5))


def _stream_aggregates(readings: pd.DataFrame, farm: str, zone: str) -> list[ZoneAggregate]:
    """The 1-hour aggregates the stream's zone stage computes from the same stored readings."""
    mine = readings[(readings["farm"] == farm) & (readings["zone"] == zone)]
    triples = [
        (ts.timestamp(), SensorKind(k), v) for ts, k, v in zip(mine["ts"], mine["kind"], mine["value"], strict=True)
    ]
    return hour_aggregates(farm, zone, triples)


def test_hourly_aggregates_are_the_streams_window_statistics(season) -> None:  # type: ignore[no-untyped-def]
    hourly = hourly_aggregates(season.readings)
    farm = season.layout.farms[0]
    for zone in farm.zones:
        ours = {(a.kind, a.window_start): a for a in zone_aggregates(hourly, farm.id, zone.id)}
        theirs = {(a.kind, a.window_start): a for a in _stream_aggregates(season.readings, farm.id, zone.id)}
        assert ours.keys() == theirs.keys()
        for key, a in theirs.items():
            b = ours[key]
            assert (b.count, b.min, b.max, b.last) == (a.count, a.min, a.max, a.last), key
            assert math.isclose(b.mean, a.mean, rel_tol=1e-12), key


def test_a_training_row_is_the_row_a_season_hour_by_hour_scores(season) -> None:  # type: ignore[no-untyped-def]
    """The closed-loop season's path (each hour's readings to aggregates, the days before today closed, the
    context at the hour's close) and the dataset builder's (pandas aggregates of the whole season at once) give
    the same features, value for value, at every hour. The stream's path is held to the same rows against the
    real InfluxDB (``tests/integration/stream/test_zone_parity.py``)."""
    farm = season.layout.farms[0]
    zone = min(farm.zones, key=lambda z: z.planting_date)
    assert zone.planting_date < START.date(), "a zone with closed days since planting"
    hours = zone_aggregates(hourly_aggregates(season.readings), farm.id, zone.id)
    forecasts = season_forecasts(season.weather, season.recipe)[farm.id]
    training = feature_rows(farm, zone, hours, zone_days(farm, zone, hours), forecasts)

    mine = season.readings[(season.readings["farm"] == farm.id) & (season.readings["zone"] == zone.id)]
    by_hour: dict[pd.Timestamp, list[tuple[float, SensorKind, float]]] = {}
    for ts, kind, value in zip(mine["ts"], mine["kind"], mine["value"], strict=True):
        by_hour.setdefault(ts.floor("h") + pd.Timedelta(hours=1), []).append((ts.timestamp(), SensorKind(kind), value))
    timeline = ZoneTimeline(farm, zone)
    checked = 0
    for end in sorted(by_hour):
        timeline.add_hours(hour_aggregates(farm.id, zone.id, by_hour[end]))
        timeline.close_days(before=timeline.local_day(end + timedelta(hours=1)))
        when = end.to_pydatetime()
        served = zone_features(timeline.context(when, forecast=newest(forecasts, when)))
        row = training.loc[end]
        for name in FEATURES:
            a, b = served[name], float(row[name])
            assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (end, name)
        checked += 1
    assert checked == len(training) == 5 * 24
    assert training["et0_last_day"].notna().sum() > 0, "closed days reach the rows"
    assert training["forecast_et0_24h"].notna().all(), "a forecast from the first hour on"


def test_targets_look_ahead_on_the_rows_own_soil_moisture() -> None:
    index = pd.date_range("2025-06-01", periods=30, freq="h", tz="UTC")
    rows = pd.DataFrame({"sm": [20.0 + i for i in range(30)]}, index=index)
    t = targets(rows, (6, 24))
    assert t["sm_in_6h"].iloc[0] == 26.0 and t["change_6h"].iloc[0] == 6.0
    assert t["sm_in_24h"].iloc[5] == 49.0
    assert t["sm_in_6h"].iloc[-6:].isna().all(), "no hour beyond the data"


def test_irrigated_within_sees_the_valves_in_the_horizon_only() -> None:
    truth = pd.DataFrame(
        {
            "farm": "f",
            "zone": "z",
            "ts": pd.to_datetime(["2025-06-01T05:00Z", "2025-06-01T10:00Z", "2025-06-01T11:00Z"]),
            "irrigation_mm": [0.0, 3.0, 0.0],
        }
    )
    index = pd.DatetimeIndex(pd.to_datetime(["2025-06-01T03:00Z", "2025-06-01T05:00Z", "2025-06-01T10:00Z"]))
    assert list(irrigated_within(truth, "f", "z", index, 6)) == [False, True, False]


def test_the_forecast_table_and_its_hash(season) -> None:  # type: ignore[no-untyped-def]
    table = forecast_table(season.layout, season.readings, season.truth, season=5)
    assert set(table["zone"]) == {z.id for z in season.layout.farms[0].zones}
    assert {"change_6h", "change_24h", "irrigated_6h", "irrigated_24h", "season", "crop", "soil"} <= set(table)
    assert len(table) == 4 * 5 * 24
    assert table_hash(table) == table_hash(table.copy())
    changed = table.copy()
    changed.iloc[3, 0] += 0.01
    assert table_hash(changed) != table_hash(table)


def test_each_hour_s_row_sees_the_newest_forecast_issued_by_its_close() -> None:
    """None before the first issue (the stream before a provider publishes), then the newest out by each hour:
    one issued at END - 8 h with 4 mm at END + 2 h, one at END - 2 h with 7 mm at END + 1 h."""
    zone = builders.zone("tomato-north")
    hours = builders.series(SensorKind.SOIL_MOISTURE, [20.0] * 12)
    early = builders.weather_forecast({10: 4.0}, issued=builders.END - 8 * builders.HOUR)
    late = builders.weather_forecast({3: 7.0}, issued=builders.END - 2 * builders.HOUR)
    rows = feature_rows(builders.FARM, zone, hours, [], [late, early])
    rain = rows["forecast_rain_6h"]
    before = rows.index < builders.END - 8 * builders.HOUR
    assert before.sum() == 3 and rain[before].isna().all()
    assert rain[builders.END - 3 * builders.HOUR] == 4.0, "the early forecast's rain 5 h ahead"
    assert rain[builders.END] == 7.0, "the late one's; the early one's rain would count too were it read"
    assert feature_rows(builders.FARM, zone, hours, [])["forecast_rain_6h"].isna().all()
