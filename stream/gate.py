"""The bridge's door: what an MQTT message is and where it goes, decided without any I/O.

Telemetry is forwarded as the device sent it (the cleaning agent reads the contract); the door only refuses what
no later stage could use: payloads over the size limit or empty, bytes that are not UTF-8, topics outside the
scheme. Status messages are small and parsed here, into ``DeviceStatus`` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from edge.contract import TOPIC_VERSION, DeviceTopic, Status
from smartfarm.contract import check_bytes
from smartfarm.errors import ContractError, RejectReason
from stream.records import DeviceStatus

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _is_id(text: str) -> bool:
    return 0 < len(text) <= 63 and text[0] != "-" and set(text) <= _ID_CHARS


@dataclass(frozen=True, slots=True)
class Admitted:
    """A message the door lets through."""

    farm: str
    device: str
    kind: DeviceTopic


class Door:
    """Checks messages under one topic root; fast enough for every message (string splits, no regex)."""

    def __init__(self, topic_root: str, max_payload_bytes: int) -> None:
        self.root = topic_root
        self.max_payload_bytes = max_payload_bytes
        self._known: dict[str, Admitted] = {}  # valid topics seen: one per device and kind

    def topic(self, topic: str) -> Admitted:
        """What a topic names; ContractError(UNKNOWN_TOPIC) for a topic outside the scheme."""
        known = self._known.get(topic)
        if known is not None:
            return known
        parts = topic.split("/")
        if (
            len(parts) != 6
            or parts[0] != self.root
            or parts[1] != TOPIC_VERSION
            or parts[3] != "devices"
            or parts[5] not in ("telemetry", "status")
            or not _is_id(parts[2])
            or not _is_id(parts[4])
        ):
            raise ContractError(
                RejectReason.UNKNOWN_TOPIC, f"topic {topic!r} is not a device topic under {self.root!r}"
            )
        if len(self._known) > 100_000:
            self._known.clear()  # a bound, should topics churn
        known = self._known[topic] = Admitted(parts[2], parts[4], DeviceTopic(parts[5]))
        return known

    def device_of(self, topic: str) -> str | None:
        """The device a topic names, for keying a dead letter, when it names one."""
        parts = topic.split("/")
        return parts[4] if len(parts) == 6 and _is_id(parts[4]) else None

    def admit(self, topic: str, payload: bytes) -> Admitted:
        """What ``topic`` carries; ContractError with the reason code when the message must be refused."""
        admitted = self.topic(topic)
        check_bytes(payload, self.max_payload_bytes, f"payload on {topic}")
        return admitted


def status_record(admitted: Admitted, payload: bytes, received_at: datetime) -> DeviceStatus:
    """The ``device.status`` record of a status message; ContractError when it breaks the contract."""
    status = Status.decode(payload)
    if status.device != admitted.device:
        raise ContractError(
            RejectReason.INVALID_PAYLOAD,
            f"status of device {status.device!r} published on the topic of {admitted.device!r}",
        )
    return DeviceStatus.create(
        farm=admitted.farm,
        device=admitted.device,
        state=status.state,
        will=status.will,
        ts=status.ts,
        received_at=received_at,
    )
