"""The default run's season window: the farm goes live with a harvest within notice, whatever today's date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from cli.farmclock import FALLBACK_DAYS, LIVE_AFTER_NOTICE_DAYS, SEASON_REACH_DAYS, recent_season, season_window
from edge.weather import Climate, FarmWeather
from ml.features import GDD_TO_HARVEST, growing_degree_days
from ml.rules.harvest import HARVEST_NOTICE_DAYS, RATE_DAYS
from smartfarm.layout import Crop, load_layout


def _gdd(weather: FarmWeather, crop: Crop, start: datetime, days: int) -> list[float]:
    out = []
    for offset in range(days):
        drawn = weather.day(start + timedelta(days=offset, hours=12))
        out.append(
            growing_degree_days(
                drawn.mean_temp_c - drawn.daily_range_c / 2, drawn.mean_temp_c + drawn.daily_range_c / 2, crop
            )
        )
    return out


def test_the_default_farm_catches_up_from_the_planting_that_reaches_harvest_first() -> None:
    layout = load_layout()
    window = season_window(layout, seed=42, climate=Climate(), interval_s=300)
    zones = {z.id: z for z in layout.farms[0].zones}
    assert window.zone == "lettuce-south", "the shortest crop, planted last, is the first to come to harvest"
    zone = zones[window.zone]
    assert window.start == datetime(
        zone.planting_date.year, zone.planting_date.month, zone.planting_date.day, tzinfo=UTC
    )
    assert window.catch_up.total_seconds() % 300 == 0, "the catch-up ends on a reading"
    assert window.harvest_within_notice is not None
    assert window.live.date() == window.harvest_within_notice + timedelta(days=LIVE_AFTER_NOTICE_DAYS)

    # By the simulated weather, the harvest is within notice when the farm goes live, and not yet done.
    gdd = _gdd(FarmWeather(layout.farms[0], 42, Climate()), zone.crop, window.start, window.catch_up.days)
    remaining = GDD_TO_HARVEST[zone.crop] - sum(gdd)
    rate = sum(gdd[-RATE_DAYS:]) / RATE_DAYS
    assert 0 < remaining / rate <= HARVEST_NOTICE_DAYS - LIVE_AFTER_NOTICE_DAYS + 1
    assert "lettuce-south's harvest comes within 14 days" in window.describe()


def test_another_seed_moves_the_window_with_its_weather_and_keeps_it_in_season() -> None:
    layout = load_layout()
    a = season_window(layout, seed=42, climate=Climate(), interval_s=300)
    warm = season_window(layout, seed=42, climate=Climate(mean_temp_c=20.0), interval_s=300)
    assert warm.live < a.live, "a warmer climate brings the harvest forward"


def test_a_climate_too_cold_for_any_harvest_falls_back_to_a_month_after_the_last_planting() -> None:
    layout = load_layout()
    window = season_window(layout, seed=1, climate=Climate(mean_temp_c=-20.0, annual_amplitude_c=2.0), interval_s=300)
    last = max(z.planting_date for z in layout.farms[0].zones)
    assert window.zone is None
    assert window.start.date() == last
    assert window.catch_up == timedelta(days=FALLBACK_DAYS)
    assert "30 days after the last planting" in window.describe()


def test_a_layout_of_a_season_long_past_plays_as_this_year_s_whole_years_on() -> None:
    layout = load_layout()
    plantings = {z.id: z.planting_date for f in layout.farms for z in f.zones}
    earliest = min(plantings.values())
    assert recent_season(layout, earliest + timedelta(days=SEASON_REACH_DAYS)) == layout, "still within reach"
    for years in (1, 3):
        today = earliest.replace(year=earliest.year + years) + timedelta(days=SEASON_REACH_DAYS // 2)
        moved = recent_season(layout, today)
        for farm in moved.farms:
            for zone in farm.zones:
                assert zone.planting_date == plantings[zone.id].replace(year=plantings[zone.id].year + years)
        assert today - min(z.planting_date for f in moved.farms for z in f.zones) <= timedelta(days=SEASON_REACH_DAYS)
        assert season_window(moved, 42, Climate(), 300.0).start.year == earliest.year + years


def test_a_leap_day_planting_moves_to_the_28th() -> None:
    data = load_layout().model_dump(mode="python")
    for zone in data["farms"][0]["zones"]:
        zone["planting_date"] = date(2028, 2, 29)
    layout = type(load_layout()).model_validate(data)
    moved = recent_season(layout, date(2029, 6, 1))
    assert {z.planting_date for z in moved.farms[0].zones} == {date(2029, 2, 28)}
