"""The ``clean-and-store`` agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import faust
from faust.types import EventT

from smartfarm.records import RejectStage
from smartfarm.topics import KafkaTopic
from stream.batch import Batch, clean_batch
from stream.worker.base import WorkerCore
from stream.worker.batches import raw_message


class CleanAndStore(WorkerCore):
    """The ``clean-and-store`` agent: clean a batch of ``telemetry.raw``, write its readings, publish the clean
    records and dead letters, remember the devices."""

    async def clean_and_store(self, stream: faust.StreamT[bytes]) -> None:
        await self._each_batch(
            stream,
            self._clean_and_store,
            RejectStage.CLEAN,
            "messages not stored; the next owner cleans them again",
        )

    async def _clean_and_store(self, events: Sequence[EventT]) -> bool:
        """Clean, write, publish, remember; False if the worker stopped before InfluxDB took the readings."""
        records = ((e.message.key or b"", raw_message(e)) for e in events)
        batch = clean_batch(records, self.cleaner, self.lines, self.memories.get)
        lines = batch.lines + batch.clock_lines if batch.clock_lines else batch.lines
        refused = await self.writer.write(lines, self._stopping)
        if refused is None:
            return False
        batch.refuse_stored(refused)
        await self._publish(batch)
        for key, value in batch.memory_values():
            self.memories[key] = value
        self._account(batch, events)
        return True

    async def _publish(self, batch: Batch) -> None:
        """Send the clean records and dead letters, and wait until Kafka has every one."""
        clean, dead = self.topics[KafkaTopic.READINGS_CLEAN], self.topics[KafkaTopic.DEADLETTER]
        records = batch.zone_records()
        futures = [await clean.send(key=key, value=value, headers=headers) for key, value, headers in records]
        futures += [await dead.send(key=r.key, value=r.letter.encode()) for r in batch.refused]
        await asyncio.gather(*futures)
        self.metrics.records_out.labels("clean-and-store", clean.get_topic_name()).inc(len(records))
        self.metrics.records_out.labels("clean-and-store", dead.get_topic_name()).inc(len(batch.refused))

    def _account(self, batch: Batch, events: Sequence[EventT]) -> None:
        metrics, now = self.metrics, time.time()
        metrics.records_in.labels("clean-and-store").inc(len(events))
        metrics.messages_in.inc(len(batch.cleaned) + batch.duplicates + len(batch.refused))
        metrics.duplicates.inc(batch.duplicates)
        metrics.readings_stored.inc(len(batch.lines) - batch.refused_lines)
        metrics.stored_farms((m.farm for m in batch.cleaned), now)
        for flag, count in batch.flags.items():
            metrics.flags.labels(flag.value).inc(count)
        for reason, count in batch.reasons.items():
            metrics.dead_lettered.labels(reason.value).inc(count)
        for message in batch.cleaned:
            metrics.from_device.observe(max(0.0, now - message.ts.timestamp()))
            metrics.from_receipt.observe(max(0.0, now - message.received_at.timestamp()))
            if message.late:
                metrics.late.labels("late").inc()
            if message.out_of_order:
                metrics.late.labels("out_of_order").inc()
