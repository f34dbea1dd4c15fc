"""The judge of the root-zone estimators on simulated seasons: the true depletion of the simulator's layers, the
fixed-gain baseline, and a table per zone and estimator."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge.season import SeasonRecipe, farmer_valves, run_season
from ml.estimator_skill import ESTIMATORS, fixed_gain_run, simulated_skill, true_depletion
from ml.kalman import Observation
from ml.waterbalance import run
from smartfarm.layout import load_layout
from tests.unit.ml.builders import balance_day


@pytest.mark.parametrize(
    ("top", "low", "zr", "expected"),
    [
        (0.25, 0.25, 0.6, 0.0),  # at field capacity
        (0.20, 0.25, 0.3, 15.0),  # the top layer only
        (0.20, 0.15, 0.6, 15.0 + 30.0),
        (0.20, 0.15, 0.45, 15.0 + 15.0),  # half of the lower layer
        (0.30, 0.30, 0.6, 0.0),  # above field capacity: no depletion, not a negative one
    ],
)
def test_true_depletion_sums_the_layers_over_the_root_zone(top: float, low: float, zr: float, expected: float) -> None:
    assert true_depletion(top, low, 0.25, zr) == pytest.approx(expected)


def test_the_fixed_gain_baseline_moves_a_third_of_the_way_by_weight() -> None:
    days = [balance_day(i) for i in range(3)]
    second = days[1].day
    assert fixed_gain_run(days, 20.0, {}) == [s.depletion_mm for s in run(days, 20.0)]
    moved = fixed_gain_run(days, 20.0, {second: Observation(50.0, 1.0)})
    assert moved[1] == pytest.approx(30.0 + 0.3 * 20.0)
    assert fixed_gain_run(days, 20.0, {second: Observation(50.0, 0.0)})[1] == pytest.approx(30.0)


def test_a_short_season_gives_a_row_per_zone_and_estimator() -> None:
    """Four days: the hourly estimate from the third day on (after its 48 h), the daily ones over the two whole
    days; every figure a finite error of a few millimetres, not a fault of the judge."""
    recipe = SeasonRecipe(seed=3, start=datetime(2025, 6, 1, tzinfo=UTC), days=4, interval_s=3600.0)
    season = run_season(load_layout(), recipe, on_hour=farmer_valves(3))
    table = simulated_skill(season.layout, season.readings, season.truth, every_h=12)
    assert set(table["estimator"]) <= set(ESTIMATORS)
    assert set(table["zone"]) == {z.id for f in season.layout.farms for z in f.zones}
    judged = table[table["n"] > 0]
    assert {"advisor hourly", "kalman", "fixed gain", "open loop"} <= set(judged["estimator"])
    assert (judged["rmse"] >= judged["bias"].abs()).all()
    assert (judged["rmse"] < 30).all()
