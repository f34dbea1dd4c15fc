"""The bridge's Kafka producer, behind one small interface with two implementations.

- ``confluent`` (default): confluent-kafka, over librdkafka. Record building, batching, compression and I/O run
  in native threads that do not hold the GIL; delivery callbacks run when the bridge calls ``poll()``, on its
  own thread. Measured here alone: about 88,000 records/s (228 B, acks=all, idempotent, lz4) from one Python
  thread.
- ``kafka-python``: pure Python. Measured here alone: about 17,000 records/s with the same settings; its record
  building and sender thread cost the bridge most of its CPU, so it cannot keep up with the broker on a small
  machine. Kept for comparison (``benchmarks/bridge_stage.py`` runs both) and where a native library is unwelcome.

Both: acks=all, idempotence (no duplicates or reordering from the producer's own retries), lz4, batching set by
``BridgeSettings``; a record not confirmed within ``delivery_timeout_ms`` is reported to ``on_done`` as failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, cast

from smartfarm import kafkaclient
from smartfarm.errors import ConfigError, ServiceError
from smartfarm.settings import KafkaSettings
from stream.settings import BridgeSettings

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]] | None
OnDelivery = Callable[[Any, Exception | None], None]
"""Called with the ``token`` given to ``send`` and None once Kafka confirmed the record, or the error."""


class RecordProducer(Protocol):
    """What the bridge needs from a Kafka producer."""

    def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers, partition: int | None, token: Any
    ) -> None:
        """Queue a record; the producer's ``on_delivery(token, None)`` runs once Kafka confirmed it.

        ``partition`` None leaves it to the client's partitioner: Kafka's murmur2 of the key in kafka-python, but
        CRC32 in librdkafka, so callers that need Java-compatible placement pass the partition."""

    def poll(self) -> None:
        """Run due delivery callbacks (where the client runs them on the caller's thread)."""

    def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has."""

    def flush(self, timeout_s: float) -> None:
        """Wait until every queued record is confirmed or failed."""

    def close(self) -> None: ...


class ConfluentProducer:
    """confluent-kafka (librdkafka)."""

    def __init__(self, kafka: KafkaSettings, bridge: BridgeSettings, client_id: str, on_delivery: OnDelivery) -> None:
        from confluent_kafka import KafkaException, Producer

        self._exception = KafkaException
        self._on_delivery = on_delivery
        self._producer = Producer(
            {
                **kafkaclient.confluent(kafka),
                "client.id": client_id,
                "acks": "all",
                "enable.idempotence": True,
                "compression.type": bridge.compression,
                "linger.ms": bridge.linger_ms,
                "batch.size": bridge.batch_bytes,
                "message.timeout.ms": bridge.delivery_timeout_ms,
                "queue.buffering.max.messages": max(100_000, 4 * bridge.receive_maximum),
            },
            logger=logging.getLogger("librdkafka"),
        )

    def _report(self, token: Any, error: Any, _message: Any) -> None:
        self._on_delivery(token, None if error is None else self._exception(error))

    def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers, partition: int | None, token: Any
    ) -> None:
        # A partial rather than a closure per record: at thousands of records a second the difference shows.
        delivered = partial(self._report, token)
        while True:
            try:
                self._producer.produce(
                    topic,
                    value,
                    key,
                    partition=-1 if partition is None else partition,
                    headers=cast(Any, headers),
                    on_delivery=delivered,
                )
                return
            except BufferError:
                self._producer.poll(0.005)  # the local queue is full: let deliveries drain it

    def poll(self) -> None:
        self._producer.poll(0)

    def partitions(self, topic: str) -> int:
        metadata = self._producer.list_topics(topic, timeout=30)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise ServiceError(f"Kafka topic {topic} is not available: {found.error if found else 'missing'}")
        return len(found.partitions)

    def flush(self, timeout_s: float) -> None:
        self._producer.flush(timeout_s)

    def close(self) -> None:
        self._producer.flush(5)


def request_timeout_ms(bridge: BridgeSettings) -> int:
    """kafka-python's request timeout for the bridge's settings: at most 30 s, and short enough that the linger and
    a request fit in ``delivery_timeout_ms`` (kafka-python refuses a producer otherwise: with ``delivery_timeout_ms
    - 1`` a bridge set to a delivery timeout of 30 s or less could not start its egress)."""
    return max(1, min(30_000, bridge.delivery_timeout_ms - bridge.linger_ms - 1))


class KafkaPythonProducer:
    """kafka-python; delivery callbacks run on its sender thread."""

    def __init__(self, kafka: KafkaSettings, bridge: BridgeSettings, client_id: str, on_delivery: OnDelivery) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaConfigurationError, KafkaError

        self._on_delivery = on_delivery
        deadline = time.monotonic() + 30
        while True:
            try:
                self._producer = KafkaProducer(
                    **kafkaclient.kafka_python(kafka),
                    client_id=client_id,
                    acks="all",
                    enable_idempotence=True,
                    compression_type=None if bridge.compression == "none" else bridge.compression,
                    linger_ms=bridge.linger_ms,
                    batch_size=bridge.batch_bytes,
                    max_in_flight_requests_per_connection=5,
                    delivery_timeout_ms=bridge.delivery_timeout_ms,
                    request_timeout_ms=request_timeout_ms(bridge),
                )
                return
            except KafkaConfigurationError as exc:  # permanent: waiting will not change the settings
                raise ConfigError(f"the bridge's Kafka producer settings are refused: {exc}") from exc
            except KafkaError as exc:
                if time.monotonic() > deadline:
                    raise ServiceError(f"Kafka at {kafka.bootstrap_servers} is unreachable: {exc}") from exc
                time.sleep(1)

    def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers, partition: int | None, token: Any
    ) -> None:
        future = self._producer.send(topic, key=key, value=value, headers=headers, partition=partition)
        future.add_callback(lambda _metadata: self._on_delivery(token, None))
        future.add_errback(lambda error: self._on_delivery(token, error))

    def poll(self) -> None:
        """kafka-python runs callbacks on its own thread."""

    def partitions(self, topic: str) -> int:
        return len(self._producer.partitions_for(topic) or ())

    def flush(self, timeout_s: float) -> None:
        self._producer.flush(timeout=timeout_s)

    def close(self) -> None:
        self._producer.close(timeout=5)


def record_producer(
    kafka: KafkaSettings, bridge: BridgeSettings, client_id: str, on_delivery: OnDelivery
) -> RecordProducer:
    if bridge.producer == "kafka-python":
        return KafkaPythonProducer(kafka, bridge, client_id, on_delivery)
    return ConfluentProducer(kafka, bridge, client_id, on_delivery)
