"""LoRaWAN uplinks into telemetry: the network servers' documented examples read field for field, the decoders
(the network server's object, Cayenne LPP) table by table, and every refusal with the reason the worker gives."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from smartfarm.errors import ContractError, RejectReason
from smartfarm.layout import SensorKind
from smartfarm.lorawan import ChirpstackUplink, Decoder, LorawanBinding, TtsUplink, Uplink, cayenne_lpp, telemetry
from tests.lorawan_examples import (
    CHIRPSTACK_UP,
    LPP_ACCELEROMETER,
    LPP_TEMPERATURE,
    LPP_TWO_TEMPERATURES,
    TTS_UPLINK,
    example,
)

SENSORS = {
    "sm-15": SensorKind.SOIL_MOISTURE,
    "sm-45": SensorKind.SOIL_MOISTURE,
    "st-15": SensorKind.SOIL_TEMPERATURE,
    "bat": SensorKind.BATTERY,
}
"""The default layout's soil node."""
RECEIVED = datetime(2026, 6, 1, 13, 30, 0, 412000, tzinfo=UTC)
EUI = "0101010101010101"


def uplink(payload: bytes = b"", decoded: dict[str, Any] | None = None, at: datetime | None = RECEIVED) -> Uplink:
    return Uplink(EUI, None, 77, 1, at, payload, decoded)


def test_chirpstack_up_example_reads_as_documented() -> None:
    read = ChirpstackUplink.model_validate(CHIRPSTACK_UP).uplink()
    assert read == Uplink(
        dev_eui=EUI,
        tts_device_id=None,
        f_cnt=0,  # absent: proto3's JSON leaves a 0 out
        f_port=1,
        received_at=datetime(2022, 7, 18, 9, 34, 15, 775023, tzinfo=UTC),
        payload=b"\xaa",
        decoded=None,  # no codec in the device profile
    )


def test_tts_uplink_example_reads_as_documented() -> None:
    read = TtsUplink.model_validate(TTS_UPLINK).uplink()
    assert read == Uplink(
        dev_eui="0004a30b001c0530",
        tts_device_id="dev1",
        f_cnt=1,
        f_port=0,  # absent from the example
        received_at=datetime(2020, 2, 12, 15, 15, 45, 789585, tzinfo=UTC),  # the Network Server's, not the AS's
        payload=base64.b64decode("gkHe"),
        decoded={"temperature": 1.0, "luminosity": 0.64},
    )
    without_ns_time = example(TTS_UPLINK, uplink_message={"f_cnt": 2, "frm_payload": "qg=="})
    assert TtsUplink.model_validate(without_ns_time).uplink().received_at == datetime(
        2020, 2, 12, 15, 15, 46, 14773, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("document", "model"),
    [
        (example(CHIRPSTACK_UP, deviceInfo={"deviceName": "no eui"}), ChirpstackUplink),
        (example(CHIRPSTACK_UP, fCnt=-1), ChirpstackUplink),
        (example(CHIRPSTACK_UP, fCnt=2**32), ChirpstackUplink),
        (example(CHIRPSTACK_UP, time="2022-07-18T09:34:15"), ChirpstackUplink),
        (example(TTS_UPLINK, end_device_ids={"dev_eui": "0004A30B001C0530"}), TtsUplink),
        (example(TTS_UPLINK, uplink_message="gkHe"), TtsUplink),
    ],
)
def test_an_uplink_missing_what_we_read_is_refused(document: dict[str, Any], model: type[ChirpstackUplink]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(document)


def test_a_payload_that_is_not_base64_is_invalid() -> None:
    with pytest.raises(ContractError) as caught:
        ChirpstackUplink.model_validate(example(CHIRPSTACK_UP, data="not base64!")).uplink()
    assert caught.value.reason is RejectReason.INVALID_PAYLOAD


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (LPP_TWO_TEMPERATURES, {3: 27.2, 5: 25.5}),
        (LPP_TEMPERATURE, {1: -4.1}),
        (LPP_ACCELEROMETER, {}),
        (LPP_TEMPERATURE + LPP_ACCELEROMETER + bytes.fromhex("0202FF38"), {1: -4.1, 2: -2.0}),
        (bytes.fromhex("07680A"), {7: 5.0}),  # humidity, 0.5 % steps
        (bytes.fromhex("087400F0"), {8: 2.4}),  # voltage, 0.01 V
        (bytes.fromhex("090001080100"), {9: 1.0, 8: 0.0}),  # a digital input, a digital output
        (b"", {}),
    ],
)
def test_cayenne_lpp_values_by_channel(payload: bytes, expected: dict[int, float]) -> None:
    assert cayenne_lpp(payload) == expected


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (bytes.fromhex("0367"), "cut short"),
        (bytes.fromhex("036701"), "cut short"),
        (bytes.fromhex("067104D2"), "cut short"),
        (bytes.fromhex("03FF0110"), "unknown type 255"),
        (LPP_TEMPERATURE + b"\x01", "stray byte"),
    ],
)
def test_cayenne_lpp_that_does_not_parse_is_invalid(payload: bytes, detail: str) -> None:
    with pytest.raises(ContractError, match=detail) as caught:
        cayenne_lpp(payload)
    assert caught.value.reason is RejectReason.INVALID_PAYLOAD


def binding(decoder: Decoder = Decoder.DECODED, **fields: str) -> LorawanBinding:
    return LorawanBinding(dev_eui=EUI, decoder=decoder, fields=fields)


@pytest.mark.parametrize(
    ("bound", "read", "expected"),
    [
        # no fields: the object's keys that name a sensor of the device, the rest ignored
        (binding(), uplink(decoded={"sm-15": 23.4, "bat": 3.7, "rssi": -40}), {"sm-15": 23.4, "bat": 3.7}),
        # fields: path -> sensor, dots for nesting; a path the object lacks gives no reading
        (
            LorawanBinding(dev_eui=EUI, fields={"soil.vwc": "sm-15", "soil.temp": "st-15", "battery_v": "bat"}),
            uplink(decoded={"soil": {"vwc": 21, "temp": 17.5}, "battery": 3.6}),
            {"sm-15": 21.0, "st-15": 17.5},
        ),
        # The Things Stack's documented decoded_payload, its temperature bound to our soil temperature sensor
        (
            LorawanBinding(dev_eui=EUI, fields={"temperature": "st-15"}),
            uplink(decoded=TTS_UPLINK["uplink_message"]["decoded_payload"]),
            {"st-15": 1.0},
        ),
        # Cayenne LPP: channel -> sensor; channels not bound are ignored
        (binding(Decoder.CAYENNE_LPP, **{"3": "st-15"}), uplink(LPP_TWO_TEMPERATURES), {"st-15": 27.2}),
    ],
)
def test_a_decoder_makes_the_devices_telemetry(bound: LorawanBinding, read: Uplink, expected: dict[str, float]) -> None:
    message = telemetry("soil-tomato-north-1", read, bound, SENSORS, datetime(2030, 1, 1, tzinfo=UTC))
    assert (message.device, message.seq, message.ts) == ("soil-tomato-north-1", 77, RECEIVED)
    assert {r.sensor: r.value for r in message.readings} == expected
    assert all(r.kind is SENSORS[r.sensor] for r in message.readings)


def test_an_uplink_without_the_network_servers_time_is_stamped_on_receipt() -> None:
    message = telemetry("n-1", uplink(decoded={"bat": 3.7}, at=None), binding(), SENSORS, RECEIVED)
    assert message.ts == RECEIVED


@pytest.mark.parametrize(
    ("bound", "read", "reason"),
    [
        (binding(), uplink(LPP_TEMPERATURE), RejectReason.INVALID_PAYLOAD),  # no decoded object
        (binding(Decoder.CAYENNE_LPP, **{"1": "st-15"}), uplink(), RejectReason.EMPTY_PAYLOAD),
        (binding(Decoder.CAYENNE_LPP, **{"1": "st-15"}), uplink(b"\x01\x67\xff"), RejectReason.INVALID_PAYLOAD),
        (binding(), uplink(decoded={"rssi": -40}), RejectReason.INVALID_PAYLOAD),  # no reading at all
        (binding(), uplink(decoded={"sm-15": "23.4"}), RejectReason.INVALID_PAYLOAD),  # a string, not a number
        (binding(), uplink(decoded={"sm-15": True}), RejectReason.INVALID_PAYLOAD),
        (binding(), uplink(decoded={"sm-15": {"value": 1}}), RejectReason.INVALID_PAYLOAD),
        (binding(x="gone-sensor"), uplink(decoded={"x": 1.0}), RejectReason.UNKNOWN_SENSOR),  # layout changed since
    ],
)
def test_an_uplink_that_breaks_the_contract_is_refused_with_the_workers_reason(
    bound: LorawanBinding, read: Uplink, reason: RejectReason
) -> None:
    with pytest.raises(ContractError) as caught:
        telemetry("soil-tomato-north-1", read, bound, SENSORS, RECEIVED)
    assert caught.value.reason is reason


def test_a_frame_counter_past_the_contracts_bound_is_refused() -> None:
    read = Uplink(EUI, None, 2**63, 1, RECEIVED, b"", {"bat": 3.7})
    with pytest.raises(ContractError) as caught:
        telemetry("n-1", read, binding(), SENSORS, RECEIVED)
    assert caught.value.reason is RejectReason.INVALID_PAYLOAD


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({}, "needs dev_eui or tts_device_id"),
        ({"dev_eui": EUI, "decoder": "cayenne_lpp"}, "cayenne_lpp needs fields"),
        ({"dev_eui": EUI, "decoder": "cayenne_lpp", "fields": {"temp": "st-15"}}, "not a number from 0 to 255"),
        ({"dev_eui": EUI, "decoder": "cayenne_lpp", "fields": {"256": "st-15"}}, "not a number from 0 to 255"),
        ({"dev_eui": EUI, "fields": {"a": "st-15", "b": "st-15"}}, "one sensor twice"),
        ({"dev_eui": "01010101"}, "dev_eui"),
        ({"tts_device_id": "Dev_1"}, "tts_device_id"),
        ({"dev_eui": EUI, "decoder": "base64"}, "decoder"),
        ({"dev_eui": EUI, "fields": {"temp": "Not An Id"}}, "fields"),
    ],
)
def test_a_binding_that_cannot_work_is_refused(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        LorawanBinding.model_validate(fields)


def test_a_binding_keeps_the_dev_eui_lower_case_and_names_sensors_the_device_lacks() -> None:
    bound = LorawanBinding(dev_eui="0004A30B001C0530", fields={"t": "st-15", "x": "leaf-1"})
    assert bound.dev_eui == "0004a30b001c0530"
    assert bound.unknown_sensors(SENSORS) == ["leaf-1"]
    assert LorawanBinding(tts_device_id="dev1").decoder is Decoder.DECODED
