"""What the zone stage makes of the readings it reads back: each sensor's readings and flags per hour."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from ml.context import SensorSuspicion
from ml.timeline import hour_aggregates, readings_context, suspicions, zone_days
from smartfarm.layout import SensorKind, load_layout
from storage.zones import StoredReading

SM = SensorKind.SOIL_MOISTURE


def reading(t: float, sensor: str = "sm-15", flags: str = "", device: str = "d-1") -> StoredReading:
    return StoredReading(t, device, sensor, SM, 20.0, not flags, flags)


def test_suspicions_count_every_reading_and_tally_the_flags_per_hour() -> None:
    readings = [
        reading(0),
        reading(300, flags="spike"),
        reading(600, flags="spike,stuck"),
        reading(900, sensor="sm-45"),
        reading(3600),
        reading(7200),  # outside the range asked for
        reading(100, device="d-2", flags="out_of_range"),
    ]
    hours = suspicions(readings, 0, 7200)
    assert hours == {
        0: [
            SensorSuspicion("d-1", "sm-15", SM, 3, {"spike": 2, "stuck": 1}),
            SensorSuspicion("d-1", "sm-45", SM, 1, {}),
            SensorSuspicion("d-2", "sm-15", SM, 1, {"out_of_range": 1}),
        ],
        3600: [SensorSuspicion("d-1", "sm-15", SM, 1, {})],
    }
    assert suspicions([], 0, 3600) == {}


def test_a_context_of_readings_has_their_hours_and_only_the_days_they_cover_whole() -> None:
    farm = load_layout().farms[0]
    zone = farm.zones[0]
    tz = ZoneInfo(farm.timezone)
    end = datetime(2026, 7, 4, 9, tzinfo=tz).astimezone(UTC)
    start = end - timedelta(hours=60)  # 1 July 21:00 local: 2 and 3 July whole, 1 July not
    readings = [
        (start.timestamp() + 600 * i, kind, 20.0 + (i % 7))
        for i in range(61 * 6)
        for kind in (SensorKind.AIR_TEMPERATURE, SensorKind.SOIL_MOISTURE)
    ]
    context = readings_context(farm, zone, readings, end)
    assert [d.day.isoformat() for d in context.days] == ["2026-07-02", "2026-07-03"]
    before = [r for r in readings if r[0] < end.timestamp()]
    made = {d.day: d for d in zone_days(farm, zone, hour_aggregates(farm.id, zone.id, before))}
    assert date(2026, 7, 1) in made, "the stream's rule makes a day of any hours; a context leaves a part one out"
    assert list(context.days) == [made[d.day] for d in context.days], "made by the stream's rule"
    soil = context.hours[SensorKind.SOIL_MOISTURE]
    assert len(soil) == 48 and soil[-1].window_end == end, "the 48 hours before the close, none after it"
