"""What the zone stage keeps of a zone's open windows in memory, fed from the clean records it reads, so that a
window closing in steady state is computed without reading its readings back from InfluxDB. Pure: no I/O.

Per window and kind: the running statistics of the good readings (``Running``: count, mean, min, max and last by
``ml.timeline.summarize``'s rule). Per hour and sensor: its readings and flags (``ml.timeline.suspicions``). Per
window and device: the sequence numbers already counted (``Counted``), so a clean record read twice (redelivered
after a crash, or handled again one record at a time after a failed batch) counts once.

Memory only, not the changelog: a worker that takes a zone over, or restarts, has not seen what was read before,
and a reading can reach a window that already closed. So a window counts as complete only when, kind by kind, the
readings it holds are as many as InfluxDB holds for it (``storage.zones.stored_counts``, one small aggregate
query); any other window is read back and computed from the stored readings, as before (``stream.zones``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from ml.context import SensorSuspicion
from ml.timeline import HOUR_S, Stats, Window
from smartfarm.layout import SensorKind
from stream.windows import WIDTHS_S


class LiveReading(NamedTuple):
    """One reading of a clean record as the zone stage counts it."""

    sensor: str
    kind: SensorKind
    value: float
    good: bool
    flags: tuple[str, ...]


class LiveMessage(NamedTuple):
    """One clean device message of a zone: who sent it, its sequence number, its event time, its readings."""

    device: str
    seq: int
    ts: float
    readings: tuple[LiveReading, ...]


@dataclass(slots=True)
class Running:
    """Running statistics of (event time, value) pairs: ``summarize``'s rule without keeping the values (the mean
    from a running sum; a recomputation from the stored values may differ in the last bits, which ``same`` takes
    as equal)."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    last_ts: float = -math.inf
    last: float = -math.inf

    def add(self, ts: float, value: float) -> None:
        self.count += 1
        self.total += value
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value
        # ``summarize`` sorts the pairs: of two readings at the same time, the larger value is the last.
        if ts > self.last_ts or (ts == self.last_ts and value > self.last):
            self.last_ts, self.last = ts, value

    def stats(self) -> Stats:
        return Stats(self.count, self.total / self.count, self.low, self.high, self.last)


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


@dataclass(slots=True)
class LiveWindow:
    """One window's readings as counted: statistics of the good ones by kind, every reading counted by kind, the
    devices' counted sequence numbers, and (1-hour windows) each sensor's readings and flags."""

    good: dict[SensorKind, Running] = field(default_factory=dict)
    counts: dict[SensorKind, int] = field(default_factory=dict)
    seen: dict[str, Counted] = field(default_factory=dict)
    sensors: dict[tuple[str, str, SensorKind], list[int]] = field(default_factory=dict)
    flags: dict[tuple[str, str, SensorKind], dict[str, int]] = field(default_factory=dict)

    def add(self, m: LiveMessage, hourly: bool) -> None:
        """Count one message (not again if its device's sequence number was counted); ``hourly``: also tally each
        sensor's readings and flags."""
        seen = self.seen.get(m.device)
        if seen is None:
            seen = self.seen[m.device] = Counted()
        if not seen.add(m.seq):
            return
        counts, good = self.counts, self.good
        for r in m.readings:
            counts[r.kind] = counts.get(r.kind, 0) + 1
            if r.good:
                running = good.get(r.kind)
                if running is None:
                    running = good[r.kind] = Running()
                running.add(m.ts, r.value)
            if hourly:
                self._tally((m.device, r.sensor, r.kind), r.flags)

    def _tally(self, key: tuple[str, str, SensorKind], flags: tuple[str, ...]) -> None:
        tally = self.sensors.get(key)
        if tally is None:
            self.sensors[key] = [1]
        else:
            tally[0] += 1
        if flags:
            counts = self.flags.setdefault(key, {})
            for flag in flags:
                counts[flag] = counts.get(flag, 0) + 1


class LiveZone:
    """The open windows of one zone, as this process counted them from the clean records it read."""

    def __init__(self) -> None:
        self.windows: dict[Window, LiveWindow] = {}

    def feed(self, messages: Iterable[LiveMessage]) -> None:
        """Count each message in its windows of every width, once per (device, sequence number) and window."""
        windows = self.windows
        for m in messages:
            for width in WIDTHS_S:
                window = Window(width, math.floor(m.ts / width) * width)
                live = windows.get(window)
                if live is None:
                    live = windows[window] = LiveWindow()
                live.add(m, width == HOUR_S)

    def complete(self, windows: Iterable[Window], stored: Mapping[tuple[Window, SensorKind], int]) -> set[Window]:
        """Those of ``windows`` whose counted readings equal, kind by kind, what the database holds (``stored``:
        readings by window and kind, every kind the database has for the window)."""
        out = set()
        for window in windows:
            live = self.windows.get(window)
            if live is None:
                continue
            held = {kind: n for (w, kind), n in stored.items() if w == window}
            if held and held == live.counts:
                out.add(window)
        return out

    def stats(self, window: Window) -> dict[tuple[Window, SensorKind], Stats]:
        """The statistics of the window's good readings by kind (``ml.timeline.window_stats``'s answer for it)."""
        live = self.windows[window]
        return {(window, kind): running.stats() for kind, running in live.good.items()}

    def suspicions(self, window: Window) -> list[SensorSuspicion]:
        """Every sensor with readings in the (1-hour) window, with its flag counts (``ml.timeline.suspicions``'s
        answer for its hour, in the same order)."""
        live = self.windows[window]
        return [
            SensorSuspicion(
                device,
                sensor,
                kind,
                live.sensors[(device, sensor, kind)][0],
                live.flags.get((device, sensor, kind), {}),
            )
            for device, sensor, kind in sorted(live.sensors, key=lambda k: (k[0], k[1]))
        ]

    def forget(self, windows: Iterable[Window]) -> None:
        """Drop windows that were computed (closed, or re-opened by late readings): a window counted again later
        is one a reading reached after its close, read back whole."""
        for window in windows:
            self.windows.pop(window, None)
