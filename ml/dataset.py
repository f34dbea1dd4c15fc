"""Training tables from recorded seasons (simulated, or read back from InfluxDB), without any I/O of its own.

A season arrives as tables (``edge.season`` records simulated ones; ``from_influx`` reads a stored one): readings,
one row each with its ground-truth fault, and each zone's true state. From them:

- ``hourly_aggregates``: the zone's 1-hour aggregates as the stream makes them (count, mean, min, max, last of the
  good readings per kind), so a model learns from what it is shown in service; pandas does it for a whole season
  at once, and a test holds it against ``ml.timeline.window_stats``, the stream's own;
- ``feature_rows``: ``ml.features.zone_features`` of every closed hour, from the ``ZoneContext`` of the zone stage
  the stream runs (``ml.timeline.ZoneTimeline``: 48 hours of aggregates, the closed days before the hour's local
  day, the farm's newest weather forecast issued by the hour's close), with the days made by its ``zone_days``; a
  test runs the stream's stage on the same readings and gets the same rows;
- ``forecast_table``: those rows with the targets (soil moisture 6 h and 24 h later) and what the evaluation needs
  (the season, whether the valves ran in the horizon);
- ``table_hash``: the SHA-256 of a table, logged with every training run beside its recipe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ml.features import FEATURES, zone_features
from ml.timeline import HOUR, Day, ZoneTimeline, zone_days
from smartfarm.forecast import WeatherForecast, newest
from smartfarm.layout import Farm, Layout, SensorKind, Zone
from smartfarm.records import ZoneAggregate, ZoneDay
from storage.influx import InfluxClient
from storage.zones import stored_aggregates, stored_days

HORIZONS_H = (6, 24)
"""Hours ahead the soil-moisture forecaster predicts."""
AGGREGATE_COLUMNS = ("farm", "zone", "kind", "window_start", "count", "mean", "min", "max", "last")


CLEANED_FAULTS = frozenset({"stuck", "spike"})
"""Ground-truth faults whose readings the stream's cleaning flags and leaves out of the aggregates (a repeated
value, a jump no soil or air makes); a slow drift, a dropout's first message or a failing battery's readings pass
its checks, so they stay in the aggregates in service and in training alike."""


def hourly_aggregates(readings: pd.DataFrame, drop_faulty: bool = True) -> pd.DataFrame:
    """Per farm, zone, kind and UTC hour: count, mean, min, max and last (the value with the latest time).

    ``drop_faulty`` leaves out the readings of ``CLEANED_FAULTS``, as the stream's cleaning does, so a model is
    trained on the aggregates it is later shown. Rows sorted by farm, zone, window start and kind.
    """
    cleaned = readings["fault"].isin(CLEANED_FAULTS) if drop_faulty and "fault" in readings else None
    frame = readings[~cleaned] if cleaned is not None else readings
    # Sorted by time and then value: of readings at the same time, ``last`` is the largest, as the stream's
    # ``summarize`` (which sorts (time, value) pairs) takes it.
    frame = frame.assign(window_start=frame["ts"].dt.floor("h")).sort_values(["ts", "value"], kind="stable")
    grouped = frame.groupby(["farm", "zone", "kind", "window_start"], sort=False)["value"]
    out = grouped.agg(["count", "mean", "min", "max", "last"]).reset_index()
    return out.sort_values(["farm", "zone", "window_start", "kind"], ignore_index=True)[list(AGGREGATE_COLUMNS)]


def zone_aggregates(hourly: pd.DataFrame, farm: str, zone: str) -> list[ZoneAggregate]:
    """One zone's rows of ``hourly_aggregates`` as the records the stream emits (revision 1), oldest first."""
    rows = hourly[(hourly["farm"] == farm) & (hourly["zone"] == zone)]
    starts = rows["window_start"].dt.to_pydatetime()
    return [
        ZoneAggregate.trusted(
            schema_version=ZoneAggregate.SCHEMA_VERSION,
            farm=farm,
            zone=zone,
            kind=SensorKind(kind),
            window_start=start.astimezone(UTC),
            window_end=(start + HOUR).astimezone(UTC),
            count=int(count),
            mean=float(mean),
            min=float(low),
            max=float(high),
            last=float(last),
            revision=1,
        )
        for kind, start, count, mean, low, high, last in zip(
            rows["kind"], starts, rows["count"], rows["mean"], rows["min"], rows["max"], rows["last"], strict=True
        )
    ]


def feature_rows(
    farm: Farm,
    zone: Zone,
    hours: Sequence[ZoneAggregate],
    days: Sequence[ZoneDay],
    forecasts: Sequence[WeatherForecast] = (),
) -> pd.DataFrame:
    """``zone_features`` at the end of every hour the zone has soil moisture, indexed by the hour's end (UTC), of
    the context ``ml.timeline.ZoneTimeline`` shows a scorer in service, with the newest of the farm's
    ``forecasts`` issued by then (none before the first: the stream's context before a provider publishes)."""
    timeline = ZoneTimeline(farm, zone, hours, days)
    ends = [a.window_end for a in timeline.by_kind.get(SensorKind.SOIL_MOISTURE, [])]
    rows = [zone_features(timeline.context(end, forecast=newest(forecasts, end))) for end in ends]
    return pd.DataFrame(rows, index=pd.DatetimeIndex(ends, name="window_end"), columns=list(FEATURES))


def targets(rows: pd.DataFrame, horizons: Iterable[int] = HORIZONS_H) -> pd.DataFrame:
    """For each horizon h: ``sm_in_{h}h``, the soil moisture of the hour ending h hours later (NaN where that
    hour is missing), and ``change_{h}h``, its difference to now (what the forecaster learns)."""
    sm = rows["sm"]
    out = pd.DataFrame(index=rows.index)
    for h in horizons:
        later = sm.reindex(rows.index + pd.Timedelta(hours=h))
        out[f"sm_in_{h}h"] = later.to_numpy()
        out[f"change_{h}h"] = out[f"sm_in_{h}h"] - sm
    return out


def irrigated_within(
    truth: pd.DataFrame,
    farm: str,
    zone: str,
    index: pd.DatetimeIndex,
    hours: int,
    column: str = "irrigation_mm",
    above_mm: float = 0.0,
) -> np.ndarray:
    """Whether the zone's valves put water on in the ``hours`` after each time of ``index`` (from the truth);
    with ``column="rain_mm"``, whether it rained."""
    mine = truth[(truth["farm"] == farm) & (truth["zone"] == zone)]
    wet = np.sort(pd.DatetimeIndex(mine.loc[mine[column] > above_mm, "ts"]).as_unit("ns").asi8)
    times = index.as_unit("ns").asi8
    after = np.searchsorted(wet, times, side="right")
    before_end = np.searchsorted(wet, times + hours * 3_600_000_000_000, side="right")
    return np.asarray(before_end > after)


def forecast_table(
    layout: Layout,
    readings: pd.DataFrame,
    truth: pd.DataFrame,
    season: int,
    horizons: Iterable[int] = HORIZONS_H,
    forecasts: Mapping[str, Sequence[WeatherForecast]] | None = None,
) -> pd.DataFrame:
    """Every zone's feature rows with targets, one season: columns ``FEATURES``, the targets, ``irrigated_{h}h``
    (the valves ran within the horizon), ``rained_{h}h`` (more than 0.1 mm of rain in a tick of it: for judging
    the forecast on dry horizons; no model sees it), and ``season``, ``farm``, ``zone``, ``crop``, ``soil`` for
    splitting and reporting.

    Args:
        forecasts: each farm's weather forecasts over the season, by farm id; each hour's row sees the newest
            issued by its close. Without them the forecast features are NaN, as in service before a provider
            publishes.
    """
    hourly = hourly_aggregates(readings)
    tables = []
    for farm in layout.farms:
        issued = (forecasts or {}).get(farm.id, ())
        for zone in farm.zones:
            hours = zone_aggregates(hourly, farm.id, zone.id)
            rows = feature_rows(farm, zone, hours, zone_days(farm, zone, hours), issued)
            if rows.empty:
                continue
            table = pd.concat([rows, targets(rows, horizons)], axis=1)
            for h in horizons:
                table[f"irrigated_{h}h"] = irrigated_within(truth, farm.id, zone.id, rows.index, h)
                table[f"rained_{h}h"] = irrigated_within(truth, farm.id, zone.id, rows.index, h, "rain_mm", 0.1)
            table = table.assign(season=season, farm=farm.id, zone=zone.id, crop=zone.crop.value, soil=zone.soil.value)
            tables.append(table)
    return pd.concat(tables) if tables else pd.DataFrame(columns=list(FEATURES))


@dataclass(frozen=True)
class SeasonData:
    """One recorded season's training tables and the recipe that made it."""

    recipe: Mapping[str, object]
    forecast: pd.DataFrame
    """``forecast_table``"""
    sensors: pd.DataFrame
    """``ml.faultdetect.sensor_hours_table``"""


def table_hash(table: pd.DataFrame) -> str:
    """SHA-256 of a table's values, index and column names: the same data hashes the same on every machine."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, table.columns)).encode())
    digest.update(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def from_influx(
    client: InfluxClient, farm: Farm, zone: Zone, start: datetime, end: datetime, horizons: Iterable[int] = HORIZONS_H
) -> pd.DataFrame:
    """A stored zone's feature rows and targets, read back from InfluxDB: the hourly aggregates and days the
    stream wrote (latest revision each), through the same features as in service."""
    start_s, end_s = start.timestamp(), end.timestamp()
    hours = stored_aggregates(client, farm.id, zone.id, 3600, start_s, end_s)
    tz = ZoneInfo(farm.timezone)
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    spans = (Day.on(first + timedelta(days=i), tz) for i in range((last - first).days + 1))
    midnights = {span.start_s: span.day for span in spans}
    days = stored_days(client, farm.id, zone.id, min(midnights), max(midnights) + 1, midnights) if midnights else []
    rows = feature_rows(farm, zone, hours, days)
    return pd.concat([rows, targets(rows, horizons)], axis=1).assign(farm=farm.id, zone=zone.id)
