"""The FAO-56 root-zone balance, day by day: water out by ETc x Ks, water in to field capacity and beyond, roots
that grow, and how much of the day's starting depletion is left at its end (what ``ml.kalman`` carries its
uncertainty with)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest

from ml.rules import rootzone as baselines
from ml.waterbalance import (
    BalanceDay,
    Subsoil,
    depletion_fraction,
    depletion_from_theta,
    run,
    step,
    total_available_water,
    water_stress,
)
from tests.unit.ml.builders import BALANCE_DAY0, balance_day

DAY0 = BALANCE_DAY0
# Loam-like soil over 1 m of roots: TAW = 1000 (0.25 - 0.12) x 1.0 = 130 mm; p held at 0.5, so RAW = 65 mm.
TAW = 130.0
RAW = 65.0


def bday(**changes: object) -> BalanceDay:
    """A dry day with ETc = 1.0 x 5 mm, p fixed at 0.5, over 1 m of roots."""
    return balance_day(**changes)


def days(n: int, **changes: object) -> list[BalanceDay]:
    return [bday(day=DAY0 + timedelta(days=i), **changes) for i in range(n)]


@pytest.mark.parametrize(
    ("prev", "ks", "after"),
    [
        (0.0, 1.0, 5.0),  # at field capacity: no stress
        (30.0, 1.0, 35.0),
        (RAW, 1.0, RAW + 5),  # at RAW exactly: still no stress
        ((RAW + TAW) / 2, 0.5, (RAW + TAW) / 2 + 2.5),  # half way from RAW to TAW: half the ETc
        (120.0, 10 / 65, 120.0 + 5 * 10 / 65),
        (TAW, 0.0, TAW),  # at the wilting point nothing is left to take
    ],
)
def test_without_water_in_depletion_grows_by_etc_times_ks(prev: float, ks: float, after: float) -> None:
    state = step(prev, 1.0, bday())
    assert (state.taw_mm, state.raw_mm) == pytest.approx((TAW, RAW))
    assert state.ks == pytest.approx(ks)
    assert state.etc_mm == pytest.approx(5.0)
    assert state.etc_adj_mm == pytest.approx(5.0 * ks)
    assert state.depletion_mm == pytest.approx(after)
    assert state.deep_percolation_mm == 0


@pytest.mark.parametrize(
    ("depletion", "expected"),
    [(0, 1.0), (40, 1.0), (65, 1.0), (66, 64 / 65), (97.5, 0.5), (129, 1 / 65), (130, 0.0), (150, 0.0)],
)
def test_ks_is_one_until_raw_then_falls_linearly_to_zero_at_taw(depletion: float, expected: float) -> None:
    assert water_stress(depletion, TAW, RAW) == pytest.approx(expected)


def test_the_dual_method_stresses_transpiration_only() -> None:
    """FAO-56 eq. 80: ETc adj = (Ks Kcb + Ke) ET0, soil evaporation is not reduced by root-zone stress."""
    state = step((RAW + TAW) / 2, 1.0, bday(kc=1.0, ke=0.4))
    assert state.ks == pytest.approx(0.5)
    assert state.etc_adj_mm == pytest.approx((0.5 * 0.6 + 0.4) * 5.0)


@pytest.mark.parametrize(
    ("prev", "rain", "irrigation", "runoff", "depletion", "percolation"),
    [
        (40.0, 100.0, 0.0, 0.0, 0.0, 100 - 40 - 5),  # heavy rain: refill, the excess drains
        (40.0, 30.0, 15.0, 0.0, 0.0, 0.0),  # exactly to field capacity, nothing drains
        (40.0, 0.0, 60.0, 0.0, 0.0, 60 - 40 - 5),  # over-irrigation drains the same way
        (40.0, 100.0, 0.0, 80.0, 40 - 20 + 5, 0.0),  # rain that runs off never enters
        (40.0, 10.0, 0.0, 0.0, 35.0, 0.0),  # light rain: less depletion, no percolation
    ],
)
def test_water_beyond_field_capacity_percolates(
    prev: float, rain: float, irrigation: float, runoff: float, depletion: float, percolation: float
) -> None:
    state = step(prev, 1.0, bday(rain_mm=rain, irrigation_mm=irrigation, runoff_mm=runoff))
    assert state.depletion_mm == pytest.approx(depletion)
    assert state.deep_percolation_mm == pytest.approx(percolation)
    assert state.effective_rain_mm == pytest.approx(rain - runoff)


def test_depletion_stays_within_zero_and_taw_and_water_is_conserved() -> None:
    rng = random.Random(7)
    season = [
        bday(
            day=DAY0 + timedelta(days=i),
            et0_mm=rng.uniform(0, 12),
            rain_mm=rng.choice([0.0, 0.0, 0.0, rng.uniform(0, 120)]),
            irrigation_mm=rng.choice([0.0, 0.0, rng.uniform(0, 60)]),
            kc=rng.uniform(0.2, 1.3),
            adjust_p=True,
        )
        for i in range(400)
    ]
    states = run(season, initial_depletion_mm=TAW)
    previous = TAW
    for day, state in zip(season, states, strict=True):
        assert 0 <= state.depletion_mm <= state.taw_mm
        water_in = day.rain_mm + day.irrigation_mm
        assert state.depletion_mm == pytest.approx(
            previous - water_in + state.etc_adj_mm + state.deep_percolation_mm, abs=1e-9
        )
        assert state.etc_adj_mm <= state.etc_mm + 1e-12
        previous = state.depletion_mm
    assert any(s.depletion_mm == 0 for s in states) and any(s.ks < 1 for s in states)


def test_growing_roots_add_taw_and_relieve_stress() -> None:
    shallow = step(50.0, None, bday(root_depth_m=0.5))
    deeper = step(50.0, 0.5, bday(root_depth_m=1.0))
    assert shallow.taw_mm == pytest.approx(65.0)
    assert deeper.taw_mm == pytest.approx(130.0)
    assert shallow.ks < 1 == deeper.ks
    # FAO-56's bucket: the new soil is at field capacity, the depletion carries over unchanged.
    assert deeper.root_growth_mm == 0
    assert deeper.depletion_mm == pytest.approx(55.0)


def test_roots_growing_into_a_dry_subsoil_take_on_its_depletion() -> None:
    """The subsoil (1 m to 2 m, TAW 130 mm) is a quarter depleted; roots grow 0.5 m into it."""
    subsoil = Subsoil(depletion_mm=32.5, taw_mm=130.0)
    state = step(20.0, 1.0, bday(root_depth_m=1.5, subsoil_taw_mm=65.0), prev_subsoil=subsoil)
    assert state.root_growth_mm == pytest.approx(32.5 / 2)
    assert state.subsoil.depletion_mm == pytest.approx(32.5 / 2)
    assert state.depletion_mm == pytest.approx(20 + 32.5 / 2 + 5)


def test_percolation_refills_the_subsoil_before_leaving() -> None:
    subsoil = Subsoil(depletion_mm=30.0, taw_mm=130.0)
    state = step(10.0, 1.0, bday(rain_mm=60.0, subsoil_taw_mm=130.0), prev_subsoil=subsoil)
    assert state.depletion_mm == 0
    assert state.subsoil.depletion_mm == 0
    assert state.deep_percolation_mm == pytest.approx(60 - 10 - 5 - 30)


@pytest.mark.parametrize(
    ("prev", "changes", "sensitivity"),
    [
        (30.0, {}, 1.0),  # below RAW: an error in the start is carried whole
        (30.0, {"rain_mm": 20.0}, 1.0),  # water in that stays: still carried
        (10.0, {"rain_mm": 40.0}, 0.0),  # filled past field capacity: the end is 0 whatever the start was
        ((RAW + TAW) / 2, {}, 1 - 5.0 / (TAW - RAW)),  # under stress a drier start transpires less
        (TAW - 1, {"et0_mm": 80.0}, 0.0),  # dried to the wilting point (a step whose ETc overshoots it)
    ],
)
def test_the_sensitivity_is_the_derivative_of_the_end_by_the_start(
    prev: float, changes: dict[str, float], sensitivity: float
) -> None:
    day = bday(**changes)
    state = step(prev, 1.0, day)
    assert state.sensitivity == pytest.approx(sensitivity)
    nudged = step(prev + 0.01, 1.0, day)
    assert (nudged.depletion_mm - state.depletion_mm) / 0.01 == pytest.approx(sensitivity, abs=1e-6)


def test_retained_water_is_what_did_not_drain() -> None:
    assert step(30.0, 1.0, bday(rain_mm=20.0)).retained_mm == pytest.approx(20.0)
    assert step(10.0, 1.0, bday(rain_mm=40.0)).retained_mm == pytest.approx(15.0)  # 10 refilled, 5 transpired


def test_the_balance_alone_is_its_own_prior() -> None:
    for state in run(days(5, rain_mm=3.0), 10.0):
        assert state.prior_depletion_mm == state.depletion_mm
        assert not state.corrected and state.measured_depletion_mm is None and state.drift_mm_day == 0


@pytest.mark.parametrize(
    ("theta", "fc", "zr", "expected"),
    [(0.20, 0.25, 1.0, 50.0), (0.25, 0.25, 1.0, 0.0), (0.30, 0.25, 1.0, 0.0), (0.10, 0.20, 0.5, 50.0)],
)
def test_depletion_from_theta(theta: float, fc: float, zr: float, expected: float) -> None:
    assert depletion_from_theta(theta, fc, zr) == pytest.approx(expected)


def test_p_follows_etc_unless_held() -> None:
    hot = bday(et0_mm=10.0, adjust_p=True, p_table=0.5)
    assert step(0.0, 1.0, hot).p == pytest.approx(depletion_fraction(0.5, 10.0)) == pytest.approx(0.3)
    assert step(0.0, 1.0, replace(hot, adjust_p=False)).p == 0.5
    assert total_available_water(0.25, 0.12, 1.0) == pytest.approx(TAW)


def test_the_baselines_use_this_module_s_rules() -> None:
    """One rule, one home: the irrigation baseline's p and TAW are these."""
    assert baselines.depletion_fraction is depletion_fraction
    assert baselines.total_available_water is total_available_water


@pytest.mark.parametrize(
    "changes",
    [
        {"root_depth_m": 0.0},
        {"field_capacity": 0.1},
        {"rain_mm": -1.0},
        {"et0_mm": float("nan")},
        {"ke": 2.0},
        {"runoff_mm": 1.0},
    ],
)
def test_impossible_days_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="balance day"):
        bday(**changes)
