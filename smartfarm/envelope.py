"""Envelopes: several device messages of one ``telemetry.raw`` partition in one Kafka record.

A stream worker pays Faust about as much per record it reads as it spends cleaning the message inside (the
measured figures are in architecture.md, "Speed"), so the bridge packs the telemetry of one partition and one loop
turn into one record. Each message keeps what a record of its own would hold: its Kafka key (the device id), its
MQTT topic, its receipt time and its payload, byte for byte, in the order the bridge received them (so per-device
order holds). An envelope record carries the header ``envelope`` = ``1``; a record without it is one message whose
value is the payload (what the bridge wrote before envelopes, and what a replay tool may still write).

Layout of an envelope's value, repeated per message (big-endian)::

    u16 key length, u16 topic length, u16 received_at length, u32 payload length, key, topic, received_at, payload

``received_at`` is the ISO 8601 text of the ``received_at`` header (to the millisecond). A value that does not
parse exactly raises ``EnvelopeError``; the worker dead-letters the whole record with its bytes, so nothing the
bridge accepted is lost.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import NamedTuple

ENVELOPE_HEADER = "envelope"
ENVELOPE_VERSION = b"1"

_HEAD = struct.Struct(">HHHI")
HEAD_BYTES = _HEAD.size

MAX_BYTES = 900 * 1024
"""An envelope stays under Kafka's default limit on a record (1 MiB); the bridge starts another when full."""


class EnvelopeError(ValueError):
    """An envelope's bytes do not parse."""


class Letter(NamedTuple):
    """One device message inside an envelope."""

    key: bytes
    topic: bytes
    received_at: bytes
    payload: bytes


def frame_size(key: bytes, topic: bytes, received_at: bytes, payload: bytes) -> int:
    """The bytes one message takes in an envelope."""
    return HEAD_BYTES + len(key) + len(topic) + len(received_at) + len(payload)


def pack(letters: Sequence[tuple[bytes, bytes, bytes, bytes]]) -> bytes:
    """The value of an envelope holding ``letters`` (key, MQTT topic, received_at, payload), in order."""
    parts: list[bytes] = []
    head = _HEAD.pack
    for key, topic, received_at, payload in letters:
        parts += (head(len(key), len(topic), len(received_at), len(payload)), key, topic, received_at, payload)
    return b"".join(parts)


def _frames(value: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """Where each message of an envelope starts (after its head) and its four lengths, walking the heads only;
    ``EnvelopeError`` as soon as the bytes do not add up."""
    end, at = len(value), 0
    head = _HEAD.unpack_from
    if not end:
        raise EnvelopeError("an empty envelope")
    while at < end:
        if end - at < HEAD_BYTES:
            raise EnvelopeError(f"{end - at} stray bytes at byte {at}")
        k, t, r, p = head(value, at)
        body = at + HEAD_BYTES
        stop = body + k + t + r + p
        if stop > end:
            raise EnvelopeError(f"the message at byte {at} claims {stop - at} bytes; {end - at} are left")
        yield body, k, t, r, p
        at = stop


def unpack(value: bytes) -> list[Letter]:
    """The messages of an envelope, in order; ``EnvelopeError`` if its bytes are broken anywhere."""
    view = memoryview(value)
    letters = []
    for body, k, t, r, p in _frames(value):
        key_end, topic_end, received_end = body + k, body + k + t, body + k + t + r
        letters.append(
            Letter(
                bytes(view[body:key_end]),
                bytes(view[key_end:topic_end]),
                bytes(view[topic_end:received_end]),
                bytes(view[received_end : received_end + p]),
            )
        )
    return letters


def count(value: bytes) -> int:
    """How many messages an envelope holds (nothing copied); ``EnvelopeError`` if broken."""
    return sum(1 for _ in _frames(value))


def is_envelope(headers: Sequence[tuple[str, bytes]] | None) -> bool:
    """Whether a ``telemetry.raw`` record with these headers is an envelope."""
    return any(name == ENVELOPE_HEADER and value == ENVELOPE_VERSION for name, value in headers or ())
