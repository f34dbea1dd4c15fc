"""Faults a field device suffers, injected at configured rates and labelled in a ground-truth log.

Rates are per tick (one scheduled reading of one device): the chance that a fault starts at that tick. A fault
that lasts (stuck, drift, dropout, late delivery, battery death) cannot start again on the same device while
it lasts. The ground-truth log has one ``FaultRecord`` per occurrence, naming the device, the first affected
sequence number and how many ticks it covered, so tests and model evaluation can score against it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from smartfarm.contract import Timestamp
from smartfarm.identifiers import Identifier
from smartfarm.layout import SensorKind


class FaultKind(StrEnum):
    """The faults the simulator injects."""

    STUCK = "stuck"
    """A sensor repeats one value for a while."""
    SPIKE = "spike"
    """One reading of a sensor is far off."""
    DRIFT = "drift"
    """A sensor's offset grows slowly over many readings."""
    DROPOUT = "dropout"
    """The device is silent for a while; readings of that time are never taken."""
    BATTERY_DEATH = "battery_death"
    """The battery collapses over a few readings, then the device dies (its last will fires)."""
    DUPLICATE = "duplicate"
    """A message is published twice."""
    OUT_OF_ORDER = "out_of_order"
    """A message is published after the device's next one."""
    LATE = "late"
    """The device buffers its messages for a while and then delivers them all at once."""
    MALFORMED = "malformed"
    """The payload is broken: bad JSON, wrong types or unknown fields."""
    CLOCK_RESET = "clock_reset"
    """The device's real-time clock resets (a battery swap, no GNSS or NTP fix): its next messages are stamped from
    ``CLOCK_RESET_TO`` on, until it sets its clock again. The stream refuses them as ``stale_timestamp``."""


REFUSED = frozenset({FaultKind.MALFORMED, FaultKind.CLOCK_RESET})
"""Faults whose messages the stream refuses (dead-letters) by design: none of their readings is stored."""
CLOCK_RESET_TO = datetime(2000, 1, 1, tzinfo=UTC)
"""Where a reset clock starts counting (a common RTC default)."""


LASTING = frozenset({FaultKind.STUCK, FaultKind.DRIFT, FaultKind.DROPOUT, FaultKind.LATE, FaultKind.BATTERY_DEATH})
SENSOR_FAULTS = frozenset({FaultKind.STUCK, FaultKind.SPIKE, FaultKind.DRIFT})

# How many ticks a lasting fault covers (inclusive range); battery death is set by how fast the voltage falls.
DURATION: dict[FaultKind, tuple[int, int]] = {
    FaultKind.STUCK: (12, 48),
    FaultKind.DRIFT: (48, 288),
    FaultKind.DROPOUT: (6, 36),
    FaultKind.LATE: (6, 24),
    FaultKind.CLOCK_RESET: (3, 12),
}

# A spike's size and a drift's final offset, by sensor kind.
SPIKE: dict[SensorKind, float] = {
    SensorKind.AIR_TEMPERATURE: 25.0,
    SensorKind.AIR_HUMIDITY: 40.0,
    SensorKind.SOLAR_RADIATION: 600.0,
    SensorKind.WIND_SPEED: 20.0,
    SensorKind.RAINFALL: 30.0,
    SensorKind.SOIL_MOISTURE: 25.0,
    SensorKind.SOIL_TEMPERATURE: 20.0,
    SensorKind.LEAF_WETNESS: 80.0,
    SensorKind.BATTERY: 1.0,
}
DRIFT: dict[SensorKind, float] = {
    SensorKind.AIR_TEMPERATURE: 4.0,
    SensorKind.AIR_HUMIDITY: 15.0,
    SensorKind.SOLAR_RADIATION: 150.0,
    SensorKind.WIND_SPEED: 2.0,
    SensorKind.RAINFALL: 0.0,
    SensorKind.SOIL_MOISTURE: 8.0,
    SensorKind.SOIL_TEMPERATURE: 3.0,
    SensorKind.LEAF_WETNESS: 30.0,
    SensorKind.BATTERY: 0.0,
}


class FaultRates(BaseModel):
    """Per-tick probability that each fault starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stuck: float = Field(0.0005, ge=0, le=1)
    spike: float = Field(0.002, ge=0, le=1)
    drift: float = Field(0.0002, ge=0, le=1)
    dropout: float = Field(0.0005, ge=0, le=1)
    battery_death: float = Field(0.00002, ge=0, le=1)
    duplicate: float = Field(0.002, ge=0, le=1)
    out_of_order: float = Field(0.001, ge=0, le=1)
    late: float = Field(0.0005, ge=0, le=1)
    malformed: float = Field(0.001, ge=0, le=1)
    clock_reset: float = Field(0.0001, ge=0, le=1)

    @classmethod
    def none(cls) -> FaultRates:
        return cls(**{k: 0.0 for k in cls.model_fields})

    def rate(self, kind: FaultKind) -> float:
        return float(getattr(self, kind.value))


class FaultRecord(BaseModel):
    """One line of the ground-truth log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fault: FaultKind
    device: Identifier
    seq: int = Field(description="the first sequence number affected (for a dropout: the next one sent)")
    ts: Timestamp = Field(description="simulated time the fault started")
    ticks: int = Field(ge=1, description="how many ticks it covered")
    sensor: Identifier | None = None
    detail: str | None = None

    def line(self) -> str:
        return self.model_dump_json(exclude_none=True)

    def refused(self) -> list[tuple[str, int]]:
        """The (device, seq) of the messages this fault made the stream refuse; none for a fault it stores."""
        if self.fault not in REFUSED:
            return []
        return [(self.device, self.seq + i) for i in range(self.ticks)]


@dataclass(slots=True)
class Episode:
    """A lasting fault in progress on one device."""

    kind: FaultKind
    start: datetime
    seq: int
    ticks_total: int
    ticks_done: int = 0
    sensor: str | None = None
    value: float = 0.0
    """The stuck value, or the drift's final offset."""

    @property
    def progress(self) -> float:
        return self.ticks_done / self.ticks_total


def malformed_payload(variant: str, good: bytes, rng: random.Random) -> bytes:
    """A broken version of the ``good`` JSON payload."""
    if variant == "bad_json":
        cut = max(1, int(len(good) * rng.uniform(0.2, 0.9)))
        return good[:cut]
    doc = json.loads(good)
    if variant == "wrong_types":
        doc["seq"] = str(doc["seq"])
        doc["readings"][0]["value"] = "n/a"
    else:  # unknown_fields
        doc["firmware_debug"] = {"heap_free": rng.randint(1000, 9000)}
    return json.dumps(doc, separators=(",", ":")).encode()


MALFORMED_VARIANTS = ("bad_json", "wrong_types", "unknown_fields")
