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
from collections.abc import Callable

from kafka.consumer.fetcher import ConsumerRecord
from pydantic import ValidationError

from smartfarm.layout import Farm, Layout, overlay
from smartfarm.settings import KafkaSettings
from smartfarm.topics import KafkaTopic
from stream.follow import TopicFollower

log = logging.getLogger(__name__)


class LayoutFollower(TopicFollower):
    """Follows the layout topic from its beginning (``stream.follow``); ``on_change(layout)`` runs on the follower's
    thread each time a farm's record differs from what it had, with ``base``'s farms replaced or joined by the
    topic's.

    ``caught_up`` is set once the records that were on the topic when it started have been read."""

    def __init__(
        self, kafka: KafkaSettings, base: Layout, on_change: Callable[[Layout], None], name: str = "layout"
    ) -> None:
        super().__init__(kafka, KafkaTopic.LAYOUT, name)
        self.base = base
        self.on_change = on_change
        self.farms: dict[str, Farm] = {}

    @property
    def layout(self) -> Layout:
        return overlay(self.base, self.farms.values())

    def start(self) -> LayoutFollower:
        super().start()
        return self

    def take(self, record: ConsumerRecord) -> bool:
        if record.value is None:
            return False  # farms are never deleted; a tombstone would mean nothing here
        try:
            farm = Farm.model_validate_json(record.value)
        except ValidationError as exc:
            log.error("layout record %r is not a farm, skipped: %s", record.key, exc)
            return False
        if self.farms.get(farm.id) == farm:
            return False
        self.farms[farm.id] = farm
        return True

    def changed(self) -> None:
        self.on_change(self.layout)
