"""``smartfarm train``: simulate training and held-out seasons, fit the models, log and register them in MLflow.

The simulator (``edge.season``) records each season with its ground truth; ``ml.dataset`` and
``ml.faultdetect`` turn it into tables; ``ml.training`` fits, judges on the held-out seasons and registers. Seeds
of the held-out seasons never overlap the training ones.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cli.console import add_settings_options, say, settings_from
from edge.faults import FaultRates
from edge.forecast import ERROR_MODELS
from edge.season import SeasonRecipe, farmer_valves, run_season, season_forecasts
from ml.dataset import SeasonData, forecast_table
from ml.faultdetect import sensor_hours_table
from ml.faulthistory import balance_inputs
from ml.settings import ModelSettings
from smartfarm.errors import ConfigError
from smartfarm.layout import Layout, load_layout
from smartfarm.settings import LayoutSettings

if TYPE_CHECKING:
    from ml.registry import ModelVersionInfo

HOLDOUT_SEED_OFFSET = 10_000
"""Held-out seasons are seeded from here on, far from any training seed."""
SEASONS = 6
"""Training seasons by default (``smartfarm train --seasons``, and ``smartfarm up`` on an empty registry)."""
HOLDOUT = 2
"""Held-out seasons by default."""


@dataclass(frozen=True)
class Plan:
    """Which seasons to simulate: training and held-out recipes."""

    train: tuple[SeasonRecipe, ...]
    holdout: tuple[SeasonRecipe, ...]


def plan(seasons: int, holdout: int, days: int, seed: int, start: datetime, interval_s: float) -> Plan:
    """Training seasons seeded ``seed``.., held-out ones ``seed + 10000``..; each starts a week after the previous
    one (so their weather and crop stages differ) with the simulator's realistic fault rates."""
    if seasons < 1 or holdout < 1:
        raise ConfigError("training needs at least one training season and one held-out season (--seasons, --holdout)")
    if days < 10:
        raise ConfigError("a season needs at least 10 days (--days) for the 24 h forecast and the days it learns from")

    def recipe(i: int, base: int) -> SeasonRecipe:
        return SeasonRecipe(
            seed=base + i, start=start + timedelta(days=7 * i), days=days, interval_s=interval_s, rates=FaultRates()
        )

    return Plan(
        train=tuple(recipe(i, seed) for i in range(seasons)),
        holdout=tuple(recipe(i, seed + HOLDOUT_SEED_OFFSET) for i in range(holdout)),
    )


def record(
    layout: Layout, recipes: Sequence[SeasonRecipe], on_done: Callable[[str], None], forecasts: str = "simulated"
) -> list[SeasonData]:
    """Simulate each recipe, issue the simulated provider's weather forecasts over it (``forecasts`` names the
    error model of ``edge.forecast.ERROR_MODELS``) and build its training tables."""
    out: list[SeasonData] = []
    for recipe in recipes:
        t = time.perf_counter()
        season = run_season(layout, recipe, on_hour=farmer_valves(recipe.seed))
        issued = season_forecasts(season.weather, recipe, ERROR_MODELS[forecasts])
        forecast = forecast_table(season.layout, season.readings, season.truth, recipe.seed, forecasts=issued)
        data = SeasonData(
            recipe=recipe.describe() | {"forecasts": forecasts},
            forecast=forecast,
            sensors=sensor_hours_table(season.readings, balance_inputs(forecast)).assign(season=recipe.seed),
        )
        out.append(data)
        on_done(
            f"  season seed {recipe.seed} from {recipe.start:%Y-%m-%d}, {recipe.days} days: "
            f"{len(season.readings):,} readings, {len(season.faults):,} faults, "
            f"{sum(map(len, issued.values()))} weather forecasts, {time.perf_counter() - t:.1f} s"
        )
    return out


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = commands.add_parser(
        "train",
        help="simulate seasons, train the forecaster and the fault detector, register them in MLflow",
        description="Simulates training seasons and held-out seasons (other seeds) of the farm layout with their "
        "ground truth, fits the XGBoost soil-moisture forecaster and the sensor-fault detector, judges both against "
        "their baselines on the held-out seasons, logs the run (parameters, data hash, metrics, library versions) "
        "to MLflow's local store and registers each model as a new version, promoted only when it beats its "
        "baseline. The workers load the promoted versions.",
    )
    train.add_argument("--seasons", type=int, default=SEASONS, help=f"training seasons (default {SEASONS})")
    train.add_argument(
        "--holdout", type=int, default=HOLDOUT, help=f"held-out seasons, never seen in training (default {HOLDOUT})"
    )
    train.add_argument("--days", type=int, default=90, help="days per season (default 90)")
    train.add_argument("--seed", type=int, default=1, help="seed of the first training season (default 1)")
    train.add_argument(
        "--start", default="2025-04-01", help="first season's start, a UTC date (default 2025-04-01, spring)"
    )
    train.add_argument("--interval-s", type=float, default=900.0, help="seconds between readings (default 900)")
    train.add_argument(
        "--forecasts",
        choices=sorted(ERROR_MODELS),
        default="simulated",
        help="the weather forecasts the seasons' hours are shown: the simulated provider's, with a real one's "
        "errors, or perfect ones (how much of the forecaster's error is the forecast's) (default simulated)",
    )
    add_settings_options(train, LayoutSettings, "layout")
    add_settings_options(train, ModelSettings, "store")
    train.set_defaults(run=run_train)


def _start(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError as exc:
        raise ConfigError(f"--start {text!r} is not a date; give one like 2025-04-01") from exc


def run_train(args: argparse.Namespace) -> int:
    layout = load_layout(settings_from(LayoutSettings, args).layout)
    settings = settings_from(ModelSettings, args)
    chosen = plan(args.seasons, args.holdout, args.days, args.seed, _start(args.start), args.interval_s)
    # MLflow and XGBoost take seconds to import: only this command pays for them.
    from ml.field import public_skill
    from ml.registry import Registry
    from ml.training import train

    started = time.perf_counter()
    say(f"train: simulating {len(chosen.train)} training and {len(chosen.holdout)} held-out seasons")
    train_data = record(layout, chosen.train, say, args.forecasts)
    holdout_data = record(layout, chosen.holdout, say, args.forecasts)
    data_s = time.perf_counter() - started
    say(f"train: fitting and judging on the held-out seasons; MLflow store {settings.store}")
    fields = public_skill()
    report = train(train_data, holdout_data, Registry(settings), seed=args.seed, fields=fields)
    for line in summary(report.metrics, report.versions, report.seconds, data_s):
        say(line)
    for season, row in fields.iterrows():
        say(
            f"train: root-zone filter on field season {season}: prior RMSE {row['prior_rmse']:.1f} mm (open loop "
            f"{row['open_loop_rmse']:.1f}), posterior {row['posterior_rmse']:.1f} mm, drift "
            f"{row['drift_mm_day']:+.2f} mm/day"
        )
    for name, lines in report.tables.items():
        say(f"train: {name} on the held-out seasons")
        for line in lines:
            say(line)
    say(f"train: data sha256 {report.data_sha256}")
    say(f"train: every run: MLFLOW_DISABLE_TELEMETRY=true mlflow ui --backend-store-uri {settings.tracking_uri}")
    return 0


def summary(
    metrics: Mapping[str, Mapping[str, float]],
    versions: Mapping[str, ModelVersionInfo],
    seconds: Mapping[str, float],
    data_s: float,
) -> list[str]:
    """The report's lines: per model its held-out figures, version and whether it was promoted."""
    lines = []
    for name, figures in metrics.items():
        info = versions.get(name)
        promoted = info is not None and info.promoted
        version = info.version if info is not None else "?"
        lines.append(
            f"train: {name} version {version} ({'promoted' if promoted else 'NOT promoted: below its baseline'})"
        )
        lines += [f"    {key:<34} {value:10.4f}" for key, value in sorted(figures.items())]
    lines.append(
        f"train: {data_s:.1f} s simulating and building tables, {seconds.get('total', 0):.1f} s fitting and judging"
    )
    return lines
