"""The sensor-fault detector: plain rules (range, spike, stuck, drift, dropout, battery) and an isolation forest.

The unit is one sensor over one hour (``ml.context.SensorHour``), since the stream scores a zone at the close of
each hour. Training reads a recorded season's readings (``sensor_hours_table``: the same statistics, vectorised,
with the ground-truth label of each sensor-hour); service hands ``FaultDetector.detect`` the zone's sensor-hours
of the hour that just closed, each with its past week of hourly means. Both go through one frame (``hour_frame``
lays the service's hours out as the table's rows) and the same rules, so the rules have one home: each is a pure
function of that frame's columns, with its threshold named beside it.

Peers: a sensor is compared with the zone's other sensors of the same kind and depth in the same hour (soil
sensors differ by depth), and a weather sensor with the farm's others (``ml.faulthistory.FARM_KINDS``; service
hands them in as ``ZoneContext.farm_sensors``). In the default layout the soil probes come in pairs: a drift shows
on both, and what the zone explains tells which one moved (``ml.faulthistory``); the air sensors are four, one a
zone, and the odd one out tells itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from ml.context import RUN_BEFORE, STEP_WITHIN_S, SensorHour, ZoneContext, num
from ml.faulthistory import (
    BALANCE_INPUTS,
    FARM_KINDS,
    history_columns,
    learn_soil_lags,
    peer_keys,
    peer_residual,
    zone_inputs,
)
from ml.features import HOUR_S
from smartfarm.layout import SensorKind
from smartfarm.sensing import MOTION, PRECISION, Precision

FAULT_KINDS = ("battery_death", "dropout", "spike", "stuck", "drift")
"""The ground-truth kinds a sensor-hour can carry, in the order a label and a detection pick one when several
apply: the most certain sign first."""
ANOMALY = "anomaly"
"""The kind of a detection only the isolation forest made."""

STAT_COLUMNS = (
    "count",
    "mean",
    "std",
    "min",
    "max",
    "last",
    "first_ts",
    "last_ts",
    "steps",
    "max_step",
    "repeats",
    "excursion",
    "last_step",
    "gap_s",
    "run",
)
KEY_COLUMNS = ("farm", "zone", "device", "sensor", "kind", "depth_cm", "hour")

# --- thresholds ------------------------------------------------------------------------------------------------

JUMP = {kind: m.jump for kind, m in MOTION.items()}
"""An out-and-back of one reading this large is a spike (``Motion.jump``; why it is below the cleaner's one-way
``spike_step``: ``smartfarm.sensing``)."""
LAST_STEP_KINDS = frozenset(kind for kind, m in MOTION.items() if m.steps_into_last)
"""Kinds for which a ``JUMP`` into the hour's last reading is a spike too (``Motion.steps_into_last``)."""

PLATEAU_KINDS = frozenset(kind for kind, m in MOTION.items() if m.plateaus_judged)
"""Kinds judged for stuck values (``Motion.plateaus_judged``)."""
STUCK_CHANCE = 2e-4
"""How rarely a working sensor may repeat its reading exactly as many times in a row as ``stuck`` waits for. A
reading is its true value plus noise, rounded to the kind's resolution, and the true value moves slowly: two
readings in a row come out equal about resolution / (2 sd sqrt(pi)) of the time (the chance that two draws of
the noise land in one step; ``repeat_chance``), so n repeats in a row come by chance about that to the n. At
2e-4 a reading, a working sensor read four times an hour is called stuck at most about once in 1,250 hours (less:
its true value moves too)."""


def repeat_chance(precision: Precision) -> float:
    """The chance that a working sensor's reading equals the one before it (``STUCK_CHANCE``); 1 for a kind with
    no noise (a rain gauge repeats zero for days)."""
    if precision.noise_sd <= 0:
        return 1.0
    return min(1.0, precision.resolution / (2 * precision.noise_sd * math.sqrt(math.pi)))


def _repeats_needed(chance: float) -> int:
    return max(2, math.ceil(math.log(STUCK_CHANCE) / math.log(chance)))


STUCK_REPEATS = {kind: _repeats_needed(repeat_chance(PRECISION[kind])) for kind in PLATEAU_KINDS}
"""Exact repeats in a row (``SensorHour.run``) that no working sensor of the kind makes by chance (air
temperature, humidity, sun and soil temperature 3, soil moisture 4, leaf wetness 5, wind 6; ``STUCK_CHANCE``)."""

DRIFT_BOUND = {kind: m.drift_bound for kind, m in MOTION.items() if m.drift_bound is not None}
"""An hourly mean this far from its peers' median drifts, when the sensor's usual offset is not known yet
(``Motion.drift_bound``)."""
DRIFT_SHIFT = {kind: m.drift_shift for kind, m in MOTION.items() if m.drift_shift is not None}
"""An offset from the peers this much beyond the sensor's usual offset (``ml.faulthistory``'s ``baseline``)
drifts (``Motion.drift_shift``)."""

DROPOUT_GAPS = 4.0
"""A sensor whose previous reading is more than this many reading intervals before the hour's first one was
silent: one or two lost messages (a malformed payload dead-lettered) leave a gap of two or three intervals."""

BATTERY_STEP_V = 0.05
"""A battery falling this much between two readings is collapsing: a healthy cell moves a few millivolts (noise
5 mV, solar charge about 1.5 mV per 15 minutes), a failing one about 80 mV."""
BATTERY_LOW_V = 3.6
"""Below this a Li-ion cell under a node's light load is nearly empty; the node cuts off at 3.3 V."""

FOREST_FEATURES = (
    "std",
    "spread",
    "max_step",
    "excursion",
    "last_step",
    "repeat_share",
    "abs_residual",
    "count_ratio",
    "gap_ratio",
)
"""What the isolation forest sees of a sensor-hour: shape, steps, plateau, distance from peers, delivery."""
FOREST_CANDIDATE_QUANTILES = (0.99, 0.995, 0.998, 0.999, 0.9995)
"""Alarm levels tried for each kind's forest: the share of the training's clean sensor-hours scoring above the
threshold (0.999: one clean hour in a thousand raises an alarm)."""
FOREST_EVIDENCE = 0.05
"""``fit`` keeps the most sensitive level at which the forest's own alarms (on hours the rules left alone) were
faults more often than not on the training seasons beyond chance: a forest whose alarms were right or wrong at the
toss of a coin would score as well less than this often (a one-sided binomial test: at least 5 of 5, 9 of 10 or
15 of 20 right). It switches the kind's forest off when no level does: the rules catch the clear signs, and a few
lucky alarms in training are not evidence (2026-12: the solar forest's 3 of 5 right in training were 0 of 2 on
the held-out seasons). ``evaluate`` counts each kept forest's extra true and false alarms there."""


# --- the frame both sides share ---------------------------------------------------------------------------------


def hour_frame(
    hours: Sequence[SensorHour],
    zone: Mapping[str, float] | None = None,
    peers: Sequence[tuple[str, SensorHour]] = (),
    zone_id: str = "",
) -> pd.DataFrame:
    """Sensor-hours of one zone and hour as rows of the shape ``sensor_hours_table`` makes (without the label),
    ``hours`` first, then the farm's other zones' ``peers`` (``ZoneContext.farm_sensors``), then a row per hour of
    each one's ``history`` (its mean only): the past the drift rule reads, laid out as training's table holds it.

    Args:
        zone: the zone's ``BALANCE_INPUTS`` (``ml.faulthistory.zone_inputs``), on every row; without them the
            soil-moisture balance explains nothing.
        zone_id: the zone of ``hours``, told apart from the peers' zones.
    """
    every = [*hours, *(h for _, h in peers)]
    rows = [{c: getattr(h, c) for c in ("device", "sensor", "depth_cm", *STAT_COLUMNS)} for h in every]
    frame = pd.DataFrame(rows, columns=["device", "sensor", "kind", "depth_cm", *STAT_COLUMNS])
    frame["kind"] = [h.kind.value for h in every]
    frame["zone"] = [zone_id] * len(hours) + [z for z, _ in peers]
    frame["hour"] = (frame["first_ts"] // HOUR_S * HOUR_S).astype("int64")
    sizes = [len(h.history) for h in every]
    if sum(sizes):
        means = np.concatenate([np.asarray(h.history, dtype=float) for h in every])
        back = np.concatenate([np.arange(1, n + 1) for n in sizes])
        keys = {c: np.repeat(frame[c].to_numpy(), sizes) for c in ("device", "sensor", "kind", "depth_cm", "zone")}
        hour = np.repeat(frame["hour"].to_numpy(), sizes) - HOUR_S * back
        past = pd.DataFrame(keys | {"hour": hour, "mean": means})
        frame = pd.concat([frame, past[~np.isnan(means)]], ignore_index=True)
    frame["farm"] = ""
    frame["depth_cm"] = frame["depth_cm"].astype(float)
    frame["gap_s"] = frame["gap_s"].astype(float)
    for name in BALANCE_INPUTS:
        frame[name] = np.nan if zone is None else float(zone[name])
    return frame


def with_features(
    frame: pd.DataFrame, interval_s: float | None = None, soil_lags: Mapping[float, float] | None = None
) -> pd.DataFrame:
    """``frame`` with what the rules and the forest read beside its statistics: the offset from the peers
    (``residual``; ``trusted_residual`` among the peers whose offset the hour shows: none a surer rule calls stuck
    or spiking, none reading at an end of its range, where its offset is clipped away), the sensor's past
    (``ml.faulthistory.history_columns``: ``baseline``, ``change``, ``expected``, ``unexplained``), and the derived
    shape features.

    Args:
        interval_s: the devices' reading interval; ``count_ratio`` and ``gap_ratio`` need it (NaN without).
        soil_lags: per soil-temperature depth, how the soil follows the air (``FaultDetector.soil_lags``); none
            known: soil temperature's change is explained by nothing.
    """
    out = frame.copy()
    out["residual"] = peer_residual(out)
    out["abs_residual"] = out["residual"].abs().fillna(0.0)
    out["spread"] = out["max"] - out["min"]
    out["repeat_share"] = (out["repeats"] / out["steps"].where(out["steps"] > 0)).fillna(0.0)
    if interval_s is not None:
        out["count_ratio"] = out["count"] * interval_s / 3600
        out["gap_ratio"] = (out["gap_s"] / interval_s).fillna(1.0)
    out["unsure"] = stuck(out) | spike(out) | out_of_range(out) | at_an_end(out)
    out["trusted_residual"] = peer_residual(out, out["mean"].where(~out["unsure"]))
    past = history_columns(out, soil_lags or {}, DRIFT_SHIFT.keys() | DRIFT_BOUND.keys())
    out[past.columns] = past
    out["shift"] = out["trusted_residual"] - out["baseline"]
    return out


def _per_kind(frame: pd.DataFrame, table: Mapping[SensorKind, float]) -> pd.Series:
    """``table``'s value for each row's kind (NaN for a kind it leaves out); through the few distinct kinds, as
    mapping every row costs milliseconds a frame."""
    codes, kinds = pd.factorize(frame["kind"])
    by_value = {k.value: v for k, v in table.items()}
    values = np.array([by_value.get(k, np.nan) for k in kinds], dtype=float)
    return pd.Series(values[codes] if len(kinds) else np.nan, index=frame.index)


# --- the rules ---------------------------------------------------------------------------------------------------


def at_an_end(frame: pd.DataFrame) -> pd.Series:
    """A reading at an end of the kind's range: saturated air, dry or soaked leaves, no sun. Sensors rest there
    together, whatever their offsets, so the hour says nothing of one's offset from the others."""
    low = _per_kind(frame, {k: k.physical_range[0] for k in SensorKind})
    high = _per_kind(frame, {k: k.physical_range[1] for k in SensorKind})
    return (frame["min"] <= low) | (frame["max"] >= high)


def out_of_range(frame: pd.DataFrame) -> pd.Series:
    """Any reading outside what a working sensor of its kind can report (``SensorKind.physical_range``)."""
    low = _per_kind(frame, {k: k.physical_range[0] for k in SensorKind})
    high = _per_kind(frame, {k: k.physical_range[1] for k in SensorKind})
    return (frame["min"] < low) | (frame["max"] > high)


def spike(frame: pd.DataFrame) -> pd.Series:
    """One reading out and back by at least the kind's ``JUMP``, or a jump into the last reading of a kind that
    never steps that far (``LAST_STEP_KINDS``)."""
    jump = _per_kind(frame, JUMP)
    last = frame["kind"].isin({k.value for k in LAST_STEP_KINDS}) & (frame["last_step"] >= jump)
    return (frame["excursion"] >= jump) | last


def stuck(frame: pd.DataFrame) -> pd.Series:
    """A value held too long for a working sensor: at least the kind's ``STUCK_REPEATS`` exact repeats in a row
    (``SensorHour.run``, counted into the hour from before it), where the kind's noise would have moved the
    readings, at a value inside its range (an end of the range is where sun, wind, humidity and leaves rest). A
    kind not judged (rain, battery) has no count of repeats that is too many."""
    low = _per_kind(frame, {k: k.physical_range[0] for k in SensorKind})
    high = _per_kind(frame, {k: k.physical_range[1] for k in SensorKind})
    held = frame["run"] >= _per_kind(frame, STUCK_REPEATS)
    inside = (frame["min"] > low) & (frame["max"] < high)
    return held & inside


def drift(frame: pd.DataFrame) -> pd.Series:
    """An offset from the peers (among those no surer rule doubts this hour) that moved more than the kind's
    ``DRIFT_SHIFT`` from its usual one over the past week, or, before a usual offset is known, lies further than
    its ``DRIFT_BOUND``. Working sensors keep their offsets; a drifting one walks away.

    Two sensors that moved apart both show it, so of a peer group one at most is named each hour: the one whose
    own change over the last day the zone explains least (``unexplained``: against the water balance for soil
    moisture, the air for soil temperature, against standing still otherwise). More peers tell by themselves;
    with two, that is what tells. Peers read at an end of their range are no peers (``at_an_end``)."""
    known = frame["baseline"].notna()
    moved = known & (frame["shift"].abs() > _per_kind(frame, DRIFT_SHIFT))
    apart = ~known & (frame["trusted_residual"].abs() > _per_kind(frame, DRIFT_BOUND))
    flagged = (moved | apart) & ~frame["unsure"]
    named = pd.Series(False, index=frame.index)
    if flagged.any():
        candidates = frame.loc[flagged, "unexplained"].fillna(-1.0)
        named[candidates.groupby([k[flagged] for k in peer_keys(frame)], sort=False).idxmax()] = True
    return named


def dropout(frame: pd.DataFrame, interval_s: float) -> pd.Series:
    """The first reading after a silence: more than ``DROPOUT_GAPS`` intervals since the sensor's previous one.

    Only what arrived is seen, so the hours of silence themselves have no sensor-hour; the hour the device is back
    carries the gap (and the simulator's label)."""
    return (frame["gap_s"] > DROPOUT_GAPS * interval_s).fillna(False).astype(bool)


def battery_death(frame: pd.DataFrame) -> pd.Series:
    """A battery falling ``BATTERY_STEP_V`` between two readings, or below ``BATTERY_LOW_V``."""
    battery = frame["kind"] == SensorKind.BATTERY.value
    return battery & ((frame["max_step"] >= BATTERY_STEP_V) | (frame["min"] < BATTERY_LOW_V))


def rule_kinds(frame: pd.DataFrame, interval_s: float) -> pd.Series:
    """The fault kind the rules name for each sensor-hour ("" for none), the most certain first (``FAULT_KINDS``).

    Out of range is named a spike: a working sensor cannot report it, and a single wild reading is its usual cause.
    """
    found = pd.Series("", index=frame.index, dtype=object)
    checks = (
        ("drift", drift(frame)),
        ("stuck", stuck(frame)),
        ("spike", spike(frame) | out_of_range(frame)),
        ("dropout", dropout(frame, interval_s)),
        ("battery_death", battery_death(frame)),
    )
    for kind, hit in checks:  # least certain first, so the most certain one is written last and wins
        found[hit.to_numpy()] = kind
    return found


# --- the training table -------------------------------------------------------------------------------------------


def sensor_hours_table(readings: pd.DataFrame, zones: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (device, sensor, UTC hour) of a recorded season's readings: the ``SensorHour`` statistics and
    ``label``, the ground-truth fault of the hour ("" for none). A sensor's ``history`` is the table's own earlier
    rows of it.

    A sensor-hour is faulty of kind k when any of its readings carries k (the first of ``FAULT_KINDS`` when it has
    several). Vectorised: a season's 140 000 readings would take seconds through ``sensor_hour`` one by one; a unit
    test holds the two equal. ``episode`` names the fault episode a labelled row belongs to: consecutive labelled
    hours of one kind on one sensor (on one device for dropout and battery death).

    Args:
        zones: the season's ``BALANCE_INPUTS`` by farm, zone and hour (``ml.faulthistory.balance_inputs`` of its
            forecast table), as service takes them from each hour's context; NaN without.
    """
    r = readings.sort_values(["device", "sensor", "ts"], kind="stable").reset_index(drop=True)
    r["t"] = (r["ts"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    r["hour"] = (r["t"] // 3600 * 3600).astype("int64")
    by_sensor = r.groupby(["device", "sensor"], sort=False)
    dt = by_sensor["t"].diff()
    step = (r["value"] - by_sensor["value"].shift()).where(dt <= STEP_WITHIN_S)
    in_hour = r.groupby(["device", "sensor", "hour"], sort=False).cumcount()
    is_first = in_hour == 0
    same_hour_next = (r["hour"].shift(-1) == r["hour"]) & (r["device"].shift(-1) == r["device"])
    same_hour_next &= r["sensor"].shift(-1) == r["sensor"]
    out_step = step.shift(-1).where(same_hour_next)
    r["_step"] = step.abs()
    r["_repeat"] = step == 0
    r["_exc"] = np.minimum(step.abs(), out_step.abs()).where(step * out_step < 0)
    r["_last_step"] = step.abs().where(~is_first & ~same_hour_next)
    r["_gap"] = dt.where(is_first)
    # SensorHour.run: zero steps in a row ending at each reading, counted back over at most RUN_BEFORE readings
    # before its hour (the j-th reading of an hour can count RUN_BEFORE + j steps).
    zero = step == 0
    stretch = (~zero).groupby([r["device"], r["sensor"]], sort=False).cumsum()
    zeros = zero.astype(int).groupby([r["device"], r["sensor"], stretch], sort=False).cumsum()
    r["_run"] = np.minimum(zeros, RUN_BEFORE + in_hour)
    r["_fault_rank"] = r["fault"].map({k: i for i, k in enumerate(FAULT_KINDS)})
    grouped = r.groupby([*KEY_COLUMNS], sort=False, dropna=False)
    table = grouped.agg(
        count=("value", "size"),
        mean=("value", "mean"),
        min=("value", "min"),
        max=("value", "max"),
        last=("value", "last"),
        first_ts=("t", "first"),
        last_ts=("t", "last"),
        steps=("_step", "count"),
        max_step=("_step", "max"),
        repeats=("_repeat", "sum"),
        excursion=("_exc", "max"),
        last_step=("_last_step", "max"),
        gap_s=("_gap", "max"),
        run=("_run", "max"),
        fault_rank=("_fault_rank", "min"),
    ).reset_index()
    table.insert(table.columns.get_loc("mean") + 1, "std", grouped["value"].std(ddof=0).fillna(0.0).to_numpy())
    for column in ("max_step", "excursion", "last_step"):
        table[column] = table[column].fillna(0.0)
    table["repeats"] = table["repeats"].astype(int)
    table["label"] = table["fault_rank"].map(dict(enumerate(FAULT_KINDS))).fillna("").astype(object)
    table = table.drop(columns="fault_rank")
    table["episode"] = _episodes(table)
    if zones is not None:
        table = table.merge(zones[["farm", "zone", "hour", *BALANCE_INPUTS]], on=["farm", "zone", "hour"], how="left")
    return table


def _episodes(table: pd.DataFrame) -> pd.Series:
    """An id per fault episode for labelled rows ("" for clean ones); see ``sensor_hours_table``."""
    return _runs(table, table["label"])


def _runs(table: pd.DataFrame, names: pd.Series) -> pd.Series:
    """An id per run of ``names`` (fault kinds, "" for none): consecutive hours of one name on one sensor (on one
    device for dropout and battery death), within one season of a table of several; "" for unnamed rows."""
    device_fault = names.isin(("dropout", "battery_death"))
    who = table["device"] + "/" + table["sensor"].where(~device_fault, "*") + "/" + names
    if "season" in table:
        who = table["season"].astype(str) + ":" + who
    named = table.loc[names != "", ["hour"]].assign(who=who).sort_values(["who", "hour"], kind="stable")
    new_run = (named["who"] != named["who"].shift()) | (named["hour"] - named["hour"].shift() > HOUR_S)
    run = new_run.cumsum().astype(str)
    out = pd.Series("", index=table.index, dtype=object)
    out[named.index] = named["who"] + "#" + run
    return out


# --- the detector -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Detection:
    """A sensor (or, for a dropout, a device) the detector believes faulty in the hour."""

    device: str
    sensor: str | None
    """None for a dropout: the whole device fell silent."""
    kind: str
    """One of ``FAULT_KINDS`` or ``ANOMALY``."""
    score: float
    """0..1: how far past its threshold the evidence is."""
    message: str
    """Plain words with the numbers behind the verdict."""


class FaultDetector:
    """The rules, and an isolation forest per sensor kind for what they miss; picklable (plain attributes only).

    Made by ``FaultDetector.fit``; ``interval_s`` is the devices' reading interval the rules and features scale by.
    """

    def __init__(self, interval_s: float, n_estimators: int = 100, seed: int = 0) -> None:
        self.interval_s = interval_s
        self.n_estimators = n_estimators
        self.seed = seed
        self.forests: dict[str, IsolationForest] = {}
        self.thresholds: dict[str, float] = {}
        """Per kind: a sensor-hour scoring below this (``IsolationForest.score_samples``) is an anomaly."""
        self.soil_lags: dict[float, float] = {}
        """Per soil-temperature depth (cm): the hours with which the soil there follows the air, learnt
        (``ml.faulthistory.learn_soil_lags``)."""

    def __setstate__(self, state: dict[str, object]) -> None:
        # A detector pickled before the soil lags were learnt loads without them: its soil temperature's change
        # is then explained by nothing, as before.
        self.__dict__.update({"soil_lags": {}} | state)

    @classmethod
    def fit(
        cls, table: pd.DataFrame, seed: int = 0, interval_s: float | None = None, n_estimators: int = 100
    ) -> FaultDetector:
        """Learn from ``sensor_hours_table`` rows of the training seasons: how the soil follows the air at each
        depth, and each kind's forest on its clean hours with its alarm level (``FOREST_EVIDENCE``).

        Args:
            interval_s: the devices' reading interval; the training's median gap between readings when None.
        """
        detector = cls(float(table["gap_s"].median()) if interval_s is None else interval_s, n_estimators, seed)
        detector.soil_lags = learn_soil_lags(table)
        frame = with_features(table, detector.interval_s, detector.soil_lags)
        silent = (rule_kinds(frame, detector.interval_s) == "").to_numpy()
        faulty = (frame["label"] != "").to_numpy()
        for kind, index in frame.groupby("kind", sort=True).indices.items():
            clean = index[~faulty[index]]
            if len(clean) < 50:
                continue
            forest = IsolationForest(n_estimators=n_estimators, random_state=seed)
            forest.fit(frame.iloc[clean][list(FOREST_FEATURES)].to_numpy())
            scores = forest.score_samples(frame.iloc[index][list(FOREST_FEATURES)].to_numpy())
            threshold = _alarm_level(scores, faulty[index], silent[index])
            if threshold is not None:
                detector.forests[str(kind)] = forest
                detector.thresholds[str(kind)] = threshold
        return detector

    def metrics(self, scores: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, float]:
        """``evaluate``'s scores as flat metric names (``rules_forest.drift.recall``,
        ``forest.air_humidity.extra_true``), NaN left out, how many kinds have a forest, and the soil lags learnt
        (``soil_lag_h.15``)."""
        flat = {
            f"{mode.replace('+', '_')}.{kind}.{name}": value
            for mode, kinds in scores.items()
            for kind, values in kinds.items()
            for name, value in values.items()
            if not math.isnan(value)
        }
        lags = {f"soil_lag_h.{num(depth)}": lag for depth, lag in self.soil_lags.items()}
        return flat | lags | {"forests": float(len(self.forests)), "interval_s": self.interval_s}

    @staticmethod
    def beats_baseline(scores: Mapping[str, Mapping[str, Mapping[str, float]]]) -> bool:
        """Whether rules and forest together find faults (any kind) at least as well, by F1, as the rules alone."""
        return _f1(scores["rules+forest"]["any"]) >= _f1(scores["rules"]["any"])

    def forest_hits(self, frame: pd.DataFrame) -> pd.Series:
        """Sensor-hours whose kind's forest scores them below its threshold."""
        hit = pd.Series(False, index=frame.index)
        for kind, rows in frame.groupby("kind", sort=False):
            forest = self.forests.get(str(kind))
            if forest is None or not len(rows):
                continue
            scores = forest.score_samples(rows[list(FOREST_FEATURES)].to_numpy())
            hit[rows.index] = scores < self.thresholds[str(kind)]
        return hit

    def predict(self, table: pd.DataFrame, use_forest: bool = True) -> pd.Series:
        """The kind detected for each row of a ``sensor_hours_table`` ("" for none; ``ANOMALY`` for the forest's)."""
        return self._kinds(self.features(table), use_forest)

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``with_features`` of a table or an ``hour_frame`` at this detector's interval and soil lags."""
        return with_features(frame, self.interval_s, self.soil_lags)

    def _kinds(self, frame: pd.DataFrame, use_forest: bool) -> pd.Series:
        found = rule_kinds(frame, self.interval_s)
        if use_forest:
            found[((found == "") & self.forest_hits(frame)).to_numpy()] = ANOMALY
        return found

    def detect(
        self,
        hours: Sequence[SensorHour],
        use_forest: bool = True,
        zone: Mapping[str, float] | None = None,
        peers: Sequence[tuple[str, SensorHour]] = (),
        zone_id: str = "",
    ) -> list[Detection]:
        """The faults in one zone's sensor-hours of one hour (all of them: they are each other's peers).

        Args:
            zone: the zone's ``BALANCE_INPUTS`` (``detect_context`` passes them), for the soil-moisture balance.
            peers: the farm's other zones' sensor-hours of the farm's weather (``ZoneContext.farm_sensors``),
                peers of the zone's own and not judged here; ``zone_id`` tells the zone's own apart.
        """
        if not hours:
            return []
        # The rules run over the hour's peers too (a drift is named once among them), then the zone's own are told.
        frame = self.features(hour_frame(hours, zone, peers, zone_id)).iloc[: len(hours) + len(peers)]
        found = self._kinds(frame, use_forest).iloc[: len(hours)]
        frame = frame.iloc[: len(hours)]
        out: list[Detection] = []
        seen: set[tuple[str, str]] = set()
        for i in frame.index[found != ""]:
            row, kind = frame.loc[i], str(found[i])
            whole_device = kind == "dropout"
            if whole_device and (row["device"], kind) in seen:
                continue
            seen.add((row["device"], kind))
            out.append(
                Detection(
                    device=str(row["device"]),
                    sensor=None if whole_device else str(row["sensor"]),
                    kind=kind,
                    score=_score(row, kind, self.interval_s),
                    message=explain(row, kind, self.interval_s),
                )
            )
        return out

    def detect_context(self, context: ZoneContext, use_forest: bool = True) -> list[Detection]:
        """``detect`` on the sensor-hours a zone's context carries for the hour that just closed, with its water
        balance's inputs."""
        if not context.sensors:
            return []
        zone = zone_inputs(context)
        return self.detect(context.sensors, use_forest, zone, context.farm_sensors, context.zone.id)


def _alarm_level(scores: np.ndarray, faulty: np.ndarray, silent: np.ndarray) -> float | None:
    """The most sensitive threshold of ``FOREST_CANDIDATE_QUANTILES`` whose alarms on hours the rules left alone
    are faults more often than not, beyond chance (``FOREST_EVIDENCE``); None when no level is."""
    clean = scores[~faulty]
    for q in FOREST_CANDIDATE_QUANTILES:
        threshold = float(np.quantile(clean, 1 - q))
        alarms = silent & (scores < threshold)
        if _coin_chance(int((alarms & faulty).sum()), int(alarms.sum())) < FOREST_EVIDENCE:
            return threshold
    return None


def _coin_chance(right: int, alarms: int) -> float:
    """The chance that at least ``right`` of ``alarms`` coin tosses come up heads (1 with no alarm)."""
    return sum(math.comb(alarms, k) for k in range(right, alarms + 1)) / 2**alarms


def _f1(values: Mapping[str, float]) -> float:
    p, r = values["precision"], values["recall"]
    return 0.0 if math.isnan(p) or math.isnan(r) or p + r == 0 else 2 * p * r / (p + r)


def _score(row: pd.Series, kind: str, interval_s: float) -> float:
    """How far past its threshold the evidence is, squashed to 0..1 (1 at twice the threshold)."""
    k = SensorKind(row["kind"])
    ratio = {
        "spike": max(row["excursion"], row["last_step"]) / JUMP[k],
        "stuck": row["run"] / STUCK_REPEATS.get(k, np.inf),
        "drift": _drift_ratio(row, k),
        "dropout": row["gap_s"] / (DROPOUT_GAPS * interval_s),
        "battery_death": max(row["max_step"] / BATTERY_STEP_V, BATTERY_LOW_V / max(row["min"], 1e-3)),
    }.get(kind, 1.0)
    return float(np.clip(ratio / 2, 0.5, 1.0)) if np.isfinite(ratio) else 0.5


def _drift_ratio(row: pd.Series, k: SensorKind) -> float:
    if math.isnan(row["baseline"]):
        return float(abs(row["trusted_residual"]) / DRIFT_BOUND.get(k, np.inf))
    return float(abs(row["shift"]) / DRIFT_SHIFT.get(k, np.inf))


def _one_in(chance: float) -> str:
    """``chance`` as "1 in N", N to two significant figures (1 in 13,000)."""
    n = 1 / max(chance, 1e-12)
    return f"1 in {round(n, 1 - math.floor(math.log10(n))):,.0f}"


EXPLAINED_BY = {
    SensorKind.SOIL_MOISTURE: "the water balance (no more drying than Kc x ET0 allows)",
    SensorKind.SOIL_TEMPERATURE: "the zone's air temperature",
}
"""What explains a kind's change over a day (``ml.faulthistory.expected_change``), for the drift message."""


def _explain_drift(row: pd.Series, what: str, k: SensorKind) -> str:
    unit = k.unit
    others = f"the farm's other {k.value} sensors" if k in FARM_KINDS else f"the zone's other {k.value} sensors"
    if math.isnan(row["baseline"]):
        return (
            f"{what} read {num(row['trusted_residual'], 2)} {unit} away from {others} at the same depth over the last "
            f"hour (more than {num(DRIFT_BOUND[k])} {unit}); one of them drifts."
        )
    why = EXPLAINED_BY.get(k, "standing still")
    expected = 0.0 if math.isnan(row["expected"]) else row["expected"]
    change = (
        f" Its own change over the last day, {num(row['change'], 2)} {unit} where {why} allows "
        f"{num(expected, 2)}, is the least explained of them."
        if not math.isnan(row["change"])
        else ""
    )
    return (
        f"{what} read {num(row['trusted_residual'], 2)} {unit} from {others} at the same depth over the last hour, "
        f"where it usually reads {num(row['baseline'], 2)} (its median over the past "
        f"week): it moved {num(row['shift'], 2)} {unit}, more than working sensors do ({num(DRIFT_SHIFT[k])})."
        f"{change} It drifts: have it checked or recalibrated."
    )


def explain(row: pd.Series, kind: str, interval_s: float) -> str:
    """Plain words for a detection of ``kind`` on a row of the frame: what, how much, why."""
    k = SensorKind(row["kind"])
    unit = k.unit
    what = f"Sensor {row['sensor']} ({k.value}) on device {row['device']}"
    if kind == "spike":
        size = max(row["excursion"], row["last_step"])
        return (
            f"{what} jumped {num(size)} {unit} between two readings and back in the last hour; "
            f"{k.value} does not move more than {num(JUMP[k])} {unit} that fast, so one reading was wild."
        )
    if kind == "stuck":
        repeats = int(row["run"])
        return (
            f"{what} read one value exactly {repeats + 1} times in a row, into the last hour (mean "
            f"{num(row['mean'], 2)} {unit}); a working one scatters by about {num(PRECISION[k].noise_sd, 2)} {unit}, "
            f"so that happens by chance {_one_in(repeat_chance(PRECISION[k]) ** repeats)}: it looks stuck."
        )
    if kind == "drift":
        return _explain_drift(row, what, k)
    if kind == "dropout":
        gap_h = row["gap_s"] / 3600
        return (
            f"Device {row['device']} was silent for {num(gap_h)} h before its reading at the last hour "
            f"(readings are due every {num(interval_s / 60)} min): check its power and radio link."
        )
    if kind == "battery_death":
        return (
            f"Device {row['device']}'s battery fell to {num(row['min'], 2)} V, by up to {num(row['max_step'], 3)} V "
            f"between two readings; a healthy cell moves a few mV: replace it before the node cuts off at 3.3 V."
        )
    return (
        f"{what} behaved unlike a working sensor in the last hour (mean {num(row['mean'], 2)} {unit}, spread "
        f"{num(row['spread'], 2)}, largest step {num(row['max_step'], 2)}, {int(row['count'])} readings); "
        "the anomaly model flagged it: have a look."
    )


# --- evaluation -----------------------------------------------------------------------------------------------------


MODES = ("rules", "rules+forest")


def evaluate(detector: FaultDetector, table: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """Precision and recall per fault kind, and for "any" fault, over the sensor-hours of a held-out table: by mode
    (the rules alone, then rules and forest), then by kind.

    Per sensor-hour: a detection of kind k is a true positive when the hour's label is k; ``precision`` = true
    positives / hours detected as k; ``recall`` = labelled hours of kind k detected as k; ``found`` = labelled
    hours of kind k detected as any kind (a forest-only ``ANOMALY`` included). For "any", kinds are ignored: a
    detection of any kind on a labelled hour is a true positive. A drift is invisible early in its episode, and a
    stuck rain gauge at zero never shows, so ``episode_recall`` counts the episodes (``sensor_hours_table``) of
    which at least one hour was detected as k, and ``episode_precision`` the alarms (consecutive hours detected as
    k on one sensor) that touch a labelled hour of k. ``support`` = labelled hours, ``predicted`` = hours detected
    as k; precision is NaN when nothing was detected, recall when nothing was labelled.

    A last section, "forest", counts by sensor kind the extra true and false alarms of each kept forest (hours
    only it flagged, faulty or not): what the forest earns (``FOREST_EVIDENCE``).
    """
    found = {mode: detector.predict(table, mode == "rules+forest") for mode in MODES}
    out = {mode: score_kinds(hits, table) for mode, hits in found.items()}
    extra = found["rules+forest"] == ANOMALY
    faulty = table["label"] != ""
    out["forest"] = {
        kind: {
            "extra_true": float((extra & faulty & (table["kind"] == kind)).sum()),
            "extra_false": float((extra & ~faulty & (table["kind"] == kind)).sum()),
        }
        for kind in sorted(detector.forests)
    }
    return out


def score_kinds(found: pd.Series, table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``evaluate``'s scores of one set of detections (``FaultDetector.predict``) against ``table``'s labels."""
    label = table["label"]
    episode = table["episode"] if "season" not in table else table["season"].astype(str) + ":" + table["episode"]
    out: dict[str, dict[str, float]] = {}
    for kind in (*FAULT_KINDS, "any"):
        truth, hit = (label != "", found != "") if kind == "any" else (label == kind, found == kind)
        right = truth & hit
        episodes, caught = episode[truth].nunique(), episode[right].nunique()
        alarms = _runs(table, pd.Series(np.where(hit, kind, ""), index=table.index))
        raised, borne_out = alarms[hit].nunique(), alarms[right].nunique()
        support, predicted = int(truth.sum()), int(hit.sum())
        out[kind] = {
            "support": float(support),
            "predicted": float(predicted),
            "precision": right.sum() / predicted if predicted else math.nan,
            "recall": right.sum() / support if support else math.nan,
            "found": (truth & (found != "")).sum() / support if support else math.nan,
            "episodes": float(episodes),
            "episode_recall": caught / episodes if episodes else math.nan,
            "alarms": float(raised),
            "episode_precision": borne_out / raised if raised else math.nan,
        }
    return {k: {m: float(v) for m, v in values.items()} for k, values in out.items()}


__all__ = [
    "ANOMALY",
    "FAULT_KINDS",
    "MODES",
    "Detection",
    "FaultDetector",
    "evaluate",
    "explain",
    "hour_frame",
    "rule_kinds",
    "score_kinds",
    "sensor_hours_table",
    "with_features",
]
