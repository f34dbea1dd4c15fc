"""The worker's own offsets: runs per partition, gaps sought back, commits capped at what was stored."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from stream.offsets import Progress, start_offsets


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
