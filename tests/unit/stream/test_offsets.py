"""The worker's own offsets: runs per partition, gaps sought back, commits capped at what was stored."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from stream.offsets import Progress


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
        ({A: None}, [(A, 5), (A, 6)], [(A, 5), (A, 6)], {}, 0),  # never committed: the first record starts the run
        ({A: 10, B: 3}, [(B, 3), (A, 11), (B, 4)], [(B, 3), (B, 4)], {A: 10}, 0),
    ],
)
def test_take_splits_a_batch_into_runs_gaps_and_stale_records(
    committed: dict[TP, int | None],
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
    progress.reset({A: 10, B: None})  # type: ignore[dict-item]
    taken = progress.take(events((A, 10), (A, 11), (B, 0)))
    tracked = {"raw"}
    assert progress.cap({A: 40, B: 7, OTHER: 99}, tracked) == {A: 10, OTHER: 99}, "nothing stored yet"
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
