"""The model registry on MLflow's real local store (sqlite in a temporary folder; no server, no other service).

MLflow creates and migrates a new sqlite store in seconds, so the module migrates one blank store and every test
starts from a copy of it: each test has a store of its own at the cost of a file copy.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import pickle
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.ensemble import IsolationForest
from xgboost import XGBRegressor

from cli import models as models_cli
from ml.registry import MODEL_FILE, Follower, ModelVersionInfo, Registry, library_versions
from ml.settings import ModelSettings
from smartfarm.errors import ModelIntegrityError, RegistryError

DATA_SHA256 = hashlib.sha256(b"seasons 2019-2024").hexdigest()
FEATURES = np.random.default_rng(7).normal(size=(64, 3))


@dataclass
class IrrigationModel:
    """A model object of the trainer's own kind: a class of ours around an XGBoost regressor."""

    regressor: XGBRegressor
    features: tuple[str, ...]

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.regressor.predict(rows))


def forest(seed: int = 0) -> IsolationForest:
    return IsolationForest(n_estimators=8, random_state=seed).fit(FEATURES)


@pytest.fixture(scope="module")
def blank_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty store that MLflow has created and migrated, to copy."""
    settings = ModelSettings(store=tmp_path_factory.mktemp("blank") / "mlflow")
    assert Registry(settings).versions() == []
    return settings.database


@pytest.fixture
def settings(blank_store: Path, tmp_path: Path) -> ModelSettings:
    store = tmp_path / "mlflow"
    store.mkdir()
    shutil.copy(blank_store, store / "mlflow.db")
    return ModelSettings(store=store, poll_s=30.0)


@pytest.fixture
def registry(settings: ModelSettings) -> Registry:
    return Registry(settings)


def register(registry: Registry, name: str, obj: object, beats_baseline: bool, mae: float) -> ModelVersionInfo:
    with registry.run("irrigation", {"seasons": "2019-2023"}, data_sha256=DATA_SHA256) as run:
        return run.register(name, obj, {"mae": mae}, beats_baseline, description=f"mae {mae}")


def stored_file(info: ModelVersionInfo) -> Path:
    return Path(unquote(urlparse(info.source).path)) / MODEL_FILE


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_registered_model_of_our_own_class_loads_back_and_predicts_the_same(registry: Registry) -> None:
    targets = FEATURES @ np.array([0.5, -1.0, 2.0])
    model = IrrigationModel(XGBRegressor(n_estimators=4, max_depth=2).fit(FEATURES, targets), ("a", "b", "c"))
    info = register(registry, "irrigation", model, beats_baseline=True, mae=0.3)

    loaded = registry.load(registry.version("irrigation", info.version))

    assert isinstance(loaded, IrrigationModel)
    assert loaded.features == ("a", "b", "c")
    np.testing.assert_array_equal(loaded.predict(FEATURES), model.predict(FEATURES))
    assert info.sha256 == hashlib.sha256(stored_file(info).read_bytes()).hexdigest()


def test_only_a_model_that_beats_the_baseline_is_promoted_and_the_run_records_what_made_it(
    registry: Registry, settings: ModelSettings
) -> None:
    with registry.run(
        "anomaly", {"n_estimators": 8, "contamination": "auto"}, {"trigger": "test"}, data_sha256=DATA_SHA256
    ) as run:
        run.log_metrics({"baseline.f1": 0.61, "model.f1": 0.74})
        first = run.register("anomaly", forest(1), {"f1": 0.74, "baseline_f1": 0.61}, True, "beats the rules")
        second = run.register("anomaly", forest(2), {"f1": 0.55, "baseline_f1": 0.61}, False, "worse")

    assert (first.version, first.promoted, second.version, second.promoted) == (1, True, 2, False)
    listed = registry.versions()
    assert [(v.name, v.version, v.promoted, v.beats_baseline) for v in listed] == [
        ("anomaly", 1, True, True),
        ("anomaly", 2, False, False),
    ]
    assert listed[1].metrics == {"f1": 0.55, "baseline_f1": 0.61}
    assert listed[0].sha256 != listed[1].sha256
    assert stored_file(listed[0]) != stored_file(listed[1]), "two models of one run must not share a file"
    assert registry.champion("anomaly") == listed[0]
    assert registry.champion("never-registered") is None

    recorded = MlflowClient(tracking_uri=settings.tracking_uri).get_run(run.run_id)
    assert recorded.info.status == "FINISHED"
    assert recorded.data.params["data_sha256"] == DATA_SHA256
    assert recorded.data.tags["data_sha256"] == DATA_SHA256
    assert recorded.data.tags["trigger"] == "test"
    assert recorded.data.params["n_estimators"] == "8"
    for key in ("lib.python", "lib.numpy", "lib.pandas", "lib.scikit-learn", "lib.xgboost", "lib.joblib"):
        assert recorded.data.params[key] == library_versions()[key] != "absent"
    assert recorded.data.params["lib.mlflow"].startswith("3.")
    assert "lib.smartfarm" in recorded.data.params
    assert recorded.data.metrics == {
        "baseline.f1": 0.61,
        "model.f1": 0.74,
        "anomaly.f1": 0.55,  # the latest value of the key: the second model's
        "anomaly.baseline_f1": 0.61,
    }


def test_a_failed_training_run_is_marked_failed(registry: Registry, settings: ModelSettings) -> None:
    with pytest.raises(ZeroDivisionError), registry.run("anomaly", {}, data_sha256=DATA_SHA256) as run:
        _ = 1 / 0
    assert MlflowClient(tracking_uri=settings.tracking_uri).get_run(run.run_id).info.status == "FAILED"


def test_a_manual_promotion_moves_the_alias(registry: Registry) -> None:
    register(registry, "anomaly", forest(1), beats_baseline=True, mae=0.3)
    register(registry, "anomaly", forest(2), beats_baseline=False, mae=0.4)

    assert registry.promote("anomaly", 2).promoted
    assert [v.promoted for v in registry.versions("anomaly")] == [False, True]
    with pytest.raises(RegistryError, match="anomaly version 9"):
        registry.promote("anomaly", 9)


def test_a_running_follower_picks_up_a_newly_promoted_version_when_due(registry: Registry) -> None:
    clock = FakeClock()
    follower = Follower(registry, "anomaly", poll_s=30.0, clock=clock)
    assert not follower.refresh()
    assert follower.current() is None, "nothing promoted: the caller stays on the baselines"

    register(registry, "anomaly", forest(1), beats_baseline=True, mae=0.3)
    assert not follower.refresh(), "not due yet"
    clock.now += 30
    assert follower.refresh()
    first = follower.current()
    assert first is not None and first.version == 1
    np.testing.assert_array_equal(np.asarray(first.model.predict(FEATURES)), forest(1).predict(FEATURES))  # type: ignore[attr-defined]

    register(registry, "anomaly", forest(2), beats_baseline=False, mae=0.5)
    clock.now += 30
    assert not follower.refresh(), "a version that does not beat the baseline is not promoted"
    register(registry, "anomaly", forest(3), beats_baseline=True, mae=0.2)
    clock.now += 29
    assert not follower.refresh()
    assert follower.current() is first
    clock.now += 1
    assert follower.refresh()
    assert follower.current() is not None and follower.current().version == 3  # type: ignore[union-attr]
    assert follower.last_error is None


def test_a_tampered_file_is_refused_and_the_follower_keeps_the_last_good_model(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    follower = Follower(registry, "anomaly", poll_s=10.0, clock=clock)
    register(registry, "anomaly", forest(1), beats_baseline=True, mae=0.3)
    assert follower.refresh()

    bad = register(registry, "anomaly", forest(2), beats_baseline=True, mae=0.2)
    path = stored_file(bad)
    tampered = bytearray(path.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    path.write_bytes(bytes(tampered))
    actual = hashlib.sha256(tampered).hexdigest()

    with pytest.raises(ModelIntegrityError) as refused:
        registry.load(bad)
    assert (refused.value.model, refused.value.version) == ("anomaly", 2)
    assert (refused.value.expected, refused.value.actual) == (bad.sha256, actual)
    assert bad.sha256 is not None and bad.sha256 in str(refused.value) and actual in str(refused.value)
    assert "smartfarm train" in str(refused.value)

    clock.now += 10
    with caplog.at_level(logging.WARNING, logger="ml.registry"):
        assert not follower.refresh()
        clock.now += 10
        assert not follower.refresh()
    kept = follower.current()
    assert kept is not None and kept.version == 1
    assert follower.last_error is not None
    assert "version 2" in follower.last_error and "integrity" in follower.last_error and actual in follower.last_error
    assert len([r for r in caplog.records if "version 2" in r.getMessage()]) == 1, "a refused version is not retried"

    register(registry, "anomaly", forest(3), beats_baseline=True, mae=0.1)
    clock.now += 10
    assert follower.refresh()
    latest = follower.current()
    assert latest is not None and latest.version == 3
    assert follower.last_error is None


def test_a_replaced_file_is_never_unpickled(registry: Registry, tmp_path: Path) -> None:
    info = register(registry, "anomaly", forest(1), beats_baseline=False, mae=0.3)
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return open, (str(marker), "w")

    stored_file(info).write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelIntegrityError):
        registry.load(info)
    with pytest.raises(ModelIntegrityError):
        registry.promote("anomaly", info.version)
    assert not marker.exists()


def test_a_missing_file_is_refused(registry: Registry) -> None:
    info = register(registry, "anomaly", forest(1), beats_baseline=False, mae=0.3)
    stored_file(info).unlink()
    with pytest.raises(ModelIntegrityError, match="found no file") as refused:
        registry.load(info)
    assert refused.value.actual is None


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="smartfarm")
    models_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["models", *argv])
    code = args.run(args)
    return code, capsys.readouterr().out


@pytest.fixture
def listed(registry: Registry) -> Iterator[list[ModelVersionInfo]]:
    register(registry, "anomaly", forest(1), beats_baseline=True, mae=0.25)
    register(registry, "anomaly", forest(2), beats_baseline=False, mae=0.5)
    register(registry, "irrigation", forest(3), beats_baseline=False, mae=0.7)
    yield registry.versions()


def test_the_models_command_lists_versions_and_marks_the_promoted_one(
    settings: ModelSettings, listed: list[ModelVersionInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(capsys, "--store", str(settings.store))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "anomaly (2 versions; champion: version 1)"
    rows = [line.split() for line in lines if line.startswith("  ") and "created" not in line]
    assert rows[0][:1] == ["2"] and rows[1][:2] == ["*", "1"], "newest first, the promoted one marked"
    assert listed[0].sha256 is not None and listed[0].sha256[:12] in lines[3]
    assert "mae=0.25" in lines[3] and "yes" in lines[3]
    assert "irrigation (1 versions; no champion yet (workers use baselines))" in lines


def test_the_models_command_promotes_by_hand(
    settings: ModelSettings, listed: list[ModelVersionInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(capsys, "--store", str(settings.store), "--promote", "anomaly", "2")
    assert code == 0
    assert "models: promoted anomaly version 2 as champion" in out
    assert "anomaly (2 versions; champion: version 2)" in out


def test_the_models_command_on_an_empty_registry_names_the_train_command(
    settings: ModelSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(capsys, "--store", str(settings.store))
    assert code == 0
    assert "no models registered" in out and "smartfarm train" in out
