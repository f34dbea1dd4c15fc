"""The farm layout on Kafka: the registry publishes each farm as it holds it now, components follow.

The ``layout`` topic (``smartfarm.topics``) is compacted and has one partition: keyed by farm id, its newest record
per farm is that farm's zones and active devices. ``stream.publisher.FarmPublisher`` writes a farm and returns
once Kafka has it (acks=all), so an API that answers after publishing never reports a change no follower can see.
``LayoutFollower`` reads the topic from its beginning on a thread of its own, with no consumer group (every
follower reads every farm), and calls ``on_change`` with the whole layout, the file's farms overlaid by the
topic's, each time a farm changes. A record that is not a valid farm is logged and skipped: the follower keeps
the farm as it was, and a record the registry publishes later replaces it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from pydantic import ValidationError

from smartfarm import kafkaclient
from smartfarm.layout import Farm, Layout, overlay
from smartfarm.settings import KafkaSettings
from smartfarm.topics import KafkaTopic, topic_specs

log = logging.getLogger(__name__)


def layout_topic(kafka: KafkaSettings) -> str:
    return topic_specs(kafka.topic_prefix, kafka.partitions)[KafkaTopic.LAYOUT].name


class LayoutFollower:
    """Follows the layout topic from its beginning; ``on_change(layout)`` runs on the follower's thread each time
    a farm's record differs from what it had, with ``base``'s farms replaced or joined by the topic's.

    ``caught_up`` is set once the records that were on the topic when it started have been read."""

    def __init__(
        self, kafka: KafkaSettings, base: Layout, on_change: Callable[[Layout], None], name: str = "layout"
    ) -> None:
        self.topic = layout_topic(kafka)
        self.base = base
        self.on_change = on_change
        self.farms: dict[str, Farm] = {}
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(
            **kafkaclient.kafka_python(kafka), enable_auto_commit=False, client_id=f"{name}-follower"
        )
        self._thread = threading.Thread(target=self._run, name=f"{name}-follower", daemon=True)

    @property
    def layout(self) -> Layout:
        return overlay(self.base, self.farms.values())

    def start(self) -> LayoutFollower:
        partition = TopicPartition(self.topic, 0)
        self._consumer.assign([partition])
        self._consumer.seek_to_beginning(partition)
        self._end = self._consumer.end_offsets([partition])[partition]
        if self._end == 0:
            self.caught_up.set()
        self._thread.start()
        return self

    def _run(self) -> None:
        partition = TopicPartition(self.topic, 0)
        while not self._stop.is_set():
            try:
                batches = self._consumer.poll(timeout_ms=500)
            except KafkaError as exc:  # Kafka away for a while: the consumer reconnects by itself
                log.warning("reading the layout topic: %s", exc)
                continue
            changed = False
            for record in batches.get(partition, []):
                changed |= self._take(record.key, record.value)
                if record.offset + 1 >= self._end:
                    self.caught_up.set()
            if changed:
                try:
                    self.on_change(self.layout)
                except Exception:  # a layout that cannot be applied must not stop the follower
                    log.exception("applying the new layout failed; the previous one stays in use")

    def _take(self, key: bytes | None, value: bytes | None) -> bool:
        if value is None:
            return False  # farms are never deleted; a tombstone would mean nothing here
        try:
            farm = Farm.model_validate_json(value)
        except ValidationError as exc:
            log.error("layout record %r is not a farm, skipped: %s", key, exc)
            return False
        if self.farms.get(farm.id) == farm:
            return False
        self.farms[farm.id] = farm
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._consumer.close()
