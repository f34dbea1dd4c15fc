"""The soil-moisture forecaster's pure parts: the physics baseline with the forecast, the model without one, the
held-out table. (The held-out judgement itself runs on simulated seasons: tests/seasons, ``smartfarm train``.)"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from xgboost import XGBRegressor

from ml.features import FEATURES
from ml.forecast import (
    BLIND_FEATURES,
    FORECAST_FEATURES,
    XGB_PARAMS,
    Forecaster,
    forecast_report,
    physics,
    physics_forecast,
)
from ml.rainahead import effective_rain_mm
from smartfarm.layout import SensorKind
from tests.unit.ml.builders import context, series, weather_forecast


def _rows(**columns: list[float]) -> pd.DataFrame:
    base = {"sm": 20.0, "field_capacity_pct": 25.0, "kc": 1.0, "ks": 1.0, "root_depth_m": 0.5, "et0_last_day": 5.0}
    n = len(next(iter(columns.values())))
    return pd.DataFrame({**{k: [v] * n for k, v in base.items()}, **columns})


def test_physics_with_the_forecast_dries_by_its_et0_and_wets_by_its_effective_rain() -> None:
    rows = _rows(
        forecast_et0_24h=[3.0, 3.0, 3.0, math.nan],
        forecast_rain_24h=[0.0, 10.0, 60.0, math.nan],
    )
    out = physics_forecast(rows, 24)
    assert out[0] == pytest.approx(20.0 - 3.0 / 5), "the forecast's 3 mm of ET0, not the last day's 5"
    assert out[1] == pytest.approx(20.0 + (float(effective_rain_mm(10.0, 3.0)) - 3.0) / 5)
    assert out[2] == 25.0, "no wetter than field capacity"
    assert out[3] == pytest.approx(physics(rows, 24)[3]), "no forecast: the dry balance"


def test_physics_with_the_forecast_over_6_hours_takes_the_6_hours_et0() -> None:
    rows = _rows(forecast_et0_6h=[1.5], forecast_rain_6h=[0.0], forecast_et0_24h=[4.0])
    assert physics_forecast(rows, 6)[0] == pytest.approx(20.0 - 1.5 / 5)


def _table(n: int, seed: int) -> pd.DataFrame:
    """Rows whose soil gains a tenth of the forecast's 6 h rain: only a model told of the rain can know."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({name: rng.normal(size=n) for name in FEATURES})
    table["sm"] = 20.0
    table["forecast_rain_6h"] = rng.choice([0.0, 10.0], size=n)
    table["change_6h"] = table["forecast_rain_6h"] / 10 - 0.2
    table["sm_in_6h"] = table["sm"] + table["change_6h"]
    table["irrigated_6h"] = False
    table["rained_6h"] = table["forecast_rain_6h"] > 0
    return table


@pytest.fixture(scope="module")
def forecaster() -> Forecaster:
    """``Forecaster.fit``'s two models, on fewer trees to stay fast (the seasons lane fits the real ones)."""
    table = _table(200, 1)

    def fitted(features: tuple[str, ...]) -> XGBRegressor:
        fast = {"n_estimators": 40, "learning_rate": 0.3, "n_jobs": 1}  # two threads spin on busy shared cores
        return XGBRegressor(**{**XGB_PARAMS, **fast}, random_state=0).fit(table[list(features)], table["change_6h"])

    return Forecaster(models={6: fitted(FORECAST_FEATURES)}, blind={6: fitted(BLIND_FEATURES)})


def test_the_model_learns_the_rain_it_is_told_of_and_the_blind_one_serves_without_a_forecast(
    forecaster: Forecaster,
) -> None:
    rows = _table(4, 2).assign(forecast_rain_6h=[0.0, 10.0, math.nan, math.nan])
    predicted = forecaster.predict(rows, 6)
    assert predicted[0] == pytest.approx(19.8, abs=0.1) and predicted[1] == pytest.approx(20.8, abs=0.1)
    blind = forecaster.predict_blind(rows, 6)
    assert predicted[2:] == pytest.approx(blind[2:]), "hours without a forecast get the blind model's answer"
    assert abs(blind[1] - blind[0]) < 0.3, "the blind model cannot tell the rainy hour's 1 % from the dry one's"


def test_a_context_is_forecast_with_its_weather_forecast_or_without_one(forecaster: Forecaster) -> None:
    soil = series(SensorKind.SOIL_MOISTURE, [20.0] * 30)
    dry = forecaster.forecast(context(aggregates=soil, forecast=weather_forecast()))
    wet = forecaster.forecast(context(aggregates=soil, forecast=weather_forecast({3: 10.0})))
    assert wet[6] - dry[6] == pytest.approx(1.0, abs=0.15)
    assert set(forecaster.forecast(context(aggregates=soil))) == {6}


def test_the_held_out_report_has_a_row_per_guess_and_columns_per_subset(forecaster: Forecaster) -> None:
    metrics = forecaster.evaluate(_table(200, 3))
    assert metrics["skill_6h"] > metrics["skill_model_no_forecast_6h"]
    assert {"rmse_model_rainy_6h", "rmse_physics_forecast_dry_6h", "skill_vs_physics_forecast_6h"} <= set(metrics)
    lines = forecast_report(metrics)
    assert lines[0].startswith("6 h ahead on held-out seasons (200 all, ")
    assert [line.split("  ")[1] for line in lines[3:]] == [
        "persistence",
        "FAO-56 balance, dry",
        "FAO-56 balance, forecast",
        "XGBoost, no forecast",
        "XGBoost, forecast",
    ]
    model = lines[-1].split()
    assert float(model[2]) == pytest.approx(metrics["rmse_model_6h"], abs=5e-4)
    assert float(model[3]) == pytest.approx(metrics["skill_6h"], abs=5e-4)
