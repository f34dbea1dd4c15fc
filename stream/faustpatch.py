"""Every place the worker reaches into faust-streaming's (and aiokafka's) internals, in one module.

Tested with faust-streaming 0.15.3 and aiokafka 0.14.0; ``pyproject.toml`` pins faust-streaming to 0.15.x. Before
moving the pin, run ``tests/integration/stream/test_faustpatch.py`` (it fails if faust stops calling a hook) and
``scripts/failover-loop.sh``. Each override, and why:

1. ``Consumer.seek_to_committed`` (called by faust's ``Consumer.perform_seek`` after every rebalance): faust drops
   the records it fetched while a rebalance suspends the flow and counts on seeking back to the committed offset
   afterwards; aiokafka's ``seek_to_committed`` skips a partition with no committed offset, so its position stayed
   past the dropped records and they were never processed (a worker that got its partitions back while the first
   messages arrived skipped about a hundred per partition). The override seeks such a partition to its log start
   offset (what ``auto_offset_reset=earliest`` means), and a partition whose committed offset retention deleted to
   its log start too (logged as an error: those records are gone), and starts the worker's own account
   (``stream.offsets``) of every partition at that known offset.
2. ``Consumer._filter_committable_offsets`` (called by faust's ``Consumer._commit_tps`` on every commit): faust
   counts the records a rebalance made it skip as committable; the override caps each commit at what the agents
   stored (``stream.offsets.Progress.cap``).
3. Not an override but an internal read: ``Producer._ensure_producer().partitions_for`` (``changelog_partitions``),
   so that a table's changelog topic is in the producer's metadata before the first entry is set.

Every seek goes through faust's ``seek_wait``, which runs in the consumer's own thread: faust's ``seek`` changes
aiokafka's fetcher from the event loop while that thread reads from it, and a worker crashed on the ``KeyError`` in
``fetched_records`` that this race raises.

The hooks report each call (``on_call``, the worker's ``smartfarm_worker_offset_hooks`` counter), so a faust
release that stops calling one is seen by a test and on a dashboard instead of silently losing records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Mapping
from typing import Any

from faust.types import TP

from stream.offsets import Progress, start_offsets

log = logging.getLogger(__name__)

TESTED_WITH = "faust-streaming 0.15.3, aiokafka 0.14.0"

SEEK_HOOK = "seek_to_committed"
COMMIT_HOOK = "filter_committable_offsets"


def own_the_offsets(consumer: Any, progress: Progress, topics: Container[str], on_call: Callable[[str], None]) -> None:
    """Install overrides 1 and 2 on faust's ``consumer`` for the partitions of ``topics`` (the agents' inputs)."""
    seek_to_committed = consumer.seek_to_committed
    committable = consumer._filter_committable_offsets

    async def seek_to_committed_or_log_start() -> Mapping[TP, int]:
        on_call(SEEK_HOOK)
        committed = await seek_to_committed()
        ours = {tp: offset for tp, offset in committed.items() if tp.topic in topics}
        starts = start_offsets(ours, await consumer.earliest_offsets(*ours)) if ours else {}
        for tp, offset in ours.items():
            if offset and offset > 0 and starts[tp] > offset:
                log.error(
                    "%s: records %d-%d were deleted by retention before they were processed", tp, offset, starts[tp] - 1
                )
        # aiokafka sought only the partitions with a committed offset above 0
        moved = {tp: start for tp, start in starts.items() if not (ours[tp] and ours[tp] > 0 and start == ours[tp])}
        if moved:
            await consumer.seek_wait(moved)
        progress.reset(starts)
        return committed

    def capped(tps: Any) -> dict[TP, int]:
        on_call(COMMIT_HOOK)
        return progress.cap(committable(tps), topics)  # type: ignore[return-value]

    consumer.seek_to_committed = seek_to_committed_or_log_start
    consumer._filter_committable_offsets = capped


async def changelog_partitions(producer: Any, topic: str) -> None:
    """Wait until faust's ``producer`` has ``topic`` in its metadata (override 3's internal read)."""
    await producer._ensure_producer().partitions_for(topic)
