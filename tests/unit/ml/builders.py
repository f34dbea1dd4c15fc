"""Records and contexts for the ml tests: the default farm, hourly aggregates and closed days built in one line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from ml.context import SensorHour, SensorSuspicion, ZoneContext, sensor_hour
from ml.waterbalance import BalanceDay
from smartfarm.forecast import ForecastHour, WeatherForecast
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
    forecast: WeatherForecast | None = None,
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
        forecast=forecast,
    )


def weather_forecast(
    rain: Mapping[int, float] | None = None,
    chance: float = 0.7,
    issued: datetime = END,
    hours: int = 48,
    et0_mm_h: float | None = 0.2,
) -> WeatherForecast:
    """The farm's forecast issued at ``issued`` for ``hours``: ``rain[h]`` mm in the hour ending ``h`` hours after
    the issue, at ``chance``; dry hours at 5 %; ``et0_mm_h`` reference ET every hour (None: not given)."""
    rain = rain or {}
    return WeatherForecast.create(
        farm=FARM.id,
        issued_at=issued,
        source="test",
        hours=tuple(
            ForecastHour(
                time=issued + h * HOUR,
                rain_mm=rain.get(h, 0.0),
                rain_probability=chance if rain.get(h, 0.0) > 0 else 0.05,
                air_temp_c=25.0,
                humidity_pct=50.0,
                wind_ms=2.0,
                et0_mm=et0_mm_h,
            )
            for h in range(1, hours + 1)
        ),
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


BALANCE_DAY0 = date(2026, 5, 1)


def balance_day(i: int = 0, **changes: object) -> BalanceDay:
    """Day ``i`` from ``BALANCE_DAY0`` of a dry balance: ETc = 1.0 x 5 mm, p held at 0.5, over 1 m of loam-like
    soil (FC 0.25, WP 0.12: TAW 130 mm, RAW 65 mm); ``changes`` replace any field."""
    base = BalanceDay(
        day=BALANCE_DAY0 + timedelta(days=i),
        et0_mm=5.0,
        rain_mm=0.0,
        irrigation_mm=0.0,
        kc=1.0,
        root_depth_m=1.0,
        p_table=0.5,
        field_capacity=0.25,
        wilting_point=0.12,
        adjust_p=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]
