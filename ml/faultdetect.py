"""The sensor-fault detector: plain rules (range, spike, plateau, drift, dropout, battery) and an isolation forest.

The unit is one sensor over one hour (``ml.context.SensorHour``), since the stream scores a zone at the close of
each hour. Training reads a recorded season's readings (``sensor_hours_table``: the same statistics, vectorised,
with the ground-truth label of each sensor-hour); service hands ``FaultDetector.detect`` the zone's sensor-hours
of the hour that just closed. Both go through one frame (``hour_frame``) and the same rules, so the rules have one
home: each is a pure function of that frame's columns, with its threshold named beside it.

Peers: a sensor is compared with the zone's other sensors of the same kind and depth in the same hour (soil
sensors differ by depth). In the default layout only the soil nodes (two per zone) and the batteries have peers;
with two, a drift shows on both, and the rule cannot tell which one moved (see ``drift``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from ml.context import STEP_WITHIN_S, SensorHour, ZoneContext, num
from smartfarm.layout import SensorKind
from smartfarm.sensing import MOTION

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
)
KEY_COLUMNS = ("farm", "zone", "device", "sensor", "kind", "depth_cm", "hour")

# --- thresholds ------------------------------------------------------------------------------------------------

JUMP = {kind: m.jump for kind, m in MOTION.items()}
"""An out-and-back of one reading this large is a spike (``Motion.jump``; why it is below the cleaner's one-way
``spike_step``: ``smartfarm.sensing``)."""
LAST_STEP_KINDS = frozenset(kind for kind, m in MOTION.items() if m.steps_into_last)
"""Kinds for which a ``JUMP`` into the hour's last reading is a spike too (``Motion.steps_into_last``)."""

PLATEAU_MIN_READINGS = 3
"""A plateau needs this many readings in the hour: two equal readings happen by rounding alone."""
PLATEAU_KINDS = frozenset(kind for kind, m in MOTION.items() if m.plateaus_judged)
"""Kinds judged for plateaus (``Motion.plateaus_judged``)."""

DRIFT_BOUND = {kind: m.drift_bound for kind, m in MOTION.items() if m.drift_bound is not None}
"""An hourly mean this far from its peers' median drifts (``Motion.drift_bound``)."""

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
FOREST_MIN_PRECISION = 0.5
"""``fit`` keeps the most sensitive level at which the forest's own alarms (on hours the rules left alone) were
faults at least this often on the training seasons, and switches the kind's forest off when none was: the rules
catch the clear signs, and an alarm that is wrong more often than right costs a farmer's trust."""
FOREST_MIN_ALARMS = 3
"""Fewer alarms than this at a level are too few to judge its precision by."""


# --- the frame both sides share ---------------------------------------------------------------------------------


def hour_frame(hours: Sequence[SensorHour]) -> pd.DataFrame:
    """Sensor-hours of one zone and hour as rows of the shape ``sensor_hours_table`` makes (without the label)."""
    rows = [asdict(h) | {"kind": h.kind.value} for h in hours]
    frame = pd.DataFrame(rows, columns=["device", "sensor", "kind", "depth_cm", *STAT_COLUMNS])
    frame["farm"], frame["zone"], frame["hour"] = "", "", 0
    frame["depth_cm"] = frame["depth_cm"].astype(float)
    frame["gap_s"] = frame["gap_s"].astype(float)
    return frame


def peer_residual(frame: pd.DataFrame) -> pd.Series:
    """Each sensor-hour's mean minus the median of its peers' means (same farm, zone, kind, depth, hour and, in a
    table of several seasons, ``season``); NaN
    without a peer. Groups are small (two or three sensors), so the median of the others is their mean up to two
    peers; larger groups take the exact leave-one-out median."""
    depth = frame["depth_cm"].fillna(-1.0)
    keys = [frame["farm"], frame["zone"], frame["kind"], depth, frame["hour"]]
    if "season" in frame:  # tables of several recorded seasons: peers only within one (their hours overlap)
        keys.append(frame["season"])
    group = frame["mean"].groupby(keys, sort=False)
    n = group.transform("size")
    others = (group.transform("sum") - frame["mean"]) / (n - 1).where(n > 1)
    residual = frame["mean"] - others
    large = n > 3
    if large.any():
        loo = frame.loc[large, "mean"].groupby([k[large] for k in keys], sort=False).transform(_loo_median)
        residual[large] = frame.loc[large, "mean"] - loo
    return residual


def _loo_median(values: pd.Series) -> pd.Series:
    v = values.to_numpy()
    return pd.Series([float(np.median(np.delete(v, i))) for i in range(len(v))], index=values.index)


def with_features(frame: pd.DataFrame, interval_s: float | None = None) -> pd.DataFrame:
    """``frame`` with the residual against peers and the derived features the rules and the forest read.

    Args:
        interval_s: the devices' reading interval; ``count_ratio`` and ``gap_ratio`` need it (NaN without).
    """
    out = frame.copy()
    out["residual"] = peer_residual(out)
    out["abs_residual"] = out["residual"].abs().fillna(0.0)
    out["spread"] = out["max"] - out["min"]
    out["repeat_share"] = (out["repeats"] / out["steps"].where(out["steps"] > 0)).fillna(0.0)
    if interval_s is not None:
        out["count_ratio"] = out["count"] * interval_s / 3600
        out["gap_ratio"] = (out["gap_s"] / interval_s).fillna(1.0)
    return out


def _per_kind(frame: pd.DataFrame, table: Mapping[SensorKind, float]) -> pd.Series:
    return frame["kind"].map({k.value: v for k, v in table.items()}).astype(float)


# --- the rules ---------------------------------------------------------------------------------------------------


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


def plateau(frame: pd.DataFrame) -> pd.Series:
    """Every step of the hour exactly zero over at least ``PLATEAU_MIN_READINGS`` readings, for a kind that
    varies, at a value inside its range (an end of the range is where sun, wind, humidity and leaves rest)."""
    low = _per_kind(frame, {k: k.physical_range[0] for k in SensorKind})
    high = _per_kind(frame, {k: k.physical_range[1] for k in SensorKind})
    flat = (frame["count"] >= PLATEAU_MIN_READINGS) & (frame["steps"] > 0) & (frame["repeats"] >= frame["steps"])
    inside = (frame["min"] > low) & (frame["max"] < high)
    return flat & inside & frame["kind"].isin({k.value for k in PLATEAU_KINDS})


def drift(frame: pd.DataFrame) -> pd.Series:
    """The hour's mean further than the kind's ``DRIFT_BOUND`` from the median of its peers. With a single peer
    both sensors of the pair are named: from one hour alone nothing tells which of the two moved."""
    bound = _per_kind(frame, DRIFT_BOUND)
    return (frame["residual"].abs() > bound).fillna(False).astype(bool)


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
        ("stuck", plateau(frame)),
        ("spike", spike(frame) | out_of_range(frame)),
        ("dropout", dropout(frame, interval_s)),
        ("battery_death", battery_death(frame)),
    )
    for kind, hit in checks:  # least certain first, so the most certain one is written last and wins
        found[hit.to_numpy()] = kind
    return found


# --- the training table -------------------------------------------------------------------------------------------


def sensor_hours_table(readings: pd.DataFrame) -> pd.DataFrame:
    """One row per (device, sensor, UTC hour) of a recorded season's readings: the ``SensorHour`` statistics, the
    residual against peers and ``label``, the ground-truth fault of the hour ("" for none).

    A sensor-hour is faulty of kind k when any of its readings carries k (the first of ``FAULT_KINDS`` when it has
    several). Vectorised: a season's 140 000 readings would take seconds through ``sensor_hour`` one by one; a unit
    test holds the two equal. ``episode`` names the fault episode a labelled row belongs to: consecutive labelled
    hours of one kind on one sensor (on one device for dropout and battery death)."""
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
        fault_rank=("_fault_rank", "min"),
    ).reset_index()
    table.insert(table.columns.get_loc("mean") + 1, "std", grouped["value"].std(ddof=0).fillna(0.0).to_numpy())
    for column in ("max_step", "excursion", "last_step"):
        table[column] = table[column].fillna(0.0)
    table["repeats"] = table["repeats"].astype(int)
    table["label"] = table["fault_rank"].map(dict(enumerate(FAULT_KINDS))).fillna("").astype(object)
    table = table.drop(columns="fault_rank")
    table["episode"] = _episodes(table)
    return with_features(table)


def _episodes(table: pd.DataFrame) -> pd.Series:
    """An id per fault episode for labelled rows ("" for clean ones); see ``sensor_hours_table``."""
    device_fault = table["label"].isin(("dropout", "battery_death"))
    who = table["device"] + "/" + table["sensor"].where(~device_fault, "*") + "/" + table["label"]
    labelled = table[table["label"] != ""].assign(who=who).sort_values(["who", "hour"], kind="stable")
    new_run = (labelled["who"] != labelled["who"].shift()) | (labelled["hour"] - labelled["hour"].shift() > 3600)
    run = new_run.cumsum().astype(str)
    episodes = pd.Series("", index=table.index, dtype=object)
    episodes[labelled.index] = labelled["who"] + "#" + run
    return episodes


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

    @classmethod
    def fit(
        cls, table: pd.DataFrame, seed: int = 0, interval_s: float | None = None, n_estimators: int = 100
    ) -> FaultDetector:
        """Learn from ``sensor_hours_table`` rows of the training seasons: each kind's forest on its clean hours and
        its alarm level (``FOREST_MIN_PRECISION``).

        Args:
            interval_s: the devices' reading interval; the training's median gap between readings when None.
        """
        detector = cls(float(table["gap_s"].median()) if interval_s is None else interval_s, n_estimators, seed)
        frame = with_features(table, detector.interval_s)
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
        """``evaluate``'s scores as flat metric names (``rules_forest.drift.recall``), NaN left out, and how many
        kinds have a forest."""
        flat = {
            f"{mode.replace('+', '_')}.{kind}.{name}": value
            for mode, kinds in scores.items()
            for kind, values in kinds.items()
            for name, value in values.items()
            if not math.isnan(value)
        }
        return flat | {"forests": float(len(self.forests)), "interval_s": self.interval_s}

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
        return self._kinds(with_features(table, self.interval_s), use_forest)

    def _kinds(self, frame: pd.DataFrame, use_forest: bool) -> pd.Series:
        found = rule_kinds(frame, self.interval_s)
        if use_forest:
            found[((found == "") & self.forest_hits(frame)).to_numpy()] = ANOMALY
        return found

    def detect(self, hours: Sequence[SensorHour], use_forest: bool = True) -> list[Detection]:
        """The faults in one zone's sensor-hours of one hour (all of them: they are each other's peers)."""
        if not hours:
            return []
        frame = with_features(hour_frame(hours), self.interval_s)
        found = self._kinds(frame, use_forest)
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
        """``detect`` on the sensor-hours a zone's context carries for the hour that just closed."""
        return self.detect(context.sensors, use_forest)


def _alarm_level(scores: np.ndarray, faulty: np.ndarray, silent: np.ndarray) -> float | None:
    """The most sensitive threshold of ``FOREST_CANDIDATE_QUANTILES`` whose alarms on hours the rules left alone
    are right at least ``FOREST_MIN_PRECISION`` of the time; None when no level is."""
    clean = scores[~faulty]
    for q in FOREST_CANDIDATE_QUANTILES:
        threshold = float(np.quantile(clean, 1 - q))
        alarms = silent & (scores < threshold)
        n = int(alarms.sum())
        if n >= FOREST_MIN_ALARMS and (alarms & faulty).sum() >= FOREST_MIN_PRECISION * n:
            return threshold
    return None


def _f1(values: Mapping[str, float]) -> float:
    p, r = values["precision"], values["recall"]
    return 0.0 if math.isnan(p) or math.isnan(r) or p + r == 0 else 2 * p * r / (p + r)


def _score(row: pd.Series, kind: str, interval_s: float) -> float:
    """How far past its threshold the evidence is, squashed to 0..1 (1 at twice the threshold)."""
    k = SensorKind(row["kind"])
    ratio = {
        "spike": max(row["excursion"], row["last_step"]) / JUMP[k],
        "stuck": row["count"] / (2 * PLATEAU_MIN_READINGS),
        "drift": abs(row["residual"]) / DRIFT_BOUND.get(k, np.inf),
        "dropout": row["gap_s"] / (DROPOUT_GAPS * interval_s),
        "battery_death": max(row["max_step"] / BATTERY_STEP_V, BATTERY_LOW_V / max(row["min"], 1e-3)),
    }.get(kind, 1.0)
    return float(np.clip(ratio / 2, 0.5, 1.0)) if np.isfinite(ratio) else 0.5


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
        return (
            f"{what} repeated {num(row['mean'], 2)} {unit} in all {int(row['count'])} readings of the last hour; "
            f"{k.value} always wanders a little, so it looks stuck."
        )
    if kind == "drift":
        return (
            f"{what} read {num(row['residual'], 2)} {unit} away from the zone's other {k.value} sensors at the same "
            f"depth over the last hour (more than {num(DRIFT_BOUND[k])} {unit}); one of them drifts, check both."
        )
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
    which at least one hour was detected as k. ``support`` = labelled hours, ``predicted`` = hours detected as k;
    precision is NaN when nothing was detected, recall when nothing was labelled.
    """
    return {mode: score_kinds(detector.predict(table, mode == "rules+forest"), table) for mode in MODES}


def score_kinds(found: pd.Series, table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``evaluate``'s scores of one set of detections (``FaultDetector.predict``) against ``table``'s labels."""
    label = table["label"]
    out: dict[str, dict[str, float]] = {}
    for kind in (*FAULT_KINDS, "any"):
        truth, hit = (label != "", found != "") if kind == "any" else (label == kind, found == kind)
        right = truth & hit
        episodes, caught = table.loc[truth, "episode"].nunique(), table.loc[right, "episode"].nunique()
        support, predicted = int(truth.sum()), int(hit.sum())
        out[kind] = {
            "support": float(support),
            "predicted": float(predicted),
            "precision": right.sum() / predicted if predicted else math.nan,
            "recall": right.sum() / support if support else math.nan,
            "found": (truth & (found != "")).sum() / support if support else math.nan,
            "episodes": float(episodes),
            "episode_recall": caught / episodes if episodes else math.nan,
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
