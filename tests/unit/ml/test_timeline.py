"""What the zone stage makes of the readings it reads back: each sensor's readings and flags per hour."""

from __future__ import annotations

from ml.context import SensorSuspicion
from ml.timeline import suspicions
from smartfarm.layout import SensorKind
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
