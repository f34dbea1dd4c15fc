"""The worker's core: the Faust app, its topics and changelog-backed tables, the offsets it owns and the batch loop
every agent runs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import faust
from faust.types import TP, EventT

from ml.scoring import Baselines, Scorer
from smartfarm import kafkaclient
from smartfarm.layout import Layout
from smartfarm.records import DeadLetter, RejectStage
from smartfarm.settings import KafkaSettings
from smartfarm.topics import KafkaTopic, topic_specs
from storage.lines import ReadingLines
from storage.writer import Writer
from stream.clean import Cleaner
from stream.faustpatch import changelog_partitions, own_the_offsets
from stream.forecasts import ForecastBook, ForecastFollower
from stream.layouts import LayoutFollower
from stream.metrics import WorkerMetrics
from stream.offsets import Progress, Stalls
from stream.settings import WorkerSettings
from stream.worker.batches import isolating, pin
from stream.zones import ZoneStage

log = logging.getLogger(__name__)

STALL_CHECK_S = 3.0
"""How often the worker looks for partitions its agents stopped receiving although records wait there."""
DEAD_LETTER_WAIT_S = 30.0
"""How long the forecast follower waits for Kafka to take a dead letter before it logs the letter as unsent."""
FORECASTS_WAIT_S = 10.0
"""How long the zone agent's first batch waits for the forecasts that were on ``weather.forecast`` when the worker
started (read in about a second), so the hours a restarted worker scores first are scored with them."""

AGENTS = {
    KafkaTopic.TELEMETRY_RAW: "clean-and-store",
    KafkaTopic.DEVICE_STATUS: "store-status",
    KafkaTopic.READINGS_CLEAN: "zones",
}
"""Each agent by the topic it reads: the name on its metrics and in the status line."""


class WorkerCore:
    """What every agent of a worker shares: the Faust app, its topics and tables, the offsets it owns, the batch
    loop, dead letters and the state the agents keep. The agents (``clean_agent``, ``status_agent``,
    ``zone_agent``) and the timers (``watch``) extend it; ``stream.worker.app.StreamWorker`` joins them."""

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
        self.forecasts = ForecastBook()
        self.forecast_follower: ForecastFollower | None = None
        self.zones = ZoneStage(layout, writer.client, scorer or Baselines(), settings.window_grace_s, self.forecasts)
        metrics.watch_farms((farm.id for farm in layout.farms), time.time())
        self.layout = layout
        self.follower: LayoutFollower | None = None
        self._zone_pool = ThreadPoolExecutor(1, thread_name_prefix="zones")
        self._wire()

    def _wire(self) -> None:
        """Put the agents and timers on the app: the class that has them all does (``StreamWorker``)."""
        raise NotImplementedError

    async def follow_layout(self) -> None:
        """Follow the farm registry's layout topic (``stream.layouts``): each farm it publishes replaces the file's,
        applied on the app's event loop between batches, so a device registered through the API is cleaned and a
        new zone windowed without a restart."""
        loop = asyncio.get_running_loop()

        def on_change(layout: Layout) -> None:
            loop.call_soon_threadsafe(self.use_layout, layout)

        self.follower = LayoutFollower(self.kafka, self.layout, on_change, "worker").start()

    async def follow_forecasts(self) -> None:
        """Follow ``weather.forecast`` (``stream.forecasts``) into the book the zone stage reads; a record that is
        not a forecast is dead-lettered on the app's event loop, the follower waiting until Kafka has the letter."""
        loop = asyncio.get_running_loop()

        def refused(key: bytes, letter: DeadLetter) -> None:
            asyncio.run_coroutine_threadsafe(self._dead_letters([(key, letter)]), loop).result(DEAD_LETTER_WAIT_S)

        self.forecast_follower = ForecastFollower(self.kafka, self.forecasts, refused, "worker").start()

    async def forecasts_read(self) -> None:
        """Wait (up to ``FORECASTS_WAIT_S``) until the forecasts on the topic at the start are in the book."""
        deadline = time.monotonic() + FORECASTS_WAIT_S
        while self.forecast_follower is None or not self.forecast_follower.caught_up.is_set():
            if time.monotonic() > deadline:
                log.warning("the weather forecasts are not read yet; the zones are scored without them meanwhile")
                return
            await asyncio.sleep(0.1)

    def use_layout(self, layout: Layout) -> None:
        added = {f.id for f in layout.farms} - {f.id for f in self.layout.farms}
        self.cleaner.use(layout)
        self.zones.use(layout)
        self.metrics.watch_farms(added, time.time())
        self.layout = layout
        devices, zones = len(layout.placements), sum(len(f.zones) for f in layout.farms)
        log.info(
            "worker %s: layout now %d farms, %d zones, %d devices",
            self.settings.worker_id,
            len(layout.farms),
            zones,
            devices,
        )

    def stop_following(self) -> None:
        for follower in (self.follower, self.forecast_follower):
            if follower is not None:
                follower.stop()

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
            **kafkaclient.faust_broker(self.kafka),
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
