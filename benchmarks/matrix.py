"""The fault matrix's bookkeeping, without any I/O: what was sent, what is stored, and the table of the cases.

A reading's identity is (device, sensor, time, value). The fleet's generators log every message they publish
(``benchmarks.openloop --log``); InfluxDB's ``reading`` measurement, read back series by series, says what is
stored. Each identity sent is then stored once, lost, or dead-lettered by design (a message the pipeline refuses
on purpose, e.g. a reset clock's ``stale_timestamp``); every stored point beyond the one copy of an identity sent
is "stored twice": the same reading in a second series, or under a time (or value) it was not sent with. A count
alone could hide a lost reading balanced by one stored twice; identities cannot.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from benchmarks.openloop import Plan

Reading = tuple[str, str, int, float]
"""device, sensor, time (ns since the epoch), value."""

MessageKey = tuple[str, int, int]
"""device, seq, time (ns since the epoch): one message as sent."""


def to_ns(ts: str) -> int:
    """An ISO 8601 stamp (the devices' ``ts``, at most millisecond precision) in nanoseconds since the epoch."""
    return round(datetime.fromisoformat(ts).timestamp() * 1000) * 1_000_000


@dataclass(frozen=True, slots=True)
class Sent:
    """One message a generator published."""

    key: MessageKey
    readings: tuple[Reading, ...]

    @classmethod
    def parse(cls, payload: bytes | str) -> Sent:
        doc = json.loads(payload)
        device, ns = doc["device"], to_ns(doc["ts"])
        readings = tuple((device, r["sensor"], ns, float(r["value"])) for r in doc["readings"])
        return cls((device, int(doc["seq"]), ns), readings)


def sent_log(lines: Iterable[bytes | str]) -> list[Sent]:
    """The messages of generator logs (one payload a line; blank lines skipped)."""
    return [Sent.parse(line) for line in lines if line.strip()]


def stored_readings(series: Iterable[Mapping[str, Any]]) -> Counter[Reading]:
    """Every point of InfluxDB's answer to ``SELECT value FROM reading GROUP BY *`` (``epoch=ns``), by identity: a
    reading in two series counts twice."""
    out: Counter[Reading] = Counter()
    for s in series:
        tags = s.get("tags", {})
        for t, value in s.get("values", []):
            out[(tags["device"], tags["sensor"], int(t), float(value))] += 1
    return out


@dataclass(frozen=True, slots=True)
class Tally:
    """One case's readings: sent, stored once, lost, stored twice, refused by design."""

    messages: int
    readings: int
    stored_once: int
    lost: int
    stored_twice: int
    by_design: int
    lost_examples: tuple[Reading, ...] = ()
    twice_examples: tuple[Reading, ...] = ()

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {k: getattr(self, k) for k in self.__slots__}
        out["lost_examples"] = [list(r) for r in self.lost_examples]
        out["twice_examples"] = [list(r) for r in self.twice_examples]
        return out


def tally(
    sent: Sequence[Sent], stored: Counter[Reading], refused: Iterable[MessageKey] = (), examples: int = 5
) -> Tally:
    """Each identity sent against what is stored; ``refused``: the messages dead-lettered by design (their
    readings, if not stored, count as such and not as lost). A message logged twice (sent again) is one message."""
    by_design_keys = set(refused)
    messages: dict[MessageKey, Sent] = {m.key: m for m in sent}
    identities: dict[Reading, MessageKey] = {}
    for m in messages.values():
        for r in m.readings:
            identities.setdefault(r, m.key)
    once = lost = twice = by_design = 0
    lost_examples: list[Reading] = []
    for reading, key in identities.items():
        copies = stored.get(reading, 0)
        if copies:
            once += 1
            twice += copies - 1
        elif key in by_design_keys:
            by_design += 1
        else:
            lost += 1
            if len(lost_examples) < examples:
                lost_examples.append(reading)
    strays = [(r, n) for r, n in stored.items() if r not in identities]
    twice += sum(n for _, n in strays)
    doubled = [r for r, n in stored.items() if n > 1 and r in identities] + [r for r, _ in strays]
    return Tally(
        messages=len(messages),
        readings=len(identities),
        stored_once=once,
        lost=lost,
        stored_twice=twice,
        by_design=by_design,
        lost_examples=tuple(sorted(lost_examples)),
        twice_examples=tuple(sorted(doubled)[:examples]),
    )


@dataclass
class Case:
    """One row of the matrix: a case's name, its tally, how long the pipeline took to recover (None: it did not,
    within the run; NaN: no service fault to recover from) and what happened along the way."""

    name: str
    tally: Tally
    recover_s: float | None = math.nan
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        recover = self.recover_s
        return {
            "case": self.name,
            **self.tally.as_dict(),
            "recover_s": None if recover is None or math.isnan(recover) else round(recover, 1),
            "recovered": recover is not None,
            "notes": self.notes,
        }

    @property
    def clean(self) -> bool:
        """The goal: nothing lost, nothing stored twice."""
        return self.tally.lost == 0 and self.tally.stored_twice == 0


# -- devices that behave apart from the load: each a list of plans, one generator process each -------------------

INTERVAL_S = 300
"""A field node's reading interval (five minutes): what a device buffers while it is offline."""
DRAIN_RATE = 50.0
"""Messages per second a device back from an outage publishes its buffer at."""
RESET_CLOCK_TS = datetime.fromisoformat("2000-01-01T00:00:00+00:00").timestamp()
"""Where a real-time clock without its battery starts counting."""

Plans = list[tuple[Plan, list[str]]]


def back_from_outage(device: str, t0: float, rate: float, seconds: float, at_s: float, hours: float = 6) -> Plans:
    """A device offline ``hours`` of simulated time comes back ``at_s`` into the run: it publishes its buffer
    (a reading every ``INTERVAL_S``, stamped over the hours it was away, oldest first), then live at ``rate``
    until the run ends; its sequence numbers run on throughout."""
    back = t0 + at_s
    buffered = round(hours * 3600 / INTERVAL_S)
    backlog = Plan(
        t0=back,
        rate=DRAIN_RATE,
        count=buffered,
        ts0=back - buffered * INTERVAL_S,
        speed=INTERVAL_S * DRAIN_RATE,
    )
    live_t0 = back + buffered / DRAIN_RATE + 0.5
    live = Plan(t0=live_t0, rate=rate, count=_until(t0 + seconds, live_t0, rate), ts0=live_t0, seq_base=buffered)
    return [(backlog, [device]), (live, [device])]


def reset_clock(device: str, t0: float, rate: float, seconds: float, at_s: float, stale: int = 10) -> Plans:
    """A device's battery is swapped ``at_s`` into the run: its count and its clock start over (seq 0,
    2000-01-01) for ``stale`` messages, then its clock is set again (NTP) and it goes on counting from there.
    The ``stale`` messages are refused (``stale_timestamp``) by design; every other one must be stored."""
    before = Plan(t0=t0, rate=rate, count=max(1, round(at_s * rate)), ts0=t0)
    swapped = t0 + before.count / rate
    reset = Plan(t0=swapped, rate=rate, count=stale, ts0=RESET_CLOCK_TS)
    synced = swapped + stale / rate
    after = Plan(t0=synced, rate=rate, count=_until(t0 + seconds, synced, rate), ts0=synced, seq_base=stale)
    return [(before, [device]), (reset, [device]), (after, [device])]


def flooding(device: str, t0: float, rate: float, seconds: float, factor: float = 100) -> Plans:
    """A device publishing ``factor`` times its rate for the whole run."""
    return [(Plan(t0=t0, rate=rate * factor, count=round(seconds * rate * factor), ts0=t0), [device])]


def _until(end: float, start: float, rate: float) -> int:
    return max(1, round((end - start) * rate))


HEADER = (
    "case",
    "messages sent",
    "readings sent",
    "stored once",
    "lost",
    "stored twice",
    "dead-lettered (by design)",
    "seconds to recover",
)


def recovery(value: float | None) -> str:
    """Seconds to recover as the table shows them."""
    if value is None:
        return "not recovered"
    return "-" if math.isnan(value) else f"{value:.1f}"


def table(cases: Iterable[Case]) -> str:
    """The matrix as a Markdown table (what architecture.md shows)."""
    rows = [HEADER, tuple("---" for _ in HEADER)]
    for c in cases:
        t = c.tally
        rows.append(
            (
                c.name,
                f"{t.messages:,}",
                f"{t.readings:,}",
                f"{t.stored_once:,}",
                f"{t.lost:,}",
                f"{t.stored_twice:,}",
                f"{t.by_design:,}",
                recovery(c.recover_s),
            )
        )
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)
