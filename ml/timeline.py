"""The zone stage's pure part, the one the stream, the training tables and the closed-loop season all run: a
zone's readings to its windows' statistics, its 1-hour aggregates to its days, and both to the ``ZoneContext`` a
scorer is shown at the close of an hour.

- ``window_stats`` and ``summarize``: count, mean, min, max and last of the good readings per window and kind
  (the stream recomputes them from the stored readings; the training tables take them from pandas, held against
  these in a test);
- ``revise``: which statistics become a new revision of a window's ``ZoneAggregate``;
- ``suspicions``: each sensor's readings and flags over an hour;
- ``zone_days``: a zone's days in its farm's time zone from its 1-hour aggregates (``ml.features.zone_day``);
- ``ZoneTimeline``: a zone's hours and days, sliced per hour by bisection: ``context`` is the context at the close
  of any hour, the same whether the timeline was filled at once (training), hour by hour (a season) or from what
  the database holds (the stream).

No I/O and no clock: the stream's watermarks and the database reads stay in ``stream``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from ml.context import SensorHour, SensorSuspicion, ZoneContext
from ml.features import CONTEXT_H, zone_day
from smartfarm.forecast import WeatherForecast
from smartfarm.layout import Farm, SensorKind, Zone
from smartfarm.records import ZoneAggregate, ZoneDay
from storage.zones import StoredReading

HOUR_S = 3600
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """One tumbling window, by its width and start (seconds since the epoch, aligned to the width)."""

    width_s: int
    start_s: int

    @property
    def end_s(self) -> int:
        return self.start_s + self.width_s

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_s, UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.end_s, UTC)

    @classmethod
    def of(cls, width_s: int, ts: float) -> Window:
        """The window of ``width_s`` that holds event time ``ts``."""
        return cls(width_s, math.floor(ts / width_s) * width_s)


@dataclass(frozen=True, slots=True, order=True)
class Day:
    """One day of a farm in its time zone, with its start and end in epoch seconds (23 or 25 hours at DST)."""

    day: date
    start_s: int
    end_s: int

    @property
    def start(self) -> datetime:
        """The local midnight the day starts at, in UTC."""
        return datetime.fromtimestamp(self.start_s, UTC)

    @classmethod
    def of(cls, ts: float, tz: ZoneInfo) -> Day:
        local = datetime.fromtimestamp(ts, tz).date()
        return cls.on(local, tz)

    @classmethod
    def on(cls, day: date, tz: ZoneInfo) -> Day:
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
        return cls(day, int(start.timestamp()), int(end.timestamp()))


@dataclass(frozen=True, slots=True)
class Stats:
    """The statistics of one sensor kind over one window, as computed from the stored readings."""

    count: int
    mean: float
    min: float
    max: float
    last: float


def summarize(values: Iterable[tuple[float, float]]) -> Stats | None:
    """The statistics of (event time, value) pairs; ``last`` is the value with the latest time. None when empty.

    The stage takes these from InfluxQL (count, mean, min, max, last over the stored readings); this is the same
    rule in Python, which the tests hold InfluxDB's answer against."""
    pairs = sorted(values)
    if not pairs:
        return None
    numbers = [v for _, v in pairs]
    return Stats(len(numbers), math.fsum(numbers) / len(numbers), min(numbers), max(numbers), pairs[-1][1])


def window_stats(
    readings: Iterable[tuple[float, SensorKind, float]], width_s: int
) -> dict[tuple[Window, SensorKind], Stats]:
    """The statistics of (event time, kind, value) readings per window of ``width_s`` and kind."""
    grouped: dict[tuple[int, SensorKind], list[tuple[float, float]]] = {}
    for ts, kind, value in readings:
        start = math.floor(ts / width_s) * width_s  # Window.of's rule; the Window is made once per group
        group = grouped.get((start, kind))
        if group is None:
            group = grouped[(start, kind)] = []
        group.append((ts, value))
    return {
        (Window(width_s, start), kind): stats
        for (start, kind), pairs in grouped.items()
        if (stats := summarize(pairs)) is not None
    }


REL_TOLERANCE = 1e-9
"""Means recomputed by another engine differ in the last bits; a revision is for a real change."""


def same(stats: Stats, stored: Stats | None) -> bool:
    """Whether ``stats`` is what was already emitted (then a recomputation issues nothing)."""
    if stored is None or stats.count != stored.count:
        return False
    pairs = zip(
        (stats.mean, stats.min, stats.max, stats.last), (stored.mean, stored.min, stored.max, stored.last), strict=True
    )
    return all(math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=1e-9) for a, b in pairs)


def revise(
    farm: str,
    zone: str,
    windows: Iterable[Window],
    computed: Mapping[tuple[Window, SensorKind], Stats],
    stored: Mapping[tuple[Window, SensorKind], tuple[Stats, int]],
) -> list[ZoneAggregate]:
    """The aggregates to emit for ``windows``: each (window, kind) whose statistics differ from what was stored,
    with the stored revision plus one (1 for a window never emitted), in window order.

    Args:
        computed: statistics from the stored readings, by window and kind.
        stored: what was emitted before (statistics and revision), by window and kind.
    """
    wanted = set(windows)
    out: list[ZoneAggregate] = []
    for (window, kind), stats in sorted(computed.items(), key=lambda item: (item[0][0], item[0][1].value)):
        if window not in wanted:
            continue
        before = stored.get((window, kind))
        if before is not None and same(stats, before[0]):
            continue
        out.append(
            ZoneAggregate.create(
                farm=farm,
                zone=zone,
                kind=kind,
                window_start=window.start,
                window_end=window.end,
                count=stats.count,
                mean=stats.mean,
                min=stats.min,
                max=stats.max,
                last=stats.last,
                revision=1 if before is None else before[1] + 1,
            )
        )
    return out


def hour_aggregates(farm: str, zone: str, readings: Iterable[tuple[float, SensorKind, float]]) -> list[ZoneAggregate]:
    """The first revision of the 1-hour aggregates of a zone's (event time, kind, value) good readings, in window
    order: what the stream emits for hours no reading reaches late."""
    stats = window_stats(readings, HOUR_S)
    return revise(farm, zone, {window for window, _ in stats}, stats, {})


def suspicions(readings: Iterable[StoredReading], start_s: float, end_s: float) -> dict[int, list[SensorSuspicion]]:
    """Every sensor with readings in each hour of the range (by the hour's start): how many, and how many carried
    each flag (a suspect reading may carry several)."""
    counts: dict[tuple[int, str, str, SensorKind], int] = {}
    flags: dict[tuple[int, str, str, SensorKind], dict[str, int]] = {}
    for r in readings:
        if not start_s <= r.time_s < end_s:
            continue
        key = (int(r.time_s) // HOUR_S * HOUR_S, r.device, r.sensor, r.kind)
        counts[key] = counts.get(key, 0) + 1
        if not r.good:
            tally = flags.setdefault(key, {})
            for flag in filter(None, r.flags.split(",")):
                tally[flag] = tally.get(flag, 0) + 1
    out: dict[int, list[SensorSuspicion]] = {}
    for key in sorted(counts, key=lambda k: (k[0], k[1], k[2])):
        hour, device, sensor, kind = key
        out.setdefault(hour, []).append(SensorSuspicion(device, sensor, kind, counts[key], flags.get(key, {})))
    return out


def zone_days(farm: Farm, zone: Zone, hours: Iterable[ZoneAggregate]) -> list[ZoneDay]:
    """The zone's days (in the farm's time zone) from its 1-hour aggregates, by ``ml.features.zone_day``; a day
    without air temperature has none."""
    tz = ZoneInfo(farm.timezone)
    by_day: dict[date, list[ZoneAggregate]] = {}
    for a in hours:
        by_day.setdefault(a.window_start.astimezone(tz).date(), []).append(a)
    days = (zone_day(farm, zone, d, by_day[d]) for d in sorted(by_day))
    return [d for d in days if d is not None]


class ZoneTimeline:
    """One zone's 1-hour aggregates by kind and its closed days: the context a scorer is shown at any hour.

    Filled at once (training), hour by hour with ``add_hours`` and ``close_days`` (a closed-loop season), or from
    what the database holds (the stream). Hours and days are appended in time order (one revision of a window
    each: the caller keeps the latest); ``context`` slices them by bisection instead of scanning.
    """

    def __init__(
        self, farm: Farm, zone: Zone, hours: Iterable[ZoneAggregate] = (), days: Iterable[ZoneDay] = ()
    ) -> None:
        self.farm = farm
        self.zone = zone
        self.tz = ZoneInfo(farm.timezone)
        self.by_kind: dict[SensorKind, list[ZoneAggregate]] = {}
        self._starts: dict[SensorKind, list[datetime]] = {}
        self.days: list[ZoneDay] = []
        self._day_keys: list[date] = []
        self._unclosed: dict[date, list[ZoneAggregate]] = {}
        self.add_hours(hours, close=False)
        for d in sorted(days, key=lambda d: d.day):
            self._add_day(d)

    def add_hours(self, hours: Iterable[ZoneAggregate], close: bool = True) -> None:
        """Append 1-hour aggregates (newer than those held, per kind); with ``close``, each is also kept for its
        local day until ``close_days`` makes the day from them."""
        for a in sorted(hours, key=lambda a: a.window_start):
            self.by_kind.setdefault(a.kind, []).append(a)
            self._starts.setdefault(a.kind, []).append(a.window_start)
            if close:
                self._unclosed.setdefault(a.window_start.astimezone(self.tz).date(), []).append(a)

    def close_days(self, before: date) -> list[ZoneDay]:
        """Make and keep the days before the local day ``before`` from the hours added since they were last
        closed; the days made (not those without air temperature)."""
        due = sorted(d for d in self._unclosed if d < before)
        made = zone_days(self.farm, self.zone, [a for d in due for a in self._unclosed.pop(d)])
        for d in made:
            self._add_day(d)
        return made

    def _add_day(self, day: ZoneDay) -> None:
        self.days.append(day)
        self._day_keys.append(day.day)

    def hours_of(self, kind: SensorKind, start: datetime, end: datetime) -> list[ZoneAggregate]:
        """The kind's aggregates whose window starts in ``[start, end)``."""
        starts = self._starts.get(kind, [])
        return self.by_kind.get(kind, [])[bisect.bisect_left(starts, start) : bisect.bisect_left(starts, end)]

    def local_day(self, end: datetime) -> date:
        """The farm's local day of the hour that ends at ``end``."""
        return (end - HOUR).astimezone(self.tz).date()

    def context(
        self,
        end: datetime,
        *,
        suspicions: Sequence[SensorSuspicion] = (),
        sensors: Sequence[SensorHour] = (),
        farm_sensors: Sequence[tuple[str, SensorHour]] = (),
        pending_mm: float = 0.0,
        forecast: WeatherForecast | None = None,
    ) -> ZoneContext:
        """The zone at the close of the hour ending ``end``: its aggregates of the ``CONTEXT_H`` hours before, and
        its closed days from planting to the day before the hour's local day."""
        since = end - timedelta(hours=CONTEXT_H)
        first = bisect.bisect_left(self._day_keys, self.zone.planting_date)
        last = max(first, bisect.bisect_left(self._day_keys, self.local_day(end)))
        return ZoneContext(
            farm=self.farm,
            zone=self.zone,
            window_end=end,
            hours={kind: self.hours_of(kind, since, end) for kind in self.by_kind},
            days=self.days[first:last],
            suspicions=suspicions,
            pending_irrigation_mm=pending_mm,
            sensors=sensors,
            forecast=forecast,
            farm_sensors=farm_sensors,
        )


def readings_context(
    farm: Farm, zone: Zone, readings: Iterable[tuple[float, SensorKind, float]], end: datetime
) -> ZoneContext:
    """The context at the close of the hour ending ``end`` of a zone known only by its (event time, kind, value)
    good readings before ``end``, as the stream would show it: their 1-hour aggregates (``hour_aggregates``) and the
    days made from them (``zone_days``). A day the readings cover only in part (the first one, mostly) is left out,
    as the stream never closes a day it has not seen whole: its tmin, tmax and reference ET would be wrong."""
    pairs = [r for r in readings if r[0] < end.timestamp()]
    hours = hour_aggregates(farm.id, zone.id, pairs)
    tz = ZoneInfo(farm.timezone)
    first = min((ts for ts, _, _ in pairs), default=end.timestamp())
    whole = [
        d for d in zone_days(farm, zone, hours) if Day.on(d.day, tz).start_s >= math.floor(first / HOUR_S) * HOUR_S
    ]
    return ZoneTimeline(farm, zone, hours, whole).context(end)
