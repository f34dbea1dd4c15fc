"""What devices publish over MQTT: the telemetry payload and the status (birth / last-will) payload.

The topics they publish on are in ``smartfarm.topics``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Self

from pydantic import Field, model_validator

from smartfarm.contract import Contract, Strict, Timestamp
from smartfarm.identifiers import Identifier
from smartfarm.layout import SensorKind


class Reading(Strict):
    """One sensor's value inside a telemetry message. Its unit is fixed by its kind."""

    sensor: Identifier
    kind: SensorKind
    value: float


class Telemetry(Contract):
    """What a device publishes on its telemetry topic: the readings of several sensors taken at one time.

    ``seq`` counts the device's messages; with ``ts`` it lets the stream drop duplicates and restore order
    after store-and-forward.
    """

    MAX_BYTES: ClassVar[int] = 16 * 1024

    device: Identifier
    seq: int = Field(ge=0, lt=2**63)
    ts: Timestamp
    readings: tuple[Reading, ...] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_reading_per_sensor(self) -> Self:
        sensors = [r.sensor for r in self.readings]
        if len(set(sensors)) != len(sensors):
            raise ValueError("readings: a sensor appears more than once")
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
