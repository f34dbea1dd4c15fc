"""What the zone stage keeps of a zone's open windows in memory, fed from the clean records it reads, so that a
window closing in steady state is computed without reading its readings back from InfluxDB. Pure: no I/O.

Each message is counted in its quarter-hour window (an hour is its quarters merged): per kind the running
statistics of the good readings (``Running``: count, mean, min, max and last by ``ml.timeline.summarize``'s rule),
per sensor its readings and flags (``ml.timeline.suspicions``), and per device the sequence numbers already counted
(``Counted``), so a clean record read twice (redelivered after a crash, or handled again one record at a time after
a failed batch) counts once.

Memory only, not the changelog: a worker that takes a zone over, or restarts, has not seen what was read before,
and a reading can reach a window that already closed. So a window counts as complete only when, kind by kind, the
readings it holds are as many as InfluxDB holds for it (``storage.zones.stored_counts``, one small aggregate
query); any other window is read back and computed from the stored readings, as before (``stream.zones``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ml.context import SensorSuspicion
from ml.timeline import Stats, Window
from smartfarm.layout import SensorKind
from stream.windows import WIDTHS_S

LiveReading = Mapping[str, Any]
"""One reading of a clean record as its JSON parses (``CleanValue``: ``sensor``, ``kind``, ``value``, ``quality``,
``flags``), used as it is: the zone agent reads every clean message, and building objects would double its cost."""


class LiveMessage(NamedTuple):
    """One clean device message of a zone: who sent it, its sequence number, its event time, its readings."""

    device: str
    seq: int
    ts: float
    readings: Sequence[LiveReading]


QUARTER_S = min(WIDTHS_S)
"""Messages are counted in their shortest window; a longer one is its shorter ones merged when it closes."""


class Counted:
    """A set of sequence numbers as sorted, disjoint ``[first, last]`` runs: a device counts up, so its messages of
    one window are one run or a few, however many there are."""

    __slots__ = ("firsts", "lasts")

    def __init__(self) -> None:
        self.firsts: list[int] = []
        self.lasts: list[int] = []

    def add(self, seq: int) -> bool:
        """Count ``seq``; False when it was counted already."""
        firsts, lasts = self.firsts, self.lasts
        if not lasts or seq > lasts[-1]:  # the common case: the next message of the device
            if lasts and seq == lasts[-1] + 1:
                lasts[-1] = seq
            else:
                firsts.append(seq)
                lasts.append(seq)
            return True
        i = bisect.bisect_right(firsts, seq) - 1
        if i >= 0 and seq <= lasts[i]:
            return False
        joins_left = i >= 0 and lasts[i] == seq - 1
        joins_right = i + 1 < len(firsts) and firsts[i + 1] == seq + 1
        if joins_left and joins_right:
            lasts[i] = lasts[i + 1]
            del firsts[i + 1], lasts[i + 1]
        elif joins_left:
            lasts[i] = seq
        elif joins_right:
            firsts[i + 1] = seq
        else:
            firsts.insert(i + 1, seq)
            lasts.insert(i + 1, seq)
        return True

    def __contains__(self, seq: int) -> bool:
        i = bisect.bisect_right(self.firsts, seq) - 1
        return i >= 0 and seq <= self.lasts[i]


Running = list[float]
"""Running statistics of one kind's good readings in a window, as a list for speed: count, sum, min, max, the
latest time and the value then (``summarize``'s rule: of two readings at the same time, the larger value is last;
the mean from a running sum may differ from a recomputation in the last bits, which ``same`` takes as equal)."""


def _merge(into: Running, other: Running) -> None:
    into[0] += other[0]
    into[1] += other[1]
    into[2] = min(into[2], other[2])
    into[3] = max(into[3], other[3])
    if other[4] > into[4] or (other[4] == into[4] and other[5] > into[5]):
        into[4], into[5] = other[4], other[5]


@dataclass(slots=True)
class LiveWindow:
    """One shortest window's readings as counted: statistics of the good ones by kind, every reading counted by
    kind, the devices' counted sequence numbers, and each sensor's kind, readings and flags."""

    good: dict[str, Running] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    seen: dict[str, Counted] = field(default_factory=dict)
    sensors: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    """(device, sensor) -> [kind, readings, {flag: readings} or None]."""

    def add(self, m: LiveMessage) -> None:
        """Count one message (not again if its device's sequence number was counted)."""
        seen = self.seen.get(m.device)
        if seen is None:
            seen = self.seen[m.device] = Counted()
        if not seen.add(m.seq):
            return
        counts, good, sensors, ts, device = self.counts, self.good, self.sensors, m.ts, m.device
        for r in m.readings:
            sensor, kind, value, flags = r["sensor"], r["kind"], r["value"], r.get("flags")
            counts[kind] = counts.get(kind, 0) + 1
            if r["quality"] == "good":
                running = good.get(kind)
                if running is None:
                    good[kind] = [1, value, value, value, ts, value]
                else:
                    running[0] += 1
                    running[1] += value
                    running[2] = min(running[2], value)
                    running[3] = max(running[3], value)
                    if ts > running[4] or (ts == running[4] and value > running[5]):
                        running[4], running[5] = ts, value
            tally = sensors.get((device, sensor))
            if tally is None:
                tally = sensors[(device, sensor)] = [kind, 0, None]
            tally[1] += 1
            if flags:
                _tally_flags(tally, flags)


def _tally_flags(tally: list[Any], flags: Sequence[str]) -> None:
    counted = tally[2] = tally[2] or {}
    for flag in flags:
        counted[flag] = counted.get(flag, 0) + 1


class LiveZone:
    """The open windows of one zone, as this process counted them from the clean records it read."""

    def __init__(self) -> None:
        self.windows: dict[Window, LiveWindow] = {}

    def feed(self, messages: Iterable[LiveMessage]) -> None:
        """Count each message in its shortest window, once per (device, sequence number)."""
        windows = self.windows
        for m in messages:
            window = Window(QUARTER_S, math.floor(m.ts / QUARTER_S) * QUARTER_S)
            live = windows.get(window)
            if live is None:
                live = windows[window] = LiveWindow()
            live.add(m)

    def _parts(self, window: Window) -> list[LiveWindow]:
        """The counted shortest windows inside ``window``."""
        starts = range(window.start_s, window.end_s, QUARTER_S)
        return [part for s in starts if (part := self.windows.get(Window(QUARTER_S, s))) is not None]

    def holds(self, window: Window) -> bool:
        """Whether any reading of ``window`` was counted here."""
        return bool(self._parts(window))

    def counts(self, window: Window) -> dict[SensorKind, int]:
        out: dict[SensorKind, int] = {}
        for part in self._parts(window):
            for kind, n in part.counts.items():
                out[_KINDS[kind]] = out.get(_KINDS[kind], 0) + n
        return out

    def complete(self, windows: Iterable[Window], stored: Mapping[tuple[Window, SensorKind], int]) -> set[Window]:
        """Those of ``windows`` whose counted readings equal, kind by kind, what the database holds (``stored``:
        readings by window and kind, every kind the database has for the window)."""
        out = set()
        for window in windows:
            held = {kind: n for (w, kind), n in stored.items() if w == window}
            if held and held == self.counts(window):
                out.add(window)
        return out

    def stats(self, window: Window) -> dict[tuple[Window, SensorKind], Stats]:
        """The statistics of the window's good readings by kind (``ml.timeline.window_stats``'s answer for it)."""
        merged: dict[str, Running] = {}
        for part in self._parts(window):
            for kind, running in part.good.items():
                if kind in merged:
                    _merge(merged[kind], running)
                else:
                    merged[kind] = list(running)
        return {(window, _KINDS[kind]): Stats(int(r[0]), r[1] / r[0], r[2], r[3], r[5]) for kind, r in merged.items()}

    def suspicions(self, window: Window) -> list[SensorSuspicion]:
        """Every sensor with readings in the window, with its flag counts (``ml.timeline.suspicions``'s answer for
        its hour, in the same order)."""
        tallies: dict[tuple[str, str], tuple[str, int, dict[str, int]]] = {}
        for part in self._parts(window):
            for key, (kind, n, flags) in part.sensors.items():
                _, before, had = tallies.get(key, (kind, 0, {}))
                joined = dict(had)
                for flag, k in (flags or {}).items():
                    joined[flag] = joined.get(flag, 0) + k
                tallies[key] = (kind, before + n, joined)
        return [
            SensorSuspicion(device, sensor, _KINDS[kind], n, flags)
            for (device, sensor), (kind, n, flags) in sorted(tallies.items())
        ]

    def forget(self, windows: Iterable[Window]) -> None:
        """Drop what was counted in windows that were computed and will not be merged into a longer one again: the
        shortest windows of every computed window of the longest width (a window counted again later is one a
        reading reached after its close, read back whole)."""
        longest = max(WIDTHS_S)
        for window in windows:
            if window.width_s == longest:
                for s in range(window.start_s, window.end_s, QUARTER_S):
                    self.windows.pop(Window(QUARTER_S, s), None)


_KINDS = {kind.value: kind for kind in SensorKind}
