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
- ``zones`` reads ``readings.clean`` (keyed by zone) and moves each zone's event-time clock on (``stream.zones``):
  windows the watermark passed or late readings re-opened are computed from the stored readings, closed days get
  their reference ET and degree days, each closed hour is scored. It sends the aggregates, days and
  recommendations and waits for Kafka, then writes their points to InfluxDB, then saves the zones' clocks
  (``zone-clock`` table) and acks. A crash in between recomputes the same windows: an unchanged one is not emitted
  again, a recommendation gets the same id.

Agent concurrency is 1: above 1, faust-streaming can commit an offset past a message still being processed
(faust-streaming #606). The memory table's changelog is compacted (not ``compact,delete``, which stalls recovery,
#176) and partitioned like ``telemetry.raw`` (murmur2 of the device id), so a partition's memories move with it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections.abc import Awaitable, Callable, Container, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

import faust
from aiokafka.errors import KafkaError
from faust.types import TP, EventT

from ml.scoring import Baselines, Scorer
from smartfarm.errors import ContractError, RejectReason, StorageError
from smartfarm.layout import Layout
from smartfarm.records import (
    EVENT_TIMES_HEADER,
    DeadLetter,
    DeviceStatus,
    RecommendationKind,
    RejectStage,
    read_event_times,
)
from smartfarm.settings import InfluxSettings, KafkaSettings
from smartfarm.telemetry import ConnectionState
from smartfarm.topics import KafkaTopic, topic_specs, zone_of
from storage.influx import InfluxClient, Refusal
from storage.lines import ReadingLines
from storage.schema import DeviceStatusPoint
from stream.batch import Batch, clean_batch
from stream.clean import Cleaner, RawMessage
from stream.faustpatch import changelog_partitions, own_the_offsets
from stream.metrics import WorkerMetrics
from stream.offsets import Progress, Stalls
from stream.settings import WorkerSettings
from stream.windows import ZoneClock
from stream.zones import ZoneOutput, ZoneStage

log = logging.getLogger(__name__)

STALL_CHECK_S = 3.0
"""How often the worker looks for partitions its agents stopped receiving although records wait there."""

AGENTS = {
    KafkaTopic.TELEMETRY_RAW: "clean-and-store",
    KafkaTopic.DEVICE_STATUS: "store-status",
    KafkaTopic.READINGS_CLEAN: "zones",
}
"""Each agent by the topic it reads: the name on its metrics and in the status line."""

RETRY_MAX_S = 10.0
"""Longest wait between two attempts at a write InfluxDB refused."""


class Writer:
    """Writes lines to InfluxDB off the event loop, in chunks: what the database refuses for good is handed back,
    everything else is retried until accepted or the worker stops."""

    def __init__(self, influx: InfluxSettings, chunk: int, metrics: WorkerMetrics) -> None:
        self.chunk = chunk
        self.metrics = metrics
        self.client = InfluxClient(influx)  # a connection pool, shared by the writing threads; connects on use
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="influx-write")

    def _write(self, lines: list[str]) -> list[Refusal]:
        began = time.perf_counter()
        refused = self.client.write_or_refusals(lines, compress=True)
        self.metrics.write_seconds.observe(time.perf_counter() - began)
        self.metrics.write_lines.observe(len(lines))
        return refused

    async def write(self, lines: list[str], stopping: Callable[[], bool]) -> list[Refusal] | None:
        """Write every line; return the ones InfluxDB refused for good (a 4xx naming the data: beyond the retention
        policy, a field type conflict, unparseable), each with the database's answer, found by bisection
        (``storage.influx.find_refused``). None if the worker began stopping before InfluxDB answered for all.

        Retried with backoff, never skipped: unreachable, timeouts and 5xx (transient), and a refusal of the
        worker itself (401, 403, 404: credentials, permissions, a missing database), which is the same for every
        batch and logged as an error naming the fix. Any other exception is a bug and propagates."""
        loop = asyncio.get_running_loop()
        chunks = [(i, lines[i : i + self.chunk]) for i in range(0, len(lines), self.chunk)]
        refused: list[Refusal] = []
        delay = 0.25
        while chunks:
            results = await asyncio.gather(
                *(loop.run_in_executor(self._pool, partial(self._write, c)) for _, c in chunks),
                return_exceptions=True,
            )
            failed, errors = [], set()
            for (start, chunk), result in zip(chunks, results, strict=True):
                if isinstance(result, StorageError):
                    failed.append((start, chunk))
                    errors.add(result)
                elif isinstance(result, BaseException):
                    raise result
                else:
                    refused += [Refusal(start + r.index, r.detail) for r in result]
            if not failed:
                return refused
            for error in {str(e): e for e in errors}.values():
                if error.transient:
                    log.warning("InfluxDB did not take a write (%s); retrying in %.1f s", error, delay)
                else:
                    log.error(
                        "InfluxDB refused the worker itself (%s): check SMARTFARM_INFLUX_URL, _DATABASE, _USERNAME "
                        "and _PASSWORD; retrying in %.1f s",
                        error,
                        delay,
                    )
            self.metrics.write_failures.inc(len(failed))
            chunks = failed
            if stopping():
                return None
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)
        return refused

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()


GC_GENERATION0 = 50_000
"""Allocations between two young-generation collections (Python's default is 700). Cleaning a batch of two
thousand device messages allocates about half a million objects that mostly die young; at the default, the
collector runs hundreds of times per batch and its older generations walk Faust's long-lived objects again and
again. Measured on the clean stage alone: a quarter of its time."""


def tune_gc() -> None:
    """Fewer collections for a streaming process, and what exists at startup (modules, the app, the layout) moved
    out of the collector's sight: it lives as long as the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GENERATION0, 20, 20)


def raw_message(event: EventT) -> RawMessage:
    message = event.message
    pairs = header_pairs(message.headers)
    return RawMessage(message.value or b"", pairs, message.topic, message.partition, message.offset)


def header_pairs(headers: Any) -> list[tuple[str, bytes]]:
    """A record's headers as (name, value) pairs, from faust's headers (a mapping or a list of pairs)."""
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())


def pin(events: Sequence[EventT]) -> None:
    """Keep ``events`` from ever being acknowledged by this worker, so no offset past them is committed."""
    for event in events:
        event.message.incref()


class StreamWorker:
    """One worker: the Faust app, its topics, its table and its agents, storing through ``writer``."""

    def __init__(
        self,
        kafka: KafkaSettings,
        settings: WorkerSettings,
        layout: Layout,
        writer: Writer,
        metrics: WorkerMetrics,
        scorer: Scorer | None = None,
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
        self.memories = self._table("device-memory")  # by device id, like telemetry.raw
        self.clocks = self._table("zone-clock")  # by zone key, like readings.clean
        self.cleaner = Cleaner(layout, settings.clean_rules(writer.client.settings))
        self.lines = ReadingLines()
        self.progress = Progress()
        self._rewound: dict[TP, tuple[int, float]] = {}
        self._busy: set[str] = set()
        """Agents (by source topic) in the middle of a batch: their partitions are not stalled, only waiting."""
        self._agents = {self.topics[topic].get_topic_name(): agent for topic, agent in AGENTS.items()}
        self._stalls = Stalls()
        """For the metrics: how long each partition has stood still with records waiting."""
        self._unmoved = Stalls()
        """For ``resume_stalled``: whether a partition stood still since its previous check."""
        self.zones = ZoneStage(layout, writer.client, scorer or Baselines(), settings.window_grace_s)
        metrics.watch_farms((farm.id for farm in layout.farms), time.time())
        self._zone_pool = ThreadPoolExecutor(1, thread_name_prefix="zones")
        app = self.app
        raw, status, clean = KafkaTopic.TELEMETRY_RAW, KafkaTopic.DEVICE_STATUS, KafkaTopic.READINGS_CLEAN
        app.agent(self.topics[raw], name=AGENTS[raw], concurrency=1)(self.clean_and_store)
        app.agent(self.topics[status], name=AGENTS[status], concurrency=1)(self.store_status)
        app.agent(self.topics[clean], name=AGENTS[clean], concurrency=1)(self.zone_windows)
        app.timer(5.0)(self.report_lag)
        app.timer(STALL_CHECK_S)(self.resume_stalled)
        app.on_rebalance_complete.connect(self._rebalanced)
        self._own_the_offsets()

    def _table(self, name: str) -> Any:
        """A table of JSON bytes by key whose changelog is partitioned by murmur2 of the key, as the topic its agent
        reads is: a partition's entries move with it to whichever worker takes it over."""
        return self.app.Table(
            name,
            default=None,
            key_type=bytes,
            value_type=bytes,
            partitions=self.kafka.partitions,
            use_partitioner=True,
        )

    def _own_the_offsets(self) -> None:
        """Commits capped at what the agents stored, every partition started at a known offset after a rebalance
        (``stream.faustpatch``, where every override of faust's internals lives, says why)."""
        sources = (KafkaTopic.TELEMETRY_RAW, KafkaTopic.DEVICE_STATUS, KafkaTopic.READINGS_CLEAN)
        topics = {self.topics[t].get_topic_name() for t in sources}
        hooks = self.metrics.offset_hooks
        own_the_offsets(self.app.consumer, self.progress, topics, lambda hook: hooks.labels(hook).inc())

    async def _know_changelogs(self) -> None:
        """Wait until the producer has the tables' changelog topics in its metadata. A table entry's partition is
        the producer's hash of its key, computed without waiting for metadata: before the producer first sent to a
        just-created changelog topic it knows no partitions of it, and the first entry set crashed the worker."""
        for table in (self.memories, self.clocks):
            await changelog_partitions(self.app.producer, table.changelog_topic.get_topic_name())

    async def _fresh(self, events: Sequence[EventT]) -> list[EventT]:
        """The events that continue their partitions' runs; a partition that skipped records is sought back."""
        taken = self.progress.take(events)
        now = time.monotonic()
        for tp, offset in taken.gaps.items():
            tp = cast(TP, tp)
            last = self._rewound.get(tp)
            if last is not None and last[0] == offset and now - last[1] < 5.0:
                continue  # already sought back; what is left of the old fetch is dropped
            log.warning("%s: records from offset %d were skipped by the consumer; reading them again", tp, offset)
            self.metrics.rewinds.inc()
            self._rewound[tp] = (offset, now)
            await self.app.consumer.seek_wait({tp: offset})
        return taken.fresh

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
        await self._each_batch(
            stream,
            self._clean_and_store,
            RejectStage.CLEAN,
            "messages not stored; the next owner cleans them again",
        )

    async def _each_batch(
        self,
        stream: faust.StreamT[bytes],
        handle: Callable[[Sequence[EventT]], Awaitable[bool]],
        stage: RejectStage,
        unfinished: str,
        within_s: float | None = None,
    ) -> None:
        """Hand each batch's fresh events (up to ``batch_max``, or what came within ``within_s``, by default
        ``batch_within_s``) to ``handle`` (``_isolating`` the record it raises on); a partition moves on only past
        a batch it finished."""
        topic = cast(Any, stream).channel.get_topic_name()
        await self._know_changelogs()
        within = self.settings.batch_within_s if within_s is None else within_s
        batches = cast(faust.Stream[bytes], stream).take_events(self.settings.batch_max, within)
        async for batch in batches:
            events = await self._fresh(batch)
            if not events:
                continue
            self._busy.add(topic)
            try:
                finished = await isolating(events, handle, self._dead_letters, stage)
            except Exception as exc:
                # Kafka or the network failing (``infrastructure``): Faust would ack the batch as it restarts the
                # agent, so pin it and crash the worker; its partitions go to another, or to this one restarted,
                # which takes the batch again.
                pin(events)
                await self.app.crash(exc)
                raise
            finally:
                self._busy.discard(topic)
            if not finished:
                log.warning("stopping with %d %s", len(events), unfinished)
                pin(events)
                continue
            self.progress.done(events)

    async def _dead_letters(self, letters: Sequence[tuple[bytes, DeadLetter]]) -> None:
        """Send dead letters (key, letter), wait until Kafka has them, count them by reason."""
        if not letters:
            return
        dead = self.topics[KafkaTopic.DEADLETTER]
        await asyncio.gather(*[await dead.send(key=key, value=letter.encode()) for key, letter in letters])
        for _, letter in letters:
            self.metrics.dead_lettered.labels(letter.reason.value).inc()

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

    async def store_status(self, stream: faust.StreamT[bytes]) -> None:
        await self._each_batch(
            stream, self._store_status, RejectStage.STORE, "status records not stored; the next owner stores them"
        )

    async def _store_status(self, events: Sequence[EventT]) -> bool:
        """Write the ``device_status`` points; an unreadable record, or one whose point InfluxDB refuses for good,
        is dead-lettered. False if the worker stopped before InfluxDB took them."""
        lines, owners, letters = [], [], []
        for event in events:
            try:
                lines.append(status_line(event))
                owners.append(event)
            except ContractError as exc:  # the bridge wrote it: a bug upstream, kept for a replay once fixed
                letters.append(
                    (event.message.key or b"unknown", DeadLetter.of_record(exc, event.message, RejectStage.STORE))
                )
        refused = await self.writer.write(lines, self._stopping)
        if refused is None:
            return False
        for r in refused:
            message = owners[r.index].message
            error = ContractError(RejectReason.STORAGE_REFUSED, f"InfluxDB refused its point: {r.detail}")
            letters.append((message.key or b"unknown", DeadLetter.of_record(error, message, RejectStage.STORE)))
        await self._dead_letters(letters)
        self.metrics.records_in.labels("store-status").inc(len(events))
        return True

    async def zone_windows(self, stream: faust.StreamT[bytes]) -> None:
        await self._each_batch(
            stream,
            self._zone_windows,
            RejectStage.AGGREGATE,
            "clean records not aggregated; the next owner takes them",
            self.settings.zone_within_s,
        )

    async def _zone_windows(self, events: Sequence[EventT]) -> bool:
        """Step every zone of the batch, send, write, save; False if the worker stopped before it was stored."""
        times, refused = zone_times(events, self.zones.zones)
        clocks = {
            key: ZoneClock.from_json(json.loads(v)) if (v := self.clocks.get(key)) else ZoneClock() for key in times
        }
        outputs = await self._step_zones(times, clocks)
        if outputs is None:
            return False
        await self._send_zone_records(outputs, refused)
        owned = [(key, line) for key, out in outputs.items() for line in out.lines()]
        stored = await self.writer.write([line for _, line in owned], self._stopping) if owned else []
        if stored is None:
            return False
        letters = []
        for r in stored:  # our own points refused (a 1970 window, a type conflict): kept for a replay, not retried
            key, line = owned[r.index]
            error = ContractError(RejectReason.STORAGE_REFUSED, f"InfluxDB refused a zone point: {r.detail}")
            letters.append((key, DeadLetter.of(error, line.encode(), RejectStage.STORE, datetime.now(UTC))))
        await self._dead_letters(letters)
        for key, clock in clocks.items():
            self.clocks[key] = json.dumps(clock.to_json(), separators=(",", ":")).encode()
        self.metrics.zones_advised(
            (*zone_of(key), clock.watermark(self.zones.grace_s)) for key, clock in clocks.items()
        )
        self.metrics.records_in.labels("zones").inc(len(events))
        return True

    async def _step_zones(
        self, times: dict[bytes, list[float]], clocks: dict[bytes, ZoneClock]
    ) -> dict[bytes, ZoneOutput] | None:
        """Each zone's step on the zone thread, retried while InfluxDB does not answer; None if stopping."""
        loop, delay = asyncio.get_running_loop(), 0.25
        while True:
            trial = {key: ZoneClock.from_json(clock.to_json()) for key, clock in clocks.items()}
            try:
                outputs = await loop.run_in_executor(self._zone_pool, self._step_all, times, trial)
            except StorageError as exc:
                if not exc.transient:
                    raise  # a query refused for good: the record behind it is dead-lettered (``_isolating``)
                log.warning("InfluxDB did not answer the zone stage (%s); retrying in %.1f s", exc, delay)
                self.metrics.write_failures.inc()
                if self._stopping():
                    return None
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            clocks.update(trial)
            return outputs

    def _step_all(self, times: dict[bytes, list[float]], clocks: dict[bytes, ZoneClock]) -> dict[bytes, ZoneOutput]:
        self.zones.refresh()
        out = {}
        for key, stamps in times.items():
            out[key] = self.zones.step(*zone_of(key), clocks[key], stamps)
        return out

    async def _send_zone_records(
        self, outputs: dict[bytes, ZoneOutput], refused: list[tuple[bytes, DeadLetter]]
    ) -> None:
        topics = self.topics
        futures = []
        for key, out in outputs.items():
            futures += [
                await topics[KafkaTopic.ZONE_AGGREGATES].send(key=key, value=a.encode()) for a in out.aggregates
            ]
            futures += [await topics[KafkaTopic.ZONE_DAILY].send(key=key, value=d.encode()) for d in out.days]
            futures += [
                await topics[KafkaTopic.RECOMMENDATIONS].send(key=key, value=r.encode()) for r in out.recommendations
            ]
        futures += [await topics[KafkaTopic.DEADLETTER].send(key=key, value=letter.encode()) for key, letter in refused]
        await asyncio.gather(*futures)
        metrics = self.metrics
        for out in outputs.values():
            for a in out.aggregates:
                metrics.aggregates.labels(f"{a.width_s // 60}m", str(a.revision > 1).lower()).inc()
            metrics.days.inc(len(out.days))
            for r in out.recommendations:
                metrics.recommendations.labels(r.kind.value).inc()
                if r.kind is RecommendationKind.IRRIGATION and r.supersedes is not None and not r.amount_mm:
                    metrics.cancellations.inc()
        for _, letter in refused:
            metrics.dead_lettered.labels(letter.reason.value).inc()

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


async def isolating(
    events: Sequence[EventT],
    handle: Callable[[Sequence[EventT]], Awaitable[bool]],
    dead_letters: Callable[[Sequence[tuple[bytes, DeadLetter]]], Awaitable[None]],
    stage: RejectStage,
) -> bool:
    """``handle(events)``; if it raises for a reason of the data (anything but ``infrastructure``), the records
    are handled again one at a time and each one that still raises alone goes to ``dead_letters``
    (``invalid_payload``, the error in the detail, logged with its trace), so one bad record never stalls its
    partition and is never retried for ever. Handling a record twice is harmless (points are overwritten, windows
    recomputed, duplicates dropped by sequence number). False if the worker began stopping."""
    try:
        return await handle(events)
    except Exception as exc:
        if infrastructure(exc):
            raise
        log.exception("the %s stage failed on a batch of %d records; handling them one by one", stage, len(events))
    for event in events:
        try:
            if not await handle([event]):
                return False
        except Exception as exc:
            if infrastructure(exc):
                raise
            message = event.message
            log.exception("the %s stage failed on %s offset %s; dead-lettered", stage, message.tp, message.offset)
            error = ContractError(RejectReason.INVALID_PAYLOAD, f"the {stage} stage failed on it: {exc!r}")
            await dead_letters([(message.key or b"unknown", DeadLetter.of_record(error, message, stage))])
    return True


def infrastructure(exc: BaseException) -> bool:
    """Kafka, the network or InfluxDB failing for a while (retrying the same records later can succeed), as against
    a record whose handling fails for what it holds."""
    if isinstance(exc, StorageError):
        return exc.transient
    return isinstance(exc, KafkaError | asyncio.TimeoutError | ConnectionError)


def zone_times(
    events: Sequence[EventT], zones: Container[tuple[str, str]]
) -> tuple[dict[bytes, list[float]], list[tuple[bytes, DeadLetter]]]:
    """The event times of a batch of ``readings.clean`` records (``ZoneReadings``) by zone key, and a dead letter
    for each record that cannot be read (this worker wrote them, so that is a bug upstream; the bytes are kept for
    a replay once it is fixed). Only the times are read, from the record's ``event_times`` header where it has
    one (the body is not parsed then): the windows are computed from the stored readings."""
    times: dict[bytes, list[float]] = {}
    refused: list[tuple[bytes, DeadLetter]] = []
    for event in events:
        message = event.message
        key, value = message.key or b"", message.value or b""
        try:
            farm, _, zone = key.decode().partition("/")
            if (farm, zone) not in zones:
                raise ContractError(RejectReason.UNKNOWN_DEVICE, f"zone {key!r} is not in this worker's layout")
            header = _header(message.headers, EVENT_TIMES_HEADER)
            if header is not None:
                stamps = read_event_times(header)
            else:  # from a producer that does not write the header: the times from the body
                record = json.loads(value)
                if (record["farm"], record["zone"]) != (farm, zone):
                    raise ValueError(f"record of {record['farm']}/{record['zone']} under key {key!r}")
                stamps = [datetime.fromisoformat(m["ts"]).timestamp() for m in record["messages"]]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            error = ContractError(RejectReason.INVALID_PAYLOAD, f"clean record unreadable: {exc!r}")
            refused.append((key or b"unknown", _letter(error, message)))
            continue
        except ContractError as exc:
            refused.append((key, _letter(exc, message)))
            continue
        times.setdefault(key, []).extend(stamps)
    return times, refused


def _header(headers: Any, name: str) -> bytes | None:
    """A record header's value; None when absent."""
    return next((bytes(v) for k, v in header_pairs(headers) if k == name and v is not None), None)


def _letter(error: ContractError, message: Any) -> DeadLetter:
    return DeadLetter.of_record(error, message, RejectStage.AGGREGATE)


def status_line(event: EventT) -> str:
    """The ``device_status`` line of a ``device.status`` record; ContractError for one that cannot be read."""
    status = DeviceStatus.decode(event.message.value or b"")
    online = status.state is ConnectionState.ONLINE
    point = DeviceStatusPoint(
        time=status.received_at, farm=status.farm, device=status.device, online=online, will=status.will
    )
    return point.to_line()
