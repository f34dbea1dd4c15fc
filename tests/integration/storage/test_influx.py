"""Writing line protocol and reading it back with InfluxQL, against the real InfluxDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smartfarm.errors import StorageError
from smartfarm.layout import SensorKind
from storage.influx import InfluxClient
from storage.lines import ReadingLines
from storage.schema import DeviceStatusPoint, ReadingPoint
from storage.zones import StoredReading, hourly_means, last_readings, recent_readings, stored_readings
from stream.clean import Cleaned, DeviceMemory
from tests.hostile import good
from tests.unit.stream.test_clean import CLEANER, raw

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _soil_points(n: int, every: timedelta, devices: int = 1) -> list[ReadingPoint]:
    """``n`` good soil-moisture readings of farm f, zone z from T0, ``every`` apart, 20.0 up by 1 each, taken in
    turn by ``devices`` devices (d-0, d-1, ...)."""
    return [
        ReadingPoint(
            time=T0 + every * i,
            farm="f",
            zone="z",
            device=f"d-{i % devices}",
            sensor="sm-15",
            kind="soil_moisture",
            value=20.0 + i,
            seq=i,
            quality="good",
            depth_cm=15,
        )
        for i in range(n)
    ]


def test_points_written_are_read_back_with_influxql(influx: InfluxClient) -> None:
    points = _soil_points(10, timedelta(minutes=1), devices=2)
    assert influx.write(points) == 10
    influx.write([DeviceStatusPoint(time=T0, farm="f", device="d-0", online=False, will=True)])

    rows = influx.query(
        "SELECT mean(value) AS mean, count(value) AS n FROM reading "
        "WHERE kind = 'soil_moisture' AND time >= '2026-06-01T12:00:00Z' GROUP BY device"
    )
    by_device = {r["device"]: r for r in rows}
    assert by_device["d-0"]["n"] == 5 and by_device["d-0"]["mean"] == pytest.approx(24.0)
    assert by_device["d-1"]["n"] == 5 and by_device["d-1"]["mean"] == pytest.approx(25.0)

    raw = influx.query("SELECT value, seq, depth_cm FROM reading WHERE device = 'd-1' ORDER BY time DESC LIMIT 1")
    assert raw[0]["seq"] == 9 and raw[0]["value"] == 29.0 and raw[0]["depth_cm"] == 15
    assert raw[0]["time"] == int((T0 + timedelta(minutes=9)).timestamp()) * 10**9

    tags = influx.query("SHOW TAG KEYS FROM reading")
    assert {r["tagKey"] for r in tags} == set(ReadingPoint.tag_names())
    status = influx.query("SELECT online, will FROM device_status")
    assert (status[0]["online"], status[0]["will"]) == (False, True)


def test_a_bad_line_and_a_bad_query_raise_storage_errors(influx: InfluxClient) -> None:
    with pytest.raises(StorageError, match="400") as caught:
        influx.write_lines(["reading,farm=f value="])
    assert caught.value.status == 400
    with pytest.raises(StorageError, match="error parsing query"):
        influx.query("SELECT nothing FROM")
    with pytest.raises(StorageError, match="failed: retention policy not found"):
        influx.query('SELECT * FROM "no-such-rp"."reading"')


def test_gzip_writes_land_and_a_rewrite_overwrites_instead_of_doubling(influx: InfluxClient) -> None:
    lines = [
        f"reading,device=d-{i % 3},sensor=s value={i}.5,seq={i}i {1_780_320_600_000_000_000 + i}" for i in range(50)
    ]
    assert influx.write_lines(lines, compress=True) == 50
    assert influx.write_lines(lines, compress=True) == 50, "the same batch again, as after a redelivery"
    rows = influx.query("SELECT count(value) AS n, sum(value) AS total FROM reading")
    assert rows[0]["n"] == 50 and rows[0]["total"] == sum(i + 0.5 for i in range(50))


def test_the_zone_stage_reads_a_zones_readings_back_in_one_scan(influx: InfluxClient) -> None:

    memory = DeviceMemory()
    messages = []
    for seq, value in enumerate((23.4, 23.5, 45.0)):  # the last jumps: a spike, flagged
        doc = good(T0 + timedelta(minutes=5 * seq), seq)
        doc["readings"][0]["value"] = value
        outcome = CLEANER.clean(raw(doc), memory)
        assert isinstance(outcome, Cleaned)
        messages.append(outcome.message)
    window = (T0.timestamp(), T0.timestamp() + 3600)
    assert stored_readings(influx, "valley-farm", "tomato-north", *window) == [], "nothing stored yet"
    lines = [line for m in messages[:2] for line in ReadingLines().lines(m)]
    influx.write_lines(lines)  # no suspect reading yet: no point has a flags field
    first = stored_readings(influx, "valley-farm", "tomato-north", *window)
    assert len(first) == 8 and all(r.good and r.flags == "" for r in first)
    influx.write_lines(ReadingLines().lines(messages[2]))
    back = stored_readings(influx, "valley-farm", "tomato-north", *window)
    spike = [r for r in back if not r.good]
    assert spike == [
        StoredReading(
            (T0 + timedelta(minutes=10)).timestamp(),
            messages[2].device,
            "sm-15",
            SensorKind.SOIL_MOISTURE,
            45.0,
            False,
            "spike",
        )
    ]
    assert len(back) == 12 and stored_readings(influx, "valley-farm", "maize-east", *window) == []


def test_each_sensors_last_reading_before_an_hour_in_one_query(influx: InfluxClient) -> None:
    """The gap before an hour, for the fault detector: each sensor's latest stored reading in a range."""
    memory = DeviceMemory()
    start = T0 + timedelta(days=1)
    for seq in range(3):
        doc = good(start + timedelta(minutes=15 * seq), seq)
        outcome = CLEANER.clean(raw(doc), memory)
        assert isinstance(outcome, Cleaned)
        influx.write_lines(ReadingLines().lines(outcome.message))
        device = outcome.message.device
    found = last_readings(influx, "valley-farm", "tomato-north", start.timestamp(), start.timestamp() + 3600)
    latest = (start + timedelta(minutes=30)).timestamp()
    assert len(found) == 4, "every sensor of the message"
    assert all(at == latest for at, _ in found.values())
    assert found[(device, "sm-15")][1] == good(start, 0)["readings"][0]["value"]
    before = last_readings(influx, "valley-farm", "tomato-north", start.timestamp() - 3600, start.timestamp())
    assert before == {}, "nothing stored in the hour before"


def test_each_sensors_latest_readings_and_hourly_means_for_the_fault_detector(influx: InfluxClient) -> None:
    """A sensor's last readings before an hour (its gap and how long a value held) and its hourly means of the
    week before (its usual offset from its peers), one query each; and the same of the farm's other zones."""
    influx.write(_soil_points(10, timedelta(minutes=15)))  # 12:00 to 14:15
    start, end = T0.timestamp(), (T0 + timedelta(hours=3)).timestamp()
    latest = recent_readings(influx, "f", "z", start, (T0 + timedelta(hours=2)).timestamp(), 3)
    at = [(T0 + timedelta(minutes=15 * i)).timestamp() for i in (5, 6, 7)]
    assert latest == {("d-0", "sm-15"): [(at[0], 25.0), (at[1], 26.0), (at[2], 27.0)]}, "oldest first"
    means = hourly_means(influx, "f", "z", start, end)
    hours = [int((T0 + timedelta(hours=h)).timestamp()) for h in range(3)]
    assert means == {("d-0", "sm-15"): {hours[0]: 21.5, hours[1]: 25.5, hours[2]: 28.5}}
    assert recent_readings(influx, "f", "other", start, end, 3) == {} and hourly_means(influx, "f", "z", 0, 1) == {}
    # The farm's other zones' sensors of the farm's weather: peers of the zone's own, read the same way.
    soil = {SensorKind.SOIL_MOISTURE}
    assert hourly_means(influx, "f", "elsewhere", start, end, peers_of=soil) == means
    assert hourly_means(influx, "f", "elsewhere", start, end, peers_of={SensorKind.AIR_TEMPERATURE}) == {}
    assert recent_readings(influx, "f", "elsewhere", start, at[2] + 1, 3, peers_of=soil) == latest
    assert len(stored_readings(influx, "f", "elsewhere", start, end, peers_of=soil, own=False)) == 10
    assert stored_readings(influx, "f", "z", start, end, peers_of=soil, own=False) == [], "not the zone's own"
    with pytest.raises(ValueError, match="no zone's series"):
        stored_readings(influx, "f", "z", start, end, own=False)


def test_the_lines_influxdb_refuses_for_good_are_found_and_every_other_line_is_stored(influx: InfluxClient) -> None:
    """A clock reset (2000-01-01, beyond the 52-week retention) and a field type conflict (an integer where the
    measurement holds floats) among 2,000 good lines: InfluxDB's partial write says how many, the bisection which."""
    lines = [
        f"probe,device=d-{i % 7} value={i}.5 {int((T0 + timedelta(seconds=i)).timestamp()) * 10**9}"
        for i in range(2000)
    ]
    lines[111] = f"probe,device=d-1 value=1.5 {int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()) * 10**9}"
    lines[1500] = f"probe,device=d-2 value=7i {int(T0.timestamp()) * 10**9 + 1}"
    refused = influx.write_or_refusals(lines, compress=True)
    assert [r.index for r in refused] == [111, 1500]
    assert "beyond retention policy" in refused[0].detail and "field type conflict" in refused[1].detail
    rows = influx.query("SELECT count(value) AS n FROM probe")
    assert rows[0]["n"] == 1998


def test_a_write_the_database_refuses_for_the_client_is_not_taken_for_bad_data(influx: InfluxClient) -> None:
    elsewhere = InfluxClient(influx.settings.model_copy(update={"database": "no_such_database"}))
    with pytest.raises(StorageError) as caught:
        elsewhere.write_or_refusals([f"probe value=1.5 {int(T0.timestamp()) * 10**9}"])
    assert caught.value.status == 404 and not caught.value.refuses_data and not caught.value.transient
