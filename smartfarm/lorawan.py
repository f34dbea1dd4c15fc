"""LoRaWAN uplinks as network servers hand them over, and the per-device decoder that makes them ``Telemetry``.

Pure: no I/O. The farm API's webhooks (``api.ingest``) read a network server's uplink with the models here, find
the device's ``LorawanBinding`` in the farm registry and call ``telemetry`` to get the message an MQTT device would
have published; from there it takes the MQTT door's path (``telemetry.raw``, the worker's cleaning, dead letters and
dedup by device and ``seq``).

The two formats, field for field as their documentation gives them (architecture.md cites the sources):

- ChirpStack v4, HTTP integration, JSON marshaler: the event type is the ``event`` query parameter; an ``up`` event
  is the ``UplinkEvent`` message in the Protocol Buffers JSON mapping: ``deviceInfo.devEui`` (hex), ``fCnt``,
  ``fPort``, ``time``, ``data`` (base64) and ``object`` (set only when the device profile has a codec). Proto3 JSON
  leaves out fields at their default, so an absent ``fCnt``, ``fPort`` or ``data`` is 0 or empty.
- The Things Stack v3 uplink message: ``end_device_ids.device_id`` and ``.dev_eui``, ``received_at`` (Application
  Server), ``uplink_message.f_cnt``, ``.f_port``, ``.frm_payload`` (base64), ``.decoded_payload`` (the payload
  formatter's output) and ``.received_at`` (Network Server). Empty fields are omitted here too.

The frame counter becomes ``seq``; the network server's receive time becomes ``ts`` (ChirpStack's ``time``, The
Things Stack's ``uplink_message.received_at``, else its ``received_at``, else when the API received it).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smartfarm.contract import Strict, describe, reason_of
from smartfarm.errors import ContractError, RejectReason
from smartfarm.identifiers import Identifier
from smartfarm.layout import SensorKind
from smartfarm.telemetry import Telemetry

EUI_PATTERN = r"^[0-9A-Fa-f]{16}$"
"""A DevEUI: an EUI-64 in hex. Kept lower-case in the registry, compared without regard to case."""
TTS_ID_PATTERN = r"^[a-z0-9](?:-?[a-z0-9]){2,35}$"
"""The Things Stack's end device id: 3 to 36 lower-case letters, digits and single dashes."""
MAX_FCNT = 2**32
"""LoRaWAN frame counters are 32 bits."""


class Decoder(StrEnum):
    """How a LoRaWAN device's uplink becomes readings."""

    DECODED = "decoded"
    """The object the network server decoded (ChirpStack ``object``, The Things Stack ``decoded_payload``): each
    ``fields`` key is a field's path (dots for nesting) and its value our sensor id; without ``fields``, the
    object's top-level keys that name a sensor of the device are read."""
    CAYENNE_LPP = "cayenne_lpp"
    """The raw payload in Cayenne Low Power Payload: ``fields`` maps a channel number to our sensor id."""


class LorawanBinding(Strict):
    """What the farm registry keeps for a LoRaWAN device: how the network server names it and how to decode it."""

    dev_eui: str | None = Field(None, pattern=EUI_PATTERN, description="DevEUI, 16 hex digits")
    tts_device_id: str | None = Field(
        None, pattern=TTS_ID_PATTERN, description="The Things Stack end device id, for devices without a DevEUI"
    )
    decoder: Decoder = Field(Decoder.DECODED, description="decoded: the network server's object; cayenne_lpp")
    fields: dict[str, Identifier] = Field(
        default_factory=dict,
        max_length=64,
        description="decoded: field path -> sensor id (empty: keys naming sensors); cayenne_lpp: channel -> sensor id",
    )

    @field_validator("dev_eui")
    @classmethod
    def _lower_case(cls, dev_eui: str | None) -> str | None:
        return dev_eui.lower() if dev_eui else dev_eui

    @model_validator(mode="after")
    def _addressable_and_decodable(self) -> Self:
        if self.dev_eui is None and self.tts_device_id is None:
            raise ValueError("a LoRaWAN device needs dev_eui or tts_device_id: how the network server names it")
        if self.decoder is Decoder.CAYENNE_LPP:
            if not self.fields:
                raise ValueError("cayenne_lpp needs fields: which channel is which sensor")
            for channel in self.fields:
                if not (channel.isascii() and channel.isdigit() and int(channel) <= 255):
                    raise ValueError(f"cayenne_lpp channel {channel!r} is not a number from 0 to 255")
        if len(set(self.fields.values())) != len(self.fields):
            raise ValueError("fields name one sensor twice")
        return self

    def unknown_sensors(self, sensors: Mapping[str, SensorKind]) -> list[str]:
        """The sensor ids ``fields`` names that are not among ``sensors`` (the device's)."""
        return sorted(s for s in self.fields.values() if s not in sensors)


@dataclass(frozen=True, slots=True)
class Uplink:
    """One uplink, whichever network server handed it over."""

    dev_eui: str | None
    tts_device_id: str | None
    f_cnt: int
    f_port: int
    received_at: datetime | None
    """When the network server received it; None when the message does not say."""
    payload: bytes
    decoded: dict[str, Any] | None


class _Wire(BaseModel):
    """A network server's message: what we read is checked, the rest is theirs and ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


def _payload(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ContractError(RejectReason.INVALID_PAYLOAD, f"{what} is not base64: {exc}") from exc


class ChirpstackDeviceInfo(_Wire):
    dev_eui: str = Field(alias="devEui", pattern=EUI_PATTERN, description="DevEUI in hex")


class ChirpstackUplink(_Wire):
    """A ChirpStack v4 ``up`` event (``UplinkEvent``, JSON marshaler)."""

    device_info: ChirpstackDeviceInfo = Field(alias="deviceInfo")
    f_cnt: int = Field(0, alias="fCnt", ge=0, lt=MAX_FCNT, description="frame counter (absent: 0)")
    f_port: int = Field(0, alias="fPort", ge=0, le=255)
    time: AwareDatetime | None = Field(None, description="when ChirpStack received the uplink")
    data: str = Field("", max_length=1024, description="FRMPayload, base64")
    object: dict[str, Any] | None = Field(None, description="the device profile codec's output, if it has one")

    def uplink(self) -> Uplink:
        return Uplink(
            dev_eui=self.device_info.dev_eui.lower(),
            tts_device_id=None,
            f_cnt=self.f_cnt,
            f_port=self.f_port,
            received_at=self.time,
            payload=_payload(self.data, "data"),
            decoded=self.object,
        )


class TtsDeviceIds(_Wire):
    device_id: str = Field(pattern=TTS_ID_PATTERN)
    dev_eui: str | None = Field(None, pattern=EUI_PATTERN)


class TtsUplinkMessage(_Wire):
    f_cnt: int = Field(0, ge=0, lt=MAX_FCNT, description="frame counter (absent: 0)")
    f_port: int = Field(0, ge=0, le=255)
    frm_payload: str = Field("", max_length=1024, description="FRMPayload, base64")
    decoded_payload: dict[str, Any] | None = Field(None, description="the payload formatter's output")
    received_at: AwareDatetime | None = Field(None, description="when the Network Server received it")


class TtsUplink(_Wire):
    """An uplink message of The Things Stack v3 (webhook, JSON)."""

    end_device_ids: TtsDeviceIds
    received_at: AwareDatetime | None = Field(None, description="when the Application Server received it")
    uplink_message: TtsUplinkMessage

    def uplink(self) -> Uplink:
        message = self.uplink_message
        return Uplink(
            dev_eui=self.end_device_ids.dev_eui.lower() if self.end_device_ids.dev_eui else None,
            tts_device_id=self.end_device_ids.device_id,
            f_cnt=message.f_cnt,
            f_port=message.f_port,
            received_at=message.received_at or self.received_at,
            payload=_payload(message.frm_payload, "frm_payload"),
            decoded=message.decoded_payload,
        )


# -- Cayenne LPP ------------------------------------------------------------------------------------------------

_LPP: dict[int, tuple[str, int, bool, float]] = {
    0: ("digital input", 1, False, 1.0),
    1: ("digital output", 1, False, 1.0),
    2: ("analog input", 2, True, 0.01),
    3: ("analog output", 2, True, 0.01),
    100: ("generic sensor", 4, False, 1.0),
    101: ("illuminance", 2, False, 1.0),
    102: ("presence", 1, False, 1.0),
    103: ("temperature", 2, True, 0.1),
    104: ("relative humidity", 1, False, 0.5),
    115: ("barometer", 2, False, 0.1),
    116: ("voltage", 2, False, 0.01),
}
"""Cayenne LPP's one-value types: type -> (name, bytes, signed, resolution). Values are big-endian."""
_LPP_SKIPPED = {113: ("accelerometer", 6), 134: ("gyrometer", 6), 136: ("GPS", 9)}
"""Types of several values (read past, never a reading)."""


def cayenne_lpp(payload: bytes) -> dict[int, float]:
    """The one-value readings of a Cayenne LPP payload by channel; ContractError for bytes that do not parse."""
    values: dict[int, float] = {}
    at = 0
    while at < len(payload):
        if len(payload) - at < 2:
            raise ContractError(RejectReason.INVALID_PAYLOAD, f"Cayenne LPP: a stray byte at {at}")
        channel, kind = payload[at], payload[at + 1]
        at += 2
        if kind in _LPP_SKIPPED:
            at += _LPP_SKIPPED[kind][1]
            if at > len(payload):
                raise ContractError(RejectReason.INVALID_PAYLOAD, f"Cayenne LPP: channel {channel} is cut short")
            continue
        known = _LPP.get(kind)
        if known is None:
            raise ContractError(RejectReason.INVALID_PAYLOAD, f"Cayenne LPP: channel {channel} has unknown type {kind}")
        _, size, signed, resolution = known
        if at + size > len(payload):
            raise ContractError(RejectReason.INVALID_PAYLOAD, f"Cayenne LPP: channel {channel} is cut short")
        raw = int.from_bytes(payload[at : at + size], "big", signed=signed)
        at += size
        values[channel] = round(raw * resolution, 6)
    return values


def _field(obj: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a decoded object; None where the path leads nowhere."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def values(uplink: Uplink, binding: LorawanBinding, sensors: Mapping[str, SensorKind]) -> dict[str, Any]:
    """Sensor id -> value as the decoder reads the uplink (values unchecked: the contract checks them)."""
    if binding.decoder is Decoder.CAYENNE_LPP:
        if not uplink.payload:
            raise ContractError(RejectReason.EMPTY_PAYLOAD, "the uplink has no payload to decode as Cayenne LPP")
        by_channel = cayenne_lpp(uplink.payload)
        return {sensor: by_channel[int(ch)] for ch, sensor in binding.fields.items() if int(ch) in by_channel}
    if uplink.decoded is None:
        raise ContractError(
            RejectReason.INVALID_PAYLOAD,
            "the network server sent no decoded object: give the device a codec (ChirpStack device profile, "
            "The Things Stack payload formatter) or bind it with decoder cayenne_lpp",
        )
    if binding.fields:
        found = {sensor: _field(uplink.decoded, path) for path, sensor in binding.fields.items()}
        return {sensor: value for sensor, value in found.items() if value is not None}
    return {key: value for key, value in uplink.decoded.items() if key in sensors}


def telemetry(
    device: str, uplink: Uplink, binding: LorawanBinding, sensors: Mapping[str, SensorKind], received: datetime
) -> Telemetry:
    """The telemetry message ``device`` would have published for ``uplink``; ContractError (with the reason the
    worker would give) when the uplink does not decode or its readings break the telemetry contract.

    Args:
        sensors: the device's sensors and their kinds (a reading's kind is its sensor's).
        received: when the API received it, the time stamp of an uplink whose network server gave none.
    """
    found = values(uplink, binding, sensors)
    unknown = sorted(s for s in found if s not in sensors)
    if unknown:
        raise ContractError(
            RejectReason.UNKNOWN_SENSOR, f"device {device!r} has no sensor {', '.join(unknown)} (its decoder names it)"
        )
    readings = [{"sensor": s, "kind": sensors[s], "value": v} for s, v in found.items()]
    try:
        return Telemetry.model_validate(
            {
                "schema_version": Telemetry.SCHEMA_VERSION,
                "device": device,
                "seq": uplink.f_cnt,
                "ts": uplink.received_at or received,
                "readings": readings,
            }
        )
    except ValidationError as exc:
        raise ContractError(reason_of(exc), describe("Telemetry", exc)) from exc


__all__ = [
    "ChirpstackUplink",
    "Decoder",
    "LorawanBinding",
    "TtsUplink",
    "Uplink",
    "cayenne_lpp",
    "telemetry",
    "values",
]
