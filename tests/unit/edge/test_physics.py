"""The simulated farm's physics: weather, soil water, temperatures, repeatability."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, date, datetime, timedelta

import pytest
from pyfao56.refet import ascedaily

from edge.faults import FaultRates
from edge.simulator import FarmSimulation
from edge.soil import SimulatedZone
from edge.weather import Climate, FarmWeather, Weather, saturation_vapour_pressure_kpa, solar_hour, sun_elevation_deg
from smartfarm.agronomy import CROPS, SOILS, CropStage, crop_coefficient, growth_stage
from smartfarm.layout import Crop, Zone, load_layout

LAYOUT = load_layout()
FARM = LAYOUT.farms[0]
DRY = Climate(p_wet_after_dry=0.0, p_wet_after_wet=0.0)
WET = Climate(p_wet_after_dry=1.0, p_wet_after_wet=1.0, mean_rain_mm=15.0)
MIDNIGHT = datetime(2026, 7, 1, 8, tzinfo=UTC)  # local midnight at the farm (UTC-8 solar)


def zone(zone_id: str) -> Zone:
    return next(z for z in FARM.zones if z.id == zone_id)


def test_dry_sunny_days_dry_the_soil_at_the_crops_fao56_rate() -> None:
    """Water lost over a day matches Kc x ET0, with ET0 from the daily FAO-56 Penman-Monteith of that day's
    weather: an independent check of the hourly model."""
    weather = FarmWeather(FARM, seed=7, climate=DRY)
    maize = zone("maize-east")
    soil = SOILS[maize.soil]
    for day in range(3):
        start = MIDNIGHT + timedelta(days=day)
        state = SimulatedZone.initial(maize, fraction_of_available=0.95)
        state.theta = [soil.field_capacity - 0.005] * 2  # moist but not draining, well above the stress limit
        before = state.water_mm
        hours = [weather.at(start + timedelta(minutes=5 * (i + 1)), 300) for i in range(288)]
        for w in hours:
            state.step(w, 300)
        lost = before - state.water_mm

        temps = [w.air_temp_c for w in hours]
        vapour = (
            sum(saturation_vapour_pressure_kpa(t) * w.humidity_pct / 100 for t, w in zip(temps, hours, strict=True))
            / 288
        )
        rs = sum(w.solar_wm2 for w in hours) * 300 / 1e6  # MJ/m2/day
        wind = sum(w.wind_ms for w in hours) / 288
        et0_daily = ascedaily(
            "S",
            FARM.elevation_m,
            FARM.latitude,
            start.timetuple().tm_yday,
            rs,
            max(temps),
            min(temps),
            vapr=vapour,
            wndsp=wind,
        )
        kc = crop_coefficient(maize.crop, maize.planting_date, (start + timedelta(hours=12)).date())
        assert 4.0 < et0_daily < 9.0, "a clear July day in the Central Valley"
        assert lost == pytest.approx(kc * et0_daily, rel=0.15), (day, lost, kc, et0_daily)
        assert all(w.rain_mm == 0 for w in hours)


def test_rain_and_irrigation_wet_the_soil() -> None:
    lettuce = zone("lettuce-south")
    state = SimulatedZone.initial(lettuce, fraction_of_available=0.3)
    night = Weather(MIDNIGHT, 15.0, 70.0, 0.0, 1.0, 0.0, 0.0)
    before = state.moisture_pct(15)
    state.step(dataclasses.replace(night, rain_mm=9.0), 300)
    assert state.moisture_pct(15) == pytest.approx(before + 9.0 / 300 * 100, abs=0.01)
    assert state.leaf_wetness == 100.0

    state = SimulatedZone.initial(lettuce, fraction_of_available=0.3)
    before = state.water_mm
    state.irrigate(12.0)
    steps = 0
    while state.irrigation_pending_mm > 0:
        state.step(night, 300)
        steps += 1
    assert steps == math.ceil(12.0 / lettuce.irrigation_rate_mm_h * 12)  # 3 mm/h in 5-minute steps
    assert state.irrigation_applied_mm == pytest.approx(12.0)
    assert state.water_mm == pytest.approx(before + 12.0, abs=0.01)


def test_water_above_field_capacity_drains_away() -> None:
    loam = zone("tomato-north")
    soil = SOILS[loam.soil]
    state = SimulatedZone.initial(loam)
    state.theta = [soil.saturation, soil.saturation]
    night = Weather(MIDNIGHT, 15.0, 70.0, 0.0, 1.0, 0.0, 0.0)
    for _ in range(12 * 48):
        state.step(night, 300)
    assert all(soil.field_capacity <= t < soil.field_capacity + 0.01 for t in state.theta)
    assert state.last.drainage_mm >= 0


@pytest.mark.parametrize("climate", [DRY, WET, Climate()], ids=["dry", "wet", "default"])
def test_soil_water_never_leaves_its_physical_bounds(climate: Climate) -> None:
    sim = FarmSimulation(LAYOUT, seed=3, start=MIDNIGHT, interval_s=900, rates=FaultRates.none(), climate=climate)
    for i in range(4 * 24 * 20):
        if i % 300 == 0:
            sim.irrigate(FARM.id, "vineyard-west", 40.0)
        tick = sim.step()
        for state in sim.zones.values():
            soil = SOILS[state.zone.soil]
            assert all(soil.wilting_point * 0.5 - 1e-9 <= t <= soil.saturation + 1e-9 for t in state.theta)
            assert 0.0 <= state.leaf_wetness <= 100.0
        for message in tick.messages:
            for reading in message.readings:
                assert math.isfinite(reading.value)
                if reading.kind in ("soil_moisture", "air_humidity", "leaf_wetness"):
                    assert 0.0 <= reading.value <= 100.0


def test_temperature_peaks_in_the_afternoon_and_the_sun_at_noon() -> None:
    weather = FarmWeather(FARM, seed=11)
    for day in range(5):
        start = MIDNIGHT + timedelta(days=day)
        times = [start + timedelta(minutes=10 * i) for i in range(144)]
        hottest = max(times, key=weather.air_temp_c)
        brightest = max(times, key=weather.solar_wm2)
        assert 13.0 <= solar_hour(FARM.longitude, hottest) <= 17.0
        assert 11.0 <= solar_hour(FARM.longitude, brightest) <= 13.0
        assert all(weather.solar_wm2(t) == 0 for t in times if sun_elevation_deg(FARM.latitude, FARM.longitude, t) <= 0)
    noon = datetime(2026, 6, 21, 20, 7, tzinfo=UTC)  # solar noon at -121.74
    assert sun_elevation_deg(FARM.latitude, FARM.longitude, noon) == pytest.approx(90 - 38.54 + 23.44, abs=0.5)


def test_crop_coefficient_follows_the_fao56_curve() -> None:
    planted = date(2026, 4, 1)
    tomato = CROPS[Crop.TOMATO]
    assert crop_coefficient(Crop.TOMATO, planted, planted) == tomato.kc_ini
    assert crop_coefficient(Crop.TOMATO, planted, planted + timedelta(days=50)) == pytest.approx(
        tomato.kc_ini + (tomato.kc_mid - tomato.kc_ini) * 20 / 40
    )
    assert crop_coefficient(Crop.TOMATO, planted, planted + timedelta(days=80)) == tomato.kc_mid
    assert crop_coefficient(Crop.TOMATO, planted, planted + timedelta(days=200)) == tomato.kc_end
    assert growth_stage(Crop.TOMATO, planted, planted + timedelta(days=75)) is CropStage.MID_SEASON
    assert growth_stage(Crop.TOMATO, planted, planted + timedelta(days=135)) is CropStage.HARVESTED


def test_the_same_seed_gives_identical_data_and_another_seed_does_not() -> None:
    def run(seed: int) -> list[bytes]:
        sim = FarmSimulation(LAYOUT, seed=seed, start=MIDNIGHT, interval_s=300, rates=FaultRates())
        return [m.payload for _ in range(600) for m in sim.step().messages]

    first = run(5)
    assert first == run(5)
    assert first != run(6)
    assert len(first) > 600 * 12 * 0.9
