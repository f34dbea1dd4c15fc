"""Following a compacted topic: every partition read from its beginning on a thread of its own, with no consumer
group, so every follower sees every key's newest record (the farm layout, ``stream.layouts``; the weather
forecasts, ``stream.forecasts``).

A subclass says what a record means (``take``, on the follower's thread: True when it changed what the follower
holds) and what to do once a poll's records changed something (``changed``). Neither may stop the follower: an
exception in ``changed`` is logged and the follower goes on; ``take`` handles its own bad records.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from smartfarm import kafkaclient
from smartfarm.errors import ServiceError
from smartfarm.settings import KafkaSettings
from smartfarm.topics import KafkaTopic, topic_specs

log = logging.getLogger(__name__)

TOPIC_WAIT_S = 10.0
"""How long a follower waits for its topic to show in Kafka's metadata (just declared by another process)."""


class TopicFollower(ABC):
    """Follows ``topic`` from its beginning. ``caught_up`` is set once the records that were on the topic when it
    started have been read."""

    def __init__(self, kafka: KafkaSettings, topic: KafkaTopic, name: str) -> None:
        self.topic = topic_specs(kafka.topic_prefix, kafka.partitions)[topic].name
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._behind: dict[TopicPartition, int] = {}
        """The partitions not read up to where they ended at the start, with that end."""
        self._consumer = KafkaConsumer(
            **kafkaclient.kafka_python(kafka), enable_auto_commit=False, client_id=f"{name}-follower"
        )
        self._thread = threading.Thread(target=self._run, name=f"{name}-follower", daemon=True)

    @abstractmethod
    def take(self, record: ConsumerRecord) -> bool:
        """Read one record; whether it changed what the follower holds."""

    @abstractmethod
    def changed(self) -> None:
        """Act on what the records of one poll changed."""

    def start(self) -> TopicFollower:
        deadline = time.monotonic() + TOPIC_WAIT_S
        while not (numbers := self._consumer.partitions_for_topic(self.topic)):
            if time.monotonic() > deadline:
                raise ServiceError(f"Kafka topic {self.topic} does not exist; every smartfarm command declares it")
            time.sleep(0.5)
        partitions = [TopicPartition(self.topic, n) for n in sorted(numbers)]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)
        starts = self._consumer.beginning_offsets(partitions)
        ends = self._consumer.end_offsets(partitions)
        self._behind = {tp: ends[tp] for tp in partitions if ends[tp] > starts[tp]}
        if not self._behind:
            self.caught_up.set()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batches = self._consumer.poll(timeout_ms=500)
            except KafkaError as exc:  # Kafka away for a while: the consumer reconnects by itself
                log.warning("reading %s: %s", self.topic, exc)
                continue
            changed = False
            for records in batches.values():
                for record in records:
                    changed |= self.take(record)
            if self._behind:
                self._note_progress()
            if changed:
                try:
                    self.changed()
                except Exception:  # what the records changed cannot be applied: the follower goes on
                    log.exception("applying what %s changed failed; what was in use stays", self.topic)

    def _note_progress(self) -> None:
        """Mark caught up once every partition's position reached where it ended at the start (by position, not
        by the last record's offset: compaction may have removed the records at a partition's end)."""
        for tp, end in list(self._behind.items()):
            try:
                if self._consumer.position(tp) >= end:
                    del self._behind[tp]
            except KafkaError:  # asked again after the next poll
                return
        if not self._behind:
            self.caught_up.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._consumer.close()
