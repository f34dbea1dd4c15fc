"""A simulated season as tables: readings labelled with their ground-truth faults, the zones' true state, replay."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from edge.faults import FaultRates
from edge.forecast import ISSUE_EVERY, ForecastErrors
from edge.season import SeasonRecipe, farmer_valves, replanted, run_season, season_forecasts
from smartfarm.layout import load_layout

START = datetime(2025, 5, 1, tzinfo=UTC)
FAULTY = FaultRates(stuck=0.01, spike=0.01, drift=0.004, dropout=0.005, malformed=0.01, duplicate=0.01)


@pytest.fixture(scope="module")
def season() -> object:
    return run_season(load_layout(), SeasonRecipe(seed=7, start=START, days=6, rates=FAULTY), farmer_valves(7))


def test_every_delivered_reading_is_recorded_once_and_malformed_ones_not(season) -> None:  # type: ignore[no-untyped-def]
    readings, faults = season.readings, season.faults
    assert not readings.duplicated(["device", "seq", "sensor"]).any(), "a duplicated message counts once"
    malformed = {
        (d, s) for d, s in faults.loc[faults["fault"] == "malformed", ["device", "seq"]].itertuples(index=False)
    }
    assert malformed, "the rates make some payloads malformed"
    recorded = set(readings[["device", "seq"]].itertuples(index=False, name=None))
    assert not malformed & recorded, "the stream dead-letters malformed payloads, so training never sees them"
    for device, seqs in readings.groupby("device")["seq"]:
        sent = set(seqs) | {s for d, s in malformed if d == device}
        assert sent == set(range(max(sent) + 1)), f"{device}: every message it composed is there or dead-lettered"


def test_faulty_readings_carry_the_kind_of_their_fault(season) -> None:  # type: ignore[no-untyped-def]
    readings, faults = season.readings, season.faults
    for fault in faults[faults["fault"].isin(["stuck", "spike", "drift"])].itertuples():
        hit = readings[
            (readings["device"] == fault.device)
            & (readings["sensor"] == fault.sensor)
            & (readings["seq"] >= fault.seq)
            & (readings["seq"] < fault.seq + fault.ticks)
        ]
        assert (hit["fault"] != "").all(), f"{fault.fault} on {fault.device}/{fault.sensor} labelled"
    stuck = faults[faults["fault"] == "stuck"]
    assert not stuck.empty
    drifting = {(f.device, f.sensor) for f in faults[faults["fault"] == "drift"].itertuples()}
    for fault in stuck.itertuples():
        if (fault.device, fault.sensor) in drifting:
            continue  # a stuck sensor that also drifts moves with the drift
        held = readings[(readings["device"] == fault.device) & (readings["sensor"] == fault.sensor)]
        held = held[(held["seq"] >= fault.seq) & (held["seq"] < fault.seq + fault.ticks)]
        assert held["value"].value_counts().iloc[0] >= 0.9 * len(held), (
            "a stuck sensor repeats one value (a spike aside)"
        )
    dropouts = faults[faults["fault"] == "dropout"]
    for d in dropouts.itertuples():
        first_after = readings[(readings["device"] == d.device) & (readings["seq"] == d.seq)]
        assert first_after.empty or (first_after["fault"] != "").all(), "labelled (a sensor fault may overlap)"
    labelled = set(readings["fault"]) - {""}
    assert labelled <= {"stuck", "spike", "drift", "dropout", "battery_death"}


def test_a_recipe_makes_the_same_season_again() -> None:
    recipe = SeasonRecipe(seed=3, start=START, days=2, rates=FAULTY)
    a, b = run_season(load_layout(), recipe), run_season(load_layout(), recipe)
    pd.testing.assert_frame_equal(a.readings, b.readings)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    other = run_season(load_layout(), SeasonRecipe(seed=4, start=START, days=2, rates=FAULTY))
    assert not a.readings["value"].equals(other.readings["value"])


def test_replanting_draws_crops_and_dates_from_the_seed_and_keeps_the_soils() -> None:
    layout = load_layout()
    one = replanted(layout, SeasonRecipe(seed=1, start=START, days=30))
    again = replanted(layout, SeasonRecipe(seed=1, start=START, days=30))
    other = replanted(layout, SeasonRecipe(seed=2, start=START, days=30))
    zones = [z for f in one.farms for z in f.zones]
    assert zones == [z for f in again.farms for z in f.zones]
    assert zones != [z for f in other.farms for z in f.zones]
    assert all(-20 <= (z.planting_date - START.date()).days <= 10 for z in zones)
    assert [z.soil for z in zones] == [z.soil for f in layout.farms for z in f.zones], "a field keeps its soil"
    kept = replanted(layout, SeasonRecipe(seed=1, start=START, days=30, replant=False))
    assert kept == layout


def test_the_farmer_irrigates_dry_zones_and_the_truth_shows_it(season) -> None:  # type: ignore[no-untyped-def]
    truth = season.truth
    assert set(truth.columns) >= {"theta_top", "theta_low", "rain_mm", "irrigation_mm", "etc_mm", "et0_mm"}
    assert len(truth) == 4 * 6 * 96, "one row per zone and tick"
    assert truth["irrigation_mm"].sum() > 0, "some zone dried past the farmer's threshold in six days"
    assert (truth["et0_mm"] >= 0).all() and (truth["etc_mm"] >= 0).all()


def test_the_season_s_forecasts_forecast_its_own_weather_every_six_hours(season) -> None:  # type: ignore[no-untyped-def]
    recipe = season.recipe
    [(farm, issued)] = season_forecasts(season.weather, recipe, ForecastErrors.perfect()).items()
    assert farm == season.layout.farms[0].id
    assert [f.issued_at for f in issued] == [START + (i - 1) * ISSUE_EVERY for i in range(4 * recipe.days + 2)]
    rain = season.truth[season.truth["zone"] == season.layout.farms[0].zones[0].id].set_index("ts")["rain_mm"]
    wet_day = START + pd.Timedelta(days=3)  # 58 mm fell on the fourth day, 2 mm on the fifth
    fell = rain[(rain.index > wet_day) & (rain.index <= wet_day + pd.Timedelta(hours=48))].sum()
    forecast = next(f for f in issued if f.issued_at == wet_day)
    # Within a tenth: even the perfect provider stretches a spell's span (edge.forecast), so a little falls outside.
    assert fell > 50 and forecast.rain_mm(wet_day, 48) == pytest.approx(fell, rel=0.1)
