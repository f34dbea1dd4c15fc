"""The schema phase's shapes of ``reading``: B's and C's lines hold every reading once under its key, as the line
protocol writer would spell them, and their reads' answers are parsed into today's forms."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest

from benchmarks.shapes import (
    MEASUREMENT,
    Shape,
    WideLines,
    buckets_query,
    field_key,
    health_of,
    health_query,
    latest_query,
    parse_buckets,
    parse_count,
    parse_counts,
    parse_health,
    parse_latest,
    parse_readback,
    split_key,
)
from smartfarm.layout import SensorKind
from smartfarm.records import CleanMessage, CleanValue
from storage.lines import encode_line, time_ns
from storage.zones import NS, Bucket, StoredReading

SENSORS = [
    ("sm-15", "soil_moisture"),
    ("sm-30", "soil_moisture"),
    ("st-15", "soil_temperature"),
    ("bat", "battery"),
    ("air-t", "air_temperature"),
]
_FIELD = re.compile(r'([^=,]+)=("(?:[^"\\]|\\.)*"|[^,]+)(?:,|$)')


def parse_line(line: str) -> tuple[str, dict[str, str], int]:
    """(series key, fields as written, nanoseconds) of a line whose tags hold no space."""
    head, rest = line.split(" ", 1)
    fields, ns = rest.rsplit(" ", 1)
    return head, dict(_FIELD.findall(fields)), int(ns)


def message(rng: random.Random, seq: int) -> CleanMessage:
    readings = []
    for sensor, kind in rng.sample(SENSORS, rng.randint(1, len(SENSORS))):
        flags = rng.choice([(), (), ("spike",), ("out_of_range", "spike"), ("stuck",)])
        readings.append(
            CleanValue(
                sensor=sensor,
                kind=kind,
                value=rng.choice([23.4, 3.0, 0.0, -12.25, 1e-5, 1234.5678, 7]),
                unit="%",
                quality="suspect" if flags else "good",
                flags=flags,
                depth_cm=rng.choice([None, 15.0]),
            )
        )
    ts = datetime(2026, 7, 1, tzinfo=UTC) + timedelta(microseconds=rng.randint(0, 10**12))
    return CleanMessage.create(
        farm="valley-farm",
        zone=rng.choice(["tomato-north", "maize-east"]),
        device=f"soil-{seq % 7}",
        seq=seq,
        ts=ts,
        received_at=ts,
        readings=readings,
    )


def expected_lines(m: CleanMessage, by_kind: bool) -> list[str]:
    """The lines of ``m`` as the line protocol writer spells them: a good value under its key, a suspect one's
    under ``.suspect`` with ``.flags``, and ``seq``; one line, or one per kind."""
    groups: dict[str, dict[str, float | int | str | None]] = {}
    for r in m.readings:
        fields = groups.setdefault(r.kind.value if by_kind else "", {"seq": m.seq})
        key = f"{r.kind.value}.{r.sensor}"
        if r.flags:
            fields[key + ".suspect"] = r.value
            fields[key + ".flags"] = ",".join(f.value for f in r.flags)
        else:
            fields[key] = r.value
    tags = {"farm": m.farm, "zone": m.zone, "device": m.device}
    return [encode_line(MEASUREMENT, tags | ({"kind": k} if k else {}), f, time_ns(m.ts)) for k, f in groups.items()]


@pytest.mark.parametrize("by_kind", [False, True], ids=["B", "C"])
def test_wide_lines_hold_every_reading_once_as_the_writer_spells_it(by_kind: bool) -> None:
    rng = random.Random(7)
    writer = WideLines(by_kind=by_kind)
    for seq in range(400):
        m = message(rng, seq)
        got = writer.lines(m)
        assert sorted(map(parse_line, got)) == sorted(map(parse_line, expected_lines(m, by_kind)))
        assert len(got) == (len({r.kind for r in m.readings}) if by_kind else 1)


@pytest.mark.parametrize(
    ("key", "split"),
    [
        ("soil_moisture.sm-15", (SensorKind.SOIL_MOISTURE, "sm-15", False)),
        ("battery.bat.suspect", (SensorKind.BATTERY, "bat", True)),
        ("battery.bat.flags", None),
        ("seq", None),
        ("mean_soil_moisture.sm-15.other", None),
    ],
)
def test_split_key(key: str, split: tuple[SensorKind, str, bool] | None) -> None:
    assert split_key(key) == split
    if split is not None:
        assert field_key(split[0].value, split[1]) + (".suspect" if split[2] else "") == key


def test_only_the_line_per_kind_filters_reads_on_the_kind_tag() -> None:
    b = buckets_query(Shape.MESSAGE, "f", "z", SensorKind.SOIL_MOISTURE, 0, 3600, 300)
    c = buckets_query(Shape.KIND, "f", "z", SensorKind.SOIL_MOISTURE, 0, 3600, 300)
    assert "kind = " not in b and "kind = 'soil_moisture'" in c
    assert "mean(/^soil_moisture\\.[a-z0-9-]+$/)" in b and "GROUP BY time(300s), device fill(none)" in b


def test_latest_and_health_ask_one_selector_per_statement() -> None:
    keys = [("soil_moisture", "sm-15"), ("battery", "bat")]
    statements = latest_query(Shape.MESSAGE, "f", "z", keys, 0, 3600).split("; ")
    assert len(statements) == 4 and all(s.count("last(") == 1 for s in statements)
    assert 'AS "battery.bat.suspect"' in statements[3]
    health = health_query(Shape.KIND, "f", ["bat"], 0).split("; ")
    assert health[0].startswith('SELECT last(seq) AS "seq"') and "kind = " not in health[0]
    assert all("kind = 'battery'" in s for s in health[1:]) and len(health) == 3


def _series(device: str, columns: list[str], values: list[list[object]]) -> dict[str, object]:
    return {"name": "reading", "tags": {"device": device}, "columns": ["time", *columns], "values": values}


def test_parse_buckets_gives_each_sensors_buckets_with_good_readings() -> None:
    columns = [f"{f}_soil_moisture.{s}" for f in ("mean", "min", "max", "count") for s in ("sm-15", "sm-30")]
    values = [[0, 20.0, None, 19.0, None, 21.0, None, 2, None], [300 * NS, 22.0, 30.0, 22.0, 30.0, 22.0, 30.0, 1, 1]]
    found = parse_buckets([_series("d1", columns, values)])
    assert found == {
        ("d1", "sm-15"): [Bucket(0, 20.0, 19.0, 21.0, 2), Bucket(300, 22.0, 22.0, 22.0, 1)],
        ("d1", "sm-30"): [Bucket(300, 30.0, 30.0, 30.0, 1)],
    }


def test_parse_latest_takes_the_newer_of_good_and_suspect() -> None:
    series = [
        _series("d1", ["soil_moisture.sm-15"], [[10 * NS, 20.0]]),
        _series("d1", ["soil_moisture.sm-15.suspect"], [[20 * NS, 99.0]]),
        _series("d2", ["soil_moisture.sm-15"], [[30 * NS, 21.0]]),
        _series("d2", ["soil_moisture.sm-15.suspect"], [[5 * NS, 98.0]]),
        _series("d3", ["soil_moisture.sm-15"], [[5 * NS, None]]),
    ]
    assert parse_latest(series) == {("d1", "sm-15"): (20.0, 99.0), ("d2", "sm-15"): (30.0, 21.0)}


def test_parse_health_and_todays_answer_agree() -> None:
    series = [
        _series("d1", ["seq"], [[50 * NS, 7]]),
        _series("d2", ["seq"], [[40 * NS, 3]]),
        _series("d1", ["battery.bat"], [[50 * NS, 3.9]]),
        _series("d1", ["battery.bat.suspect"], [[30 * NS, 0.1]]),
    ]
    today = {
        "d1": {SensorKind.BATTERY: (50.0, 3.9), SensorKind.SOIL_MOISTURE: (50.0, 20.0)},
        "d2": {SensorKind.SOIL_MOISTURE: (40.0, 21.0)},
    }
    assert parse_health(series) == health_of(today) == {"d1": (50.0, (50.0, 3.9)), "d2": (40.0, None)}


def test_parse_readback_gives_good_and_suspect_readings_with_flags() -> None:
    columns = ["battery.bat", "soil_moisture.sm-30", "soil_moisture.sm-30.flags", "soil_moisture.sm-30.suspect"]
    values = [[10 * NS, 3.0, 30.0, None, None], [20 * NS, 3.1, None, "spike,stuck", 90.0]]
    assert sorted(parse_readback([_series("d2", columns, values)])) == sorted(
        [
            StoredReading(10.0, "d2", "bat", SensorKind.BATTERY, 3.0, True, ""),
            StoredReading(10.0, "d2", "sm-30", SensorKind.SOIL_MOISTURE, 30.0, True, ""),
            StoredReading(20.0, "d2", "bat", SensorKind.BATTERY, 3.1, True, ""),
            StoredReading(20.0, "d2", "sm-30", SensorKind.SOIL_MOISTURE, 90.0, False, "spike,stuck"),
        ]
    )


def test_parse_count_sums_every_value_field() -> None:
    series = [{"name": "reading", "columns": ["time", "count_a.x", "count_a.x.suspect"], "values": [[0, 20, 3]]}]
    assert parse_count(series) == 23
    assert parse_count([]) == 0


def test_parse_counts_rolls_each_kinds_buckets_up_into_windows() -> None:
    columns = ["count_soil_moisture.sm-15", "count_soil_moisture.sm-15.suspect", "count_battery.bat"]
    values = [[3600 * NS, 2, 1, 2], [4500 * NS, 2, None, 0], [7200 * NS, None, None, 1]]
    found = parse_counts([{"name": "reading", "columns": ["time", *columns], "values": values}], (900, 3600))
    moisture, battery = SensorKind.SOIL_MOISTURE, SensorKind.BATTERY
    assert found == {
        (900, 3600, moisture): 3,
        (900, 4500, moisture): 2,
        (3600, 3600, moisture): 5,
        (900, 3600, battery): 2,
        (3600, 3600, battery): 2,
        (900, 7200, battery): 1,
        (3600, 7200, battery): 1,
    }
