"""The worker's own account of what it processed, per partition, so that no offset is ever committed past a record
its agents did not handle.

Why: faust-streaming's consumer hands each record to the stream inside ``wait_first(callback, suspend_flow)``, and
when a rebalance suspends the flow the callback can be abandoned while the record's offset is still marked as
read; the next record then looks like an offset gap, and faust counts gaps as committable. A worker killed after
such a commit had committed past records it never stored: the next owner of the partition started after them
(seen in 2 of 9 failover runs: 13-14 messages of each device on the killed worker's partitions). So the worker
keeps, per partition, the offset its agents must see next: it starts at the committed offset after every
rebalance, moves on only when a batch is stored, and caps every commit. A record past that offset is not
processed (it would be out of order): the partition is sought back to the offset expected, and faust delivers the
skipped records again.

Every partition starts at a known offset, never at "whatever comes first": a partition this group never committed
starts at its log start offset (``stream.faustpatch`` seeks it there). Were the first record seen taken as the
start, a record fetched before that seek (a leftover at offset n) would start the run, the records 0..n-1 sought
would then look already processed and be dropped, and the cap would commit past them.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class _Message(Protocol):
    @property
    def tp(self) -> object: ...

    @property
    def offset(self) -> int: ...


class _Event(Protocol):
    @property
    def message(self) -> _Message: ...


E = TypeVar("E", bound=_Event)


@dataclass(slots=True)
class Taken(Generic[E]):
    """A batch split: the records that continue their partitions' runs, and where a partition skipped records."""

    fresh: list[E] = field(default_factory=list)
    gaps: dict[object, int] = field(default_factory=dict)
    """Partition -> the offset it must be sought back to."""
    stale: int = 0
    """Records already processed (before an earlier seek back took effect)."""


def start_offsets(committed: Mapping[object, int | None], log_starts: Mapping[object, int]) -> dict[object, int]:
    """Where each partition starts after a rebalance: at its committed offset, or at its log start offset when it
    was never committed (None, or aiokafka's -1) or when retention deleted records past its committed offset
    (those are gone; starting below the log start would seek back to them forever)."""
    return {
        tp: max(offset if offset is not None and offset >= 0 else 0, log_starts[tp]) for tp, offset in committed.items()
    }


@dataclass(slots=True)
class Progress:
    """Per partition of the topics the agents read: the next offset they must see."""

    expected: dict[object, int] = field(default_factory=dict)

    def reset(self, starts: Mapping[object, int | None]) -> None:
        """After a rebalance's seek: each partition starts again at ``starts`` (its committed offset, or its log
        start offset if it was never committed). A partition without a known start is a bug in the caller: its
        first record would be taken as the start, whatever came before it."""
        unknown = sorted(str(tp) for tp, offset in starts.items() if offset is None or offset < 0)
        if unknown:
            raise ValueError(f"partitions without a start offset: {', '.join(unknown)}")
        self.expected = {tp: offset for tp, offset in starts.items() if offset is not None}

    def take(self, events: Sequence[E]) -> Taken[E]:
        """Split ``events`` (in the order they came) without moving on; ``done`` moves on after they are stored."""
        taken: Taken[E] = Taken()
        want: dict[object, int] = {}
        for event in events:
            tp, offset = event.message.tp, event.message.offset
            if tp in taken.gaps:
                continue
            expected = want[tp] if tp in want else self.expected.get(tp)
            if expected is None or offset == expected:  # None: not held at the last rebalance (not ours to check)
                taken.fresh.append(event)
                want[tp] = offset + 1
            elif offset < expected:
                taken.stale += 1
            else:
                taken.gaps[tp] = expected
        return taken

    def done(self, events: Iterable[_Event]) -> None:
        """The records were stored: their partitions move on past them."""
        for event in events:
            tp, offset = event.message.tp, event.message.offset
            current = self.expected.get(tp)
            self.expected[tp] = offset + 1 if current is None else max(current, offset + 1)

    def cap(self, offsets: Mapping[object, int], tracked: Container[str]) -> dict[object, int]:
        """``offsets`` (faust's committable offsets) limited to what was processed, for partitions of the
        ``tracked`` topics; a tracked partition with nothing processed yet is not committed."""
        out: dict[object, int] = {}
        for tp, offset in offsets.items():
            if getattr(tp, "topic", None) not in tracked:
                out[tp] = offset
                continue
            expected = self.expected.get(tp)
            if expected is not None:
                out[tp] = min(offset, expected)
        return out


STALL_AFTER_S = 30.0
"""A partition whose agent has not moved on for this long while records wait is stalled (status line, alert)."""


@dataclass(slots=True, frozen=True)
class Watch:
    """One look at a partition an agent reads."""

    lag: int
    """Records past the offset the agent must see next (from offset 0 while it knows none)."""
    stalled_s: float
    """Seconds since the agent last moved on or last had nothing waiting; 0 while it keeps up."""

    @property
    def stalled(self) -> bool:
        return self.stalled_s >= STALL_AFTER_S


@dataclass(slots=True)
class Stalls:
    """Per partition: the expected offset (``Progress.expected``) last looked at, and since when it has not moved
    while records waited. Pure: the caller passes the highwater and the time."""

    since: dict[object, tuple[int | None, float]] = field(default_factory=dict)

    def look(self, tp: object, expected: int | None, highwater: int, now: float) -> Watch:
        """The partition's lag and how long it has stood still with records waiting; its clock starts again when
        the expected offset moves or nothing waits. A partition first seen starts its clock now."""
        lag = max(0, highwater - (expected or 0))
        last = self.since.get(tp)
        if last is None or last[0] != expected or lag == 0:
            self.since[tp] = (expected, now)
            return Watch(lag, 0.0)
        return Watch(lag, max(0.0, now - last[1]))

    def keep(self, tps: Iterable[object]) -> None:
        """Forget the partitions not in ``tps`` (revoked): one given back later starts its clock again."""
        held = set(tps)
        self.since = {tp: v for tp, v in self.since.items() if tp in held}
