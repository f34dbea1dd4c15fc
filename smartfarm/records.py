"""The Kafka side of the wire: the record models on the pipeline's topics (named and keyed in ``smartfarm.topics``)."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar, Self
from uuid import UUID

from pydantic import Base64Bytes, Field, model_validator

from smartfarm.contract import Contract, Strict, Timestamp, epoch_us
from smartfarm.errors import ContractError, RejectReason
from smartfarm.identifiers import Identifier
from smartfarm.layout import SensorKind
from smartfarm.telemetry import ConnectionState


class RawHeaders(Strict):
    """Headers the bridge puts on each ``telemetry.raw`` record; the value is the payload, untouched. The header
    names are spelled here only (``TOPIC``, ``RECEIVED_AT``, ``BRIDGE_ID``): the bridge's fast path builds its
    header tuples from them."""

    TOPIC: ClassVar[str] = "mqtt_topic"
    RECEIVED_AT: ClassVar[str] = "received_at"
    BRIDGE_ID: ClassVar[str] = "bridge_id"

    mqtt_topic: str
    received_at: Timestamp
    bridge_id: str

    def to_kafka(self) -> list[tuple[str, bytes]]:
        return [
            (self.TOPIC, self.mqtt_topic.encode()),
            (self.RECEIVED_AT, self.received_at.isoformat().encode()),
            (self.BRIDGE_ID, self.bridge_id.encode()),
        ]

    @classmethod
    def from_kafka(cls, headers: list[tuple[str, bytes]] | None) -> Self:
        try:
            found = {k: v.decode() for k, v in headers or []}
            return cls.model_validate(found)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ContractError(RejectReason.INVALID_PAYLOAD, f"raw record headers: {exc}") from exc


class Flag(StrEnum):
    """Why a reading is suspect. Suspect readings are kept and stored with their flags, never dropped."""

    OUT_OF_RANGE = "out_of_range"
    """Outside what a working sensor of its kind can report (``SensorKind.physical_range``)."""
    SPIKE = "spike"
    """A jump from the sensor's previous reading larger than its kind changes between two readings."""
    RATE_OF_CHANGE = "rate_of_change"
    """A change per hour from the previous reading faster than its kind changes in nature."""
    STUCK = "stuck"
    """The very same value as the sensor's last several readings, for a kind whose readings always wander."""


class Quality(StrEnum):
    """A reading's verdict."""

    GOOD = "good"
    """No check found anything wrong."""
    SUSPECT = "suspect"
    """At least one check flagged it; ``flags`` say which."""


class CleanValue(Strict):
    """One sensor's reading inside a ``CleanMessage``: its unit, and its quality with the flags behind it."""

    sensor: Identifier
    kind: SensorKind
    value: float
    unit: str
    quality: Quality
    flags: tuple[Flag, ...] = ()
    depth_cm: float | None = None

    @model_validator(mode="after")
    def _quality_follows_flags(self) -> Self:
        if (self.quality is Quality.SUSPECT) != bool(self.flags):
            raise ValueError("quality is suspect exactly when there are flags")
        return self


class CleanMessage(Contract):
    """One device message that passed cleaning, placed in its farm and zone: the record of ``readings.clean``.

    ``out_of_order``: a message with a higher sequence number of the device was already seen. ``late``: it arrived
    more than the worker's ``late_after_s`` after it was taken (store-and-forward after an outage).
    """

    MAX_BYTES: ClassVar[int] = 32 * 1024

    farm: Identifier
    zone: Identifier
    device: Identifier
    seq: int = Field(ge=0)
    ts: Timestamp
    received_at: Timestamp
    out_of_order: bool = False
    late: bool = False
    readings: tuple[CleanValue, ...] = Field(min_length=1, max_length=64)


class ZoneReadings(Contract):
    """The record of ``readings.clean``: the clean messages of one zone from one batch of the clean stage, each
    device's in order. One record per zone and batch rather than one per device message: a Faust worker pays
    about as much per record it sends or reads as it spends cleaning one (architecture.md, "Speed").

    ``MAX_BYTES`` stays under Kafka's default limit on a record (1 MiB); a batch with more of a zone's messages
    than fit is sent as several records (``pack``), in order.
    """

    MAX_BYTES: ClassVar[int] = 900 * 1024

    farm: Identifier
    zone: Identifier
    messages: tuple[CleanMessage, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_zone(self) -> Self:
        for m in self.messages:
            if (m.farm, m.zone) != (self.farm, self.zone):
                raise ValueError(f"message of {m.farm}/{m.zone} (device {m.device}) in {self.farm}/{self.zone}")
        return self

    @classmethod
    def pack(cls, farm: str, zone: str, encoded: list[bytes]) -> list[bytes]:
        """Records of the already encoded clean messages of one zone, in order, each within ``MAX_BYTES``: the
        bytes ``encode`` writes for the same messages (held alike in ``tests/unit/smartfarm/test_records.py``),
        without encoding each message a second time."""
        return [record for record, _ in cls.pack_parts(farm, zone, encoded)]

    @classmethod
    def pack_parts(cls, farm: str, zone: str, encoded: list[bytes]) -> list[tuple[bytes, range]]:
        """``pack``'s records, each with the indices (into ``encoded``) of the messages it holds."""
        head = b'{"schema_version":%d,"farm":"%s","zone":"%s","messages":[' % (
            cls.SCHEMA_VERSION,
            farm.encode(),  # identifiers need no JSON escaping: [a-z0-9-]
            zone.encode(),
        )
        room = cls.MAX_BYTES - len(head) - 2
        records: list[tuple[bytes, range]] = []
        first, size = 0, 0
        for i, message in enumerate(encoded):
            if i > first and size + len(message) + 1 > room:
                records.append((head + b",".join(encoded[first:i]) + b"]}", range(first, i)))
                first, size = i, 0
            size += len(message) + 1
        if first < len(encoded):
            records.append((head + b",".join(encoded[first:]) + b"]}", range(first, len(encoded))))
        return records


EVENT_TIMES_HEADER = "event_times"
"""A ``readings.clean`` record's header: the event time of each message it holds, in order, as whole microseconds
since the epoch in decimal, comma-separated (``1780000000000000,1780000300000000``). The zone agent needs only
these times (its windows are computed from the stored readings), and reading them here costs about a hundredth
of parsing the record; a record without the header is read from its body."""


def event_times_header(stamps: list[datetime]) -> bytes:
    """The ``event_times`` header value of messages stamped ``stamps`` (timezone-aware)."""
    return b",".join(b"%d" % epoch_us(t) for t in stamps)


def read_event_times(value: bytes) -> list[float]:
    """Epoch seconds from an ``event_times`` header, each the float ``datetime.timestamp()`` gives for the same
    instant; ValueError when it is not one."""
    return [int(t) / 1_000_000 for t in value.split(b",")]


class RejectStage(StrEnum):
    """Where in the pipeline a record was refused."""

    BRIDGE = "bridge"
    """At the MQTT door: size, encoding, topic."""
    CLEAN = "clean"
    """In the cleaning agent: contract, layout, physical range."""
    AGGREGATE = "aggregate"
    """In the zone agent: a clean record it cannot read (a bug upstream, kept for replay)."""
    STORE = "store"
    """Where a record is stored in InfluxDB: the database refused its points, or a device.status record the
    store-status agent cannot read."""
    FORECAST = "forecast"
    """Where the worker follows ``weather.forecast``: a record that is not a weather forecast of the farm it is
    keyed by."""


class DeadLetter(Contract):
    """A refused message: why, where, and its original bytes (base64 in JSON) so it can be replayed."""

    MAX_BYTES: ClassVar[int] = 512 * 1024

    reason: RejectReason
    detail: str = Field(max_length=2000)
    stage: RejectStage
    received_at: Timestamp
    payload: Base64Bytes
    mqtt_topic: str | None = None
    device: str | None = None
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None

    @classmethod
    def of(
        cls, error: ContractError, payload: bytes, stage: RejectStage, received_at: datetime, **where: object
    ) -> Self:
        """The dead letter for ``payload`` refused with ``error``."""
        return cls.create(
            reason=error.reason,
            detail=error.detail[:2000],
            stage=stage,
            received_at=received_at,
            payload=base64.b64encode(payload),
            **where,
        )

    @classmethod
    def of_record(cls, error: ContractError, record: Any, stage: RejectStage) -> Self:
        """The dead letter of a Kafka record (anything with value, topic, partition and offset) refused now."""
        return cls.of(
            error,
            record.value or b"",
            stage,
            datetime.now(UTC),
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
        )


class ZoneAggregate(Contract):
    """Statistics of the good readings of one sensor kind over one zone and one tumbling window, by event time.

    ``revision`` starts at 1 and grows each time late readings change a window already emitted: readers keep the
    record with the highest revision of each (farm, zone, kind, window_start, window_end)."""

    MAX_BYTES: ClassVar[int] = 4 * 1024

    farm: Identifier
    zone: Identifier
    kind: SensorKind
    window_start: Timestamp
    window_end: Timestamp
    count: int = Field(ge=1)
    mean: float
    min: float
    max: float
    last: float
    revision: int = Field(ge=1)

    @property
    def width_s(self) -> int:
        return int((self.window_end - self.window_start).total_seconds())

    @property
    def total(self) -> float:
        """The sum of the window's readings (mean x count): for rainfall, whose readings are each the rain since the
        device's previous message, the rain that fell in the window."""
        return self.mean * self.count


class ZoneDay(Contract):
    """One zone's day (in the farm's time zone): FAO-56 reference ET, growing degree days and what fed them.

    ``et0_mm`` is the daily ASCE standardized Penman-Monteith short reference (= FAO-56 grass), from the zone's
    hourly air temperature and humidity and, where the zone has no such sensors, the FAO-56 fallbacks (solar
    radiation from the temperature range, wind 2 m/s); ``estimated`` names what was filled in."""

    MAX_BYTES: ClassVar[int] = 4 * 1024

    farm: Identifier
    zone: Identifier
    day: date
    tmin: float
    tmax: float
    et0_mm: float = Field(ge=0)
    gdd: float = Field(ge=0, description="growing degree days of this day above the crop's base temperature")
    rain_mm: float | None = Field(None, ge=0)
    hours: int = Field(ge=1, le=25, description="hours of the day with air temperature")
    estimated: tuple[str, ...] = ()
    revision: int = Field(ge=1)


class RecommendationKind(StrEnum):
    """What a recommendation is about."""

    IRRIGATION = "irrigation"
    """Water the zone: ``amount_mm`` says how much."""
    SENSOR_FAULT = "sensor_fault"
    """A device's sensor looks broken: ``device`` and ``sensor`` say which."""
    FROST = "frost"
    """Frost is expected in the zone."""
    HEAT = "heat"
    """Heat stress is expected in the zone."""
    DISEASE_RISK = "disease_risk"
    """Leaf wetness and temperature favour fungal disease."""
    HARVEST = "harvest"
    """The crop is predicted ready: ``due`` says when."""


class Severity(StrEnum):
    """How urgently a farmer should look."""

    INFO = "info"
    """For the record; nothing to do now."""
    ADVISORY = "advisory"
    """Act within the day."""
    WARNING = "warning"
    """Act within hours."""
    CRITICAL = "critical"
    """Act now: crop or equipment at risk."""


class Recommendation(Contract):
    """Advice for one zone, made by a model from the zone's recent data."""

    MAX_BYTES: ClassVar[int] = 8 * 1024

    id: UUID
    farm: Identifier
    zone: Identifier
    kind: RecommendationKind
    severity: Severity
    issued_at: Timestamp
    valid_until: Timestamp
    message: str = Field(max_length=500)
    model: str = Field(max_length=100, description="name@version of the model that made it")
    confidence: float = Field(ge=0, le=1)
    amount_mm: float | None = Field(None, ge=0, description="irrigation only")
    device: Identifier | None = Field(None, description="sensor_fault only")
    sensor: Identifier | None = Field(None, description="sensor_fault only")
    due: Timestamp | None = Field(None, description="harvest only")
    start_at: Timestamp | None = Field(None, description="irrigation only: when the valve should open")
    supersedes: UUID | None = Field(None, description="an earlier recommendation this one replaces or cancels")
    window_end: Timestamp | None = Field(None, description="end of the closed window (event time) that made it")
    inputs: dict[str, float] = Field(default_factory=dict, description="the numbers behind the advice")


class AdviceStatus(StrEnum):
    """Where a recommendation stands with the people it was for."""

    OPEN = "open"
    """Issued, not decided on, not replaced."""
    ACCEPTED = "accepted"
    """A person accepted it: for an irrigation, its command went to the zone's valve."""
    DECLINED = "declined"
    """A person declined it: the advisor no longer counts its water as coming."""
    APPLIED = "applied"
    """The irrigation was applied (logged by hand, or reported by the valve)."""
    CANCELLED = "cancelled"
    """A later recommendation replaced or cancelled it."""


class IrrigationCommand(Contract):
    """An irrigation a person accepted through the API, for the zone's valve: on Kafka's ``commands`` topic, and
    over MQTT on the zone's commands topic. A valve takes each ``recommendation`` once, however often it hears of
    it (the recommendation itself, a command, a redelivery)."""

    MAX_BYTES: ClassVar[int] = 2 * 1024

    id: UUID
    recommendation: UUID
    farm: Identifier
    zone: Identifier
    amount_mm: float = Field(gt=0, le=500)
    start_at: Timestamp = Field(description="when the valve should open")
    valid_until: Timestamp = Field(description="a valve that hears of it later drops it")
    accepted_at: Timestamp
    accepted_by: str = Field(max_length=200, description="the API client that accepted it")


class DeviceStatus(Contract):
    """A device's state change, from its status topic, placed in its farm."""

    MAX_BYTES: ClassVar[int] = 4 * 1024

    farm: Identifier
    device: Identifier
    state: ConnectionState
    will: bool
    ts: Timestamp
    received_at: Timestamp
