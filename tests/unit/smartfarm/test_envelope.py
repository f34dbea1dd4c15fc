"""Envelopes of ``telemetry.raw``: every message comes out as it went in; broken bytes are refused, not guessed."""

from __future__ import annotations

import random

import pytest

from smartfarm.envelope import (
    ENVELOPE_HEADER,
    ENVELOPE_VERSION,
    HEAD_BYTES,
    EnvelopeError,
    Letter,
    count,
    frame_size,
    is_envelope,
    pack,
    unpack,
)

AWKWARD = [
    (b"dev-1", b"smartfarm/v1/f/devices/dev-1/telemetry", b"2026-07-01T12:00:00.000+00:00", b'{"seq":1}'),
    (b"dev-2", b"t", b"r", b""),  # an empty payload is the cleaner's to refuse, not the envelope's
    (b"", b"", b"", b"\x00\xff\xfe binary \n\r\t"),
    (b"d" * 64, "sm/ü/ẞ".encode(), b"2026", b"x" * 70_000),
]


def test_letters_come_out_byte_for_byte_in_order() -> None:
    assert unpack(pack(AWKWARD)) == [Letter(*a) for a in AWKWARD]
    assert len(pack(AWKWARD)) == sum(frame_size(*a) for a in AWKWARD)


def test_random_letters_round_trip() -> None:
    rng = random.Random(7)
    letters = [tuple(rng.randbytes(rng.randrange(0, n)) for n in (40, 200, 40, 5000)) for _ in range(300)]
    assert unpack(pack(letters)) == [Letter(*a) for a in letters]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (b"", "empty"),
        (pack(AWKWARD[:1])[:-1], "claims"),
        (pack(AWKWARD[:1]) + b"\x00\x01", "stray bytes"),
        (b"\x00" * (HEAD_BYTES - 1), "stray bytes"),
        (b"\xff" * HEAD_BYTES, "claims"),
    ],
    ids=["empty", "truncated", "trailing", "short head", "huge lengths"],
)
def test_broken_envelopes_are_refused(value: bytes, says: str) -> None:
    with pytest.raises(EnvelopeError, match=says):
        unpack(value)


def test_an_envelope_is_known_by_its_header() -> None:
    assert is_envelope([("bridge_id", b"b"), (ENVELOPE_HEADER, ENVELOPE_VERSION)])
    assert not is_envelope([("mqtt_topic", b"t")]) and not is_envelope(None)
    assert not is_envelope([(ENVELOPE_HEADER, b"2")]), "a version this build does not read is not opened"


def test_count_walks_the_heads_and_agrees_with_unpack() -> None:
    assert count(pack(AWKWARD)) == len(unpack(pack(AWKWARD))) == 4
    for broken in (b"", pack(AWKWARD)[:-1], pack(AWKWARD) + b"\x00"):
        with pytest.raises(EnvelopeError):
            count(broken)
