"""The Kalman filter over depletion and drift: it learns a drifting balance, trusts a measurement by its weight,
never sees tomorrow's, and follows sensors that read outside the balance's 0..TAW."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import date, timedelta

import pytest

from ml.kalman import Filter, Noise, Observation, filter_step, predict, run, update
from ml.waterbalance import BalanceDay, BalanceState
from ml.waterbalance import run as open_loop
from tests.unit.ml.builders import BALANCE_DAY0, balance_day

DAY0 = BALANCE_DAY0
TAW = 130.0  # 1000 (0.25 - 0.12) x 1.0 m
NOISE = Noise()
R = NOISE.measurement_var(1.0)  # (1000 x 0.01 x 1 m)^2 = 100 mm2


def bday(i: int = 0, **changes: object) -> BalanceDay:
    """Day ``i`` of a dry season: ETc = 1.0 x 5 mm, p held at 0.5 (RAW 65 mm), over 1 m of roots."""
    return balance_day(i, **changes)


def season(n: int = 60, kc: float = 1.0, seed: int = 0) -> list[BalanceDay]:
    """``n`` days with a 30 mm irrigation every 6 days and rain drawn from ``seed``."""
    rng = random.Random(seed)
    return [
        bday(i, kc=kc, irrigation_mm=30.0 if i % 6 == 5 else 0.0, rain_mm=rng.choice([0.0] * 5 + [8.0]))
        for i in range(n)
    ]


def fixed_gain(days: list[BalanceDay], start: float, measured: dict[date, float], gain: float = 0.3) -> list[float]:
    """The correction this filter replaced: the balance, then prior + gain x (measured - prior) on measured days,
    kept within 0..TAW. Returns the priors."""
    priors, depletion = [], start
    for day in days:
        [state] = open_loop([day], depletion)
        priors.append(state.depletion_mm)
        depletion = state.depletion_mm
        if day.day in measured:
            depletion = min(TAW, max(0.0, depletion + gain * (measured[day.day] - depletion)))
    return priors


def rmse(errors: list[float]) -> float:
    return math.sqrt(sum(e * e for e in errors) / len(errors))


@pytest.mark.parametrize(("kc_true", "seed"), [(1.3, 1), (1.2, 2), (0.8, 3)])
def test_a_drifting_balance_is_learned_and_beats_the_fixed_gain(kc_true: float, seed: int) -> None:
    """The truth uses a Kc 20-30 % off the model's: the filter learns the drift, (Kc_true - 1) x 5 mm/day, and
    its forecast before each measurement beats the fixed gain's."""
    model, truth = season(kc=1.0, seed=seed), season(kc=kc_true, seed=seed)
    true_states = open_loop(truth, 20.0)
    rng = random.Random(seed)
    measured = {s.day: s.depletion_mm + rng.gauss(0, 3.0) for s in true_states[2::3]}  # every third day
    states = run(model, 20.0, {d: Observation(v, 1.0) for d, v in measured.items()})
    true_by_day = {s.day: s.depletion_mm for s in true_states}
    # Judged from day 30 on, once there was time to learn; against the true depletion on measured days.
    late = [s for s in states if s.day in measured and s.day >= DAY0 + timedelta(days=30)]
    kalman = rmse([s.prior_depletion_mm - true_by_day[s.day] for s in late])
    priors = dict(zip([d.day for d in model], fixed_gain(model, 20.0, measured), strict=True))
    fixed = rmse([priors[s.day] - true_by_day[s.day] for s in late])
    assert kalman < 0.7 * fixed, (kalman, fixed)
    drift = (kc_true - 1.0) * 5.0
    assert states[-1].drift_mm_day == pytest.approx(drift, abs=0.35 * abs(drift))


def test_without_drift_the_filter_stays_with_the_balance() -> None:
    days = season(seed=4)
    truth = open_loop(days, 20.0)
    states = run(days, 20.0, {s.day: Observation(s.depletion_mm, 1.0) for s in truth[2::3]})
    assert abs(states[-1].drift_mm_day) < 0.1
    assert max(abs(a.depletion_mm - b.depletion_mm) for a, b in zip(states, truth, strict=True)) < 0.5


def test_the_gain_comes_from_the_variances() -> None:
    """Scalar case: K = P / (P + R / weight); the posterior variance is (1 - K) P."""
    state = Filter.start(30.0, 1.0, NOISE)
    prior, _ = predict(state, bday(), NOISE)
    for weight in (1.0, 0.5, 0.1):
        after = update(prior, Observation(50.0, weight), NOISE)
        k = prior.var_depletion / (prior.var_depletion + R / weight)
        assert after.gain == pytest.approx(k)
        assert after.depletion_mm == pytest.approx(prior.depletion_mm + k * (50.0 - prior.depletion_mm))
        assert after.var_depletion == pytest.approx((1 - k) * prior.var_depletion)
        assert after.drift_mm_day == pytest.approx(prior.cov / (prior.var_depletion + R / weight) * (50 - 35))


def test_weight_zero_is_no_update() -> None:
    state = Filter.start(30.0, 1.0, NOISE)
    prior, _ = predict(state, bday(), NOISE)
    assert update(prior, Observation(90.0, 0.0), NOISE) == prior
    after, day = filter_step(state, bday(), Observation(90.0, 0.0), NOISE)
    assert after == prior
    assert not day.corrected and day.depletion_mm == day.prior_depletion_mm == pytest.approx(35.0)
    assert day.measured_depletion_mm == 90.0


def test_no_peeking_later_measurements_change_nothing_before_them() -> None:
    days = season(30, seed=5)
    measured = {d.day: Observation(10.0 + i, 1.0) for i, d in enumerate(days) if i % 4 == 3}
    everything = run(days, 20.0, measured)
    cut = days[15].day
    earlier_only = run(days, 20.0, {d: o for d, o in measured.items() if d < cut})
    assert everything[:15] == earlier_only[:15]
    # The cut day's prior is made before its measurement: the same either way.
    assert everything[15].prior_depletion_mm == earlier_only[15].prior_depletion_mm


def test_water_past_field_capacity_makes_the_start_forgotten() -> None:
    """A day that fills the root zone past field capacity leaves no uncertainty of the start, only the day's."""
    state = replace(Filter.start(30.0, 1.0, NOISE), var_depletion=400.0)
    wet, balance = predict(state, bday(irrigation_mm=60.0), NOISE)
    assert balance.sensitivity == 0
    assert wet.depletion_mm == pytest.approx(0.0)
    assert wet.var_depletion == pytest.approx(state.var_drift + NOISE.process_var(balance, 1.0))
    dry, _ = predict(state, bday(), NOISE)
    assert dry.var_depletion > 400


def test_sensors_above_field_capacity_are_followed_and_the_balance_keeps_its_bounds() -> None:
    """Sensors reading 40 mm above the soil's field capacity (a negative depletion) day after day, under a balance
    refilled to it by irrigation: the estimate follows them below 0; the balance's own state stays within 0..TAW."""
    days = [bday(i, irrigation_mm=10.0 if i % 2 else 0.0) for i in range(40)]
    states = run(days, 0.0, {d.day: Observation(-40.0, 1.0) for d in days})
    assert states[-1].prior_depletion_mm == pytest.approx(-40.0, abs=4)
    state = Filter.start(0.0, 1.0, NOISE)
    for d in days:
        state, _ = filter_step(state, d, Observation(-40.0, 1.0), NOISE)
        assert 0 <= state.balance_mm <= TAW


def test_bad_noise_figures_and_observations_are_refused() -> None:
    with pytest.raises(ValueError, match="weight"):
        Observation(10.0, 1.5)
    with pytest.raises(ValueError, match="noise figures"):
        Noise(theta_sd=0.0)
    with pytest.raises(ValueError, match="noise figures"):
        Noise(et_share=-0.1)


def test_an_hour_step_scales_the_noise_and_the_drift() -> None:
    state = replace(Filter.start(30.0, 1.0, NOISE), drift_mm_day=2.4)
    hour, balance = predict(state, bday(et0_mm=5.0 / 24), NOISE, 1 / 24)
    assert hour.depletion_mm == pytest.approx(30.0 + 5.0 / 24 + 2.4 / 24)
    assert NOISE.process_var(balance, 1 / 24) == pytest.approx((0.1 * 5.0 / 24) ** 2 * 24)
    assert isinstance(balance, BalanceState)
