"""The bridge: device telemetry from MQTT into Kafka, recommendations from Kafka back onto MQTT.

Ingress is at-least-once end to end. The bridge subscribes through an MQTT 5 shared subscription with a
persistent session and acknowledges each message (paho manual ack) only once Kafka has confirmed its record with
acks=all; acknowledgements go out in the order the messages came in, as MQTT requires. While Kafka is away
nothing is acknowledged, the broker hands us at most ``receive_maximum`` unacknowledged messages (so memory is
bounded) and keeps the rest queued in our session; a record Kafka did not confirm in time is sent again.
Whatever is refused at the door goes to the dead-letter topic, and is acknowledged once that record is confirmed.

Egress reads ``recommendations``, publishes each on its zone's topic with QoS 1, retained, and commits the Kafka
offsets only after the broker acknowledged every publish of the batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from kafka import KafkaConsumer
from kafka.partitioner.default import murmur2
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.contract import DeviceTopic
from edge.settings import MqttSettings
from smartfarm.console import Stop
from smartfarm.errors import ContractError, ServiceError
from stream.admin import ensure_topics
from stream.gate import Admitted, Door, status_record
from stream.metrics import BridgeMetrics
from stream.mqttio import BatchingClient
from stream.producer import Headers, KafkaPythonProducer, record_producer
from stream.records import DeadLetter, Recommendation, Stage, Topic, topic_specs
from stream.settings import BridgeSettings, KafkaSettings

log = logging.getLogger(__name__)

READ_BATCH = 500
"""Packets handled per loop turn before Kafka's delivery reports are polled and acknowledgements written."""
CONNACK_TIMEOUT_S = 30.0
"""How long a CONNECT may wait for its CONNACK before the bridge connects again."""


class _Pending:
    """One received MQTT message until it is acknowledged, with the record it became (to send it again)."""

    __slots__ = ("done", "generation", "headers", "key", "kind", "mid", "qos", "received", "topic", "value")

    def __init__(self, mid: int, qos: int, generation: int, received: float, kind: str) -> None:
        self.mid = mid
        self.qos = qos
        self.generation = generation
        self.received = received
        self.kind = kind
        self.done = False
        self.topic = ""
        self.key = b""
        self.value = b""
        self.headers: Headers = None


C = TypeVar("C", bound=mqtt.Client)


def mqtt_client(client_id: str, settings: MqttSettings, cls: type[C], *, manual_ack: bool = False) -> C:
    client = cls(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    if settings.username:
        client.username_pw_set(settings.username, settings.password.get_secret_value())
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    return client


class Ingress:
    """MQTT -> Kafka."""

    def __init__(
        self, mqtt_settings: MqttSettings, kafka: KafkaSettings, bridge: BridgeSettings, metrics: BridgeMetrics
    ) -> None:
        self.bridge = bridge
        self.metrics = metrics
        self.door = Door(mqtt_settings.topic_root, bridge.max_payload_bytes)
        specs = topic_specs(kafka.topic_prefix, kafka.partitions)
        self.raw_topic = specs[Topic.TELEMETRY_RAW].name
        self.status_topic = specs[Topic.DEVICE_STATUS].name
        self.dead_topic = specs[Topic.DEADLETTER].name
        self.producer = record_producer(kafka, bridge, f"{bridge.bridge_id}-ingress", self._delivered)
        self._partition_counts = {
            t: self.producer.partitions(t) for t in (self.raw_topic, self.status_topic, self.dead_topic)
        }
        self._partition_of: dict[tuple[str, bytes], int] = {}
        self._bridge_header = ("bridge_id", bridge.bridge_id.encode())
        self._routes: dict[str, tuple[bytes, tuple[str, bytes]]] = {}
        self._pending: deque[_Pending] = deque()
        self._lock = threading.Lock()
        self._generation = 0
        self.stopping = False
        self.settings = mqtt_settings
        self.client = mqtt_client(f"smartfarm-{bridge.bridge_id}", mqtt_settings, BatchingClient, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_publish_packet = self._on_publish
        self.connected = threading.Event()
        self._halt = threading.Event()
        self._received = {kind: metrics.received.labels(kind.value) for kind in DeviceTopic}
        self._received_counts: Counter[DeviceTopic] = Counter()
        self._drain_s = 0.0
        self._received_ms = -1
        self._received_header = ("received_at", b"")
        self._thread = threading.Thread(target=self._run, name="bridge-ingress", daemon=True)

    # --- paho's network thread -------------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: object, flags: Any, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            log.error("the broker refused the bridge: %s", reason)
            return
        with self._lock:
            # Messages of the previous connection that we had not acknowledged are redelivered by the broker.
            self._generation += 1
            self._pending.clear()
            self.metrics.in_flight.set(0)
            if self._generation > 1:
                self.metrics.reconnects.labels("ingress").inc()
        topics = self.settings.topics
        group = self.bridge.share_group
        client.subscribe(
            [
                (f"$share/{group}/{topics.device_filter(DeviceTopic.TELEMETRY)}", SubscribeOptions(qos=1)),
                (f"$share/{group}/{topics.device_filter(DeviceTopic.STATUS)}", SubscribeOptions(qos=1)),
            ]
        )
        self.connected.set()

    def _on_publish(self, topic: str, payload: bytes, mid: int, qos: int, dup: bool) -> None:
        if self.stopping:
            return  # not acknowledged: the broker delivers it again, to us or another bridge
        received = time.time()
        if dup:
            self.metrics.redelivered.inc()
        try:
            admitted = self.door.admit(topic, payload)
        except ContractError as exc:
            entry = self._track(mid, qos, received, "deadletter")
            self._send_dead_letter(exc, payload, topic, received, self.door.device_of(topic), entry)
            return
        entry = self._track(mid, qos, received, admitted.kind.value)
        self._received_counts[admitted.kind] += 1
        if admitted.kind is DeviceTopic.TELEMETRY:
            key, topic_header = self._telemetry_route(topic, admitted)
            headers = [topic_header, self._received_at(received), self._bridge_header]
            self._send(self.raw_topic, key, payload, headers, entry)
            return
        try:
            record = status_record(admitted, payload, datetime.fromtimestamp(received, UTC))
        except ContractError as exc:
            self._send_dead_letter(exc, payload, topic, received, admitted.device, entry)
            return
        self._send(self.status_topic, admitted.device.encode(), record.encode(), None, entry)

    def _track(self, mid: int, qos: int, received: float, kind: str) -> _Pending:
        with self._lock:
            entry = _Pending(mid, qos, self._generation, received, kind)
            self._pending.append(entry)
        return entry

    def _received_at(self, received: float) -> tuple[str, bytes]:
        """The ``received_at`` header, to the millisecond, formatted once per millisecond."""
        ms = int(received * 1000)
        if ms != self._received_ms:
            self._received_ms = ms
            stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
            self._received_header = ("received_at", stamp.encode())
        return self._received_header

    def _telemetry_route(self, topic: str, admitted: Admitted) -> tuple[bytes, tuple[str, bytes]]:
        """The Kafka key and the ``mqtt_topic`` header of a telemetry topic, built once per topic."""
        route = self._routes.get(topic)
        if route is None:
            if len(self._routes) > 100_000:
                self._routes.clear()
            route = self._routes[topic] = (admitted.device.encode(), ("mqtt_topic", topic.encode()))
        return route

    def _partition(self, topic: str, key: bytes) -> int:
        # Kafka's default partitioner (murmur2 of the key), computed once per key: per-record hashing in pure
        # Python is a measurable share of the bridge's CPU.
        part = self._partition_of.get((topic, key))
        if part is None:
            part = self._partition_of[(topic, key)] = (murmur2(key) & 0x7FFFFFFF) % self._partition_counts[topic]
        return part

    def _send_dead_letter(
        self, error: ContractError, payload: bytes, topic: str, received: float, device: str | None, entry: _Pending
    ) -> None:
        self.metrics.dead_lettered.labels(error.reason.value).inc()
        letter = DeadLetter.of(
            error,
            bytes(payload),
            Stage.BRIDGE,
            datetime.fromtimestamp(received, UTC),
            mqtt_topic=topic[:1000],
            device=device,
        )
        self._send(self.dead_topic, (device or topic[:200]).encode(), letter.encode(), None, entry)

    # --- Kafka's delivery callbacks: on the ingress thread (confluent) or the sender thread (kafka-python) ---------

    def _send(self, topic: str, key: bytes, value: bytes, headers: Headers, entry: _Pending) -> None:
        entry.topic, entry.key, entry.value, entry.headers = topic, key, value, headers
        self.producer.send(topic, key, value, headers, self._partition(topic, key), entry)

    def _delivered(self, entry: _Pending, error: Exception | None) -> None:
        if error is None:
            self.metrics.kafka_latency.observe(time.time() - entry.received)
            entry.done = True
        elif entry.generation == self._generation and not self.stopping:
            log.warning("Kafka did not confirm a record for %s (%s); sending it again", entry.topic, error)
            self.metrics.kafka_resends.inc()
            self._send(entry.topic, entry.key, entry.value, entry.headers, entry)
        # otherwise that message's connection is gone, and the broker delivers it again

    def _acknowledge_ready(self) -> int:
        """Acknowledge, in arrival order, every message whose record Kafka confirmed; return how many."""
        acked: Counter[str] = Counter()
        mids = []
        with self._lock:
            pending = self._pending
            while pending and pending[0].done:
                entry = pending.popleft()
                if entry.generation == self._generation:
                    acked[entry.kind] += 1
                    if entry.qos:
                        mids.append(entry.mid)
        if mids:
            self.client.puback(mids)
        if self._received_counts:  # counted per message, handed to Prometheus per loop turn
            for device_topic, count in self._received_counts.items():
                self._received[device_topic].inc(count)
            self._received_counts.clear()
        total = sum(acked.values())
        if total:
            self.metrics.in_flight.set(len(self._pending))
            for kind, count in acked.items():
                if kind != "deadletter":
                    self.metrics.forwarded.labels(kind).inc(count)
        return total

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        """The ingress thread: paho's network loop, our acknowledgements, reconnects.

        Running paho's loop here rather than in ``loop_start()``'s thread lets publish and ack write to the socket
        directly; handing every packet to another Python thread was measured to cost about half the throughput.
        """
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.bridge.session_expiry_s
        props.ReceiveMaximum = self.bridge.receive_maximum
        client = self.client
        backoff = 0.0
        next_misc = 0.0
        connack_deadline = 0.0
        while not self._halt.is_set():
            if not client.is_connected() and (client.socket() is None or time.monotonic() > connack_deadline):
                # Not while a CONNECT awaits its CONNACK: a broker loading a large session for us answers late,
                # and a new CONNECT would throw that away (it once did, every loop turn, and nothing drained).
                if backoff:
                    self._halt.wait(backoff)
                connack_deadline = time.monotonic() + CONNACK_TIMEOUT_S
                try:
                    client.connect(
                        self.settings.host,
                        self.settings.port,
                        keepalive=self.settings.keepalive_s,
                        clean_start=False,
                        properties=props,
                    )
                except OSError as exc:
                    log.warning("bridge: MQTT broker unreachable (%s); retrying", exc)
                    backoff = min(5.0, max(0.5, backoff * 2))
                    continue
                backoff = 0.0
                client.flush()  # the CONNECT
            room = self.bridge.receive_maximum - self.unacknowledged
            if room > 0:
                # While records await Kafka, wake every 2 ms to acknowledge them promptly; idle, every 100 ms.
                rc = client.wait_and_read(0.002 if room < self.bridge.receive_maximum else 0.1, min(room, READ_BATCH))
            else:
                # Holding as many unacknowledged messages as we allow (Kafka is slow or away): stop reading, so
                # the broker keeps the rest in our session rather than our memory. Mosquitto 2.0 does not hold
                # to the Receive Maximum we announce once acknowledgements flow, so the bound is kept here.
                rc = client.loop_write()
                time.sleep(0.002)
            if rc == mqtt.MQTT_ERR_SUCCESS and time.monotonic() >= next_misc:
                next_misc = time.monotonic() + 0.5
                rc = client.loop_misc()  # keepalive
            self.producer.poll()
            self._acknowledge_ready()
            client.flush()
            if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                log.warning("bridge: MQTT connection lost (%s); reconnecting", mqtt.error_string(rc))
                self.connected.clear()
                backoff = max(backoff, 0.5)
        # Shutting down: acknowledge what Kafka confirmed, then leave (the session stays for our return).
        deadline = time.monotonic() + self._drain_s
        while time.monotonic() < deadline and client.is_connected():
            client.wait_and_read(0.01, READ_BATCH)  # what arrives now is left unacknowledged, to come again
            self.producer.poll()
            self._acknowledge_ready()
            client.flush()
            with self._lock:
                if not any(e.done for e in self._pending):
                    break
        if client.is_connected():
            client.disconnect()
            client.wait_and_read(0.1, READ_BATCH)

    @property
    def unacknowledged(self) -> int:
        with self._lock:
            return len(self._pending)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking messages, flush Kafka, acknowledge what it confirmed, disconnect (the session stays)."""
        self.stopping = True
        self.producer.flush(timeout_s)
        self._drain_s = 10.0
        self._halt.set()
        self._thread.join(timeout_s)
        self.producer.close()


class Egress:
    """Kafka ``recommendations`` -> MQTT, committing offsets only after the broker acknowledged."""

    def __init__(
        self, mqtt_settings: MqttSettings, kafka: KafkaSettings, bridge: BridgeSettings, metrics: BridgeMetrics
    ) -> None:
        self.settings = mqtt_settings
        self.metrics = metrics
        specs = topic_specs(kafka.topic_prefix, kafka.partitions)
        self.source_topic = specs[Topic.RECOMMENDATIONS].name
        self.dead_topic = specs[Topic.DEADLETTER].name
        self.consumer = KafkaConsumer(
            self.source_topic,
            bootstrap_servers=kafka.servers,
            group_id=f"{kafka.topic_prefix}.bridge-egress",
            client_id=f"{bridge.bridge_id}-egress",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # A bridge that died leaves the group within 10 s, so its partitions move to a live one soon.
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
        )
        self._dead_letter_errors: list[Exception] = []
        self.producer = KafkaPythonProducer(
            kafka,
            bridge,
            f"{bridge.bridge_id}-egress",
            lambda _token, error: self._dead_letter_errors.append(error) if error else None,
        )
        self.client = mqtt_client(f"smartfarm-{bridge.bridge_id}-egress", mqtt_settings, mqtt.Client)
        self.client.max_inflight_messages_set(1000)
        self._connections = 0
        self.client.on_connect = self._on_connect
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bridge-egress", daemon=True)
        self.error: BaseException | None = None

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if not reason.is_failure:
            self._connections += 1
            if self._connections > 1:
                self.metrics.reconnects.labels("egress").inc()

    def start(self) -> None:
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self.client.loop_start()
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                batch = self.consumer.poll(timeout_ms=200, max_records=500)
                if not batch:
                    continue
                infos = []
                for records in batch.values():
                    for record in records:
                        infos += self._forward(record)
                if self._await(infos):
                    self.consumer.commit()
        except BaseException as exc:  # surfaced by Bridge.run on the main thread
            self.error = exc
            raise

    def _forward(self, record: Any) -> list[mqtt.MQTTMessageInfo]:
        try:
            rec = Recommendation.decode(record.value or b"")
        except ContractError as exc:
            letter = DeadLetter.of(
                exc,
                record.value or b"",
                Stage.BRIDGE,
                datetime.now(UTC),
                source_topic=record.topic,
                source_partition=record.partition,
                source_offset=record.offset,
            )
            self.metrics.dead_lettered.labels(exc.reason.value).inc()
            self.producer.send(self.dead_topic, record.key or b"egress", letter.encode(), None, None, record.offset)
            self.producer.flush(60)
            if self._dead_letter_errors:  # never commit past a record that is neither on MQTT nor dead-lettered
                raise ServiceError(
                    f"dead-lettering {record.topic}@{record.offset} failed: {self._dead_letter_errors[0]}"
                ) from exc
            return []
        topic = self.settings.topics.recommendations(rec.farm, rec.zone)
        return [self.client.publish(topic, record.value, qos=1, retain=True)]

    def _await(self, infos: list[mqtt.MQTTMessageInfo]) -> bool:
        """Wait until the broker acknowledged every publish; False if we were stopped first (no commit)."""
        for info in infos:
            while not info.is_published():
                if self._stop.is_set():
                    return False
                time.sleep(0.005)
            self.metrics.egress_published.inc()
        return True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        # Bounded: leaving the group can wait on a rebalance that a killed predecessor's member still holds up.
        self.consumer.close(autocommit=False, timeout_ms=5000)
        self.producer.close()
        self.client.disconnect()
        self.client.loop_stop()


class Bridge:
    """Ingress, egress and the metrics endpoint of one bridge instance."""

    def __init__(self, mqtt_settings: MqttSettings, kafka: KafkaSettings, bridge: BridgeSettings) -> None:
        self.settings = bridge
        self.metrics = BridgeMetrics()
        ensure_topics(kafka)
        self.ingress = Ingress(mqtt_settings, kafka, bridge, self.metrics)
        self.egress = Egress(mqtt_settings, kafka, bridge, self.metrics) if bridge.egress else None
        self.metrics_port: int | None = None

    def start(self) -> None:
        self.metrics_port = self.metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
        self.ingress.start()
        if self.egress is not None:
            self.egress.start()

    def wait(self, stop: Stop) -> None:
        """Forward until ``stop`` is set; raise if egress failed."""
        while not stop.wait(0.5):
            if self.egress is not None and self.egress.error is not None:
                raise ServiceError(f"bridge egress failed: {self.egress.error}") from self.egress.error

    def run(self, stop: Stop) -> None:
        """Start, forward until ``stop`` is set, then shut down cleanly."""
        self.start()
        try:
            self.wait(stop)
        finally:
            self.stop()

    def stop(self) -> None:
        self.ingress.stop()
        if self.egress is not None:
            self.egress.stop()
        self.metrics.close()
