"""The end-to-end benchmark's bookkeeping, without any I/O: what was due when, what arrived when, what was lost.

Every message a generator publishes in a real-time run (``speed`` 1) carries its due time as its timestamp, so
InfluxDB itself says which messages are stored: the count of one tracer sensor's points per ``bucket_s`` of event
time is the number of messages of that bucket stored. Polled every ``bucket_s`` or so, a bucket's count growing
between two polls means that many messages were stored since the last poll; their latency is the poll's time less
the bucket's middle, to within a bucket either way. At the end, one count of every reading over the run's time
range gives the loss: readings due less readings stored. A point written twice overwrites itself in InfluxDB
(same series, same time), so duplicates never hide a loss; how many were sent twice is counted elsewhere.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from benchmarks.openloop import Plan

HORIZON_S = 10.0
"""A bucket still incomplete this long after it was due is no longer polled: its stragglers count as late."""


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles of publish-to-stored latency, in seconds (``inf`` when more than that share came too late)."""

    p50: float
    p95: float
    p99: float
    max: float
    late: int  # stored, but only seen after ``HORIZON_S``

    @classmethod
    def of(cls, histogram: Mapping[float, int], late: int) -> Latency:
        points = sorted(histogram.items())
        total = sum(histogram.values()) + late

        def pct(q: float) -> float:
            rank, seen = math.ceil(q * total), 0
            for latency, count in points:
                seen += count
                if seen >= rank:
                    return latency
            return math.inf

        top = math.inf if late else (points[-1][0] if points else math.nan)
        return cls(pct(0.50), pct(0.95), pct(0.99), top, late) if total else cls(*(4 * (math.nan,)), 0)


class Arrivals:
    """What each bucket of event time expects and has had stored, and the latency of every stored message."""

    def __init__(self, plans: Iterable[Plan], bucket_s: float = 0.1, horizon_s: float = HORIZON_S) -> None:
        self.bucket_ms = round(bucket_s * 1000)
        self.horizon_s = horizon_s
        self.expected: Counter[int] = Counter()
        for plan in plans:
            if plan.speed != 1:
                raise ValueError("latency is measured on real-time plans only (speed 1)")
            self.expected.update(plan.stamp_ms(i) // self.bucket_ms for i in range(plan.count))
        self.seen: Counter[int] = Counter()
        self.histogram: Counter[float] = Counter()
        self.completed: dict[int, float] = {}  # bucket -> when a poll first found all its messages stored
        self.open = sorted(self.expected)  # buckets not yet complete, oldest first

    @property
    def due(self) -> int:
        return sum(self.expected.values())

    @property
    def first_ms(self) -> int:
        return min(self.expected) * self.bucket_ms

    @property
    def end_ms(self) -> int:
        return (max(self.expected) + 1) * self.bucket_ms

    def window_ms(self, now: float) -> tuple[int, int] | None:
        """The event-time range to poll now: from the oldest incomplete bucket still within the horizon to now;
        None when nothing is left to poll."""
        oldest = math.floor((now - self.horizon_s) * 1000) // self.bucket_ms
        while self.open and self.open[0] < oldest:
            self.open.pop(0)
        if not self.open:
            return None
        return self.open[0] * self.bucket_ms, min(self.end_ms, math.floor(now * 1000) + 1)

    def observe(self, now: float, counts: Mapping[int, int]) -> None:
        """A poll made at ``now`` found ``counts`` messages stored per bucket start (epoch milliseconds)."""
        for start_ms, count in counts.items():
            bucket = start_ms // self.bucket_ms
            new = min(count, self.expected[bucket]) - self.seen[bucket]
            if new <= 0:
                continue
            self.seen[bucket] += new
            middle = (bucket + 0.5) * self.bucket_ms / 1000
            self.histogram[round(max(0.0, now - middle), 3)] += new
            if self.seen[bucket] >= self.expected[bucket]:
                self.completed[bucket] = now
        self.open = [b for b in self.open if self.seen[b] < self.expected[b]]

    def recovery_s(self, fault_at: float, limit_s: float = 2.0) -> float | None:
        """Seconds from ``fault_at`` (epoch seconds) until the last bucket the fault delayed (stored more than
        ``limit_s`` after it was due) was stored: 0 if it delayed none, None if a bucket due since the fault was
        never seen complete (lost, or stored after the horizon)."""
        since = math.floor(fault_at * 1000) // self.bucket_ms
        if any(b not in self.completed for b in self.expected if b >= since):
            return None
        delayed = [
            at for b, at in self.completed.items() if at - (b + 0.5) * self.bucket_ms / 1000 > limit_s and at > fault_at
        ]
        return max(delayed) - fault_at if delayed else 0.0

    def latency(self, stored: int) -> Latency:
        """Percentiles over the ``stored`` messages (the final count): those no poll saw in time count as late."""
        return Latency.of(self.histogram, max(0, stored - sum(self.histogram.values())))


@dataclass(frozen=True, slots=True)
class Outcome:
    """One run at one offered rate: what was published, stored, lost and sent twice, and how fast it was stored."""

    rate: float
    seconds: float
    published: int
    acknowledged: int
    readings_due: int
    readings_stored: int
    duplicates: int
    latency: Latency
    generator_lag_s: float

    @property
    def lost(self) -> int:
        return self.readings_due - self.readings_stored

    def sustained(self, p99_limit_s: float = 2.0) -> bool:
        """Nothing lost and p99 under the limit (the issue's test of a sustained rate)."""
        return self.lost == 0 and self.published == self.acknowledged and self.latency.p99 < p99_limit_s

    def verdict(self, p99_limit_s: float = 2.0) -> str:
        if self.sustained(p99_limit_s):
            return "sustained"
        why = []
        if self.lost:
            why.append(f"{self.lost} readings lost")
        if self.published != self.acknowledged:
            why.append(f"{self.published - self.acknowledged} messages never acknowledged")
        if not self.latency.p99 < p99_limit_s:
            why.append(f"p99 {self.latency.p99:.2f} s")
        return "not sustained: " + ", ".join(why)
