"""The soil-moisture forecaster on held-out seasons: better than persistence and than the FAO-56 balance alone, and
better with the weather forecast than without."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import joblib
import numpy as np
import pandas as pd
import pytest

from edge.season import SeasonRecipe, farmer_valves, run_season, season_forecasts
from ml.dataset import forecast_table
from ml.forecast import Forecaster, physics, trainable
from smartfarm.layout import load_layout

START = datetime(2025, 6, 1, tzinfo=UTC)


def _table(seed: int, offset_days: int) -> pd.DataFrame:
    recipe = SeasonRecipe(seed=seed, start=START + timedelta(days=offset_days), days=40)
    season = run_season(load_layout(), recipe, farmer_valves(seed))
    forecasts = season_forecasts(season.weather, recipe)
    return forecast_table(season.layout, season.readings, season.truth, season=seed, forecasts=forecasts)


def _seasons() -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.concat([_table(seed, 7 * i) for i, seed in enumerate((11, 12, 13))])
    return train, _table(9001, 10)


@pytest.fixture(scope="module")
def seasons(run_cache) -> tuple[pd.DataFrame, pd.DataFrame]:  # type: ignore[no-untyped-def]
    return run_cache("forecast-seasons", _seasons)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def forecaster(run_cache, seasons: tuple[pd.DataFrame, pd.DataFrame]) -> Forecaster:  # type: ignore[no-untyped-def]
    return run_cache("forecaster", lambda: Forecaster.fit(seasons[0], seed=0))  # type: ignore[no-any-return]


def test_positive_skill_against_persistence_and_physics_on_a_held_out_season(
    forecaster: Forecaster, seasons: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    metrics = forecaster.evaluate(seasons[1])
    assert metrics["rows_24h"] > 1000, "the held-out season has enough dry-horizon hours to judge"
    assert metrics["skill_24h"] > 0.03, metrics
    assert metrics["skill_6h"] > 0.05, metrics
    assert metrics["skill_dry_24h"] > 0.25, "on horizons without rain the soil's course is the model's to know"
    assert metrics["skill_vs_physics_24h"] > 0.0, metrics
    assert metrics["mae_model_24h"] < metrics["mae_persistence_24h"]
    assert forecaster.beats_baseline(metrics)


def test_the_weather_forecast_is_worth_having_most_on_rainy_horizons(
    forecaster: Forecaster, seasons: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    metrics = forecaster.evaluate(seasons[1])
    for h in (6, 24):
        assert metrics[f"skill_{h}h"] > metrics[f"skill_model_no_forecast_{h}h"] + 0.05, metrics
        assert metrics[f"skill_rainy_{h}h"] > metrics[f"skill_model_no_forecast_rainy_{h}h"] + 0.1, metrics


def test_held_out_seasons_share_no_seed_with_training(seasons: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    assert not set(seasons[0]["season"]) & set(seasons[1]["season"])


def test_rows_with_irrigation_in_the_horizon_neither_teach_nor_judge(
    seasons: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train = seasons[0]
    assert train["irrigated_24h"].any(), "the farmer's valves ran"
    assert not trainable(train, 24)[train["irrigated_24h"]].any()


def test_physics_dries_the_root_zone_by_kc_et0_and_drains_above_field_capacity() -> None:
    rows = pd.DataFrame(
        {
            "sm": [30.0, 20.0],
            "field_capacity_pct": [25.0, 25.0],
            "et0_last_day": [5.0, np.nan],
            "ks": [1.0, 0.5],
            "kc": [1.0, 1.0],
            "root_depth_m": [0.5, 0.5],
        }
    )
    out = physics(rows, 24)
    assert out[0] == pytest.approx(25.0 - 5.0 / (10 * 0.5)), "drained to field capacity, then 5 mm over 0.5 m"
    assert out[1] == pytest.approx(20.0 - 0.5 * 5.0 / 5), "assumed ET0 of 5 mm, halved by stress"


def test_a_saved_forecaster_predicts_the_same(
    forecaster: Forecaster, seasons: tuple[pd.DataFrame, pd.DataFrame], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f.joblib"
    joblib.dump(forecaster, path)
    again = joblib.load(path)
    rows = seasons[1][trainable(seasons[1], 6)].head(50)
    assert np.array_equal(again.predict(rows, 6), forecaster.predict(rows, 6))
