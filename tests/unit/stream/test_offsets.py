"""The worker's own offsets: runs per partition, gaps sought back, commits capped at what was stored."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from stream.offsets import STALL_AFTER_S, Progress, Stalls, start_offsets


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass(frozen=True)
class Message:
    tp: TP
    offset: int


@dataclass(frozen=True)
class Event:
    message: Message


A, B, OTHER = TP("raw", 0), TP("raw", 1), TP("changelog", 0)


def events(*pairs: tuple[TP, int]) -> list[Event]:
    return [Event(Message(tp, offset)) for tp, offset in pairs]


def offsets(taken: list[Event]) -> list[tuple[TP, int]]:
    return [(e.message.tp, e.message.offset) for e in taken]


@pytest.mark.parametrize(
    ("committed", "batch", "fresh", "gaps", "stale"),
    [
        ({A: 10}, [(A, 10), (A, 11), (A, 12)], [(A, 10), (A, 11), (A, 12)], {}, 0),
        ({A: 10}, [(A, 10), (A, 24), (A, 25)], [(A, 10)], {A: 11}, 0),  # faust skipped 11-23
        ({A: 10}, [(A, 8), (A, 9), (A, 10)], [(A, 10)], {}, 2),  # left over from before a seek back
        ({A: 0}, [(A, 0), (A, 1)], [(A, 0), (A, 1)], {}, 0),  # never committed: starts at the log start
        ({A: 0}, [(A, 150), (A, 151), (A, 0)], [], {A: 0}, 0),  # a record fetched before the seek to the log start
        ({A: 10, B: 3}, [(B, 3), (A, 11), (B, 4)], [(B, 3), (B, 4)], {A: 10}, 0),
    ],
)
def test_take_splits_a_batch_into_runs_gaps_and_stale_records(
    committed: dict[TP, int],
    batch: list[tuple[TP, int]],
    fresh: list[tuple[TP, int]],
    gaps: dict[TP, int],
    stale: int,
) -> None:
    progress = Progress()
    progress.reset(committed)  # type: ignore[arg-type]
    taken = progress.take(events(*batch))
    assert offsets(taken.fresh) == fresh
    assert taken.gaps == gaps
    assert taken.stale == stale


def test_only_stored_records_move_a_partition_on_and_commits_never_pass_them() -> None:
    progress = Progress()
    progress.reset({A: 10, B: 0})  # type: ignore[dict-item]
    taken = progress.take(events((A, 10), (A, 11), (B, 0)))
    tracked = {"raw"}
    assert progress.cap({A: 40, B: 7, OTHER: 99}, tracked) == {A: 10, B: 0, OTHER: 99}, "nothing stored yet"
    progress.done(taken.fresh)
    assert progress.cap({A: 40, B: 7, OTHER: 99}, tracked) == {A: 12, B: 1, OTHER: 99}
    assert progress.cap({A: 11}, tracked) == {A: 11}, "faust's own offset when it is lower"
    again = progress.take(events((A, 12)))
    assert offsets(again.fresh) == [(A, 12)]


def test_a_rebalance_starts_each_partition_again_at_its_committed_offset() -> None:
    progress = Progress()
    progress.reset({A: 0})  # type: ignore[dict-item]
    progress.done(progress.take(events((A, 0), (A, 1), (A, 2))).fresh)
    progress.reset({A: 1, B: 7})  # type: ignore[dict-item]
    assert offsets(progress.take(events((A, 1), (B, 7))).fresh) == [(A, 1), (B, 7)]
    progress.reset({B: 7})  # type: ignore[dict-item]
    assert progress.cap({A: 3}, {"raw"}) == {}, "a partition no longer held is not committed"


def test_a_never_committed_partition_is_not_started_by_a_leftover_record_nor_committed_past_its_log_start() -> None:
    """Sought to its log start (0) after a rebalance, a partition gets records 150-151 fetched before the seek and
    then 0-1: the leftovers are a gap sought back to 0, not the start of a run that would make 0-149 look already
    processed; no commit passes 0 until 0 is stored."""
    progress = Progress()
    progress.reset({A: 0})  # type: ignore[dict-item]
    leftover = progress.take(events((A, 150), (A, 151)))
    assert (leftover.fresh, leftover.gaps) == ([], {A: 0})
    progress.done(leftover.fresh)
    assert progress.cap({A: 152}, {"raw"}) == {A: 0}, "nothing past the log start committed"
    sought = progress.take(events((A, 0), (A, 1)))
    assert offsets(sought.fresh) == [(A, 0), (A, 1)]
    progress.done(sought.fresh)
    assert progress.cap({A: 152}, {"raw"}) == {A: 2}


@pytest.mark.parametrize("start", [None, -1])
def test_a_partition_without_a_known_start_is_refused(start: int | None) -> None:
    with pytest.raises(ValueError, match="without a start offset"):
        Progress().reset({A: start})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("committed", "log_start", "start"),
    [
        (10, 0, 10),  # committed: there
        (None, 0, 0),  # never committed: the log start
        (-1, 4, 4),  # aiokafka's "no offset"
        (0, 3, 3),  # committed 0, the first records deleted since
        (10, 25, 25),  # retention deleted 10-24 before they were processed: they are gone, start past them
    ],
)
def test_each_partition_starts_at_its_committed_offset_or_its_log_start(
    committed: int | None, log_start: int, start: int
) -> None:
    assert start_offsets({A: committed}, {A: log_start}) == {A: start}


def look_at(stalls: Stalls, steps: list[tuple[float, int | None, int]]) -> list[tuple[int, float]]:
    """(lag, stalled seconds) of partition A after each (time, expected offset, highwater)."""
    out = []
    for now, expected, highwater in steps:
        watch = stalls.look(A, expected, highwater, now)
        out.append((watch.lag, watch.stalled_s))
    return out


@pytest.mark.parametrize(
    ("steps", "seen"),
    [
        # first look: the clock starts, nothing is stalled yet
        ([(100.0, 5, 50)], [(45, 0.0)]),
        # standing at 5 with 45 records waiting for 31 s: stalled
        ([(100.0, 5, 50), (120.0, 5, 50), (131.0, 5, 60)], [(45, 0.0), (45, 20.0), (55, 31.0)]),
        # moving on restarts the clock, however far behind it still is
        ([(100.0, 5, 50), (131.0, 6, 50), (140.0, 6, 50)], [(45, 0.0), (44, 0.0), (44, 9.0)]),
        # nothing waiting is keeping up, however long the offset stands
        ([(100.0, 50, 50), (200.0, 50, 50), (210.0, 50, 51)], [(0, 0.0), (0, 0.0), (1, 10.0)]),
        # no offset known yet (never committed, nothing stored): counted from 0, and it stalls too
        ([(100.0, None, 7), (140.0, None, 7)], [(7, 0.0), (7, 40.0)]),
        # an expected offset past a highwater not refreshed yet is no lag
        ([(100.0, 9, 8)], [(0, 0.0)]),
    ],
)
def test_a_partition_stalls_when_it_stands_still_while_records_wait(
    steps: list[tuple[float, int | None, int]], seen: list[tuple[int, float]]
) -> None:
    assert look_at(Stalls(), steps) == seen


def test_stalled_means_thirty_seconds_and_a_partition_given_back_starts_again() -> None:
    stalls = Stalls()
    stalls.look(A, 5, 50, 100.0)
    assert not stalls.look(A, 5, 50, 100.0 + STALL_AFTER_S - 0.1).stalled
    assert stalls.look(A, 5, 50, 100.0 + STALL_AFTER_S).stalled
    stalls.look(B, 1, 2, 100.0)
    stalls.keep([B])
    assert stalls.look(A, 5, 50, 200.0).stalled_s == 0.0, "revoked, then assigned again: a new clock"
    assert stalls.look(B, 1, 2, 200.0).stalled_s == 100.0
