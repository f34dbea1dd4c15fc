"""The bridge's door and router: what an MQTT message is and which Kafka record it becomes, without any I/O.

Telemetry is forwarded as the device sent it (the cleaning agent reads the contract); the door only refuses what
no later stage could use: payloads over the size limit or empty, bytes that are not UTF-8, topics outside the
scheme. Status messages are small and parsed here, into ``DeviceStatus`` records. Whatever is refused becomes a
``DeadLetter`` record with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from kafka.partitioner.default import murmur2

from smartfarm import envelope
from smartfarm.contract import check_bytes
from smartfarm.errors import ContractError, RejectReason
from smartfarm.records import DeadLetter, DeviceStatus, RawHeaders, RejectStage
from smartfarm.telemetry import Status
from smartfarm.topics import DeviceAddress, DeviceTopic, KafkaTopic, MqttTopics, TopicSpec
from stream.producer import Headers

CACHE_BOUND = 100_000
"""Entries a per-topic or per-key cache holds before it is cleared, should topics churn."""


class Door:
    """Checks messages under one topic root; fast enough for every message (a cache of the topics seen)."""

    def __init__(self, topics: MqttTopics, max_payload_bytes: int) -> None:
        self.topics = topics
        self.max_payload_bytes = max_payload_bytes
        self._known: dict[str, DeviceAddress] = {}  # valid topics seen: one per device and kind

    def topic(self, topic: str) -> DeviceAddress:
        """What a topic names; ContractError(UNKNOWN_TOPIC) for a topic outside the scheme."""
        known = self._known.get(topic)
        if known is None:
            if len(self._known) > CACHE_BOUND:
                self._known.clear()
            known = self._known[topic] = self.topics.parse_device(topic)
        return known

    def admit(self, topic: str, payload: bytes) -> DeviceAddress:
        """What ``topic`` carries; ContractError with the reason code when the message must be refused."""
        address = self.topic(topic)
        check_bytes(payload, self.max_payload_bytes, f"payload on {topic}")
        return address


def status_record(address: DeviceAddress, payload: bytes, received_at: datetime) -> DeviceStatus:
    """The ``device.status`` record of a status message; ContractError when it breaks the contract."""
    status = Status.decode(payload)
    if status.device != address.device:
        raise ContractError(
            RejectReason.INVALID_PAYLOAD,
            f"status of device {status.device!r} published on the topic of {address.device!r}",
        )
    return DeviceStatus.create(
        farm=address.farm,
        device=address.device,
        state=status.state,
        will=status.will,
        ts=status.ts,
        received_at=received_at,
    )


# The kinds of route as plain strings, and the enum member as a module constant: an enum's class attribute is a
# slower lookup, and hashing an enum member (the window and the metrics count by kind) is a Python-level call.
_TELEMETRY = DeviceTopic.TELEMETRY
TELEMETRY: str = DeviceTopic.TELEMETRY.value
STATUS: str = DeviceTopic.STATUS.value

DEADLETTER = "deadletter"
"""The ``kind`` of a route to the dead-letter topic (the others are ``DeviceTopic`` values)."""


class Route(NamedTuple):
    """The Kafka record one MQTT message becomes, and what kind of message it was (a tuple: one is made per
    message, and a frozen dataclass costs about a microsecond more to build)."""

    kind: str
    """``telemetry`` or ``status`` (the ``DeviceTopic``), or ``deadletter``."""
    topic: str
    key: bytes
    value: bytes
    headers: Headers
    partition: int
    reason: RejectReason | None = None
    """Why it was refused, on a route to the dead-letter topic."""


def partition_of(key: bytes, partitions: int) -> int:
    """Kafka's default partition of ``key`` (murmur2, as the Java client and kafka-python place it)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Router:
    """Routes each MQTT message the bridge receives to its Kafka record.

    Args:
        door: the checks every message passes.
        specs: the pipeline's Kafka topics.
        partitions: how many partitions each topic has (by name), as Kafka says.
        bridge_id: goes on every telemetry record as the ``bridge_id`` header.
    """

    def __init__(
        self, door: Door, specs: Mapping[KafkaTopic, TopicSpec], partitions: Mapping[str, int], bridge_id: str
    ) -> None:
        self.door = door
        self.raw_topic = specs[KafkaTopic.TELEMETRY_RAW].name
        self.status_topic = specs[KafkaTopic.DEVICE_STATUS].name
        self.dead_topic = specs[KafkaTopic.DEADLETTER].name
        self._partitions = dict(partitions)
        self._partition_of: dict[tuple[str, bytes], int] = {}
        self._bridge_header = (RawHeaders.BRIDGE_ID, bridge_id.encode())
        self._telemetry: dict[str, tuple[bytes, tuple[str, bytes]]] = {}
        self._received_ms = -1
        self._received_header = (RawHeaders.RECEIVED_AT, b"")

    def route(self, topic: str, payload: bytes, received: float) -> Route:
        """The record for a message on ``topic`` received at ``received`` (epoch seconds): telemetry untouched with
        its headers, a status as a ``DeviceStatus``, anything refused as a ``DeadLetter``."""
        try:
            address = self.door.admit(topic, payload)
        except ContractError as exc:
            return self.dead_letter(exc, payload, topic, received, self.door.topics.device_named(topic))
        if address.kind is _TELEMETRY:
            key, topic_header = self._telemetry_route(topic, address)
            headers = [topic_header, self._received_at(received), self._bridge_header]
            return Route(TELEMETRY, self.raw_topic, key, payload, headers, self._partition(self.raw_topic, key))
        try:
            record = status_record(address, payload, datetime.fromtimestamp(received, UTC))
        except ContractError as exc:
            return self.dead_letter(exc, payload, topic, received, address.device)
        key = address.device.encode()
        return Route(STATUS, self.status_topic, key, record.encode(), None, self._partition(self.status_topic, key))

    def dead_letter(
        self, error: ContractError, payload: bytes, topic: str, received: float, device: str | None
    ) -> Route:
        """The dead-letter record of a refused message, keyed by its device where the topic names one."""
        letter = DeadLetter.of(
            error,
            bytes(payload),
            RejectStage.BRIDGE,
            datetime.fromtimestamp(received, UTC),
            mqtt_topic=topic[:1000],
            device=device,
        )
        key = (device or topic[:200]).encode()
        partition = self._partition(self.dead_topic, key)
        return Route(DEADLETTER, self.dead_topic, key, letter.encode(), None, partition, error.reason)

    def _received_at(self, received: float) -> tuple[str, bytes]:
        """The ``received_at`` header, to the millisecond, formatted once per millisecond."""
        ms = int(received * 1000)
        if ms != self._received_ms:
            self._received_ms = ms
            stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
            self._received_header = (RawHeaders.RECEIVED_AT, stamp.encode())
        return self._received_header

    def _telemetry_route(self, topic: str, address: DeviceAddress) -> tuple[bytes, tuple[str, bytes]]:
        """The Kafka key and the ``mqtt_topic`` header of a telemetry topic, built once per topic."""
        route = self._telemetry.get(topic)
        if route is None:
            if len(self._telemetry) > CACHE_BOUND:
                self._telemetry.clear()
            route = self._telemetry[topic] = (address.device.encode(), (RawHeaders.TOPIC, topic.encode()))
        return route

    def _partition(self, topic: str, key: bytes) -> int:
        # Computed once per key: per-record murmur2 in pure Python is a measurable share of the bridge's CPU.
        part = self._partition_of.get((topic, key))
        if part is None:
            if len(self._partition_of) > CACHE_BOUND:
                self._partition_of.clear()
            part = self._partition_of[(topic, key)] = partition_of(key, self._partitions[topic])
        return part


class Parcel:
    """One envelope record of ``telemetry.raw`` and the received messages it carries (``tokens``, acknowledged
    together once Kafka confirms it)."""

    __slots__ = ("headers", "partition", "tokens", "value")

    def __init__(self, value: bytes, partition: int, headers: Headers, tokens: list[Any]) -> None:
        self.value = value
        self.partition = partition
        self.headers = headers
        self.tokens = tokens


class Packer:
    """Gathers telemetry routes per partition into envelopes (``smartfarm.envelope``). ``add`` each message as it
    comes; ``seal`` hands back the envelopes whose first message waited ``hold_s`` (all of them when ``hold_s`` is
    0). An envelope that would outgrow ``max_bytes`` is handed back at once and a new one begun, so per partition,
    envelopes leave in the order their messages came."""

    def __init__(self, bridge_id: str, hold_s: float, max_bytes: int = envelope.MAX_BYTES) -> None:
        self.hold_s = hold_s
        self.max_bytes = max_bytes
        self.headers: Headers = [
            (RawHeaders.BRIDGE_ID, bridge_id.encode()),
            (envelope.ENVELOPE_HEADER, envelope.ENVELOPE_VERSION),
        ]
        self._open: dict[int, _Open] = {}

    def add(self, route: Route, token: Any, now: float) -> Parcel | None:
        """Put a telemetry route in its partition's envelope; a full envelope to send now, if this one filled it."""
        headers = route.headers or []
        letter = (route.key, headers[0][1], headers[1][1], route.value)  # mqtt_topic, received_at (Router's order)
        size = envelope.frame_size(*letter)
        full = None
        current = self._open.get(route.partition)
        if current is not None and current.size + size > self.max_bytes:
            full = self._parcel(route.partition)
            current = None
        if current is None:
            current = self._open[route.partition] = _Open(now)
        current.letters.append(letter)
        current.tokens.append(token)
        current.size += size
        return full

    def seal(self, now: float, everything: bool = False) -> list[Parcel]:
        """The envelopes due (their first message waited ``hold_s``), or ``everything`` open."""
        due = [p for p, o in self._open.items() if everything or now - o.since >= self.hold_s]
        return [self._parcel(partition) for partition in due]

    def __len__(self) -> int:
        """Messages waiting in open envelopes."""
        return sum(len(o.tokens) for o in self._open.values())

    def _parcel(self, partition: int) -> Parcel:
        current = self._open.pop(partition)
        return Parcel(envelope.pack(current.letters), partition, self.headers, current.tokens)


class _Open:
    """An envelope being filled."""

    __slots__ = ("letters", "since", "size", "tokens")

    def __init__(self, since: float) -> None:
        self.since = since
        self.letters: list[tuple[bytes, bytes, bytes, bytes]] = []
        self.tokens: list[Any] = []
        self.size = 0
