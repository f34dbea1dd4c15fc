"""Weather scenarios: a dry spell and a downpour on demand, and runs without them exactly as before."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from pydantic import ValidationError

from edge.faults import FaultRates
from edge.settings import EdgeSettings
from edge.simulator import FarmSimulation, Tick
from edge.weather import Climate, FarmWeather, WeatherEvent
from smartfarm.layout import load_layout

LAYOUT = load_layout()
FARM = LAYOUT.farms[0]
MIDNIGHT = datetime(2026, 7, 1, 8, tzinfo=UTC)  # local midnight at the farm (UTC-8 solar)
WET = Climate(p_wet_after_dry=1.0, p_wet_after_wet=1.0, mean_rain_mm=15.0)  # rain every day unless told otherwise
DRY_SPELL = WeatherEvent.dry(MIDNIGHT, timedelta(days=3, hours=12))
DOWNPOUR = WeatherEvent.rain(DRY_SPELL.end, timedelta(hours=2), rain_mm=40.0)
SCENARIO = Climate(p_wet_after_dry=1.0, p_wet_after_wet=1.0, mean_rain_mm=15.0, events=(DRY_SPELL, DOWNPOUR))
RAIN_RESOLUTION_MM = 0.2  # one tip of the bucket


def readings(ticks: list[Tick], device: str, sensor: str) -> list[tuple[datetime, float]]:
    return [
        (m.ts, next(r.value for r in m.readings if r.sensor == sensor))
        for tick in ticks
        for m in tick.messages
        if m.device == device
    ]


@cache
def scenario_run() -> list[Tick]:
    """Four days of clean data in a climate that rains every day: dry until noon of the fourth, then 40 mm in two
    hours."""
    sim = FarmSimulation(LAYOUT, seed=4, start=MIDNIGHT, interval_s=300, rates=FaultRates.none(), climate=SCENARIO)
    return [sim.step() for _ in range(4 * 288)]


def test_a_dry_spell_has_no_rain_and_the_soil_dries() -> None:
    ticks = [t for t in scenario_run() if DRY_SPELL.covers(t.time - timedelta(seconds=300))]
    assert len(ticks) == 3 * 288 + 144
    assert all(t.weather[FARM.id].rain_mm == 0 for t in ticks)
    assert all(v == 0 for _, v in readings(ticks, "wx-tomato-north", "rain"))
    top = [v for _, v in readings(ticks, "soil-tomato-north-1", "sm-15")]
    assert top[-1] < top[0] - 2.0, "three and a half days of evapotranspiration and no rain"
    weather = FarmWeather(FARM, seed=4, climate=WET)
    drawn = sum(weather.at(t.time, 300).rain_mm for t in ticks)
    assert drawn > 10, "without the event this climate rains every day"


def test_a_downpour_brings_its_rain_and_wets_the_top_layer() -> None:
    ticks = scenario_run()
    during = [t for t in ticks if DOWNPOUR.covers(t.time - timedelta(seconds=300))]
    assert len(during) == 24
    assert sum(t.weather[FARM.id].rain_mm for t in during) == pytest.approx(40.0)
    assert all(t.weather[FARM.id].humidity_pct > 90 for t in during), "humid air while it pours"
    # The drawn rain of the wet climate resumes after the downpour: count the gauge up to its end.
    gauge = sum(v for ts, v in readings(ticks, "wx-tomato-north", "rain") if ts <= DOWNPOUR.end)
    assert gauge == pytest.approx(40.0, abs=RAIN_RESOLUTION_MM)
    top = dict(readings(ticks, "soil-tomato-north-1", "sm-15"))
    before, after = top[DOWNPOUR.start], top[DOWNPOUR.end]
    assert after > before + 8.0, "40 mm into the top 30 cm, less what ran off and drained"


def test_an_event_not_aligned_with_the_steps_brings_exactly_its_rain() -> None:
    event = WeatherEvent.rain(MIDNIGHT + timedelta(minutes=7, seconds=30), timedelta(minutes=50), rain_mm=12.5)
    weather = FarmWeather(FARM, seed=1, climate=Climate(p_wet_after_dry=0.0, p_wet_after_wet=0.0, events=(event,)))
    total = sum(weather.at(MIDNIGHT + timedelta(seconds=600 * (i + 1)), 600).rain_mm for i in range(12))
    assert total == pytest.approx(12.5)


def golden(climate: Climate | None) -> str:
    sim = FarmSimulation(LAYOUT, seed=5, start=MIDNIGHT, interval_s=300, rates=FaultRates(), climate=climate)
    digest = hashlib.sha256()
    for _ in range(400):
        for message in sim.step().messages:
            digest.update(message.payload)
    return digest.hexdigest()


# A deliberate change to the physics changes these: update them then, and only then. Last taken when the nodes
# became solar-charged (their battery readings follow the sun).
GOLDEN_DEFAULT = "b232313d1790d9c99982a55970b21bf716fddd4b67a6a711cf116a4edb7dbf98"
GOLDEN_RAINY = "c0e4fe09e0809b035c45053d8c34f5ee930d669b1e4f64d3fdd268877dd1b2b6"
RAINY = dict(p_wet_after_dry=0.5, p_wet_after_wet=0.7)


def test_runs_without_events_are_byte_for_byte_what_they_were() -> None:
    assert golden(None) == GOLDEN_DEFAULT
    assert golden(Climate(**RAINY)) == GOLDEN_RAINY


def test_events_outside_the_run_change_nothing() -> None:
    later = MIDNIGHT + timedelta(days=30)
    events = (
        WeatherEvent.dry(later, timedelta(days=2)),
        WeatherEvent.rain(later + timedelta(days=3), timedelta(hours=1), 5),
    )
    climate = Climate(**RAINY, events=events)
    assert golden(climate) == GOLDEN_RAINY


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"kind": "rain", "start": MIDNIGHT, "end": MIDNIGHT + timedelta(hours=1)}, "needs rain_mm > 0"),
        ({"kind": "dry", "start": MIDNIGHT, "end": MIDNIGHT + timedelta(hours=1), "rain_mm": 3}, "dry event none"),
        ({"kind": "dry", "start": MIDNIGHT, "end": MIDNIGHT}, "must end after it starts"),
        ({"kind": "hail", "start": MIDNIGHT, "end": MIDNIGHT + timedelta(hours=1)}, "kind"),
        ({"kind": "dry", "start": "2026-07-01T00:00", "end": "2026-07-02T00:00Z"}, "timezone"),
    ],
)
def test_a_bad_event_is_refused(fields: dict[str, object], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        WeatherEvent.model_validate(fields)


def test_overlapping_events_are_refused() -> None:
    with pytest.raises(ValueError, match="weather events overlap"):
        Climate(events=(DRY_SPELL, WeatherEvent.rain(MIDNIGHT + timedelta(days=1), timedelta(hours=2), 10)))


def test_settings_take_events_as_json_from_an_option_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    text = json.dumps(
        [
            {"kind": "dry", "start": "2026-07-01T08:00Z", "end": "2026-07-04T20:00Z"},
            {"kind": "rain", "start": "2026-07-04T20:00Z", "end": "2026-07-04T22:00Z", "rain_mm": 40},
        ]
    )
    assert EdgeSettings(weather=text).climate.events == (DRY_SPELL, DOWNPOUR)
    monkeypatch.setenv("SMARTFARM_EDGE_WEATHER", text)
    assert EdgeSettings().weather == (DRY_SPELL, DOWNPOUR)
    monkeypatch.setenv("SMARTFARM_EDGE_WEATHER", "")
    assert EdgeSettings().climate == Climate()
    with pytest.raises(ValidationError, match="not a JSON list"):
        EdgeSettings(weather="dry tomorrow")
    with pytest.raises(ValidationError, match="overlap"):
        EdgeSettings(weather=json.dumps([json.loads(text)[0]] * 2))
