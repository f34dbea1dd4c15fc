"""What the farm API writes to Kafka, each record confirmed before the API answers: a farm's layout (``layout``
topic, followed by the workers and the broker's credentials) and the irrigations people accepted (``commands``,
which the bridge sends to the valves)."""

from __future__ import annotations

from kafka import KafkaProducer
from kafka.errors import KafkaError

from smartfarm.errors import ServiceError
from smartfarm.layout import Farm
from smartfarm.records import IrrigationCommand
from smartfarm.settings import KafkaSettings
from smartfarm.topics import KafkaTopic, topic_specs, zone_key

PUBLISH_TIMEOUT_S = 10.0


class FarmPublisher:
    """Writes farms and irrigation commands; each call returns once Kafka confirmed the record (acks=all), and
    raises ServiceError when it did not within ``PUBLISH_TIMEOUT_S``."""

    def __init__(self, kafka: KafkaSettings, client_id: str = "smartfarm-api") -> None:
        self.specs = topic_specs(kafka.topic_prefix, kafka.partitions)
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=kafka.servers, client_id=client_id, acks="all", retries=3, linger_ms=0
            )
        except KafkaError as exc:
            raise ServiceError(f"Kafka at {kafka.bootstrap_servers} is unreachable: {exc}") from exc

    def publish(self, farm: Farm) -> None:
        """The farm as the registry holds it now, keyed by its id."""
        self._send(KafkaTopic.LAYOUT, farm.id.encode(), farm.model_dump_json().encode(), f"farm {farm.id!r}'s layout")

    def command(self, command: IrrigationCommand) -> None:
        """An accepted irrigation, keyed by its zone like the zone's recommendations."""
        key = zone_key(command.farm, command.zone)
        self._send(KafkaTopic.COMMANDS, key, command.encode(), f"the irrigation command {command.id}")

    def _send(self, topic: KafkaTopic, key: bytes, value: bytes, what: str) -> None:
        try:
            self._producer.send(self.specs[topic].name, key=key, value=value).get(timeout=PUBLISH_TIMEOUT_S)
        except KafkaError as exc:
            raise ServiceError(f"Kafka did not take {what}: {exc}") from exc

    def close(self) -> None:
        self._producer.close(timeout=5)
