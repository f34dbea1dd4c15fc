"""The fast line-protocol writer against influxdb-client's own serializer, byte for byte."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from influxdb_client import Point, WritePrecision

from smartfarm.records import CleanMessage, CleanValue
from storage.lines import ReadingLines, encode_line, time_ns
from storage.schema import ReadingPoint

AWKWARD_TEXT = [
    "plain",
    "with space",
    "comma,here",
    "equals=sign",
    'double"quote',
    "back\\slash",
    "ends with backslash\\",
    "new\nline",
    "tab\there",
    "carriage\rreturn",
    "ünïcødé 🌱",
    "#hash-start",
    "",
]
AWKWARD_NUMBERS: list[float | int | bool] = [
    0.0,
    -0.0,
    3.0,
    23.4,
    1e-07,
    1e16,
    1.7976931348623157e308,
    -2.5e-300,
    float("nan"),
    float("inf"),
    0,
    -7,
    2**62,
    True,
    False,
]


def reference(measurement: str, tags: dict, fields: dict, ns: int) -> str:
    point = Point(measurement).time(ns, WritePrecision.NS)
    for key, value in tags.items():
        point.tag(key, value)
    for key, value in fields.items():
        point.field(key, value)
    return point.to_line_protocol()


@pytest.mark.filterwarnings("ignore:The measurement name:SyntaxWarning")
def test_encode_line_matches_influxdb_client_on_awkward_names_and_values() -> None:
    rng = random.Random(3)
    checked = 0
    for _ in range(3000):
        tags = {rng.choice(AWKWARD_TEXT) or "k": rng.choice(AWKWARD_TEXT) for _ in range(rng.randint(0, 4))}
        fields: dict = {}
        for _ in range(rng.randint(1, 4)):
            key = rng.choice(AWKWARD_TEXT) or "f"
            fields[key] = rng.choice([*AWKWARD_NUMBERS, *AWKWARD_TEXT, None])
        measurement = rng.choice(["reading", "zone aggregate", "a,b", *AWKWARD_TEXT[1:]])
        ns = rng.randint(0, 2**62)
        assert encode_line(measurement, tags, fields, ns) == reference(measurement, tags, fields, ns), (tags, fields)
        checked += 1
    assert checked == 3000


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 6, 1, 13, 30, tzinfo=UTC),
        datetime(2026, 6, 1, 13, 30, 0, 123_457, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2262, 4, 11, tzinfo=UTC),
    ],
)
def test_time_ns_is_exact(when: datetime) -> None:
    line = Point("m").time(when, WritePrecision.NS).field("v", 1).to_line_protocol()
    assert time_ns(when) == int(line.rsplit(" ", 1)[1])


def test_reading_lines_are_the_schemas_lines() -> None:
    rng = random.Random(5)
    writer = ReadingLines()
    ts = datetime(2026, 7, 1, tzinfo=UTC)
    for seq in range(300):
        flags = rng.choice([(), ("spike",), ("out_of_range", "spike"), ("stuck",)])
        value = rng.choice([23.4, 3.0, 0.0, -12.25, 1e-5, 1234.5678, 7])
        reading = CleanValue(
            sensor=rng.choice(["sm-15", "air-t", "bat"]),
            kind=rng.choice(["soil_moisture", "air_temperature", "battery"]),
            value=value,
            unit="%",
            quality="suspect" if flags else "good",
            flags=flags,
            depth_cm=rng.choice([None, 15.0, 45.5]),
        )
        message = CleanMessage.create(
            farm="valley-farm",
            zone=rng.choice(["tomato-north", "maize-east"]),
            device=f"soil-{seq % 7}",
            seq=seq,
            ts=ts + timedelta(microseconds=rng.randint(0, 10**12)),
            received_at=ts,
            readings=[reading],
        )
        expected = ReadingPoint(
            time=message.ts,
            farm=message.farm,
            zone=message.zone,
            device=message.device,
            sensor=reading.sensor,
            kind=reading.kind,
            value=reading.value,
            seq=seq,
            quality=reading.quality.value,
            flags=",".join(f.value for f in reading.flags) or None,
            depth_cm=reading.depth_cm,
        ).to_line()
        assert writer.lines(message) == [expected]
