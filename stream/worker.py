"""The stream worker: a Faust app whose agents clean device messages, store them in InfluxDB and keep what they
must remember in changelog-backed tables. Agents are thin: each hands a batch to pure code (``stream.batch``).

At least once, end to end:
- ``clean-and-store`` takes up to ``batch_max`` records of ``telemetry.raw`` (or what came within
  ``batch_within_s``), cleans them, writes their readings to InfluxDB and waits for it to accept them (retrying with
  backoff, never skipping), then sends the clean records and dead letters and waits for Kafka to confirm them, and
  only then saves the devices' memories (``device-memory`` table) and lets Faust ack the batch. Faust commits acked
  offsets after flushing its producer, so no offset is committed past a reading that is not stored.
- A worker asked to stop while InfluxDB refuses leaves that batch unacknowledged (its messages are pinned), so
  nothing past it is committed; the next owner of the partition cleans it again. Writing again is harmless:
  InfluxDB overwrites a point of the same series and time.
- ``store-status`` writes ``device.status`` into InfluxDB the same way.

Agent concurrency is 1: above 1, faust-streaming can commit an offset past a message still being processed
(faust-streaming #606). The memory table's changelog is compacted (not ``compact,delete``, which stalls recovery,
#176) and partitioned like ``telemetry.raw`` (murmur2 of the device id), so a partition's memories move with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, cast

import faust
from faust.types import TP, EventT

from smartfarm.errors import ContractError, StorageError
from smartfarm.layout import Layout
from smartfarm.records import DeviceStatus
from smartfarm.settings import InfluxSettings, KafkaSettings
from smartfarm.telemetry import ConnectionState
from smartfarm.topics import KafkaTopic, topic_specs, zone_key
from storage.influx import InfluxClient
from storage.lines import ReadingLines
from storage.schema import DeviceStatusPoint
from stream.batch import Batch, clean_batch
from stream.clean import Cleaner, CleanRules, RawMessage
from stream.metrics import WorkerMetrics
from stream.settings import WorkerSettings

log = logging.getLogger(__name__)

RETRY_MAX_S = 10.0
"""Longest wait between two attempts at a write InfluxDB refused."""


class Writer:
    """Writes lines to InfluxDB off the event loop, in chunks, retrying until accepted or the worker stops."""

    def __init__(self, influx: InfluxSettings, chunk: int, metrics: WorkerMetrics) -> None:
        self.chunk = chunk
        self.metrics = metrics
        self._client = InfluxClient(influx)  # a connection pool, shared by the writing threads; connects on use
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="influx-write")

    def _write(self, lines: list[str]) -> None:
        began = time.perf_counter()
        self._client.write_lines(lines, compress=True)
        self.metrics.write_seconds.observe(time.perf_counter() - began)
        self.metrics.write_lines.observe(len(lines))

    async def write(self, lines: list[str], stopping: Any) -> bool:
        """Write every line; False if the worker began stopping before InfluxDB accepted them all."""
        loop = asyncio.get_running_loop()
        chunks = [lines[i : i + self.chunk] for i in range(0, len(lines), self.chunk)]
        delay = 0.25
        while chunks:
            results = await asyncio.gather(
                *(loop.run_in_executor(self._pool, partial(self._write, c)) for c in chunks), return_exceptions=True
            )
            failed = [c for c, r in zip(chunks, results, strict=True) if isinstance(r, BaseException)]
            for error in {str(r) for r in results if isinstance(r, BaseException)}:
                log.warning("InfluxDB refused a write (%s); retrying in %.1f s", error, delay)
            if not failed:
                return True
            unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, StorageError)]
            if unexpected:
                log.error("unexpected error writing to InfluxDB", exc_info=unexpected[0])
            self.metrics.write_failures.inc(len(failed))
            chunks = failed
            if stopping():
                return False
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()


def raw_message(event: EventT) -> RawMessage:
    message = event.message
    headers = message.headers
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
    return RawMessage(message.value or b"", pairs, message.topic, message.partition, message.offset)


def pin(events: Sequence[EventT]) -> None:
    """Keep ``events`` from ever being acknowledged by this worker, so no offset past them is committed."""
    for event in events:
        event.message.incref()


class StreamWorker:
    """One worker: the Faust app, its topics, its table and its agents, storing through ``writer``."""

    def __init__(
        self, kafka: KafkaSettings, settings: WorkerSettings, layout: Layout, writer: Writer, metrics: WorkerMetrics
    ) -> None:
        self.kafka = kafka
        self.settings = settings
        self.writer = writer
        self.metrics = metrics
        self.app = self._app()
        specs = topic_specs(kafka.topic_prefix, kafka.partitions)
        self.topics = {
            which: self.app.topic(spec.name, partitions=spec.partitions, key_type=bytes, value_type=bytes)
            for which, spec in specs.items()
        }
        self.memories = self.app.Table(
            "device-memory",
            default=None,
            key_type=bytes,
            value_type=bytes,
            partitions=kafka.partitions,
            use_partitioner=True,  # murmur2 of the device id: the partition of the device's telemetry.raw records
        )
        self.cleaner = Cleaner(
            layout, CleanRules(max_future_s=settings.max_future_s, late_after_s=settings.late_after_s)
        )
        self.lines = ReadingLines()
        self._position: dict[TP, int] = {}
        app = self.app
        app.agent(self.topics[KafkaTopic.TELEMETRY_RAW], name="clean-and-store", concurrency=1)(self.clean_and_store)
        app.agent(self.topics[KafkaTopic.DEVICE_STATUS], name="store-status", concurrency=1)(self.store_status)
        app.timer(5.0)(self.report_lag)
        app.on_rebalance_complete.connect(self._rebalanced)
        self._start_fresh_partitions_at_the_beginning()

    def _start_fresh_partitions_at_the_beginning(self) -> None:
        """Make a partition that this group never committed start at its first record after every rebalance.

        faust-streaming drops the records it fetched while a rebalance suspends the flow and counts on seeking back
        to the committed offset afterwards (``Consumer.perform_seek``); aiokafka's ``seek_to_committed`` skips a
        partition with no committed offset, so its position stays past the dropped records and they are never
        processed. Seen here: a worker that got its partitions back while the first messages arrived skipped about
        a hundred per partition. Seeking such partitions to the beginning is what ``auto_offset_reset=earliest``
        means. A related loss on failover is still open (architecture.md, Delivery guarantees)."""
        consumer: Any = self.app.consumer
        topics = {self.topics[t].get_topic_name() for t in (KafkaTopic.TELEMETRY_RAW, KafkaTopic.DEVICE_STATUS)}
        seek_to_committed = consumer.seek_to_committed

        async def seek_to_committed_or_beginning() -> Mapping[TP, int]:
            committed = await seek_to_committed()
            for tp, offset in committed.items():
                if not offset and tp.topic in topics:
                    await consumer.seek(tp, 0)  # past the log start, aiokafka resets to it (earliest)
            return committed

        consumer.seek_to_committed = seek_to_committed_or_beginning

    def _app(self) -> faust.App:
        settings = self.settings
        return faust.App(
            f"{self.kafka.topic_prefix}.worker",
            broker=[f"kafka://{server}" for server in self.kafka.servers],
            broker_client_id=settings.worker_id,
            consumer_group_instance_id=settings.worker_id,
            store="memory://",
            datadir=str(settings.data_dir),
            topic_partitions=self.kafka.partitions,
            topic_replication_factor=self.kafka.replication_factor,
            key_serializer="raw",
            value_serializer="raw",
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=settings.session_timeout_s,
            broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 4),
            broker_commit_interval=1.0,
            web_enabled=False,
            producer_acks=-1,
            producer_linger_ms=20,
        )

    def _stopping(self) -> bool:
        return bool(self.app.should_stop)

    async def clean_and_store(self, stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream[bytes], stream).take_events(self.settings.batch_max, self.settings.batch_within_s)
        async for events in batches:
            try:
                stored = await self._clean_and_store(events)
            except Exception as exc:
                # A bug, not bad data (cleaning dead-letters that): Faust would ack the batch as it restarts the
                # agent, so pin it and crash the worker; its partitions go to another, or to this one restarted.
                pin(events)
                await self.app.crash(exc)
                raise
            if not stored:
                log.warning("stopping with %d messages not stored; the next owner cleans them again", len(events))
                pin(events)

    async def _clean_and_store(self, events: Sequence[EventT]) -> bool:
        """Clean, write, publish, remember; False if the worker stopped before InfluxDB took the readings."""
        records = ((e.message.key or b"", raw_message(e)) for e in events)
        batch = clean_batch(records, self.cleaner, self.lines, self.memories.get)
        if not await self.writer.write(batch.lines, self._stopping):
            return False
        await self._publish(batch)
        for key, value in batch.memory_values():
            self.memories[key] = value
        self._account(batch, events)
        return True

    async def _publish(self, batch: Batch) -> None:
        """Send the clean records and dead letters, and wait until Kafka has every one."""
        clean, dead = self.topics[KafkaTopic.READINGS_CLEAN], self.topics[KafkaTopic.DEADLETTER]
        futures = [await clean.send(key=zone_key(m.farm, m.zone), value=m.encode()) for m in batch.cleaned]
        futures += [await dead.send(key=r.key, value=r.letter.encode()) for r in batch.refused]
        await asyncio.gather(*futures)
        self.metrics.records_out.labels("clean-and-store", clean.get_topic_name()).inc(len(batch.cleaned))
        self.metrics.records_out.labels("clean-and-store", dead.get_topic_name()).inc(len(batch.refused))

    def _account(self, batch: Batch, events: Sequence[EventT]) -> None:
        metrics, now = self.metrics, time.time()
        metrics.records_in.labels("clean-and-store").inc(len(events))
        for event in events:
            self._position[event.message.tp] = event.message.offset + 1
        metrics.duplicates.inc(batch.duplicates)
        metrics.readings_stored.inc(len(batch.lines))
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

    async def store_status(self, stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream[bytes], stream).take_events(self.settings.batch_max, self.settings.batch_within_s)
        async for events in batches:
            lines = [line for line in map(status_line, events) if line]
            if not await self.writer.write(lines, self._stopping):
                pin(events)
                continue
            self.metrics.records_in.labels("store-status").inc(len(events))

    async def report_lag(self) -> None:
        """Records not yet processed per partition. An exception in a Faust timer crashes the app, so a partition
        whose highwater is not known yet (just assigned) is skipped."""
        consumer = self.app.consumer
        for tp in consumer.assignment():
            position, highwater = self._position.get(tp), consumer.highwater(tp)
            if position is not None and highwater is not None:
                self.metrics.lag.labels(f"{tp.topic}:{tp.partition}").set(max(0, highwater - position))

    async def _rebalanced(self, *_args: Any, **_kw: Any) -> None:
        raw = self.topics[KafkaTopic.TELEMETRY_RAW].get_topic_name()
        held = sorted(tp.partition for tp in self.app.consumer.assignment() if tp.topic == raw)
        if held:
            log.info("worker %s holds partitions %s of %s", self.settings.worker_id, held, raw)
        else:
            log.warning(
                "worker %s holds no partition of %s: there are more workers than its %d partitions, so this one "
                "idles until another stops",
                self.settings.worker_id,
                raw,
                self.kafka.partitions,
            )


def status_line(event: EventT) -> str:
    """The ``device_status`` line of a ``device.status`` record; "" (logged) for one that cannot be read."""
    try:
        status = DeviceStatus.decode(event.message.value or b"")
    except ContractError as exc:  # the bridge wrote it: a bug, not bad input, but no reason to stop the stream
        log.error("device.status record at offset %s is unreadable: %s", event.message.offset, exc)
        return ""
    online = status.state is ConnectionState.ONLINE
    point = DeviceStatusPoint(
        time=status.received_at, farm=status.farm, device=status.device, online=online, will=status.will
    )
    return point.to_line()
