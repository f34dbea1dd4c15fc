"""Records and contexts for the ml tests: the default farm, hourly aggregates and closed days built in one line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from ml.context import SensorHour, SensorSuspicion, ZoneContext, sensor_hour
from smartfarm.layout import Farm, SensorKind, Zone, load_layout
from smartfarm.records import ZoneAggregate, ZoneDay

FARM: Farm = load_layout().farms[0]
HOUR = timedelta(hours=1)
END = datetime(2026, 7, 15, 20, tzinfo=UTC)
"""13:00 at the farm (America/Los_Angeles, PDT): tomato day 91, mid-season, Kc 1.15, roots at full depth."""


def zone(zone_id: str) -> Zone:
    return next(z for z in FARM.zones if z.id == zone_id)


def hour(
    kind: SensorKind,
    end: datetime,
    mean: float,
    low: float | None = None,
    high: float | None = None,
    count: int = 12,
    revision: int = 1,
    width: timedelta = HOUR,
) -> ZoneAggregate:
    """One aggregate of ``kind`` over the window ending at ``end``; min and max default to the mean."""
    return ZoneAggregate.create(
        farm=FARM.id,
        zone="tomato-north",
        kind=kind,
        window_start=end - width,
        window_end=end,
        count=count,
        mean=mean,
        min=mean if low is None else low,
        max=mean if high is None else high,
        last=mean,
        revision=revision,
    )


def series(kind: SensorKind, means: Sequence[float], end: datetime = END) -> list[ZoneAggregate]:
    """Consecutive hourly aggregates, oldest first, the last one ending at ``end``."""
    n = len(means)
    return [hour(kind, end - (n - 1 - i) * HOUR, m) for i, m in enumerate(means)]


def day(d: date, et0: float = 4.4, gdd: float = 10.0, tmin: float = 15.0, tmax: float = 30.0) -> ZoneDay:
    return ZoneDay.create(
        farm=FARM.id, zone="tomato-north", day=d, tmin=tmin, tmax=tmax, et0_mm=et0, gdd=gdd, hours=24, revision=1
    )


def context(
    zone_id: str = "tomato-north",
    aggregates: Iterable[ZoneAggregate] = (),
    days: Sequence[ZoneDay] = (),
    suspicions: Sequence[SensorSuspicion] = (),
    pending: float = 0.0,
    end: datetime = END,
) -> ZoneContext:
    by_kind: dict[SensorKind, list[ZoneAggregate]] = {}
    for a in aggregates:
        by_kind.setdefault(a.kind, []).append(a)
    hours: Mapping[SensorKind, Sequence[ZoneAggregate]] = {
        k: sorted(v, key=lambda a: a.window_end) for k, v in by_kind.items()
    }
    return ZoneContext(
        farm=FARM,
        zone=zone(zone_id),
        window_end=end,
        hours=hours,
        days=days,
        suspicions=suspicions,
        pending_irrigation_mm=pending,
    )


def rain(amounts_mm: Sequence[float], end: datetime = END, readings: int = 4) -> list[ZoneAggregate]:
    """Consecutive hourly rainfall aggregates holding ``amounts_mm`` of rain each (mean x count, as a gauge sums)."""
    n = len(amounts_mm)
    return [
        hour(SensorKind.RAINFALL, end - (n - 1 - i) * HOUR, mm / readings, count=readings)
        for i, mm in enumerate(amounts_mm)
    ]


T0 = 1_780_000_000.0 // 3600 * 3600
"""An hour boundary (epoch seconds) for sensor-hour tables."""


def sensor_hour_of(
    values: list[float],
    kind: SensorKind = SensorKind.SOIL_MOISTURE,
    previous: tuple[float, float] | None = None,
    every: float = 900.0,
    device: str = "soil-1",
    sensor: str = "sm-15",
    depth: float | None = 15.0,
    before: Sequence[tuple[float, float]] = (),
    history: Sequence[float] = (),
) -> SensorHour:
    """One sensor's hour from T0: ``values`` ``every`` seconds apart, after the readings ``before`` (time, value;
    oldest first) and ``previous`` (the last of them), with the hourly means ``history`` (the hour before first)."""
    earlier = [*before, *([previous] if previous is not None else [])]
    pairs = [(T0 + i * every, v) for i, v in enumerate(values)]
    return sensor_hour(device, sensor, kind, depth, pairs, earlier, history)
