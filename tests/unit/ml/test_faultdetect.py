"""The sensor-fault detector's statistics and each rule, one table each. Trained and judged on seasons:
``tests/seasons/ml/test_faultdetect.py``."""

from __future__ import annotations

import pandas as pd
import pytest

from ml.context import STEP_WITHIN_S, SensorHour, ZoneContext, sensor_hour
from ml.faultdetect import (
    battery_death,
    drift,
    dropout,
    hour_frame,
    out_of_range,
    plateau,
    rule_kinds,
    spike,
    with_features,
)
from smartfarm.layout import SensorKind
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


@pytest.mark.parametrize(
    ("values", "kind", "expected"),
    [
        ([25.3, 25.3, 25.3, 25.3], SOIL, True),
        ([25.3, 25.3, 25.4, 25.3], SOIL, False),
        ([25.3, 25.3], SOIL, False),  # two equal readings happen by rounding
        ([0.0, 0.0, 0.0, 0.0], RAIN, False),  # no rain
        ([0.0, 0.0, 0.0, 0.0], SensorKind.SOLAR_RADIATION, False),  # night
        ([100.0, 100.0, 100.0, 100.0], HUMIDITY, False),  # saturated air
        ([100.0, 100.0, 100.0, 100.0], LEAF, False),  # soaked leaves
        ([62.0, 62.0, 62.0, 62.0], HUMIDITY, True),
        ([4.1, 4.1, 4.1, 4.1], BATTERY, False),  # a battery at rest
    ],
)
def test_plateau(values: list[float], kind: SensorKind, expected: bool) -> None:
    assert bool(plateau(_frame(_hour(values, kind=kind))).iloc[0]) is expected


@pytest.mark.parametrize(
    ("means", "expected"),
    [
        ((25.0, 25.5), (False, False)),
        ((25.0, 30.0), (True, True)),  # two disagree: one of them drifts, both are named
        ((25.0, 25.5, 31.0), (False, False, True)),  # a third one tells which
        ((25.0,), (False,)),  # no peer, no verdict
    ],
)
def test_drift(means: tuple[float, ...], expected: tuple[bool, ...]) -> None:
    hours = [_hour([m] * 2 + [m + 0.1, m], device=f"soil-{i}") for i, m in enumerate(means)]
    assert tuple(drift(_frame(*hours))) == expected


def test_drift_compares_only_the_same_depth() -> None:
    top = _hour([30.0, 30.1, 30.0, 30.1], device="soil-1", sensor="sm-15", depth=15.0)
    deep = _hour([20.0, 20.1, 20.0, 20.1], device="soil-2", sensor="sm-45", depth=45.0)
    assert not drift(_frame(top, deep)).any()


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
    stuck = _hour([31.0, 31.0, 31.0, 31.0], device="soil-1")
    peer = _hour([25.0, 25.2, 25.1, 25.0], device="soil-2")
    assert list(rule_kinds(_frame(stuck, peer), 900.0)) == ["stuck", "drift"]


def test_peers_are_sought_within_one_season_of_a_table_of_several() -> None:
    """Seasons recorded over the same dates share hours: a sensor's peers are its own season's, not another's."""
    from ml.faultdetect import peer_residual

    rows = pd.DataFrame(
        {
            "farm": "f",
            "zone": "z",
            "kind": "soil_moisture",
            "depth_cm": 15.0,
            "hour": 0,
            "mean": [20.0, 20.2, 30.0, 30.4],
            "season": [1, 1, 2, 2],
        }
    )
    assert list(peer_residual(rows).round(6)) == [-0.2, 0.2, -0.4, 0.4]
    mixed = peer_residual(rows.drop(columns="season"))
    assert mixed.abs().max() > 5, "without the season the two seasons' sensors would judge each other"
