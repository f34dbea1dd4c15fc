"""The worker's timers: lag, stalls, and reading a stalled partition again."""

from __future__ import annotations

import logging
import time

from faust.types import TP

from stream.worker.base import WorkerCore

log = logging.getLogger(__name__)


class Watch(WorkerCore):
    """The worker's timers: lag and stalls reported per partition, a stalled partition read again."""

    async def resume_stalled(self) -> None:
        """Seek back a partition whose expected offset has not moved for a whole check while records wait past it.

        After a seek back, records the consumer had already fetched can still arrive first and move faust's read
        offset past the ones sought, which it then drops; with nothing new arriving, the agent would never see the
        gap again. So the check repeats the seek until the partition moves on. A partition whose agent is in the
        middle of a batch is only waiting (for InfluxDB, say): it is not sought, though its stall still shows."""
        consumer, now = self.app.consumer, time.monotonic()
        for tp, want, highwater in self._held():
            if not self._unmoved.look(tp, want, highwater, now).stalled_s or want is None:
                continue
            if tp.topic not in self._busy:
                log.warning(
                    "%s: stalled at offset %d with records up to %d; reading from there again", tp, want, highwater
                )
                self.metrics.rewinds.inc()
                await consumer.seek_wait({tp: want})

    async def report_lag(self) -> None:
        """Per partition an agent reads: records not yet processed (past ``Progress.expected``, what the agent
        stored) and seconds it has stood still while records waited (``smartfarm_worker_stalled_seconds``)."""
        now, looks = time.monotonic(), []
        for tp, want, highwater in self._held():
            watch = self._stalls.look(tp, want, highwater, now)
            if watch.stalled:
                log.warning("%s: has not moved on from offset %s for %.0f s", tp, want, watch.stalled_s)
            looks.append((self._agents[tp.topic], f"{tp.topic}:{tp.partition}", watch.lag, watch.stalled_s))
        self.metrics.watched(looks)

    def _held(self) -> list[tuple[TP, int | None, int]]:
        """The partitions of the agents' topics this worker holds, with the offset each agent expects next and the
        partition's highwater; one whose highwater is not known yet (just assigned) is left out (an exception in a
        Faust timer would crash the app). Partitions no longer held are forgotten by both stall clocks."""
        consumer, expected = self.app.consumer, self.progress.expected
        held = [tp for tp in consumer.assignment() if tp.topic in self._agents]
        self._stalls.keep(held)
        self._unmoved.keep(held)
        out = []
        for tp in held:
            highwater = consumer.highwater(tp)
            if highwater is not None:
                out.append((tp, expected.get(tp), highwater))
        return out
