"""Uplinks as the network servers' own documentation gives them, for the decoder's unit tests and the webhooks'
integration test.

- ``CHIRPSTACK_UP``: the ``up`` event example of ChirpStack v4's "Event types" page
  (chirpstack/chirpstack-docs, src/chirpstack/integrations/events.md), as its HTTP integration posts it with
  ``?event=up``. Proto3's JSON mapping leaves out fields at their default: this one has no ``fCnt`` (0) and no
  ``object`` (the device profile has no codec).
- ``CHIRPSTACK_JOIN``: the ``join`` event example of the same page.
- ``TTS_UPLINK``: the uplink message example of The Things Stack's "Data Formats" page
  (TheThingsIndustries/lorawan-stack-docs, doc/content/integrations/data-formats/_index.md).
- ``LPP_TWO_TEMPERATURES``, ``LPP_TEMPERATURE``, ``LPP_ACCELEROMETER``: the frames of Cayenne LPP's examples
  ("device with 2 temperature sensors", "device with temperature and acceleration sensors").
"""

from __future__ import annotations

import copy
from typing import Any

_DEVICE_INFO = {
    "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
    "tenantName": "ChirpStack",
    "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
    "applicationName": "Test application",
    "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
    "deviceProfileName": "Test device-profile",
    "deviceName": "Test device",
    "devEui": "0101010101010101",
    "tags": {"key": "value"},
}

CHIRPSTACK_UP: dict[str, Any] = {
    "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
    "time": "2022-07-18T09:34:15.775023242+00:00",
    "deviceInfo": _DEVICE_INFO,
    "devAddr": "00189440",
    "dr": 1,
    "fPort": 1,
    "data": "qg==",
    "rxInfo": [
        {
            "gatewayId": "0016c001f153a14c",
            "uplinkId": 4217106255,
            "rssi": -36,
            "snr": 10.5,
            "context": "E3OWOQ==",
            "metadata": {"region_name": "eu868", "region_common_name": "EU868"},
        }
    ],
    "txInfo": {
        "frequency": 867100000,
        "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 11, "codeRate": "CR_4_5"}},
    },
}

CHIRPSTACK_JOIN: dict[str, Any] = {
    "deduplicationId": "c9dbe358-2578-4fb7-b295-66b44edc45a6",
    "time": "2022-07-18T09:33:28.823500726+00:00",
    "deviceInfo": _DEVICE_INFO,
    "devAddr": "00189440",
}

TTS_UPLINK: dict[str, Any] = {
    "end_device_ids": {
        "device_id": "dev1",
        "application_ids": {"application_id": "app1"},
        "dev_eui": "0004A30B001C0530",
        "join_eui": "800000000000000C",
        "dev_addr": "00BCB929",
    },
    "correlation_ids": [
        "as:up:01E0WZGT6Y7657CPFPE5WEYDSQ",
        "gs:conn:01E0WDEC6T5T4XXBAX7S1VMFKE",
        "gs:uplink:01E0WZGSZWT07NE5TS2APTV1Z9",
        "ns:uplink:01E0WZGSZXZXZS8RFAWZX0F2FY",
        "rpc:/ttn.lorawan.v3.GsNs/HandleUplink:01E0WZGSZXGE1KS577PFBWRJEE",
    ],
    "received_at": "2020-02-12T15:15:46.014773143Z",
    "uplink_message": {
        "session_key_id": "AXA50tHUGUucuzS/bCGMNw==",
        "f_cnt": 1,
        "frm_payload": "gkHe",
        "decoded_payload": {"temperature": 1.0, "luminosity": 0.64},
        "rx_metadata": [
            {
                "gateway_ids": {"gateway_id": "gtw1", "eui": "9C5C8E00001A05C4"},
                "time": "2020-02-12T15:15:45.787Z",
                "timestamp": 2463457000,
                "rssi": -35,
                "channel_rssi": -35,
                "snr": 5,
                "uplink_token": "ChIKEAoEZ3R3MRIInFyOAAAaBcQQ6L3Vlgk=",
                "channel_index": 2,
            }
        ],
        "settings": {
            "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
            "data_rate_index": 5,
            "coding_rate": "4/6",
            "frequency": "868300000",
            "timestamp": 2463457000,
            "time": "2020-02-12T15:15:45.787Z",
        },
        "consumed_airtime": "0.056576s",
        "locations": {
            "user": {
                "latitude": 37.97155556731436,
                "longitude": 23.72678801175413,
                "altitude": 10,
                "source": "SOURCE_REGISTRY",
            }
        },
        "received_at": "2020-02-12T15:15:45.789585559Z",
    },
}

LPP_TWO_TEMPERATURES = bytes.fromhex("03670110056700FF")
"""Channel 3: 27.2 degC; channel 5: 25.5 degC."""
LPP_TEMPERATURE = bytes.fromhex("0167FFD7")
"""Channel 1: -4.1 degC."""
LPP_ACCELEROMETER = bytes.fromhex("067104D2FB2E0000")
"""Channel 6: x 1.234 G, y -1.234 G, z 0 G (several values: read past)."""


def example(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``document`` with top-level ``changes`` (a nested one: pass the whole nested object)."""
    copied = copy.deepcopy(document)
    copied.update(changes)
    return copied
