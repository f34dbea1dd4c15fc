"""Event-time windows of one zone, without any I/O: which windows and days a batch of readings opens, closes or
re-opens (what is computed for them, and which statistics become a new revision, is ``ml.timeline``'s).

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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ml.timeline import Day, Window

WIDTHS_S = (900, 3600)
"""Tumbling windows of 15 minutes and one hour."""


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


__all__ = ["WIDTHS_S", "Due", "ZoneClock"]
