"""Cleaning, without any I/O: a raw device message in; a clean message, a dead letter or a dropped duplicate out.

What is refused (a dead letter with its reason; nothing else is dropped but exact duplicates):
- whatever breaks the telemetry contract (``Telemetry.decode`` gives the reason: invalid JSON, a negative sequence
  number, the same sensor twice, ...), or the bridge's headers;
- a payload whose ``device`` differs from the device (or farm) of the MQTT topic it came on;
- a device that is not in the farm layout, or a reading of a sensor the device does not have (or of another kind);
- a timestamp further in the future of its receipt than clocks drift (``max_future_s``), or further in its past
  than the database keeps (``max_past_s``: a device whose clock reset). Both are judged before the device's memory
  sees the message, so a clock that jumps back and forward again leaves its duplicate memory as it was.

What is flagged (kept, with quality ``suspect`` and the reasons, so a reader can still see it): a value outside
the sensor's physical range, a spike (a jump from the sensor's last good value larger than its kind makes between
two readings), an implausible rate of change, a stuck sensor (the very same value several times in a row, for
kinds whose readings always wander).

Per-device state (``DeviceMemory``) holds what cleaning needs to remember and is small and JSON-serialisable, so
the agent keeps it in a changelog-backed table. Duplicates are found by (device, seq): the memory keeps the
highest sequence number seen and the gaps below it, so a message is new exactly once, however often a crashed
bridge or QoS 1 sends it again. A message that fills a gap is accepted and marked ``out_of_order``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smartfarm.envelope import EnvelopeError, is_envelope, unpack
from smartfarm.errors import ClockError, ContractError, RejectReason
from smartfarm.layout import Layout, Placement, SensorKind
from smartfarm.records import CleanMessage, CleanValue, DeadLetter, Flag, Quality, RawHeaders, RejectStage
from smartfarm.sensing import MOTION
from smartfarm.telemetry import Reading, Telemetry
from smartfarm.topics import MqttTopics

log = logging.getLogger(__name__)

SPIKE_STEP = {kind: m.spike_step for kind, m in MOTION.items() if m.spike_step is not None}
"""A one-way jump from the sensor's last good value this large is a spike (``Motion.spike_step``)."""

SPIKE_WITHIN_S = 3600.0
"""Jumps over longer gaps than this are not judged: an hour's silence can hide a real change."""

MAX_RATE_PER_H = {kind: m.max_rate_per_h for kind, m in MOTION.items() if m.max_rate_per_h is not None}
"""Faster per hour than nature changes this kind (``Motion.max_rate_per_h``)."""

STUCK_KINDS = frozenset(kind for kind, m in MOTION.items() if m.never_rests)
"""Kinds whose exact repeats mean a stuck sensor (``Motion.never_rests``)."""

NEW_LEVEL_AFTER = 3
"""After this many spikes in a row, the new level is believed (a re-mounted sensor) and becomes the reference."""

MAX_GAPS = 10_000
"""Missing sequence numbers remembered per device; older gaps are forgotten (their messages count as duplicates)."""

FIRST_GAPS = 64
"""Below the first message seen from a device, this many sequence numbers may still arrive (a swapped pair)."""


@dataclass(frozen=True, slots=True)
class CleanRules:
    """Thresholds of one cleaning stage (from the worker's settings).

    Args:
        max_future_s: a message stamped further than this after its receipt is refused.
        max_past_s: a message stamped further than this before its receipt is refused (the database would not keep
            it; a clock reset stamps 1970 or 2000).
        late_after_s: a message received more than this after its timestamp is marked late.
        stuck_after: this many identical readings in a row before the next identical one is flagged stuck.
    """

    max_future_s: float = 600.0
    max_past_s: float = 364 * 86400.0
    late_after_s: float = 900.0
    stuck_after: int = 6


@dataclass(slots=True)
class SensorTrack:
    """What cleaning remembers of one sensor: its last good value, its last value and how often it repeated."""

    good: float | None = None
    good_ts: float = 0.0
    last: float | None = None
    repeats: int = 0
    spikes: int = 0


@dataclass(slots=True)
class DeviceMemory:
    """What cleaning remembers of one device, between messages and across worker restarts."""

    max_seq: int = -1
    gaps: set[int] = field(default_factory=set)
    newest_ts: float = float("-inf")
    epoch_ts: float = float("-inf")
    """When the device last restarted its count: older messages belong to the count before, already seen."""
    sensors: dict[str, SensorTrack] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "max_seq": self.max_seq,
            "gaps": sorted(self.gaps),
            "newest_ts": _finite(self.newest_ts),
            "epoch_ts": _finite(self.epoch_ts),
            "sensors": {k: [t.good, t.good_ts, t.last, t.repeats, t.spikes] for k, t in sorted(self.sensors.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceMemory:
        return cls(
            max_seq=int(data["max_seq"]),
            gaps=set(data.get("gaps", ())),
            newest_ts=_unfinite(data.get("newest_ts")),
            epoch_ts=_unfinite(data.get("epoch_ts")),
            sensors={k: SensorTrack(*v) for k, v in data.get("sensors", {}).items()},
        )

    def admit(self, seq: int, ts: float) -> bool | None:
        """Record ``seq``: True if new and in order, False if new but out of order (it fills a gap), None if a
        duplicate. A sequence number at or below the highest seen that is no gap, on a message newer than any seen,
        means the device restarted its count: its history starts over, and what is older than that message counts
        as seen (the previous count's messages cannot be told apart from this one's)."""
        if ts < self.epoch_ts:
            return None
        if seq > self.max_seq:
            if self.max_seq < 0:  # the first message seen: only a few stragglers from before it are expected
                self.gaps.update(range(max(0, seq - FIRST_GAPS), seq))
            elif seq - self.max_seq > 1:
                first = max(self.max_seq + 1, seq - MAX_GAPS)
                self.gaps.update(range(first, seq))
                if len(self.gaps) > MAX_GAPS:
                    self.gaps = set(sorted(self.gaps)[-MAX_GAPS:])
            self.max_seq = seq
            self.newest_ts = max(self.newest_ts, ts)
            return True
        if seq in self.gaps:
            self.gaps.discard(seq)
            return False
        if ts > self.newest_ts:
            self.max_seq, self.gaps, self.newest_ts, self.epoch_ts = seq, set(), ts, ts
            return True
        return None


def _finite(x: float) -> float | None:
    return None if x == float("-inf") else x


def _unfinite(x: float | None) -> float:
    return float("-inf") if x is None else float(x)


@dataclass(frozen=True, slots=True)
class Refused:
    """A message cleaning refused, as its dead letter."""

    letter: DeadLetter
    key: bytes
    clock: ClockError | None = None
    """For a message refused for its timestamp: how far its clock is off (the device's clock is suspect)."""


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A message already cleaned once: dropped and counted."""

    device: str
    seq: int


@dataclass(frozen=True, slots=True)
class Cleaned:
    """A message that passed, with how many of its readings each flag marked."""

    message: CleanMessage
    flags: dict[Flag, int]


Outcome = Cleaned | Duplicate | Refused


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One ``telemetry.raw`` record as cleaning needs it."""

    value: bytes
    headers: list[tuple[str, bytes]] | None
    topic: str = ""
    partition: int = -1
    offset: int = -1


class Cleaner:
    """Cleans the messages of the devices in one farm layout."""

    def __init__(self, layout: Layout, rules: CleanRules = CleanRules()) -> None:
        self.rules = rules
        self.use(layout)

    def use(self, layout: Layout) -> None:
        """Clean by ``layout`` from now on (a device registered or retired, a zone added, while running)."""
        placements: dict[str, Placement] = layout.placements
        self.sensors = {d: {s.id: s for s in p.device.sensors} for d, p in placements.items()}
        """Every device's sensors by id, looked up for each reading."""
        self._depths = {d: {s.id: s.depth_cm for s in p.device.sensors} for d, p in placements.items()}
        self.placements = placements

    def clean(self, raw: RawMessage, memory: DeviceMemory) -> Outcome:
        """The outcome of one raw message; ``memory`` (of the device the topic names) is updated in place.

        Whatever the bytes, this returns: a message that makes the cleaning code itself fail is dead-lettered
        (``invalid_payload``, the error in the detail, logged) rather than stopping the stream."""
        try:
            return self._clean(raw, memory)
        except Exception as exc:
            log.exception("cleaning failed on %s[%s]@%s", raw.topic, raw.partition, raw.offset)
            return self._refuse(ContractError(RejectReason.INVALID_PAYLOAD, f"cleaning failed: {exc!r}"), raw)

    def _clean(self, raw: RawMessage, memory: DeviceMemory) -> Outcome:
        try:
            headers = RawHeaders.from_kafka(raw.headers)
            telemetry = Telemetry.decode(raw.value)
            placement = self._placement(telemetry, headers)
        except ContractError as exc:
            return self._refuse(exc, raw)
        received = headers.received_at.timestamp()
        ts = telemetry.ts.timestamp()
        in_order = memory.admit(telemetry.seq, ts)
        if in_order is None:
            return Duplicate(telemetry.device, telemetry.seq)
        flags: dict[Flag, int] = {}
        depths = self._depths[telemetry.device]
        values = tuple(self._value(depths, r, ts, memory, in_order, flags) for r in telemetry.readings)
        message = CleanMessage.trusted(
            schema_version=CleanMessage.SCHEMA_VERSION,
            farm=placement.farm.id,
            zone=placement.zone.id,
            device=telemetry.device,
            seq=telemetry.seq,
            ts=telemetry.ts,
            received_at=headers.received_at,
            out_of_order=not in_order,
            late=received - ts > self.rules.late_after_s,
            readings=values,
        )
        return Cleaned(message, flags)

    def _placement(self, telemetry: Telemetry, headers: RawHeaders) -> Placement:
        """Where the device sits; ContractError when the message does not fit its topic, the layout or the clock."""
        farm, topic_device = MqttTopics.farm_and_device_named(headers.mqtt_topic) or ("", None)
        if topic_device != telemetry.device:
            raise ContractError(
                RejectReason.DEVICE_MISMATCH,
                f"payload of device {telemetry.device!r} published on {headers.mqtt_topic!r}",
            )
        placement = self.placements.get(telemetry.device)
        if placement is None:
            raise ContractError(RejectReason.UNKNOWN_DEVICE, f"device {telemetry.device!r} is not in the layout")
        if farm != placement.farm.id:
            raise ContractError(
                RejectReason.DEVICE_MISMATCH,
                f"device {telemetry.device!r} belongs to farm {placement.farm.id!r}, not {farm!r}",
            )
        ahead = (telemetry.ts - headers.received_at).total_seconds()
        if ahead > self.rules.max_future_s:
            raise ClockError(
                RejectReason.FUTURE_TIMESTAMP,
                f"ts {telemetry.ts.isoformat()} is {ahead:.0f} s after its receipt; at most "
                f"{self.rules.max_future_s:.0f} s of clock drift is accepted",
                ahead,
                telemetry.seq,
            )
        if -ahead > self.rules.max_past_s:
            raise ClockError(
                RejectReason.STALE_TIMESTAMP,
                f"ts {telemetry.ts.isoformat()} is {-ahead / 86400:.1f} days before its receipt at "
                f"{headers.received_at.isoformat()}; at most {self.rules.max_past_s / 86400:.1f} days are kept "
                "(the database's retention): the device's clock looks reset, set it (NTP, GNSS) or stamp readings "
                "on receipt",
                ahead,
                telemetry.seq,
            )
        sensors = self.sensors[telemetry.device]
        for reading in telemetry.readings:
            sensor = sensors.get(reading.sensor)
            if sensor is None or sensor.kind is not reading.kind:
                have = "no such sensor" if sensor is None else f"its sensor {sensor.id!r} measures {sensor.kind}"
                raise ContractError(
                    RejectReason.UNKNOWN_SENSOR,
                    f"device {telemetry.device!r} sent {reading.kind} from sensor {reading.sensor!r}: {have}",
                )
        return placement

    def _value(
        self,
        depths: dict[str, float | None],
        reading: Reading,
        ts: float,
        memory: DeviceMemory,
        in_order: bool,
        counts: dict[Flag, int],
    ) -> CleanValue:
        """One reading with its flags; the sensor's track moves on only with messages that come in order."""
        track = memory.sensors.get(reading.sensor)
        if track is None:
            track = memory.sensors[reading.sensor] = SensorTrack()
        flags = judge(reading.kind, reading.value, ts, track, self.rules.stuck_after)
        if in_order:
            advance(track, reading.value, ts, flags)
        for flag in flags:
            counts[flag] = counts.get(flag, 0) + 1
        return CleanValue.trusted(
            sensor=reading.sensor,
            kind=reading.kind,
            value=float(reading.value),  # JSON 3 is a float reading; InfluxDB must never see an integer field
            unit=_UNITS[reading.kind],
            quality=_SUSPECT if flags else _GOOD,
            flags=flags,
            depth_cm=depths[reading.sensor],
        )

    @staticmethod
    def _refuse(error: ContractError, raw: RawMessage) -> Refused:
        return refusal(error, raw, RejectStage.CLEAN)


def refusal(error: ContractError, raw: RawMessage, stage: RejectStage) -> Refused:
    """The dead letter of a raw device message refused at ``stage``: its bytes, MQTT topic, device, receipt
    and Kafka position, as far as its headers say."""
    topic, received = _where(raw.headers)
    device = MqttTopics.device_named(topic) if topic else None
    letter = DeadLetter.of(
        error,
        raw.value,
        stage,
        received,
        mqtt_topic=topic[:1000] if topic else None,
        device=device,
        source_topic=raw.topic or None,
        source_partition=raw.partition if raw.partition >= 0 else None,
        source_offset=raw.offset if raw.offset >= 0 else None,
    )
    clock = error if isinstance(error, ClockError) else None
    return Refused(letter, (device or topic[:200] or "unknown").encode(), clock)


_UNITS = {kind: kind.unit for kind in SensorKind}
_RANGES = {kind: kind.physical_range for kind in SensorKind}
_GOOD, _SUSPECT = Quality.GOOD, Quality.SUSPECT  # module constants: an enum's class attribute is a slower lookup


def opened(key: bytes, raw: RawMessage) -> list[tuple[bytes, RawMessage]] | Refused:
    """The device messages of one ``telemetry.raw`` record (``smartfarm.envelope``), each as a record of its own
    would be (its key, payload and headers; the envelope's position), or the dead letter of a broken envelope
    (all its bytes kept). A record that is no envelope is one message."""
    if not is_envelope(raw.headers):
        return [(key, raw)]
    try:
        letters = unpack(raw.value)
    except EnvelopeError as exc:
        return Cleaner._refuse(ContractError(RejectReason.INVALID_PAYLOAD, f"envelope unreadable: {exc}"), raw)
    bridge = next((v for k, v in raw.headers or () if k == RawHeaders.BRIDGE_ID), b"")
    where = (raw.topic, raw.partition, raw.offset)
    return [
        (
            letter.key,
            RawMessage(
                letter.payload,
                [
                    (RawHeaders.TOPIC, letter.topic),
                    (RawHeaders.RECEIVED_AT, letter.received_at),
                    (RawHeaders.BRIDGE_ID, bridge),
                ],
                *where,
            ),
        )
        for letter in letters
    ]


def judge(kind: SensorKind, value: float, ts: float, track: SensorTrack, stuck_after: int) -> tuple[Flag, ...]:
    """The flags of one reading against its sensor's track."""
    flags: list[Flag] = []
    low, high = _RANGES[kind]
    if not low <= value <= high:
        flags.append(Flag.OUT_OF_RANGE)
    apart = abs(ts - track.good_ts)  # an out-of-order reading is judged against the newer good one
    if track.good is not None and 0 < apart <= SPIKE_WITHIN_S:
        step = abs(value - track.good)
        spike = SPIKE_STEP.get(kind)
        rate = MAX_RATE_PER_H.get(kind)
        if spike is not None and step >= spike:
            flags.append(Flag.SPIKE)
        elif rate is not None and step / (apart / 3600) > rate:
            flags.append(Flag.RATE_OF_CHANGE)
    if kind in STUCK_KINDS and value == track.last and track.repeats >= stuck_after - 1:
        flags.append(Flag.STUCK)
    return tuple(flags)


def advance(track: SensorTrack, value: float, ts: float, flags: tuple[Flag, ...]) -> None:
    """Move a sensor's track on by one reading in order."""
    track.repeats = track.repeats + 1 if value == track.last else 0
    track.last = value
    jumped = Flag.SPIKE in flags or Flag.RATE_OF_CHANGE in flags
    track.spikes = track.spikes + 1 if jumped else 0
    if Flag.OUT_OF_RANGE in flags:
        return
    if not jumped or track.spikes >= NEW_LEVEL_AFTER:
        track.good, track.good_ts = value, ts
        if jumped:
            track.spikes = 0


def _where(headers: list[tuple[str, bytes]] | None) -> tuple[str, datetime]:
    """The MQTT topic and receipt time of a raw record, as far as its headers say (for a dead letter)."""
    found = {k: v for k, v in headers or []}
    topic = found.get(RawHeaders.TOPIC, b"").decode("utf-8", "replace")
    try:
        received = datetime.fromisoformat(found.get(RawHeaders.RECEIVED_AT, b"").decode())
    except (UnicodeDecodeError, ValueError):
        received = datetime.now().astimezone()
    if received.tzinfo is None:
        received = received.astimezone()
    return topic, received
