"""Event-time windows of one zone, without any I/O: which windows a batch of readings opens, closes or re-opens,
and which statistics become a new revision.

A zone's watermark is the latest event time seen in it minus a grace period. A window ``[start, start + width)``
closes when the watermark passes its end; a reading inside the grace period lands in a window still open. A reading
for a window already closed re-opens it: the window is computed again and, if the result differs from what was
emitted, emitted again with the next revision. Time is the readings' own (a farm simulated at 3600 times real time,
or a device back from an outage with hours of readings, moves the watermark as its event times say, never as the
wall clock does); a zone whose devices all fall silent keeps its last windows open until they speak again.

The statistics themselves are recomputed from what is stored (the store agent writes every reading before its
clean record reaches this stage), so a window is a pure function of the stored readings: redelivered records,
a worker killed between two steps or a re-opened window can never count a reading twice. ``ZoneClock`` is the little
this stage remembers per zone (its watermark and open windows); it is JSON so a changelog-backed table keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from smartfarm.layout import SensorKind
from smartfarm.records import ZoneAggregate

WIDTHS_S = (900, 3600)
"""Tumbling windows of 15 minutes and one hour."""

WIDTH_NAMES = {900: "15m", 3600: "1h"}
"""How the windows are told apart in InfluxDB (``zone_aggregate``'s ``width`` tag) and InfluxQL's GROUP BY."""

HOUR_S = 3600


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

    @classmethod
    def of(cls, ts: float, tz: ZoneInfo) -> Day:
        local = datetime.fromtimestamp(ts, tz).date()
        return cls.on(local, tz)

    @classmethod
    def on(cls, day: date, tz: ZoneInfo) -> Day:
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
        return cls(day, int(start.timestamp()), int(end.timestamp()))


@dataclass(slots=True)
class Due:
    """What one batch made due in one zone: windows and days to compute, and which of them just closed."""

    windows: set[Window] = field(default_factory=set)
    closed: set[Window] = field(default_factory=set)
    """Windows that closed in this batch for the first time (the recommend step scores on these)."""
    days: set[Day] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.windows or self.days)


@dataclass(slots=True)
class ZoneClock:
    """What the aggregate stage remembers of one zone: the latest event time seen, the windows and days that hold
    readings and have not closed yet, and the state of its advice (``advice``, see ``stream.advice``)."""

    newest_s: float = float("-inf")
    open: set[Window] = field(default_factory=set)
    open_days: set[date] = field(default_factory=set)
    advice: dict[str, Any] = field(default_factory=dict)

    def watermark(self, grace_s: float) -> float:
        return self.newest_s - grace_s

    def observe(self, times: Iterable[float], grace_s: float, tz: ZoneInfo) -> Due:
        """Take the event times of a batch of this zone's readings; return the windows and days now due.

        Due: every window the watermark swept past in this batch (``closed``: each window closes once, as the
        watermark passes its end), and every window behind the watermark as it stood before the batch that one of
        these readings falls in (re-opened: late data). A window that never held a reading is never due."""
        before = self.watermark(grace_s)
        touched: set[Window] = set()
        days: set[date] = set()
        for ts in times:
            self.newest_s = max(self.newest_s, ts)
            for width in WIDTHS_S:
                touched.add(Window.of(width, ts))
            days.add(datetime.fromtimestamp(ts, tz).date())
        mark = self.watermark(grace_s)
        due = Due()
        for window in touched:
            if window.end_s <= before:
                due.windows.add(window)
            else:
                self.open.add(window)
        for window in [w for w in self.open if w.end_s <= mark]:
            self.open.discard(window)
            due.windows.add(window)
            due.closed.add(window)
        for day in days | self.open_days:
            span = Day.on(day, tz)
            if span.end_s <= mark:
                due.days.add(span)
                self.open_days.discard(day)
            else:
                self.open_days.add(day)
        return due

    def to_json(self) -> dict[str, Any]:
        return {
            "newest_s": None if self.newest_s == float("-inf") else self.newest_s,
            "open": sorted([w.width_s, w.start_s] for w in self.open),
            "open_days": sorted(d.isoformat() for d in self.open_days),
            "advice": self.advice,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ZoneClock:
        newest = data.get("newest_s")
        return cls(
            newest_s=float("-inf") if newest is None else float(newest),
            open={Window(int(w), int(s)) for w, s in data.get("open", ())},
            open_days={date.fromisoformat(d) for d in data.get("open_days", ())},
            advice=dict(data.get("advice", {})),
        )


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
