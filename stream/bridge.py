"""The bridge: device telemetry from MQTT into Kafka, recommendations from Kafka back onto MQTT.

Ingress is at-least-once end to end. The bridge subscribes through an MQTT 5 shared subscription with a
persistent session and acknowledges each message (paho manual ack) only once Kafka has confirmed its record with
acks=all; acknowledgements go out in the order the messages came in, as MQTT requires (``stream.acks``). While
Kafka is away nothing is acknowledged, the broker hands us at most ``receive_maximum`` unacknowledged messages (so
memory is bounded) and keeps the rest queued in our session; a record Kafka did not confirm in time is sent again.
Whatever is refused at the door goes to the dead-letter topic (``stream.gate``), and is acknowledged once that
record is confirmed.

Egress reads ``recommendations``, publishes each on its zone's topic with QoS 1, retained, and commits the Kafka
offsets only after the broker acknowledged every publish of the batch.

Constructors do no I/O: ``start()`` connects. The pipeline's Kafka topics must exist (``stream.admin``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

import paho.mqtt.client as mqtt
from kafka import KafkaConsumer
from kafka.errors import CommitFailedError, RebalanceInProgressError
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from smartfarm import kafkaclient
from smartfarm.errors import ContractError, ServiceError
from smartfarm.mqtt import Session, connect, mqtt_client
from smartfarm.records import DeadLetter, IrrigationCommand, Recommendation, RejectStage
from smartfarm.settings import KafkaSettings, MqttSettings
from smartfarm.stop import Stop
from smartfarm.topics import DeviceTopic, KafkaTopic, topic_specs
from stream.acks import AckWindow, Unacknowledged
from stream.gate import DEADLETTER, TELEMETRY, Door, Packer, Parcel, Route, Router
from stream.metrics import BridgeMetrics
from stream.mqttio import BatchingClient
from stream.producer import KafkaPythonProducer, RecordProducer, record_producer
from stream.settings import BridgeSettings

log = logging.getLogger(__name__)

READ_BATCH = 500
"""Packets handled per loop turn before Kafka's delivery reports are polled and acknowledgements written."""
CONNACK_TIMEOUT_S = 30.0
"""How long a CONNECT may wait for its CONNACK before the bridge connects again."""
MISC_EVERY_S = 0.5
"""How often paho's keepalive bookkeeping runs."""
EGRESS_POLL_MS = 200
"""How long the egress waits for recommendations and commands at a time."""
EGRESS_METADATA_MAX_AGE_MS = 10_000
"""How often the egress consumer refreshes its topic metadata (a missed assignment is mended within this)."""
EGRESS_METADATA_WAIT_S = 30.0
"""How long the egress waits at start for the recommendations topic's partitions to reach its metadata."""


class Ingress:
    """MQTT -> Kafka."""

    def __init__(
        self, mqtt_settings: MqttSettings, kafka: KafkaSettings, bridge: BridgeSettings, metrics: BridgeMetrics
    ) -> None:
        self.bridge = bridge
        self.kafka = kafka
        self.metrics = metrics
        self.settings = mqtt_settings
        self.door = Door(mqtt_settings.topics, bridge.max_payload_bytes)
        self.specs = topic_specs(kafka.topic_prefix, kafka.partitions)
        self.acks = AckWindow()
        self.stopping = False
        self.client = mqtt_client(mqtt_settings, f"smartfarm-{bridge.bridge_id}", cls=BatchingClient, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_publish_packet = self._on_publish
        self.connected = threading.Event()
        self._producer: RecordProducer | None = None
        self._router: Router | None = None
        self._packer: Packer | None = None
        self._halt = threading.Event()
        self._received = {kind.value: metrics.received.labels(kind.value) for kind in DeviceTopic}
        self._received_counts: Counter[str] = Counter()
        self._drain_s = 0.0
        self._turn_s = bridge.turn_ms / 1000
        self._turn_at = 0.0
        self._thread = threading.Thread(target=self._run, name="bridge-ingress", daemon=True)

    @property
    def producer(self) -> RecordProducer:
        if self._producer is None:
            raise RuntimeError("the ingress is not started")
        return self._producer

    # --- paho's network thread -------------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: object, flags: Any, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            log.error("the broker refused the bridge: %s", reason)
            return
        # Messages of the previous connection that we had not acknowledged are redelivered by the broker.
        if self.acks.new_connection() > 1:
            self.metrics.reconnects.labels("ingress").inc()
        self.metrics.in_flight.set(0)
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
        if self.stopping or self._router is None:
            return  # not acknowledged: the broker delivers it again, to us or another bridge
        received = self.client.read_at  # when its bytes came off the socket (one clock reading a read)
        if dup:
            self.metrics.redelivered.inc()
        route = self._router.route(topic, payload, received)
        if route.reason is not None:
            self.metrics.dead_lettered.labels(route.reason.value).inc()
        else:
            self._received_counts[route.kind] += 1
        entry = self.acks.track(mid, qos, received, route.kind, route)
        if self._packer is not None and route.kind == TELEMETRY:
            full = self._packer.add(route, entry, received)  # sent once it waited ``envelope_ms`` (or is full)
            if full is not None:
                self._send_parcel(full)
        else:
            self._send(entry)

    # --- Kafka's delivery callbacks: on the ingress thread (confluent) or the sender thread (kafka-python) ---------

    def _send(self, entry: Unacknowledged) -> None:
        route: Route = entry.record
        self.producer.send(route.topic, route.key, route.value, route.headers, route.partition, entry)

    def _send_parcel(self, parcel: Parcel) -> None:
        assert self._router is not None
        self.producer.send(self._router.raw_topic, None, parcel.value, parcel.headers, parcel.partition, parcel)

    def _seal(self, everything: bool = False) -> None:
        """Send the envelopes that waited long enough (``envelope_ms``), or all of them."""
        if self._packer is not None:
            for parcel in self._packer.seal(time.time(), everything):
                self._send_parcel(parcel)

    def _delivered(self, token: Unacknowledged | Parcel, error: Exception | None) -> None:
        """Kafka's answer for one record: a message's own, or an envelope's (its messages came in one loop turn, so
        on one connection: all current, or none)."""
        entries: list[Unacknowledged] = token.tokens if isinstance(token, Parcel) else [token]
        if error is None:
            now = time.time()
            for entry in entries:
                self.metrics.kafka_latency.observe(now - entry.received)
                entry.done = True
        elif self.acks.is_current(entries[0]) and not self.stopping:
            topic = entries[0].record.topic
            log.warning(
                "Kafka did not confirm a record for %s of %d message(s) (%s); sending it again",
                topic,
                len(entries),
                error,
            )
            self.metrics.kafka_resends.inc()
            if isinstance(token, Parcel):
                self._send_parcel(token)
            else:
                self._send(token)
        # otherwise that connection is gone, and the broker delivers its messages again

    def _acknowledge_ready(self) -> int:
        """Acknowledge, in arrival order, every message whose record Kafka confirmed; return how many."""
        released = self.acks.release()
        if released.mids:
            self.client.puback(released.mids)
        if self._received_counts:  # counted per message, handed to Prometheus per loop turn
            for kind, count in self._received_counts.items():
                self._received[kind].inc(count)
            self._received_counts.clear()
        if released.total:
            self.metrics.in_flight.set(len(self.acks))
            for kind, count in released.kinds.items():
                if kind != DEADLETTER:
                    self.metrics.forwarded.labels(kind).inc(count)
        return released.total

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the Kafka producer, learn the topics' partition counts, then start taking messages."""
        self._producer = record_producer(self.kafka, self.bridge, f"{self.bridge.bridge_id}-ingress", self._delivered)
        names = [
            self.specs[t].name for t in (KafkaTopic.TELEMETRY_RAW, KafkaTopic.DEVICE_STATUS, KafkaTopic.DEADLETTER)
        ]
        partitions = {name: self._producer.partitions(name) for name in names}
        self._router = Router(self.door, self.specs, partitions, self.bridge.bridge_id)
        envelope_s = self.bridge.envelope_ms / 1000
        self._packer = Packer(self.bridge.bridge_id, envelope_s) if self.bridge.envelope_ms > 0 else None
        self._thread.start()

    def _run(self) -> None:
        """The ingress thread: paho's network loop, our acknowledgements, reconnects.

        Running paho's loop here rather than in ``loop_start()``'s thread lets publish and ack write to the socket
        directly; handing every packet to another Python thread was measured to cost about half the throughput.
        """
        session = Session(self.bridge.session_expiry_s, self.bridge.receive_maximum)
        backoff = 0.0
        next_misc = 0.0
        connack_deadline = 0.0
        while not self._halt.is_set():
            if not self.client.is_connected() and (self.client.socket() is None or time.monotonic() > connack_deadline):
                # Not while a CONNECT awaits its CONNACK: a broker loading a large session for us answers late,
                # and a new CONNECT would throw that away (it once did, every loop turn, and nothing drained).
                if backoff:
                    self._halt.wait(backoff)
                connack_deadline = time.monotonic() + CONNACK_TIMEOUT_S
                backoff = self._connect(session, backoff)
                continue
            rc = self._turn()
            if rc == mqtt.MQTT_ERR_SUCCESS and time.monotonic() >= next_misc:
                next_misc = time.monotonic() + MISC_EVERY_S
                rc = self.client.loop_misc()  # keepalive
            if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                log.warning("bridge: MQTT connection lost (%s); reconnecting", mqtt.error_string(rc))
                self.connected.clear()
                backoff = max(backoff, 0.5)
        self._drain()

    def _connect(self, session: Session, backoff: float) -> float:
        """Send a CONNECT (resuming our session); return the back-off before the next attempt."""
        try:
            connect(self.client, self.settings, session, background=False)
        except OSError as exc:
            log.warning("bridge: MQTT broker unreachable (%s); retrying", exc)
            return min(5.0, max(0.5, backoff * 2))
        self.client.flush()  # the CONNECT
        return 0.0

    def _turn(self) -> mqtt.MQTTErrorCode:
        """One turn of the loop: read what the window has room for, hand Kafka's confirmations back as acks."""
        room = self.bridge.receive_maximum - len(self.acks)
        if room > 0:
            # While records await Kafka, a turn every ``turn_ms`` (waiting at most 2 ms for bytes, so that their
            # confirmations are acknowledged promptly); idle, wait up to 100 ms for the next message.
            awaiting = room < self.bridge.receive_maximum
            if awaiting and not self.client.has_buffered and not self.client.behind:
                self._pace()
            rc = self.client.wait_and_read(0.002 if awaiting else 0.1, min(room, READ_BATCH))
        else:
            # Holding as many unacknowledged messages as we allow (Kafka is slow or away): stop reading, so
            # the broker keeps the rest in our session rather than our memory. Mosquitto 2.0 does not hold
            # to the Receive Maximum we announce once acknowledgements flow, so the bound is kept here.
            rc = self.client.loop_write()
            time.sleep(0.002)
        self._seal()  # in either case: a full window may be waiting for its open envelopes to be sent
        self.producer.poll()
        self._acknowledge_ready()
        self.client.flush()
        return rc

    def _pace(self) -> None:
        """Under live load, begin a turn at most every ``turn_ms``, so that each takes what came meanwhile rather
        than waking for every message (a backlog, with bytes still waiting, is read at once)."""
        now = time.monotonic()
        if now < self._turn_at:
            time.sleep(self._turn_at - now)
            now = self._turn_at
        self._turn_at = now + self._turn_s

    def _drain(self) -> None:
        """Shutting down: acknowledge what Kafka confirmed, then leave (the session stays for our return)."""
        client = self.client
        deadline = time.monotonic() + self._drain_s
        if self._packer is not None and len(self._packer):
            self._seal(everything=True)  # the envelopes still open, and their confirmations
            self.producer.flush(self._drain_s)
        while time.monotonic() < deadline and client.is_connected():
            client.wait_and_read(0.01, READ_BATCH)  # what arrives now is left unacknowledged, to come again
            self.producer.poll()
            self._acknowledge_ready()
            client.flush()
            if not self.acks.any_confirmed():
                break
        if client.is_connected():
            client.disconnect()
            client.wait_and_read(0.1, READ_BATCH)

    @property
    def unacknowledged(self) -> int:
        return len(self.acks)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking messages, flush Kafka, acknowledge what it confirmed, disconnect (the session stays)."""
        self.stopping = True
        if self._producer is None:
            return
        self._producer.flush(timeout_s)
        self._drain_s = 10.0
        self._halt.set()
        self._thread.join(timeout_s)
        self._producer.close()


class Egress:
    """Kafka ``recommendations`` and ``commands`` -> MQTT, committing offsets only after the broker acknowledged.
    A recommendation is retained on its zone's recommendations topic (the latest per zone); an accepted
    irrigation's command is not retained (valves with a session get it once, and take each recommendation once)."""

    def __init__(
        self, mqtt_settings: MqttSettings, kafka: KafkaSettings, bridge: BridgeSettings, metrics: BridgeMetrics
    ) -> None:
        self.settings = mqtt_settings
        self.kafka = kafka
        self.bridge = bridge
        self.metrics = metrics
        specs = topic_specs(kafka.topic_prefix, kafka.partitions)
        self.source_topic = specs[KafkaTopic.RECOMMENDATIONS].name
        self.command_topic = specs[KafkaTopic.COMMANDS].name
        self.dead_topic = specs[KafkaTopic.DEADLETTER].name
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaPythonProducer | None = None
        self._dead_letter_errors: list[Exception] = []
        self.client = mqtt_client(mqtt_settings, f"smartfarm-{bridge.bridge_id}-egress")
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
        self._consumer = KafkaConsumer(
            **kafkaclient.kafka_python(self.kafka),
            group_id=f"{self.kafka.topic_prefix}.bridge-egress",
            client_id=f"{self.bridge.bridge_id}-egress",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # A bridge that died leaves the group within 10 s, so its partitions move to a live one soon.
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
            # A group joined while the topic's partitions were not yet in the leader's metadata is assigned
            # nothing ("No partition metadata for topic", dpkp/kafka-python#2377) until the metadata is next
            # refreshed, which kafka-python does every 5 minutes by default: recommendations would wait that long.
            metadata_max_age_ms=EGRESS_METADATA_MAX_AGE_MS,
        )
        self._await_partitions()
        self._consumer.subscribe([self.source_topic, self.command_topic])
        self._producer = KafkaPythonProducer(
            self.kafka,
            self.bridge,
            f"{self.bridge.bridge_id}-egress",
            lambda _token, error: self._dead_letter_errors.append(error) if error else None,
        )
        connect(self.client, self.settings, background=True)
        self.client.loop_start()
        self._thread.start()

    def _await_partitions(self) -> None:
        """Wait until this bridge's metadata lists its topics' partitions (created by
        ``stream.admin.ensure_topics`` just before, they can take a moment to reach it), so its first join is
        assigned them; past the wait it joins anyway and the metadata refresh catches up."""
        assert self._consumer is not None
        consumer = self._consumer
        deadline = time.monotonic() + EGRESS_METADATA_WAIT_S
        topics = (self.source_topic, self.command_topic)
        while not all(consumer.partitions_for_topic(t) for t in topics) and time.monotonic() < deadline:
            time.sleep(0.2)

    def _run(self) -> None:
        assert self._consumer is not None
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                batch = self._consumer.poll(timeout_ms=EGRESS_POLL_MS, max_records=500)
                if not batch:
                    # kafka-python 3.0.12's poll can come back at once with nothing, again and again: its
                    # network thread then spun a core (560-595 us of the bridge's CPU a message, in 2 of 11
                    # profiled runs at 1,000-2,000 msg/s). An empty poll takes its whole timeout.
                    self._stop.wait(began + EGRESS_POLL_MS / 1000 - time.monotonic())
                    continue
                infos = []
                for records in batch.values():
                    for record in records:
                        infos += self._forward(record)
                if self._await(infos):
                    self._commit()
        except BaseException as exc:  # surfaced by Bridge.wait on the main thread
            self.error = exc
            raise

    def _commit(self) -> None:
        """Commit what the broker acknowledged. A rebalance under way refuses the commit: the partitions' new owner
        (this bridge or another) publishes those records again, which every subscriber takes once by id."""
        assert self._consumer is not None
        try:
            self._consumer.commit()
        except (CommitFailedError, RebalanceInProgressError) as exc:
            log.warning("egress: commit refused by a rebalance (%s); the records are published again", exc)

    def _forward(self, record: Any) -> list[mqtt.MQTTMessageInfo]:
        try:
            if record.topic == self.command_topic:
                command = IrrigationCommand.decode(record.value or b"")
                topic = self.settings.topics.commands(command.farm, command.zone)
                return [self.client.publish(topic, record.value, qos=1, retain=False)]
            rec = Recommendation.decode(record.value or b"")
        except ContractError as exc:
            self._dead_letter(record, exc)
            return []
        topic = self.settings.topics.recommendations(rec.farm, rec.zone)
        return [self.client.publish(topic, record.value, qos=1, retain=True)]

    def _dead_letter(self, record: Any, exc: ContractError) -> None:
        """Dead-letter a record that is not a recommendation, and wait until Kafka has it."""
        assert self._producer is not None
        letter = DeadLetter.of_record(exc, record, RejectStage.BRIDGE)
        self.metrics.dead_lettered.labels(exc.reason.value).inc()
        self._producer.send(self.dead_topic, record.key or b"egress", letter.encode(), None, None, record.offset)
        self._producer.flush(60)
        if self._dead_letter_errors:  # never commit past a record that is neither on MQTT nor dead-lettered
            raise ServiceError(
                f"dead-lettering {record.topic}@{record.offset} failed: {self._dead_letter_errors[0]}"
            ) from exc

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
        if self._consumer is None or self._producer is None:
            return
        self._thread.join(30)
        # Bounded: leaving the group can wait on a rebalance that a killed predecessor's member still holds up.
        self._consumer.close(autocommit=False, timeout_ms=5000)
        self._producer.close()
        self.client.disconnect()
        self.client.loop_stop()


class Bridge:
    """Ingress, egress and the metrics endpoint of one bridge instance."""

    def __init__(self, mqtt_settings: MqttSettings, kafka: KafkaSettings, bridge: BridgeSettings) -> None:
        self.settings = bridge
        self.metrics = BridgeMetrics()
        self.ingress = Ingress(mqtt_settings, kafka, bridge, self.metrics)
        self.egress = Egress(mqtt_settings, kafka, bridge, self.metrics) if bridge.egress else None
        self.metrics_port: int | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://{self.settings.metrics_host}:{self.metrics_port}/metrics"

    def start(self) -> None:
        self.metrics_port = self.metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
        self.ingress.start()
        if self.egress is not None:
            self.egress.start()

    def wait(self, stop: Stop) -> None:
        """Forward until ``stop`` is set; raise if egress failed."""
        while not stop.wait(0.5):
            self.check()

    def check(self) -> None:
        """Raise if egress failed."""
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
