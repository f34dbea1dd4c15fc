"""The soil-moisture forecaster: XGBoost, 6 h and 24 h ahead, judged against persistence and the FAO-56 balance.

It learns the change of the zone's mean soil moisture (volumetric %) over each horizon from ``ml.features``'s row
of the hour, on hours when the valves stayed shut in the horizon: the advisor asks "where is this zone heading if
we do nothing", and irrigation is its own decision. Rain still to come is what the soil's own course cannot tell,
so the row carries the weather forecast's rain, its chance and reference ET ahead; each horizon has a second
model without them (``Forecaster.blind``), trained on the same rows, which serves hours whose context has no
forecast (the stream before a provider publishes) and is what the forecast is judged to add.

Baselines on the same rows:

- persistence: the soil moisture stays what it is now;
- physics: the FAO-56 root-zone balance run forward, dry: the crop takes Kc x Ks x ET0 of the last closed day
  (pro rata of the horizon) from the root zone, water above field capacity having drained (FAO-56 ch. 8 assumes
  that within the day);
- physics with the forecast (``physics_forecast``): the same balance with the forecast's reference ET over the
  horizon and its effective rain (``ml.rainahead``) refilling up to field capacity.

Skill = 1 - RMSE / RMSE_persistence: above 0 better than doing nothing clever. Each is reported on every horizon,
on the horizons it rained in and on those it did not (``forecast_report`` prints the tables).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from xgboost import XGBRegressor

from ml.context import ZoneContext
from ml.dataset import HORIZONS_H
from ml.features import ASSUMED_ET0_MM, FEATURES, WEATHER_FORECAST_FEATURES, zone_features
from ml.rainahead import effective_rain_mm
from ml.waterbalance import dry_theta_pct

XGB_PARAMS: Mapping[str, object] = {
    "objective": "reg:absoluteerror",
    "n_estimators": 300,
    "max_depth": 6,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5,
    "tree_method": "hist",
    "n_jobs": 1,
}
"""A few hundred trees at a gentle rate, on absolute error: rain no feature foresees moves the soil in jumps, and a
squared loss chases them (on held-out spring seasons it lost to persistence at 6 h: skill -0.04 against +0.11);
the absolute loss learns the typical course of the soil. With the weather forecast's rain as a feature the loss
matters little (squared error and pseudo-Huber within 0.03 of it at both horizons). Held-out seasons judge.

One thread: on two cores shared with other work (the stream, the test suite's workers), OpenMP's second thread
waits more than it works; the 24 h model on six 90-day seasons fitted in 6 s with one thread and 27-45 s with two
on a busy machine, and a small fit in 0.05 s against 6.7 s."""


LEFT_OUT = frozenset({"taw_mm", "raw_mm", "depletion_mm", "root_depth_m", "days_since_planting"})
"""Features the forecaster does without: millimetres over the crop's root depth and the crop's age say which crop
a zone grew more than how its soil dries (the probes watch the same soil whatever the roots), and a few seasons
are too few to learn that apart; trees used them to tell training seasons apart and missed on new ones (held-out
24 h skill -0.22 with them, against +0.08 without, on three 40-day training seasons). The shares stay."""
FORECAST_FEATURES: tuple[str, ...] = tuple(f for f in FEATURES if f not in LEFT_OUT)
BLIND_FEATURES: tuple[str, ...] = tuple(f for f in FORECAST_FEATURES if f not in WEATHER_FORECAST_FEATURES)
"""The forecaster's features less the weather forecast's: what ``Forecaster.blind`` learns from."""


def trainable(table: pd.DataFrame, horizon: int) -> pd.Series:
    """Rows that can teach or judge the ``horizon``: soil moisture now and then, and no irrigation in between."""
    return table["sm"].notna() & table[f"sm_in_{horizon}h"].notna() & ~table[f"irrigated_{horizon}h"].astype(bool)


def physics(rows: pd.DataFrame, horizon: int) -> np.ndarray:
    """Soil moisture (%) ``horizon`` hours on by the FAO-56 balance alone, dry: min(now, FC) less Kc x Ks x ET0 x
    h/24 spread over the root depth."""
    et0 = rows["et0_last_day"].fillna(ASSUMED_ET0_MM)
    ks = rows["ks"].fillna(1.0)
    return np.asarray(
        dry_theta_pct(rows["sm"], rows["field_capacity_pct"], rows["kc"], ks, et0, rows["root_depth_m"], horizon)
    )


def physics_forecast(rows: pd.DataFrame, horizon: int) -> np.ndarray:
    """Soil moisture (%) ``horizon`` hours on by the FAO-56 balance run with the weather forecast: min(now, FC)
    less Kc x Ks x the forecast's ET0 over the horizon, plus its effective rain (``ml.rainahead``), spread over
    the root depth and no wetter than field capacity (the rest drains). Rows without a forecast get ``physics``."""
    et0 = rows[f"forecast_et0_{horizon}h"]
    rain = rows[f"forecast_rain_{horizon}h"]
    et0_day = rows["forecast_et0_24h"].fillna(rows["et0_last_day"]).fillna(ASSUMED_ET0_MM)
    ks, fc, zr = rows["ks"].fillna(1.0), rows["field_capacity_pct"], rows["root_depth_m"]
    # The balance's rule takes a day's ET0 and uses the horizon's share of it: the horizon's forecast, per day.
    dry = dry_theta_pct(rows["sm"], fc, rows["kc"], ks, et0 * 24 / horizon, zr, horizon)
    wet = np.minimum(dry + effective_rain_mm(rain.fillna(0.0), et0_day) / (10 * zr), fc)
    return np.where(et0.notna() & rain.notna(), wet, physics(rows, horizon))


def _rmse(error: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(error)))) if len(error) else math.nan


def _skill(rmse: float, baseline: float) -> float:
    return 1 - rmse / baseline if baseline > 0 else math.nan


def _regressor(seed: int) -> XGBRegressor:
    return XGBRegressor(**XGB_PARAMS, random_state=seed)


@dataclass
class Forecaster:
    """Per horizon an XGBoost regressor of the change of soil moisture (% points) over ``features``, and one over
    the same features less the weather forecast's (``blind``) for hours without a forecast."""

    models: dict[int, XGBRegressor]
    features: tuple[str, ...] = FORECAST_FEATURES
    name: str = "soil-moisture-forecaster"
    blind: dict[int, XGBRegressor] | None = None
    """None in versions trained before the weather forecast was a feature (their ``models`` serve every hour)."""

    @classmethod
    def fit(cls, table: pd.DataFrame, horizons: Sequence[int] = HORIZONS_H, seed: int = 0) -> Forecaster:
        models, blind = {}, {}
        for h in horizons:
            rows = table[trainable(table, h)]
            models[h] = _regressor(seed).fit(rows[list(FORECAST_FEATURES)], rows[f"change_{h}h"])
            blind[h] = _regressor(seed).fit(rows[list(BLIND_FEATURES)], rows[f"change_{h}h"])
        return cls(models=models, blind=blind)

    def _forecast_known(self, rows: pd.DataFrame, horizon: int) -> np.ndarray:
        """Which rows have the weather forecast over the horizon (all, for a version without a blind model)."""
        column = f"forecast_rain_{horizon}h"
        if self.blind is None or column not in self.features:
            return np.ones(len(rows), dtype=bool)
        return np.asarray(rows[column].notna())

    def predict(self, rows: pd.DataFrame, horizon: int) -> np.ndarray:
        """Soil moisture (%) ``horizon`` hours after each row's hour: by the model with the weather forecast where
        the row has one, by the blind model where not."""
        known = self._forecast_known(rows, horizon)
        change = np.zeros(len(rows))
        if known.any():
            change[known] = self.models[horizon].predict(rows.loc[known, list(self.features)])
        if not known.all():
            change[~known] = self.predict_blind(rows.loc[~known], horizon) - np.asarray(rows.loc[~known, "sm"])
        return np.asarray(rows["sm"]) + change

    def predict_blind(self, rows: pd.DataFrame, horizon: int) -> np.ndarray:
        """Soil moisture (%) ``horizon`` hours on as if no weather forecast were known."""
        if self.blind is None:
            return np.asarray(rows["sm"]) + self.models[horizon].predict(rows[list(self.features)])
        features = [f for f in self.features if f not in WEATHER_FORECAST_FEATURES]
        return np.asarray(rows["sm"]) + self.blind[horizon].predict(rows[features])

    def forecast(self, context: ZoneContext) -> dict[int, float]:
        """Soil moisture (%) of the zone at each horizon after ``context.window_end``; empty without a reading
        in the hour that just closed."""
        row = zone_features(context)
        if math.isnan(row["sm"]):
            return {}
        frame = pd.DataFrame([row], columns=list(FEATURES))
        return {h: float(self.predict(frame, h)[0]) for h in self.models}

    def evaluate(self, table: pd.DataFrame) -> dict[str, float]:
        """Per horizon on ``table`` (held-out seasons), for the model, the model without the weather forecast and
        the baselines (``GUESSES``): RMSE (% points) on every horizon, on the rainy and on the rain-free ones, MAE
        on every one, skill against persistence on each, and the rows counted."""
        out: dict[str, float] = {}
        for h in self.models:
            rows = table[trainable(table, h)]
            actual = rows[f"sm_in_{h}h"].to_numpy()
            guesses = {
                "model": self.predict(rows, h),
                "model_no_forecast": self.predict_blind(rows, h),
                "persistence": rows["sm"].to_numpy(),
                "physics": physics(rows, h),
                "physics_forecast": physics_forecast(rows, h),
            }
            subsets = {"": np.ones(len(rows), dtype=bool)}
            if f"rained_{h}h" in rows:
                rained = rows[f"rained_{h}h"].astype(bool).to_numpy()
                subsets |= {"_rainy": rained, "_dry": ~rained}
            for tag, mask in subsets.items():
                out[f"rows{tag}_{h}h"] = float(mask.sum())
                baseline = _rmse(guesses["persistence"][mask] - actual[mask])
                for name, guess in guesses.items():
                    rmse = out[f"rmse_{name}{tag}_{h}h"] = _rmse(guess[mask] - actual[mask])
                    if name != "persistence":
                        out[f"skill{tag}_{h}h" if name == "model" else f"skill_{name}{tag}_{h}h"] = _skill(
                            rmse, baseline
                        )
            for name, guess in guesses.items():
                out[f"mae_{name}_{h}h"] = float(np.mean(np.abs(guess - actual))) if len(rows) else math.nan
            for physical in ("physics", "physics_forecast"):
                out[f"skill_vs_{physical}_{h}h"] = _skill(out[f"rmse_model_{h}h"], out[f"rmse_{physical}_{h}h"])
        return out

    def beats_baseline(self, metrics: Mapping[str, float]) -> bool:
        """Promotable when every horizon beats persistence and the FAO-56 balance, dry and with the forecast, on
        held-out seasons."""
        return all(
            metrics[f"skill_{h}h"] > 0
            and metrics[f"skill_vs_physics_{h}h"] > 0
            and metrics.get(f"skill_vs_physics_forecast_{h}h", 1.0) > 0
            for h in self.models
        )


GUESSES: tuple[tuple[str, str], ...] = (
    ("persistence", "persistence"),
    ("physics", "FAO-56 balance, dry"),
    ("physics_forecast", "FAO-56 balance, forecast"),
    ("model_no_forecast", "XGBoost, no forecast"),
    ("model", "XGBoost, forecast"),
)
"""What ``Forecaster.evaluate`` judges, by metric name and as the report names it."""


def forecast_report(metrics: Mapping[str, float]) -> list[str]:
    """``Forecaster.evaluate``'s figures as a table per horizon: RMSE and skill against persistence of each of
    ``GUESSES``, on every horizon, the rainy ones and the rain-free ones."""
    lines: list[str] = []
    subsets = (("", "all"), ("_rainy", "rainy"), ("_dry", "rain-free"))
    for h in HORIZONS_H:
        if f"rows_{h}h" not in metrics:
            continue
        counts = ", ".join(f"{metrics.get(f'rows{tag}_{h}h', math.nan):,.0f} {name}" for tag, name in subsets)
        lines.append(f"{h} h ahead on held-out seasons ({counts}); RMSE in % soil moisture, skill vs persistence")
        lines.append(f"  {'':26}" + "".join(f"{name:>16}" for _, name in subsets))
        lines.append(f"  {'':26}" + "     RMSE  skill" * len(subsets))
        for name, label in GUESSES:
            cells = ""
            for tag, _ in subsets:
                rmse = metrics.get(f"rmse_{name}{tag}_{h}h", math.nan)
                key = f"skill{tag}_{h}h" if name == "model" else f"skill_{name}{tag}_{h}h"
                skill = metrics.get(key, 0.0 if name == "persistence" else math.nan)
                cells += f"   {rmse:6.3f} {skill:6.3f}"
            lines.append(f"  {label:<26}{cells}")
    return lines
