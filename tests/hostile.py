"""Hostile payloads a device with real credentials could publish, each with the reason it must be refused for.

Shared by the cleaning unit tests and the end-to-end test through Mosquitto, the bridge and the worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from smartfarm.envelope import pack
from smartfarm.errors import RejectReason
from smartfarm.records import RejectStage

FARM = "valley-farm"
DEVICE = "soil-tomato-north-1"
"""The device that publishes them (its topic); a soil node: sm-15, sm-45 (soil_moisture), st-15, bat."""


@dataclass(frozen=True, slots=True)
class Hostile:
    name: str
    payload: bytes
    reason: RejectReason
    stage: RejectStage


def good(now: datetime, seq: int, **changes: Any) -> dict[str, Any]:
    """A valid telemetry document of ``DEVICE`` taken at ``now``."""
    doc: dict[str, Any] = {
        "schema_version": 1,
        "device": DEVICE,
        "seq": seq,
        "ts": now.isoformat(),
        "readings": [
            {"sensor": "sm-15", "kind": "soil_moisture", "value": 23.4},
            {"sensor": "sm-45", "kind": "soil_moisture", "value": 27.9},
            {"sensor": "st-15", "kind": "soil_temperature", "value": 19.2},
            {"sensor": "bat", "kind": "battery", "value": 3.71},
        ],
    }
    doc.update(changes)
    return doc


def _j(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def hostile_payloads(now: datetime) -> list[Hostile]:
    """At least fifty ways to break the telemetry contract or the layout, with what must happen to each."""
    bridge, clean = RejectStage.BRIDGE, RejectStage.CLEAN
    r = RejectReason
    reading = {"sensor": "sm-15", "kind": "soil_moisture", "value": 20.0}
    base = good(now, 1)
    no_ts = {k: v for k, v in base.items() if k != "ts"}
    cases = [
        Hostile("empty", b"", r.EMPTY_PAYLOAD, bridge),
        Hostile("not utf-8", b"\xff\xfe\xfa{}", r.NOT_UTF8, bridge),
        Hostile("over 16 KiB", b'{"x":"' + b"a" * 17000 + b'"}', r.PAYLOAD_TOO_LARGE, bridge),
        # Ten thousand items fit under the broker's 256 KiB packet limit only when small; the bridge refuses them.
        Hostile("ten thousand readings", _j(good(now, 1, readings=[0] * 10_000)), r.PAYLOAD_TOO_LARGE, bridge),
        Hostile("truncated json", _j(base)[:40], r.INVALID_JSON, clean),
        Hostile("not json at all", b"hello farm", r.INVALID_JSON, clean),
        Hostile("deeply nested arrays", b"[" * 6000 + b"]" * 6000, r.INVALID_JSON, clean),
        Hostile("deeply nested objects", b'{"a":' * 1500 + b"1" + b"}" * 1500, r.INVALID_JSON, clean),
        Hostile("a 5000-digit integer", b'{"seq":' + b"7" * 5000 + b"}", r.INVALID_JSON, clean),
        Hostile("a json array", b"[1,2,3]", r.INVALID_PAYLOAD, clean),
        Hostile("a json string", b'"telemetry"', r.INVALID_PAYLOAD, clean),
        Hostile("null", b"null", r.INVALID_PAYLOAD, clean),
        Hostile("empty object", b"{}", r.INVALID_PAYLOAD, clean),
        Hostile("unknown schema version", _j(good(now, 1, schema_version=9)), r.UNKNOWN_SCHEMA_VERSION, clean),
        Hostile("NaN value", _j(base).replace(b"23.4", b"NaN"), r.INVALID_PAYLOAD, clean),
        Hostile("Infinity value", _j(base).replace(b"23.4", b"Infinity"), r.INVALID_PAYLOAD, clean),
        Hostile("a value of 1e999", _j(base).replace(b"23.4", b"1e999"), r.INVALID_PAYLOAD, clean),
        Hostile("a value as a string", _j(base).replace(b"23.4", b'"23.4"'), r.INVALID_PAYLOAD, clean),
        Hostile("seq as a string", _j({**base, "seq": "1"}), r.INVALID_PAYLOAD, clean),
        Hostile("seq of 2**70", _j({**base, "seq": 2**70}), r.INVALID_PAYLOAD, clean),
        Hostile("a fractional seq", _j({**base, "seq": 1.5}), r.INVALID_PAYLOAD, clean),
        Hostile("negative seq", _j(good(now, -5)), r.NEGATIVE_SEQUENCE, clean),
        Hostile("unknown field", _j(good(now, 1, debug={"heap": 1})), r.INVALID_PAYLOAD, clean),
        Hostile("missing ts", _j(no_ts), r.INVALID_PAYLOAD, clean),
        Hostile("naive ts", _j(good(now, 1, ts="2026-07-01T12:00:00")), r.INVALID_PAYLOAD, clean),
        Hostile("ts not a date", _j(good(now, 1, ts="yesterday")), r.INVALID_PAYLOAD, clean),
        Hostile("no readings", _j(good(now, 1, readings=[])), r.INVALID_PAYLOAD, clean),
        Hostile("readings not a list", _j(good(now, 1, readings={"sm-15": 1})), r.INVALID_PAYLOAD, clean),
        Hostile("65 readings", _j(good(now, 1, readings=[reading] * 65)), r.INVALID_PAYLOAD, clean),
        Hostile("the same sensor twice", _j(good(now, 1, readings=[reading, reading])), r.DUPLICATE_SENSOR, clean),
        Hostile(
            "unknown kind", _j(good(now, 1, readings=[{**reading, "kind": "moonlight"}])), r.INVALID_PAYLOAD, clean
        ),
        Hostile(
            "bad sensor id", _j(good(now, 1, readings=[{**reading, "sensor": "SM 15!"}])), r.INVALID_PAYLOAD, clean
        ),
        Hostile("a spoofed device", _j(good(now, 1, device="soil-maize-east-1")), r.DEVICE_MISMATCH, clean),
        Hostile("future timestamp", _j(good(now + timedelta(days=3), 1)), r.FUTURE_TIMESTAMP, clean),
        Hostile("unknown sensor", _j(good(now, 1, readings=[{**reading, "sensor": "sm-99"}])), r.UNKNOWN_SENSOR, clean),
        Hostile(
            "a sensor of another kind",
            _j(good(now, 1, readings=[{**reading, "kind": "air_temperature"}])),
            r.UNKNOWN_SENSOR,
            clean,
        ),
        # Encodings and bytes a JSON parser may or may not forgive.
        Hostile("a UTF-8 byte order mark", b"\xef\xbb\xbf" + _j(base), r.INVALID_JSON, clean),
        Hostile("a NUL byte between fields", _j(base).replace(b'"seq"', b'\x00"seq"'), r.INVALID_JSON, clean),
        Hostile("an overlong UTF-8 encoding", b'{"device":"\xc0\xaf"}', r.NOT_UTF8, bridge),
        Hostile("a UTF-8 encoded surrogate", b'{"device":"\xed\xa0\x80"}', r.NOT_UTF8, bridge),
        Hostile("an escaped lone surrogate", _j(base).replace(b'"sm-15"', b'"\\ud800"'), r.INVALID_PAYLOAD, clean),
        Hostile("whitespace only", b" \n\t ", r.INVALID_JSON, clean),
        Hostile("trailing garbage", _j(base) + b"x", r.INVALID_JSON, clean),
        Hostile("two documents in one payload", _j(base) + _j(good(now, 2)), r.INVALID_JSON, clean),
        Hostile(
            "an envelope smuggled as a payload", pack([(DEVICE.encode(), b"t", b"r", _j(base))]), r.INVALID_JSON, clean
        ),
        # Duplicate keys: both parsers keep the last one, so the last one is what is judged.
        Hostile("duplicate seq keys, the last a string", _j(base)[:-1] + b',"seq":"1"}', r.INVALID_PAYLOAD, clean),
        Hostile(
            "duplicate device keys, the last another device",
            _j(base)[:-1] + b',"device":"soil-maize-east-1"}',
            r.DEVICE_MISMATCH,
            clean,
        ),
        # Identifiers and numbers out of their types.
        Hostile("a NUL in the device id", _j(good(now, 1, device=DEVICE + "\x00")), r.INVALID_PAYLOAD, clean),
        Hostile("a homoglyph device id", _j(good(now, 1, device="soil-tomato-n\u043erth-1")), r.INVALID_PAYLOAD, clean),
        Hostile("seq of 2**63", _j({**base, "seq": 2**63}), r.INVALID_PAYLOAD, clean),
        Hostile("a 400-digit seq", _j({**base, "seq": 10**400}), r.INVALID_PAYLOAD, clean),
        Hostile("seq true", _j({**base, "seq": True}), r.INVALID_PAYLOAD, clean),
        Hostile("a value true", _j(base).replace(b"23.4", b"true"), r.INVALID_PAYLOAD, clean),
        Hostile(
            "a value nested 200 deep", _j(base).replace(b"23.4", b"[" * 200 + b"]" * 200), r.INVALID_PAYLOAD, clean
        ),
        Hostile("five thousand readings under 16 KiB", _j(good(now, 1, readings=[0] * 5000)), r.INVALID_PAYLOAD, clean),
        Hostile(
            "a reading with its own unit",
            _j(good(now, 1, readings=[{"sensor": "st-15", "kind": "soil_temperature", "value": 66.2, "unit": "degF"}])),
            r.INVALID_PAYLOAD,
            clean,
        ),
        # What only the bridge may say, said by the device.
        Hostile(
            "the bridge's headers as fields",
            _j(good(now, 1, received_at=now.isoformat(), mqtt_topic="smartfarm/v1/x")),
            r.INVALID_PAYLOAD,
            clean,
        ),
        Hostile("schema_version as a string", _j(good(now, 1, schema_version="1")), r.UNKNOWN_SCHEMA_VERSION, clean),
        Hostile(
            "no schema_version", _j({k: v for k, v in base.items() if k != "schema_version"}), r.INVALID_PAYLOAD, clean
        ),
        # Timestamps in odd shapes and zones.
        Hostile("ts as epoch seconds", _j(good(now, 1, ts=int(now.timestamp()))), r.INVALID_PAYLOAD, clean),
        Hostile("ts as epoch milliseconds", _j(good(now, 1, ts=int(now.timestamp() * 1000))), r.INVALID_PAYLOAD, clean),
        Hostile("ts a date only", _j(good(now, 1, ts=now.date().isoformat())), r.INVALID_PAYLOAD, clean),
        Hostile("ts with a leap second", _j(good(now, 1, ts="2026-06-30T23:59:60+00:00")), r.INVALID_PAYLOAD, clean),
        Hostile("ts offset +25:00", _j(good(now, 1, ts=_local(now, "+25:00"))), r.INVALID_PAYLOAD, clean),
        Hostile("ts in year 10000", _j(good(now, 1, ts="10000-01-01T00:00:00+00:00")), r.INVALID_PAYLOAD, clean),
        Hostile("ts in year 1", _j(good(now, 1, ts="0001-01-01T00:00:00+00:00")), r.STALE_TIMESTAMP, clean),
        Hostile(
            "ts of a clock reset to the epoch", _j(good(now, 1, ts="1970-01-01T00:00:00Z")), r.STALE_TIMESTAMP, clean
        ),
        Hostile("ts of a clock reset to 2000", _j(good(now, 1, ts="2000-01-01T00:00:00Z")), r.STALE_TIMESTAMP, clean),
        Hostile(
            "ts of now's wall time at -23:59, a day ahead",
            _j(good(now, 1, ts=_local(now, "-23:59"))),
            r.FUTURE_TIMESTAMP,
            clean,
        ),
    ]
    return cases


def _local(now: datetime, offset: str) -> str:
    """``now``'s UTC wall time written with another offset (a device whose clock knows the time but not the zone)."""
    return now.astimezone(UTC).replace(tzinfo=None).isoformat() + offset
