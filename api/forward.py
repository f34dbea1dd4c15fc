"""The ingest door's way into the pipeline: a device message onto ``telemetry.raw`` as the bridge writes it.

A record of one message, no envelope: the payload as the value, keyed by the device id, with ``RawHeaders``
(the MQTT topic the device would have published on, the receipt time, this API's id as ``bridge_id``), on the
partition the bridge would choose (Kafka's murmur2 of the key: librdkafka's ``murmur2_random`` partitioner places
keyed records as the Java client and the bridge do). So the worker cleans, dead-letters and deduplicates by
(device, seq) an HTTP or LoRaWAN message exactly as an MQTT one.

``send`` returns only once Kafka has the record (acks=all, idempotent producer) and raises ``KafkaUnavailable``
when it does not confirm within the timeout: the caller answers 503 and the client sends again. A record Kafka
stored after all but confirmed too late is then sent twice, which the worker's dedup by (device, seq) absorbs;
what cannot happen is a 202 for a record Kafka does not have.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any, cast

from smartfarm.errors import ServiceError
from smartfarm.records import RawHeaders
from smartfarm.settings import KafkaSettings
from smartfarm.topics import KafkaTopic, MqttTopics, topic_specs

log = logging.getLogger(__name__)

POLL_S = 0.05
"""How long one wait for Kafka's delivery reports lasts before the deadline is checked again."""


class KafkaUnavailable(ServiceError):
    """Kafka did not confirm a record in time (away, or overloaded): nothing was accepted."""


class RawForwarder:
    """Device messages onto ``telemetry.raw``, one confirmed record per call (thread-safe: the API's worker threads
    share one producer; each waits for its own record's report).

    Args:
        topics: the MQTT topic scheme, for the ``mqtt_topic`` header (its farm level is what the worker checks).
        timeout_s: how long a record may wait for Kafka's confirmation.
        sender_id: the ``bridge_id`` header: which door the record came through.
    """

    def __init__(self, kafka: KafkaSettings, topics: MqttTopics, timeout_s: float, sender_id: str = "farm-api") -> None:
        from confluent_kafka import Producer

        self.kafka = kafka
        self.topics = topics
        self.timeout_s = timeout_s
        self.sender_id = sender_id
        self.raw_topic = topic_specs(kafka.topic_prefix)[KafkaTopic.TELEMETRY_RAW].name
        self._producer = Producer(
            {
                "bootstrap.servers": kafka.bootstrap_servers,
                "client.id": sender_id,
                "acks": "all",
                "enable.idempotence": True,
                "partitioner": "murmur2_random",
                "linger.ms": 2,
                "message.timeout.ms": max(1000, int(timeout_s * 1000)),
            },
            logger=logging.getLogger("librdkafka"),
        )

    def send(self, farm: str, device: str, payload: bytes, received_at: datetime | None = None) -> None:
        """Put ``device``'s message on ``telemetry.raw`` and wait until Kafka has it; KafkaUnavailable if it does
        not confirm in time."""
        received = (received_at or datetime.now(UTC)).astimezone(UTC)
        received = received.replace(microsecond=received.microsecond // 1000 * 1000)  # the bridge's millisecond
        headers = RawHeaders(
            mqtt_topic=self.topics.telemetry(farm, device), received_at=received, bridge_id=self.sender_id
        ).to_kafka()
        done = threading.Event()
        outcome: list[Any] = []

        def report(error: Any, _message: Any) -> None:
            outcome.append(error)
            done.set()

        try:
            self._producer.produce(
                self.raw_topic, payload, device.encode(), headers=cast(Any, headers), on_delivery=report
            )
        except BufferError as exc:
            raise KafkaUnavailable(f"the API's Kafka queue is full ({exc})") from exc
        deadline = time.monotonic() + self.timeout_s
        while not done.is_set():
            self._producer.poll(POLL_S)  # runs whichever reports are due, this request's or another's
            if not done.is_set() and time.monotonic() > deadline:
                raise KafkaUnavailable(
                    f"Kafka at {self.kafka.bootstrap_servers} did not confirm the record within {self.timeout_s:g} s"
                )
        if outcome[0] is not None:
            raise KafkaUnavailable(f"Kafka at {self.kafka.bootstrap_servers} refused the record: {outcome[0]}")

    def close(self) -> None:
        self._producer.flush(5)
