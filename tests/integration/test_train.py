"""``smartfarm train`` end to end on MLflow's real local store, as ``smartfarm up`` runs it on an empty registry:
seasons simulated, models fitted, judged on held-out seasons, logged and registered; ``smartfarm models`` lists
them; ``smartfarm season`` closes the loop. The run's one training is the session's (``trained_models``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from cli.main import main
from ml.models import FAULT_DETECTOR, FORECASTER
from ml.registry import Registry
from ml.settings import ModelSettings


@pytest.fixture
def trained(trained_models: tuple[ModelSettings, str]) -> ModelSettings:
    return trained_models[0]


def test_an_empty_registry_is_trained_before_anything_is_served(trained_models: tuple[ModelSettings, str]) -> None:
    """``smartfarm up``'s models component on an empty registry: both models trained and registered, and what it
    reports names the promoted versions the workers will serve."""
    settings, summary = trained_models
    versions = {v.name: v for v in Registry(settings).versions()}
    assert set(versions) == {FORECASTER, FAULT_DETECTOR}
    for v in versions.values():
        assert (f"{v.name} v{v.version}" in summary) == v.promoted, summary
    assert any(v.promoted for v in versions.values()) or "FAO-56 baselines" in summary


def test_a_training_run_records_what_made_it_and_registers_both_models(trained: ModelSettings) -> None:
    registry = Registry(trained)
    versions = {v.name: v for v in registry.versions()}
    assert set(versions) == {FORECASTER, FAULT_DETECTOR}
    for info in versions.values():
        assert len(info.sha256) == 64 and info.metrics
        assert info.promoted == info.beats_baseline, "promoted exactly when it beats its baseline"
    run = MlflowClient(trained.tracking_uri).get_run(versions[FORECASTER].run_id)
    params = run.data.params
    assert len(params["data_sha256"]) == 64
    assert '"seed": 1,' in params["train_recipes"] and '"seed": 10001,' in params["holdout_recipes"]
    assert '"days": 10,' in params["train_recipes"]
    assert {"lib.xgboost", "lib.scikit-learn", "lib.mlflow", "lib.python"} <= set(params)
    metrics = run.data.metrics
    assert {f"{FORECASTER}.skill_24h", f"{FORECASTER}.rmse_persistence_24h", "train_s"} <= set(metrics)
    assert f"{FAULT_DETECTOR}.rules.spike.recall" in metrics
    # The root-zone filter's public field seasons ride along (ml.field.public_skill): metrics and a CSV.
    assert metrics["field_cotton2022p10-2_prior_rmse"] < 30
    assert {"field_E42FF2023_prior_rmse", "field_E42FF2023_drift_mm_day"} <= set(metrics)
    assert "field_seasons.csv" in {a.path for a in MlflowClient(trained.tracking_uri).list_artifacts(run.info.run_id)}


def test_models_lists_the_versions_and_the_promoted_one(
    trained: ModelSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "--store", str(trained.store)]) == 0
    out = capsys.readouterr().out
    assert FORECASTER in out and FAULT_DETECTOR in out


def test_the_closed_loop_season_prints_its_table_and_draws_a_plot_per_zone(
    trained: ModelSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "plots"
    code = main(
        ["season", "--days", "6", "--start", "2026-06-20", "--store", str(trained.store), "--out", str(out_dir)]
    )
    assert code == 0
    out = capsys.readouterr().out
    for policy in ("advisor", "calendar", "none"):
        assert f" {policy} " in out
    pngs = sorted(out_dir.glob("*.png"))
    assert len(pngs) == 4 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_bad_options_name_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--days", "3", "--store", str(tmp_path / "s")]) == 2
    assert "--days" in capsys.readouterr().err
    assert main(["season", "--start", "June", "--store", str(tmp_path / "s")]) == 2
    assert "2026-04-01" in capsys.readouterr().err
