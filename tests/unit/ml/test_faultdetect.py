"""The sensor-fault detector's statistics and each rule, one table each. Trained and judged on seasons:
``tests/seasons/ml/test_faultdetect.py``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd
import pytest

from ml.context import HISTORY_H, RUN_BEFORE, STEP_WITHIN_S, SensorHour, ZoneContext, sensor_hour
from ml.faultdetect import (
    FOREST_EVIDENCE,
    STUCK_REPEATS,
    FaultDetector,
    _coin_chance,
    _episodes,
    battery_death,
    drift,
    dropout,
    hour_frame,
    out_of_range,
    repeat_chance,
    rule_kinds,
    score_kinds,
    spike,
    stuck,
    with_features,
)
from ml.faulthistory import expected_change, learn_soil_lags, peer_residual, unexplained
from smartfarm.layout import SensorKind
from smartfarm.sensing import PRECISION
from tests.unit.ml.builders import T0
from tests.unit.ml.builders import sensor_hour_of as _hour

# --- sensor_hour ------------------------------------------------------------------------------------------------

SOIL = SensorKind.SOIL_MOISTURE


def test_one_reading_has_no_steps() -> None:
    h = _hour([21.5])
    assert (h.count, h.mean, h.std, h.min, h.max, h.last) == (1, 21.5, 0.0, 21.5, 21.5, 21.5)
    assert (h.steps, h.max_step, h.repeats, h.excursion, h.last_step, h.gap_s) == (0, 0.0, 0, 0.0, 0.0, None)


def test_one_reading_after_a_previous_one_has_its_step_and_gap() -> None:
    h = _hour([21.5], previous=(T0 - 900, 20.0))
    assert (h.steps, h.max_step, h.repeats, h.last_step, h.gap_s) == (1, 1.5, 0, 0.0, 900.0)


def test_repeated_values_count_as_repeats() -> None:
    h = _hour([20.0, 20.0, 20.0, 20.0], previous=(T0 - 900, 20.0))
    assert (h.steps, h.repeats, h.max_step, h.std, h.excursion) == (4, 4, 0.0, 0.0, 0.0)


def test_readings_are_put_in_time_order() -> None:
    shuffled = sensor_hour("d", "s", SOIL, 15.0, [(T0 + 1800, 3.0), (T0, 1.0), (T0 + 900, 2.0)])
    assert (shuffled.last, shuffled.first_ts, shuffled.last_ts, shuffled.max_step) == (3.0, T0, T0 + 1800, 1.0)


def test_a_spike_is_an_excursion_and_a_level_shift_is_not() -> None:
    assert _hour([20.0, 45.0, 20.5, 20.0]).excursion == 24.5
    shift = _hour([0.0, 100.0, 100.0, 100.0], kind=SensorKind.LEAF_WETNESS)
    assert (shift.excursion, shift.max_step, shift.last_step) == (0.0, 100.0, 0.0)
    assert _hour([20.0, 20.1, 20.0, 45.0]).last_step == 25.0


def test_a_step_across_a_long_silence_is_not_measured() -> None:
    h = _hour([30.0, 30.2], previous=(T0 - STEP_WITHIN_S - 900, 10.0))
    assert (h.steps, h.max_step, h.gap_s) == (1, pytest.approx(0.2), STEP_WITHIN_S + 900)


def test_a_run_of_repeats_counts_back_before_the_hour() -> None:
    held = [(T0 - 1800, 20.0), (T0 - 900, 20.0)]
    assert _hour([20.0, 20.0, 20.3], before=held).run == 3
    assert _hour([20.0, 20.0, 20.3]).run == 1, "without the readings before, only the hour's own"
    assert _hour([20.1, 20.0, 20.0, 20.0]).run == 2


def test_a_run_counts_back_over_at_most_run_before_readings() -> None:
    long_ago = [(T0 - 900 * (20 - i), 5.0) for i in range(20)]
    assert _hour([5.0, 5.0, 5.0, 5.0], before=long_ago).run == RUN_BEFORE + 3


def test_a_run_is_broken_by_a_long_silence() -> None:
    assert _hour([5.0, 5.0], before=[(T0 - 900 - STEP_WITHIN_S - 1, 5.0), (T0 - 900, 5.0)]).run == 2


def test_a_stuck_value_that_comes_free_in_the_hour_keeps_its_run() -> None:
    held = [(T0 - 900 * (6 - i), 25.3) for i in range(6)]
    assert _hour([25.3, 26.0, 26.1, 25.9], before=held).run == 6


def test_history_is_kept_as_given() -> None:
    h = _hour([1.0], history=[2.0, math.nan, 3.0])
    assert h.history[0] == 2.0 and math.isnan(h.history[1]) and h.history[2] == 3.0


def test_no_readings_is_refused() -> None:
    with pytest.raises(ValueError, match="no readings"):
        sensor_hour("d", "s", SOIL, 15.0, [])


def test_zone_context_carries_no_sensor_hours_by_default() -> None:
    assert ZoneContext.__dataclass_fields__["sensors"].default == ()


# --- the rules, one table each ----------------------------------------------------------------------------------

AIR = SensorKind.AIR_TEMPERATURE
LEAF = SensorKind.LEAF_WETNESS
RAIN = SensorKind.RAINFALL
BATTERY = SensorKind.BATTERY
HUMIDITY = SensorKind.AIR_HUMIDITY


def _frame(*hours: SensorHour) -> pd.DataFrame:
    return with_features(hour_frame(hours), 900.0)


@pytest.mark.parametrize(
    ("values", "kind", "expected"),
    [
        ([20.0, 20.3, 45.2, 20.1], SOIL, True),  # out 24.9 and back 25.1
        ([20.0, 20.3, 20.1, 45.2], SOIL, True),  # into the last reading: its way back comes next hour
        ([20.0, 20.3, 25.0, 25.2], SOIL, False),  # a wetting front: up 4.7 and staying
        ([0.0, 100.0, 100.0, 100.0], LEAF, False),  # rain wets the leaf at once
        ([0.0, 0.0, 85.0, 0.0], LEAF, True),
        ([0.0, 0.0, 0.0, 90.0], LEAF, False),  # a leaf may step at the end of the hour (rain): not judged
        ([0.0, 0.4, 32.0, 0.2], RAIN, True),
        ([18.0, 18.4, 18.1, 18.3], AIR, False),
    ],
)
def test_spike(values: list[float], kind: SensorKind, expected: bool) -> None:
    assert bool(spike(_frame(_hour(values, kind=kind))).iloc[0]) is expected


def test_stuck_waits_for_more_repeats_than_the_noise_makes() -> None:
    """A working sensor's reading equals the one before about resolution / (2 sd sqrt(pi)) of the time."""
    assert repeat_chance(PRECISION[SOIL]) == pytest.approx(0.1 / (2 * 0.3 * math.sqrt(math.pi)))
    assert repeat_chance(PRECISION[RAIN]) == 1.0, "a rain gauge has no noise"
    assert STUCK_REPEATS[SOIL] == 4 and STUCK_REPEATS[SensorKind.SOIL_TEMPERATURE] == 3
    assert STUCK_REPEATS[AIR] == 3 and STUCK_REPEATS[LEAF] == 5 and SensorKind.WIND_SPEED in STUCK_REPEATS
    assert RAIN not in STUCK_REPEATS and BATTERY not in STUCK_REPEATS
    assert max(STUCK_REPEATS.values()) <= RUN_BEFORE, "a sensor-hour's run reaches back far enough to see them"


SOIL_T = SensorKind.SOIL_TEMPERATURE
HELD = [(T0 - 900 * (4 - i), 25.3) for i in range(4)]
"""Four readings of 25.3 before the hour."""


@pytest.mark.parametrize(
    ("values", "kind", "before", "expected"),
    [
        ([25.3, 25.3, 25.3, 25.3], SOIL, [(T0 - 900, 25.3)], True),  # five equal readings: four repeats
        ([25.3, 25.3, 25.3, 25.3], SOIL, [(T0 - 900, 25.0)], False),  # four equal: about 1 in 1,200 hours by noise
        ([25.3, 25.3, 25.4, 25.3], SOIL, [(T0 - 900, 25.3)], False),  # a quiet working probe
        ([25.3, 26.0, 26.1, 25.9], SOIL, HELD, True),  # stuck since before the hour, free within it
        ([25.3, 25.3], SOIL, [], False),  # two equal readings happen by rounding
        ([18.52, 18.52, 18.52, 18.52], SOIL_T, [], True),  # within less than its 0.05 degC noise all hour
        ([18.52, 18.53, 18.52, 18.51], SOIL_T, [], False),  # a quiet one still scatters
        ([18.0, 18.0, 18.0, 18.0], AIR, [], True),
        ([0.0, 0.0, 0.0, 0.0], RAIN, HELD, False),  # no rain
        ([0.0, 0.0, 0.0, 0.0], SensorKind.SOLAR_RADIATION, [], False),  # night
        ([100.0, 100.0, 100.0, 100.0], HUMIDITY, [], False),  # saturated air
        ([100.0, 100.0, 100.0, 100.0], LEAF, [], False),  # soaked leaves
        ([62.0, 62.0, 62.0, 62.0], HUMIDITY, [], True),
        ([4.1, 4.1, 4.1, 4.1], BATTERY, HELD, False),  # a battery at rest
    ],
)
def test_stuck(values: list[float], kind: SensorKind, before: list[tuple[float, float]], expected: bool) -> None:
    assert bool(stuck(_frame(_hour(values, kind=kind, before=before))).iloc[0]) is expected


# --- drift: against the peers' usual offset, and what the zone explains ---------------------------------------------


def _week(now: float, usual: float, last_day: Sequence[float] = ()) -> list[float]:
    """A ``history`` (the hour before first) of a sensor reading ``usual`` all week, then ``last_day`` (oldest
    first) over its last hours, on its way to ``now``."""
    recent = list(last_day)[::-1]
    return recent + [usual] * (HISTORY_H - len(recent))


def _ramp(start: float, end: float, hours: int) -> list[float]:
    """``hours`` hourly means from ``start`` towards ``end`` (oldest first, ``end`` itself left to the hour)."""
    return [start + (end - start) * i / hours for i in range(hours)]


def _probe(
    device: str, now: float, history: Sequence[float], kind: SensorKind = SOIL, sensor: str = "sm-15"
) -> SensorHour:
    values = [now - 0.1, now + 0.1, now - 0.1, now + 0.1]
    return _hour(values, kind=kind, device=device, sensor=sensor, history=history, before=[(T0 - 900, now + 0.2)])


def _named(
    hours: Sequence[SensorHour], zone: Mapping[str, float] | None = None, lags: Mapping[float, float] | None = None
) -> list[str]:
    frame = with_features(hour_frame(hours, zone), 900.0, lags).iloc[: len(hours)]
    return [str(d) for d, hit in zip(frame["device"], drift(frame), strict=True) if hit]


def test_a_pair_keeping_its_usual_offset_does_not_drift() -> None:
    """Working probes differ by their calibration offsets: 3 % apart all week and now is no drift, although a
    static bound on the difference (``DRIFT_BOUND``, 4.5 %) would come close."""
    hours = [_probe("soil-1", 28.0, _week(28.0, 28.0)), _probe("soil-2", 25.0, _week(25.0, 25.0))]
    assert _named(hours) == []


def test_a_probe_walking_away_from_its_usual_offset_is_named_alone() -> None:
    """soil-1 has read 3 % above soil-2 all week; over the last day it climbed 1.2 % more while soil-2 held:
    both see the pair 1.2 % off its usual, and soil-1 is the one that moved."""
    drifting = _probe("soil-1", 29.2, _week(28.0, 28.0, _ramp(28.0, 29.2, 24)))
    steady = _probe("soil-2", 25.0, _week(25.0, 25.0))
    assert _named([drifting, steady]) == ["soil-1"]
    assert _named([steady, drifting]) == ["soil-1"], "whatever the order"


def test_against_the_balance_a_probe_drying_slower_than_kc_et0_allows_is_named() -> None:
    """soil-2 dried 1.2 % over the last day, just what Kc 1 x ET0 6 mm over 0.5 m of roots takes out; soil-1 did
    not dry at all. Against standing still, soil-2 moved; against the balance, soil-1 is the one it cannot
    explain (a probe creeping wetter hides the drying)."""
    flat = _probe("soil-1", 28.0, _week(28.0, 28.0))
    drying = _probe("soil-2", 23.8, _week(25.0, 25.0, _ramp(25.0, 23.8, 24)))
    assert _named([flat, drying]) == ["soil-2"], "without the balance: the one that moved"
    zone = {"kc": 1.0, "et0_last_day": 6.0, "root_depth_m": 0.5, "field_capacity_pct": 35.0}
    assert _named([flat, drying], zone) == ["soil-1"]


def test_against_the_air_a_soil_probe_not_following_the_warming_is_named() -> None:
    """The air warmed 3 degC a day for three days; at 15 cm soil-2 followed it, soil-1 lagged 1.2 degC behind
    over the last day. Against standing still soil-2 moved more; against the air (lagged 6 h), soil-1 did not
    follow."""
    warming = _ramp(17.0, 26.0, 72)
    air = _hour(
        [26.0, 26.1, 26.0, 26.1], kind=AIR, device="wx", sensor="air-t", depth=None, history=_week(26.0, 17.0, warming)
    )
    follows = _probe("soil-2", 25.0, _week(25.0, 16.0, _ramp(16.0, 25.0, 72)), kind=SOIL_T, sensor="st-15")
    lags = _probe(
        "soil-1",
        24.8,
        _week(24.8, 17.0, _ramp(17.0, 26.0, 48) + _ramp(26.0 - 3.0 * 0, 24.8, 24)),
        kind=SOIL_T,
        sensor="st-15",
    )
    assert _named([air, follows, lags]) == ["soil-2"], "without the air's lag learnt: the one that moved more"
    assert _named([air, follows, lags], lags={15.0: 6.0}) == ["soil-1"]


def _weather(device: str, now: float, last_day: Sequence[float] = ()) -> SensorHour:
    """An air-temperature sensor of a zone's weather node at ``now``, having read 20 degC all week but ``last_day``."""
    values = [now - 0.1, now + 0.1, now - 0.1, now + 0.1]
    history = _week(now, 20.0, last_day)
    return _hour(values, kind=AIR, device=device, sensor="air-t", depth=None, history=history)


def test_a_weather_sensor_is_held_against_the_farms_others() -> None:
    """The farm's weather is alike in every zone: a zone's only air sensor has the other zones' for peers. Its own
    drift is named in its zone; a drifting peer is its own zone's to name, not this one's."""
    detector = FaultDetector(900.0)
    farm = [("maize", _weather("wx-2", 20.0)), ("lettuce", _weather("wx-3", 20.1)), ("vines", _weather("wx-4", 19.9))]
    drifting = _weather("wx-1", 21.5, _ramp(20.0, 21.5, 24))
    found = detector.detect([drifting], use_forest=False, peers=farm, zone_id="tomato")
    assert [(d.device, d.kind) for d in found] == [("wx-1", "drift")]
    assert "the farm's other air_temperature sensors" in found[0].message
    assert detector.detect([_weather("wx-1", 20.0)], use_forest=False, peers=farm, zone_id="tomato") == []
    assert detector.detect([drifting], use_forest=False) == [], "no peer in its own zone"
    wandering = [("maize", _weather("wx-2", 21.5, _ramp(20.0, 21.5, 24))), *farm[1:]]
    assert detector.detect([_weather("wx-1", 20.0)], use_forest=False, peers=wandering, zone_id="tomato") == []


def test_before_a_usual_offset_is_known_the_static_bound_names_one_of_a_pair() -> None:
    far = [_probe("soil-1", 31.0, []), _probe("soil-2", 25.0, [])]
    near = [_probe("soil-1", 28.0, []), _probe("soil-2", 25.0, [])]
    assert len(_named(far)) == 1 and _named(near) == []


@pytest.mark.parametrize(
    ("means", "expected"),
    [
        ((25.0, 25.5, 31.0), (False, False, True)),  # a third one tells which, even without a usual offset
        ((25.0,), (False,)),  # no peer, no verdict
    ],
)
def test_drift_among_more_peers(means: tuple[float, ...], expected: tuple[bool, ...]) -> None:
    hours = [_hour([m] * 2 + [m + 0.1, m], device=f"soil-{i}") for i, m in enumerate(means)]
    assert tuple(drift(_frame(*hours))) == expected


def test_drift_compares_only_the_same_depth() -> None:
    top = _hour([30.0, 30.1, 30.0, 30.1], device="soil-1", sensor="sm-15", depth=15.0)
    deep = _hour([20.0, 20.1, 20.0, 20.1], device="soil-2", sensor="sm-45", depth=45.0)
    assert not drift(_frame(top, deep)).any()


@pytest.mark.parametrize(
    ("kind", "before", "inputs", "expected"),
    [
        (SOIL, 30.0, {"kc": 1.0, "et0_last_day": 6.0, "root_depth_m": 0.5, "field_capacity_pct": 35.0}, -1.2),
        (SOIL, 40.0, {"kc": 1.0, "et0_last_day": 6.0, "root_depth_m": 0.5, "field_capacity_pct": 35.0}, -6.2),
        (SOIL, 30.0, {"kc": 0.5, "et0_last_day": math.nan, "root_depth_m": 0.25, "field_capacity_pct": 35.0}, -1.0),
        (SOIL, 30.0, {}, math.nan),  # the zone's balance unknown
        (AIR, 20.0, {"kc": 1.0, "et0_last_day": 6.0, "root_depth_m": 0.5, "field_capacity_pct": 35.0}, math.nan),
    ],
)
def test_the_balance_expects_drying_by_kc_et0_after_drainage(
    kind: SensorKind, before: float, inputs: dict[str, float], expected: float
) -> None:
    """Over a day: water above field capacity drains, and Kc x ET0 (5 mm assumed before a day is closed) leaves
    the root depth."""
    frame = pd.DataFrame([{"kind": kind.value, "before": before, "anchor": math.nan, **inputs}])
    found = float(expected_change(frame).iloc[0])
    assert found == pytest.approx(expected, nan_ok=True)


@pytest.mark.parametrize(
    ("top_change", "deep_changes", "expected"),
    [
        (-1.0, (2.5, -1.1), (2.8, 0.8)),  # no water came: the deep probe that rose is the one nothing explains
        (5.0, (2.5, -1.1), (0.0, 0.8)),  # the top rose: water came, the rise is explained; not drying too fast
        (1.0, (2.5, -1.1), (0.8, 0.8)),  # water explains a rise only as far as it showed elsewhere (2 %)
    ],
)
def test_a_probe_may_rise_by_as_much_as_water_showed_at_the_zones_other_depths(
    top_change: float, deep_changes: tuple[float, float], expected: tuple[float, float]
) -> None:
    """Two probes at 45 cm, the balance expecting 0.3 % of drying there and 1 % at 15 cm: "wetter than any rain
    or irrigation explains" is wetter than the zone's other depths show water came."""
    rows = [("soil-1", 15.0, top_change, -1.0), ("soil-2", 15.0, top_change, -1.0)]
    rows += [("soil-1", 45.0, deep_changes[0], -0.3), ("soil-2", 45.0, deep_changes[1], -0.3)]
    frame = pd.DataFrame(rows, columns=["device", "depth_cm", "change", "expected"])
    frame = frame.assign(farm="f", zone="z", kind=SOIL.value, hour=0)
    assert list(unexplained(frame).round(6)[2:]) == list(expected)


def test_the_soil_lag_is_learnt_from_the_probes_that_follow_the_air() -> None:
    """Air swinging from day to day, a probe following it by a 4 h first-order lag: the lag that explains its
    changes over a day. (A swing with a period of exactly a day would not tell: it falls out of a day's change.)"""
    hours = range(0, 10 * 24)
    air = [20.0 + 6.0 * math.sin(2 * math.pi * h / 31) + 3.0 * math.sin(2 * math.pi * h / 9) for h in hours]
    soil, level = [], air[0]
    for a in air:
        level += (a - level) * (1 - math.exp(-1 / 4.0))
        soil.append(level)
    rows = [
        {
            "farm": "f",
            "zone": "z",
            "device": d,
            "sensor": s,
            "kind": k.value,
            "depth_cm": depth,
            "hour": h * 3600,
            "mean": m,
            "label": "",
        }
        for d, s, k, depth, series in (("wx", "air-t", AIR, math.nan, air), ("soil-1", "st-15", SOIL_T, 15.0, soil))
        for h, m in zip(hours, series, strict=True)
    ]
    assert learn_soil_lags(pd.DataFrame(rows)) == {15.0: 4.0}


@pytest.mark.parametrize(
    ("gap_s", "expected"),
    [(900.0, False), (1800.0, False), (2700.0, False), (6300.0, True), (None, False)],
)
def test_dropout(gap_s: float | None, expected: bool) -> None:
    previous = None if gap_s is None else (T0 - gap_s, 25.0)
    assert bool(dropout(_frame(_hour([25.0, 25.1], previous=previous)), 900.0).iloc[0]) is expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([4.148, 4.151, 4.149, 4.150], False),
        ([4.067, 3.990, 3.909, 3.821], True),  # 80 mV a reading
        ([3.55], True),  # nearly empty
    ],
)
def test_battery_death(values: list[float], expected: bool) -> None:
    hour = _hour(values, kind=BATTERY, sensor="bat", depth=None)
    assert bool(battery_death(_frame(hour)).iloc[0]) is expected


def test_out_of_range() -> None:
    frame = _frame(_hour([25.0, 61.0, 25.0]), _hour([25.0, 25.2, 25.0], device="soil-2"))
    assert list(out_of_range(frame)) == [True, False]


def test_the_most_certain_rule_names_the_hour() -> None:
    spiking = _hour([31.0, 31.1, 56.0, 31.0], device="soil-1", before=[(T0 - 900, 31.0)] * 1)
    held = _hour([31.0, 31.0, 31.0, 31.0], device="soil-1", before=[(T0 - 900, 31.0)])
    assert list(rule_kinds(_frame(spiking), 900.0)) == ["spike"]
    assert list(rule_kinds(_frame(held), 900.0)) == ["stuck"]


def test_a_peer_a_surer_rule_doubts_is_no_peer() -> None:
    """A stuck probe 6 % off its peer: it is named stuck, and its peer is not named drifting for it."""
    held = _hour([31.0, 31.0, 31.0, 31.0], device="soil-1", before=[(T0 - 900, 31.0)])
    peer = _hour([25.0, 25.2, 25.1, 25.0], device="soil-2")
    assert list(rule_kinds(_frame(held, peer), 900.0)) == ["stuck", ""]


def _probes_at_one_depth(means: list[float], **more: list[int]) -> pd.DataFrame:
    """Soil-moisture hourly means of probes at 15 cm in one zone and hour (``more``: further columns)."""
    return pd.DataFrame(
        {"farm": "f", "zone": "z", "kind": "soil_moisture", "depth_cm": 15.0, "hour": 0, "mean": means} | more
    )


def test_peers_are_sought_within_one_season_of_a_table_of_several() -> None:
    """Seasons recorded over the same dates share hours: a sensor's peers are its own season's, not another's."""
    rows = _probes_at_one_depth([20.0, 20.2, 30.0, 30.4], season=[1, 1, 2, 2])
    assert list(peer_residual(rows).round(6)) == [-0.2, 0.2, -0.4, 0.4]
    mixed = peer_residual(rows.drop(columns="season"))
    assert mixed.abs().max() > 5, "without the season the two seasons' sensors would judge each other"


def test_a_missing_value_is_no_peer() -> None:
    rows = _probes_at_one_depth([20.0, 21.0, 25.0])
    assert list(peer_residual(rows).round(6)) == [-3.0, -1.5, 4.5]
    some = peer_residual(rows, rows["mean"].where(rows["mean"] < 25))
    assert list(some.round(6)[:2]) == [-1.0, 1.0] and math.isnan(some.iloc[2])


def test_more_than_two_peers_are_judged_by_their_median() -> None:
    rows = _probes_at_one_depth([25.0, 25.5, 25.2, 31.0])
    assert list(peer_residual(rows).round(6)) == [-0.5, 0.3, -0.3, 5.8]
    some = peer_residual(rows, rows["mean"].where(rows["mean"] != 25.5))  # a doubted peer: two others, their mean
    assert list(some.round(6)[[0, 2, 3]]) == [-3.1, -2.8, 5.9]


def test_service_lays_each_hours_history_out_as_earlier_rows() -> None:
    hours = [_hour([25.0], history=[24.0, math.nan, 23.0]), _hour([26.0], device="soil-2", history=[25.0])]
    frame = hour_frame(hours)
    assert len(frame) == 2 + 3
    assert list(frame["hour"].iloc[2:]) == [T0 - 3600, T0 - 3 * 3600, T0 - 3600]
    assert list(frame["mean"]) == [25.0, 26.0, 24.0, 23.0, 25.0]


# --- judging ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("right", "alarms", "earns"),
    [(5, 5, True), (9, 10, True), (15, 20, True), (3, 5, False), (3, 3, False), (8, 10, False), (0, 0, False)],
)
def test_a_forest_earns_its_alarms_only_beyond_a_coin_toss(right: int, alarms: int, earns: bool) -> None:
    assert (_coin_chance(right, alarms) < FOREST_EVIDENCE) is earns


def test_episodes_are_scored_as_alarms_raised_and_borne_out() -> None:
    """One sensor drifts for three hours and is caught in two; its peer is named for one hour (a false alarm),
    and a third sensor is named stuck for two hours running (one alarm, wrong)."""
    rows = [("soil-1", "sm-15", h, "drift") for h in range(3)] + [("soil-2", "sm-15", h, "") for h in range(3)]
    rows += [("soil-3", "st-15", h, "") for h in range(3)]
    table = pd.DataFrame(rows, columns=["device", "sensor", "hour", "label"]).assign(hour=lambda t: t["hour"] * 3600)
    table["episode"] = _episodes(table)
    found = pd.Series(["drift", "", "drift", "", "drift", "", "stuck", "stuck", ""])
    drift = score_kinds(found, table)["drift"]
    assert (drift["precision"], drift["recall"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert (drift["episodes"], drift["episode_recall"]) == (1.0, 1.0)
    assert (drift["alarms"], drift["episode_precision"]) == (3.0, pytest.approx(2 / 3)), "two runs on soil-1, one"
    stuck = score_kinds(found, table)["stuck"]
    assert (stuck["alarms"], stuck["episode_precision"]) == (1.0, 0.0)
