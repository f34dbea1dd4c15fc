"""The device side of the wire: MQTT topics, the telemetry payload and the status (birth / last-will) payload.

Topic scheme (``root`` defaults to ``smartfarm``; ``v1`` is the topic scheme's version)::

    {root}/v1/{farm}/devices/{device}/telemetry        device -> broker, QoS 1
    {root}/v1/{farm}/devices/{device}/status           device -> broker, QoS 1, retained (birth, will)
    {root}/v1/{farm}/zones/{zone}/recommendations      bridge -> broker, QoS 1, retained (latest per zone)

Devices are addressed by id, not by zone: a device keeps its topics when it is moved to another zone, and the
stream looks its zone up in the farm layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import Field, model_validator

from smartfarm.contract import Contract, Strict, Timestamp
from smartfarm.errors import ContractError, RejectReason
from smartfarm.layout import Identifier, SensorKind

TOPIC_VERSION = "v1"
_ID = r"[a-z0-9][a-z0-9-]{0,62}"


class DeviceTopic(StrEnum):
    """The kinds of message a device publishes."""

    TELEMETRY = "telemetry"
    """Readings of the device's sensors."""
    STATUS = "status"
    """Birth and last-will messages, retained."""


@dataclass(frozen=True, slots=True)
class Topics:
    """Builds and parses the topic names under one root."""

    root: str = "smartfarm"

    def device(self, farm: str, device: str, kind: DeviceTopic) -> str:
        return f"{self.root}/{TOPIC_VERSION}/{farm}/devices/{device}/{kind.value}"

    def telemetry(self, farm: str, device: str) -> str:
        return self.device(farm, device, DeviceTopic.TELEMETRY)

    def status(self, farm: str, device: str) -> str:
        return self.device(farm, device, DeviceTopic.STATUS)

    def recommendations(self, farm: str, zone: str) -> str:
        return f"{self.root}/{TOPIC_VERSION}/{farm}/zones/{zone}/recommendations"

    def device_filter(self, kind: DeviceTopic, farm: str = "+") -> str:
        """Subscription filter for one kind of device message on every device (of one farm, or all)."""
        return f"{self.root}/{TOPIC_VERSION}/{farm}/devices/+/{kind.value}"

    def parse_device_topic(self, topic: str) -> tuple[str, str, DeviceTopic]:
        """``(farm, device, kind)`` of a device topic; ContractError(UNKNOWN_TOPIC) for anything else."""
        pattern = rf"{re.escape(self.root)}/{TOPIC_VERSION}/({_ID})/devices/({_ID})/(telemetry|status)"
        match = re.fullmatch(pattern, topic)
        if match is None:
            raise ContractError(
                RejectReason.UNKNOWN_TOPIC, f"topic {topic!r} is not a device topic under {self.root!r}"
            )
        return match[1], match[2], DeviceTopic(match[3])


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


class DeviceState(StrEnum):
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
    state: DeviceState
    ts: Timestamp
    will: bool = Field(False, description="true when this is the last-will message")
    firmware: str | None = Field(None, max_length=64)
