"""The Kafka side of the wire: topics, their partitioning keys, and the record models on each.

Every topic name is ``{prefix}.{name}`` (prefix ``smartfarm`` by default, so that tests and tenants can share
a cluster). Keys are UTF-8 strings; the key decides the partition, and so the order a consumer sees:

===================  =====================  =========================================================
topic                key                    value
===================  =====================  =========================================================
telemetry.raw        device id              the device's MQTT payload bytes, untouched; RawHeaders
readings.clean       device id              CleanReading (JSON)
deadletter           device id, else topic  DeadLetter (JSON)
zone.aggregates      ``{farm}/{zone}``      ZoneAggregate (JSON)
recommendations      ``{farm}/{zone}``      Recommendation (JSON)
device.status        device id              DeviceStatus (JSON), compacted: latest state per device
===================  =====================  =========================================================
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Self
from uuid import UUID

from pydantic import Base64Bytes, Field

from edge.contract import DeviceState
from smartfarm.contract import Contract, Strict, Timestamp
from smartfarm.errors import ContractError, RejectReason
from smartfarm.layout import Identifier, SensorKind


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A Kafka topic the pipeline owns."""

    name: str
    partitions: int
    compacted: bool = False
    retention_ms: int | None = None


class Topic(StrEnum):
    """The topics, by their name under the prefix."""

    TELEMETRY_RAW = "telemetry.raw"
    """Device payloads exactly as they arrived over MQTT, written by the bridge."""
    READINGS_CLEAN = "readings.clean"
    """One validated, layout-enriched reading per record, written by the cleaning agent."""
    DEADLETTER = "deadletter"
    """Everything refused anywhere in the pipeline, with the reason and the original bytes."""
    ZONE_AGGREGATES = "zone.aggregates"
    """Windowed per-zone statistics of each sensor kind."""
    RECOMMENDATIONS = "recommendations"
    """Advice for a zone: irrigation, sensor faults, frost / heat, disease risk, harvest timing."""
    DEVICE_STATUS = "device.status"
    """Device online / offline transitions (birth and last-will messages)."""


DEFAULT_PARTITIONS = 6
_WEEK_MS = 7 * 24 * 3600 * 1000


def topic_specs(prefix: str = "smartfarm", partitions: int = DEFAULT_PARTITIONS) -> dict[Topic, TopicSpec]:
    """The spec of every pipeline topic under ``prefix``."""
    return {
        Topic.TELEMETRY_RAW: TopicSpec(f"{prefix}.{Topic.TELEMETRY_RAW}", partitions, retention_ms=_WEEK_MS),
        Topic.READINGS_CLEAN: TopicSpec(f"{prefix}.{Topic.READINGS_CLEAN}", partitions, retention_ms=_WEEK_MS),
        Topic.DEADLETTER: TopicSpec(f"{prefix}.{Topic.DEADLETTER}", partitions, retention_ms=4 * _WEEK_MS),
        Topic.ZONE_AGGREGATES: TopicSpec(f"{prefix}.{Topic.ZONE_AGGREGATES}", partitions, retention_ms=_WEEK_MS),
        Topic.RECOMMENDATIONS: TopicSpec(f"{prefix}.{Topic.RECOMMENDATIONS}", partitions, retention_ms=4 * _WEEK_MS),
        Topic.DEVICE_STATUS: TopicSpec(f"{prefix}.{Topic.DEVICE_STATUS}", partitions, compacted=True),
    }


def zone_key(farm: str, zone: str) -> bytes:
    """The key of zone-scoped records: every record of one zone lands on one partition, in order."""
    return f"{farm}/{zone}".encode()


class RawHeaders(Strict):
    """Headers the bridge puts on each ``telemetry.raw`` record; the value is the payload, untouched."""

    mqtt_topic: str
    received_at: Timestamp
    bridge_id: str

    def to_kafka(self) -> list[tuple[str, bytes]]:
        return [
            ("mqtt_topic", self.mqtt_topic.encode()),
            ("received_at", self.received_at.isoformat().encode()),
            ("bridge_id", self.bridge_id.encode()),
        ]

    @classmethod
    def from_kafka(cls, headers: list[tuple[str, bytes]] | None) -> Self:
        try:
            found = {k: v.decode() for k, v in headers or []}
            return cls.model_validate(found)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ContractError(RejectReason.INVALID_PAYLOAD, f"raw record headers: {exc}") from exc


class CleanReading(Contract):
    """One sensor reading that passed cleaning, placed in its farm and zone."""

    MAX_BYTES: ClassVar[int] = 4 * 1024

    farm: Identifier
    zone: Identifier
    device: Identifier
    sensor: Identifier
    kind: SensorKind
    value: float
    unit: str
    ts: Timestamp
    seq: int = Field(ge=0)
    depth_cm: float | None = None


class Stage(StrEnum):
    """Where in the pipeline a record was refused."""

    BRIDGE = "bridge"
    """At the MQTT door: size, encoding, topic."""
    CLEAN = "clean"
    """In the cleaning agent: contract, layout, physical range."""


class DeadLetter(Contract):
    """A refused message: why, where, and its original bytes (base64 in JSON) so it can be replayed."""

    MAX_BYTES: ClassVar[int] = 512 * 1024

    reason: RejectReason
    detail: str = Field(max_length=2000)
    stage: Stage
    received_at: Timestamp
    payload: Base64Bytes
    mqtt_topic: str | None = None
    device: str | None = None
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None

    @classmethod
    def of(cls, error: ContractError, payload: bytes, stage: Stage, received_at: datetime, **where: object) -> Self:
        """The dead letter for ``payload`` refused with ``error``."""
        return cls.create(
            reason=error.reason,
            detail=error.detail[:2000],
            stage=stage,
            received_at=received_at,
            payload=base64.b64encode(payload),
            **where,
        )


class ZoneAggregate(Contract):
    """Statistics of one sensor kind over one zone and one tumbling window."""

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


class DeviceStatus(Contract):
    """A device's state change, from its status topic, placed in its farm."""

    MAX_BYTES: ClassVar[int] = 4 * 1024

    farm: Identifier
    device: Identifier
    state: DeviceState
    will: bool
    ts: Timestamp
    received_at: Timestamp
