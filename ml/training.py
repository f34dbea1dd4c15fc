"""Training: recorded seasons in, models fitted, judged on held-out seasons, logged and registered in MLflow.

Data loading (``ml.dataset``, fed by whoever recorded the seasons), training (here) and prediction
(``ml.models``) stay apart. Held-out seasons are other seeds than the training ones: never seen in training, not
even to choose a threshold. Every run logs the recipes of both sets, the hash of the tables, the metrics of each
model and its baselines, and registers each model as a new version, promoted only when it beats its baseline.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from ml.dataset import SeasonData, table_hash
from ml.faultdetect import FaultDetector, evaluate
from ml.field import FIELD_TABLE, field_metrics
from ml.forecast import Forecaster, forecast_report
from ml.models import FAULT_DETECTOR, FORECASTER
from ml.registry import ModelVersionInfo, Registry

EXPERIMENT = "smartfarm"


@dataclass
class TrainingReport:
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    """By model name."""
    versions: dict[str, ModelVersionInfo] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    """Fitting time by model, and "total"."""
    data_sha256: str = ""
    rows: dict[str, int] = field(default_factory=dict)
    fields: pd.DataFrame | None = None
    """``ml.field.public_skill``'s table, when training was given it."""
    tables: dict[str, list[str]] = field(default_factory=dict)
    """By model name: its held-out figures as a table, as stored among the run's artifacts (``TABLE_FILE``)."""


TABLE_FILE = "{name}-heldout.txt"
"""The run's artifact with a model's held-out table."""


def _concat(frames: Sequence[pd.DataFrame], keep_index: bool = True) -> pd.DataFrame:
    """The seasons' tables as one; sensor-hour tables are renumbered (the detector selects rows by label)."""
    return pd.concat(frames, ignore_index=not keep_index) if frames else pd.DataFrame()


def data_hash(train: Sequence[SeasonData], holdout: Sequence[SeasonData]) -> str:
    """One SHA-256 over every table of both sets, in order, with their recipes."""
    parts = [json.dumps([s.recipe for s in train], sort_keys=True), json.dumps([s.recipe for s in holdout])]
    parts += [table_hash(s.forecast) + table_hash(s.sensors) for s in (*train, *holdout)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def train(
    train_seasons: Sequence[SeasonData],
    holdout: Sequence[SeasonData],
    registry: Registry,
    seed: int = 0,
    fields: pd.DataFrame | None = None,
) -> TrainingReport:
    """Fit the forecaster and the fault detector on ``train_seasons``, judge them on ``holdout``, log and register.
    ``fields`` (``ml.field.public_skill``: the root-zone filter on the public field seasons) is logged with the
    run, as ``field_<season>_<figure>`` metrics and a CSV artifact."""
    report = TrainingReport(data_sha256=data_hash(train_seasons, holdout), fields=fields)
    started = time.perf_counter()
    forecast_train = _concat([s.forecast for s in train_seasons])
    forecast_test = _concat([s.forecast for s in holdout])
    sensors_train = _concat([s.sensors for s in train_seasons], keep_index=False)
    sensors_test = _concat([s.sensors for s in holdout], keep_index=False)
    report.rows = {
        "forecast_train": len(forecast_train),
        "forecast_holdout": len(forecast_test),
        "sensor_hours_train": len(sensors_train),
        "sensor_hours_holdout": len(sensors_test),
    }
    params = {
        "train_recipes": json.dumps([s.recipe for s in train_seasons], sort_keys=True),
        "holdout_recipes": json.dumps([s.recipe for s in holdout], sort_keys=True),
        "seed": seed,
        **{f"rows_{k}": v for k, v in report.rows.items()},
    }
    with registry.run(EXPERIMENT, params, data_sha256=report.data_sha256) as run:
        t = time.perf_counter()
        forecaster = Forecaster.fit(forecast_train, seed=seed)
        report.seconds[FORECASTER] = time.perf_counter() - t
        metrics = forecaster.evaluate(forecast_test) | {"fit_s": report.seconds[FORECASTER]}
        report.metrics[FORECASTER] = metrics
        report.tables[FORECASTER] = forecast_report(metrics)
        run.log_text("\n".join(report.tables[FORECASTER]) + "\n", TABLE_FILE.format(name=FORECASTER))
        report.versions[FORECASTER] = run.register(
            FORECASTER,
            forecaster,
            metrics,
            forecaster.beats_baseline(metrics),
            "XGBoost soil-moisture change 6 h and 24 h ahead with the weather forecast (and a model without it for "
            "hours without one); baselines: persistence, FAO-56 balance forward dry and with the forecast",
        )
        t = time.perf_counter()
        detector = FaultDetector.fit(sensors_train, seed=seed)
        report.seconds[FAULT_DETECTOR] = time.perf_counter() - t
        scores = evaluate(detector, sensors_test)
        fault_metrics = detector.metrics(scores) | {"fit_s": report.seconds[FAULT_DETECTOR]}
        report.metrics[FAULT_DETECTOR] = fault_metrics
        report.versions[FAULT_DETECTOR] = run.register(
            FAULT_DETECTOR,
            detector,
            fault_metrics,
            detector.beats_baseline(scores),
            "Range, spike, stuck (noise floor), drift (peers' usual offset; water balance, air) and dropout rules;"
            " an isolation forest per sensor kind where it earned its alarms",
        )
        if fields is not None:
            run.log_metrics(field_metrics(fields))
            run.log_table(FIELD_TABLE, fields)
        report.seconds["total"] = time.perf_counter() - started
        run.log_metrics({"train_s": report.seconds["total"]})
    return report
