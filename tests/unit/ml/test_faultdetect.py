"""The sensor-fault detector: its statistics, each rule, and precision and recall per fault kind on a held-out season.

Three 30-day seasons train the detector and a fourth (another seed, never seen in training) scores it. Faults are
injected more often than ``FaultRates()`` does (stuck 4x, drift 5x, dropout 2x, battery death 2.5x) so that a
month holds enough episodes of each kind to measure; the floors below are the measured values with a margin.
"""

from __future__ import annotations

import dataclasses
import io
import math
from datetime import UTC, datetime, timedelta

import joblib
import pandas as pd
import pytest

from edge.faults import FaultRates
from edge.season import SeasonRecipe, farmer_valves, run_season
from ml.context import STEP_WITHIN_S, SensorHour, ZoneContext, sensor_hour
from ml.faultdetect import (
    ANOMALY,
    FAULT_KINDS,
    STAT_COLUMNS,
    FaultDetector,
    battery_death,
    drift,
    dropout,
    evaluate,
    hour_frame,
    out_of_range,
    plateau,
    rule_kinds,
    sensor_hours_table,
    spike,
    with_features,
)
from smartfarm.layout import SensorKind, load_layout
from tests.unit.ml.builders import context

RATES = FaultRates(stuck=0.002, drift=0.001, dropout=0.001, battery_death=0.00005)
TRAIN_SEEDS = (11, 12, 13)
HELD_OUT_SEED = 21
DAYS = 30
START = datetime(2026, 5, 1, tzinfo=UTC)

FLOORS: dict[str, dict[str, tuple[float, float]]] = {
    # mode -> kind -> (precision floor, recall floor), per sensor-hour on the held-out season.
    "rules": {
        "battery_death": (0.9, 0.9),
        "dropout": (0.85, 0.95),
        "spike": (0.75, 0.85),
        "stuck": (0.9, 0.7),
        "drift": (0.35, 0.18),
        "any": (0.6, 0.42),
    },
    "rules+forest": {
        "battery_death": (0.9, 0.9),
        "dropout": (0.85, 0.95),
        "spike": (0.75, 0.85),
        "stuck": (0.9, 0.7),
        "drift": (0.35, 0.18),
        "any": (0.6, 0.44),
    },
}
EPISODE_RECALL_FLOORS = {"battery_death": 0.9, "dropout": 0.95, "spike": 0.85, "stuck": 0.9, "drift": 0.3}
"""An episode is found when at least one of its hours is detected as its kind (``evaluate``'s docstring)."""


def _season(seed: int) -> pd.DataFrame:
    recipe = SeasonRecipe(seed, START + timedelta(days=15 * (seed % 10)), DAYS, 900.0, RATES)
    return run_season(load_layout(), recipe, on_hour=farmer_valves(seed)).readings


@pytest.fixture(scope="module")
def held_out_readings() -> pd.DataFrame:
    return _season(HELD_OUT_SEED)


@pytest.fixture(scope="module")
def held_out(held_out_readings: pd.DataFrame) -> pd.DataFrame:
    return sensor_hours_table(held_out_readings)


@pytest.fixture(scope="module")
def detector() -> FaultDetector:
    train = pd.concat([sensor_hours_table(_season(s)).assign(season=s) for s in TRAIN_SEEDS], ignore_index=True)
    return FaultDetector.fit(train, seed=0)


# --- sensor_hour ------------------------------------------------------------------------------------------------

SOIL = SensorKind.SOIL_MOISTURE
T0 = 1_780_000_000.0 // 3600 * 3600


def _hour(
    values: list[float],
    kind: SensorKind = SOIL,
    previous: tuple[float, float] | None = None,
    every: float = 900.0,
    device: str = "soil-1",
    sensor: str = "sm-15",
    depth: float | None = 15.0,
) -> SensorHour:
    return sensor_hour(device, sensor, kind, depth, [(T0 + i * every, v) for i, v in enumerate(values)], previous)


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


# --- the vectorised table against the plain function ----------------------------------------------------------


def test_table_equals_sensor_hour_row_by_row(held_out_readings: pd.DataFrame, held_out: pd.DataFrame) -> None:
    readings = held_out_readings.assign(t=(held_out_readings["ts"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds())
    by_sensor = {key: g.sort_values("t") for key, g in readings.groupby(["device", "sensor"])}
    sample = pd.concat(
        [held_out[held_out["label"] != ""].sample(100, random_state=1), held_out.sample(200, random_state=2)]
    )
    for _, row in sample.iterrows():
        g = by_sensor[(row["device"], row["sensor"])]
        inside = g[(g["t"] >= row["hour"]) & (g["t"] < row["hour"] + 3600)]
        before = g[g["t"] < row["hour"]]
        previous = (float(before["t"].iloc[-1]), float(before["value"].iloc[-1])) if len(before) else None
        depth = None if math.isnan(row["depth_cm"]) else float(row["depth_cm"])
        pairs = zip(inside["t"], inside["value"], strict=True)
        plain = sensor_hour(row["device"], row["sensor"], SensorKind(row["kind"]), depth, pairs, previous)
        for column in STAT_COLUMNS:
            want, got = getattr(plain, column), row[column]
            if want is None:
                assert math.isnan(got), column
            else:
                assert got == pytest.approx(want, abs=1e-9), (column, row["device"], row["sensor"], row["hour"])
        assert (row["label"] != "") == bool((inside["fault"] != "").any())


def test_labels_pick_the_most_certain_kind(held_out: pd.DataFrame) -> None:
    assert set(held_out["label"]) <= {"", *FAULT_KINDS}
    assert (held_out.loc[held_out["label"] != "", "episode"] != "").all()


def _as_sensor_hour(row: pd.Series) -> SensorHour:
    stats = {c: None if c == "gap_s" and math.isnan(row[c]) else row[c] for c in STAT_COLUMNS}
    depth = None if math.isnan(row["depth_cm"]) else float(row["depth_cm"])
    return SensorHour(device=row["device"], sensor=row["sensor"], kind=SensorKind(row["kind"]), depth_cm=depth, **stats)


def test_detect_on_sensor_hours_agrees_with_the_table(detector: FaultDetector, held_out: pd.DataFrame) -> None:
    """Service builds the same rows from ``SensorHour``s as training does from readings: same verdicts, peers
    included (``detect`` finds them among the hours it is given)."""
    predicted = detector.predict(held_out)
    zone_hours = held_out.groupby(["zone", "hour"]).groups
    hit = {key for key, index in zone_hours.items() if (predicted[index] != "").any()}
    keys = sorted(hit)[:: max(1, len(hit) // 120)] + sorted(set(zone_hours) - hit)[::100]
    for key in keys:
        rows = held_out.loc[zone_hours[key]]
        hours = [_as_sensor_hour(r) for _, r in rows.iterrows()]
        found = {(d.device, d.sensor, d.kind) for d in detector.detect(hours)}
        want = {
            (r["device"], None if predicted[i] == "dropout" else r["sensor"], predicted[i])
            for i, r in rows.iterrows()
            if predicted[i] != ""
        }
        assert found == want, key
    assert len(keys) > 140 and any(predicted[zone_hours[k]].eq("drift").any() for k in keys)


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


# --- the detector -------------------------------------------------------------------------------------------------


def test_detections_explain_themselves(detector: FaultDetector) -> None:
    stuck = _hour([31.0, 31.0, 31.0, 31.0], device="soil-1", previous=(T0 - 900, 31.0))
    peer = _hour([30.2, 30.4, 30.3, 30.1], device="soil-2", previous=(T0 - 900, 30.2))
    back = _hour([24.0, 24.1], sensor="st-15", kind=SensorKind.SOIL_TEMPERATURE, previous=(T0 - 4 * 3600, 23.0))
    found = {d.kind: d for d in detector.detect([stuck, peer, back], use_forest=False)}
    assert set(found) == {"stuck", "dropout"}
    assert found["stuck"].sensor == "sm-15" and "31 % in all 4 readings" in found["stuck"].message
    assert found["dropout"].sensor is None and "silent for 4 h" in found["dropout"].message
    assert all(0 < d.score <= 1 and len(d.message) <= 500 for d in found.values())


def test_detect_context_reads_the_context_sensors(detector: FaultDetector) -> None:
    stuck = _hour([31.0, 31.0, 31.0, 31.0], previous=(T0 - 900, 31.0))
    assert detector.detect_context(context()) == []
    found = detector.detect_context(dataclasses.replace(context(), sensors=[stuck]), use_forest=False)
    assert [(d.device, d.sensor, d.kind) for d in found] == [("soil-1", "sm-15", "stuck")]


def test_detector_pickles(detector: FaultDetector, held_out: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    joblib.dump(detector, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    sample = held_out.sample(2000, random_state=3)
    assert loaded.predict(sample).equals(detector.predict(sample))


def test_forest_hits_are_named_anomaly(detector: FaultDetector, held_out: pd.DataFrame) -> None:
    with_forest, rules = detector.predict(held_out), detector.predict(held_out, use_forest=False)
    assert ((with_forest != rules) <= (with_forest == ANOMALY)).all()


@pytest.fixture(scope="module")
def scores(detector: FaultDetector, held_out: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    found = evaluate(detector, held_out)
    for mode, kinds in found.items():
        print(mode, {k: {m: round(v, 3) for m, v in s.items()} for k, s in kinds.items()})
    return found


@pytest.mark.parametrize("mode", sorted(FLOORS))
def test_precision_and_recall_per_kind_on_a_held_out_season(
    scores: dict[str, dict[str, dict[str, float]]], mode: str
) -> None:
    for kind, (precision, recall) in FLOORS[mode].items():
        found = scores[mode][kind]
        assert found["support"] > 0, kind
        assert found["precision"] >= precision, (kind, found)
        assert found["recall"] >= recall, (kind, found)
    for kind, floor in EPISODE_RECALL_FLOORS.items():
        assert scores[mode][kind]["episode_recall"] >= floor, (kind, scores[mode][kind])


def test_metrics_are_flat_and_finite(detector: FaultDetector, scores: dict[str, dict[str, dict[str, float]]]) -> None:
    metrics = detector.metrics(scores)
    assert metrics["rules.drift.recall"] == scores["rules"]["drift"]["recall"]
    assert "rules_forest.any.precision" in metrics
    assert all(math.isfinite(v) for v in metrics.values())
    assert isinstance(detector.beats_baseline(scores), bool)


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
