"""What devices publish over MQTT: the telemetry payload and the status (birth / last-will) payload.

The topics they publish on are in ``smartfarm.topics``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Self

from pydantic import Field, field_validator, model_validator

from smartfarm.contract import Contract, Strict, Timestamp
from smartfarm.errors import RejectReason, reject
from smartfarm.identifiers import Identifier
from smartfarm.layout import SensorKind


class Reading(Strict):
    """One sensor's value inside a telemetry message. Its unit is fixed by its kind."""

    sensor: Identifier
    kind: SensorKind
    value: float = Field(strict=True)  # a number, not a string that looks like one


class Telemetry(Contract):
    """What a device publishes on its telemetry topic: the readings of several sensors taken at one time.

    ``seq`` counts the device's messages; with ``ts`` it lets the stream drop duplicates and restore order
    after store-and-forward.
    """

    MAX_BYTES: ClassVar[int] = 16 * 1024

    device: Identifier
    seq: int = Field(lt=2**63, strict=True)
    ts: Timestamp
    readings: tuple[Reading, ...] = Field(min_length=1, max_length=64)

    @field_validator("seq")
    @classmethod
    def _counts_from_zero(cls, seq: int) -> int:
        if seq < 0:
            raise reject(RejectReason.NEGATIVE_SEQUENCE, f"seq {seq} is negative; devices count messages from 0")
        return seq

    @model_validator(mode="after")
    def _one_reading_per_sensor(self) -> Self:
        seen: set[str] = set()
        for reading in self.readings:
            if reading.sensor in seen:
                raise reject(RejectReason.DUPLICATE_SENSOR, f"sensor {reading.sensor!r} appears more than once")
            seen.add(reading.sensor)
        return self


class ConnectionState(StrEnum):
    """A device's connection state as it announces it."""

    ONLINE = "online"
    """Published retained right after connecting (birth)."""
    OFFLINE = "offline"
    """Published retained on a clean disconnect, or by the broker as the last will when the device is lost."""


class Status(Contract):
    """What a device (or the broker, for its last will) publishes retained on its status topic.

    ``ts`` is when the message was composed; for a last will that is when the device connected, so consumers
    take the time the bridge received it (a Kafka header) as the moment the device was lost.
    """

    MAX_BYTES: ClassVar[int] = 4 * 1024

    device: Identifier
    state: ConnectionState
    ts: Timestamp
    will: bool = Field(False, description="true when this is the last-will message")
    firmware: str | None = Field(None, max_length=64)
