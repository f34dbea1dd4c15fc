"""What the farm API writes to Kafka, each record confirmed before the API answers: a farm's layout (``layout``
topic, followed by the workers and the broker's credentials), the irrigations people accepted (``commands``,
which the bridge sends to the valves) and the telemetry of its ingest door (``telemetry.raw``, as the bridge writes
an MQTT message); and the weather forecasts ``smartfarm forecast`` publishes (``weather.forecast``, followed by the
workers)."""

from __future__ import annotations

from datetime import datetime

from kafka import KafkaProducer
from kafka.errors import KafkaError

from smartfarm import kafkaclient
from smartfarm.errors import ServiceError
from smartfarm.forecast import WeatherForecast
from smartfarm.layout import Farm
from smartfarm.records import IrrigationCommand, RawHeaders
from smartfarm.settings import KafkaSettings
from smartfarm.topics import KafkaTopic, topic_specs, zone_key

PUBLISH_TIMEOUT_S = 10.0
RECONNECT_BACKOFF_MAX_MS = 2000
"""The longest wait between reconnects (kafka-python's default is 30 s): the API answers 503 while Kafka is away and
should take records again within seconds of its return."""


class FarmPublisher:
    """Writes farms, irrigation commands, ingested telemetry and weather forecasts; each call returns once Kafka
    confirmed the record (acks=all), and raises ServiceError when it did not within ``PUBLISH_TIMEOUT_S``."""

    def __init__(self, kafka: KafkaSettings, client_id: str = "smartfarm-api") -> None:
        self.specs = topic_specs(kafka.topic_prefix, kafka.partitions)
        self.client_id = client_id
        try:
            self._producer = KafkaProducer(
                **kafkaclient.kafka_python(kafka),
                client_id=client_id,
                acks="all",
                retries=3,
                linger_ms=0,
                max_block_ms=int(PUBLISH_TIMEOUT_S * 1000),  # Kafka away: a send fails in time, never hangs a request
                reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
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

    def telemetry(self, mqtt_topic: str, device: str, payload: bytes, received_at: datetime) -> None:
        """A device's telemetry as the bridge writes a message that came alone (no envelope): the payload, keyed by
        the device (kafka-python's partitioner is Kafka's murmur2, the bridge's placement), with ``RawHeaders``
        naming the MQTT topic the device would have published on and this API as the ``bridge_id``."""
        headers = RawHeaders(mqtt_topic=mqtt_topic, received_at=received_at, bridge_id=self.client_id).to_kafka()
        self._send(KafkaTopic.TELEMETRY_RAW, device.encode(), payload, f"{device}'s telemetry", headers)

    def forecast(self, forecast: WeatherForecast) -> None:
        """A farm's weather forecast, keyed by the farm: the topic keeps each farm's newest."""
        what = f"farm {forecast.farm!r}'s forecast issued at {forecast.issued_at.isoformat()}"
        self._send(KafkaTopic.WEATHER_FORECAST, forecast.farm.encode(), forecast.encode(), what)

    def _send(
        self, topic: KafkaTopic, key: bytes, value: bytes, what: str, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        try:
            sent = self._producer.send(self.specs[topic].name, key=key, value=value, headers=headers)
            sent.get(timeout=PUBLISH_TIMEOUT_S)
        except KafkaError as exc:
            raise ServiceError(f"Kafka did not take {what}: {exc}") from exc

    def close(self) -> None:
        self._producer.close(timeout=5)
