"""A running scorer follows the registry: a newly promoted forecaster is picked up without a restart, a tampered one
is refused while the last good one keeps serving, and the advice says which versions made it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest

from ml.forecast import Forecaster
from ml.models import FAULT_DETECTOR, FORECASTER, ModelScorer, serving_scorer
from ml.registry import MODEL_FILE, Follower, ModelVersionInfo, Registry
from ml.settings import ModelSettings
from smartfarm.layout import SensorKind
from smartfarm.records import RecommendationKind
from tests.unit.ml.builders import END, context, series

DATA = hashlib.sha256(b"test seasons").hexdigest()


def tiny_forecaster(change: float) -> Forecaster:
    """A forecaster fitted on rows whose soil moisture always moves by ``change`` in 6 h and 24 h."""
    from ml.features import FEATURES

    rng = np.random.default_rng(3)
    table = pd.DataFrame(rng.normal(20, 5, size=(200, len(FEATURES))), columns=list(FEATURES))
    for h in (6, 24):
        table[f"sm_in_{h}h"] = table["sm"] + change
        table[f"change_{h}h"] = change
        table[f"irrigated_{h}h"] = False
    return Forecaster.fit(table)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def register(registry: Registry, model: object, beats: bool = True) -> ModelVersionInfo:
    with registry.run("test", {"what": "scorer test"}, data_sha256=DATA) as run:
        return run.register(FORECASTER, model, {"skill_24h": 0.5}, beats)


def stored_file(info: ModelVersionInfo) -> Path:
    return Path(unquote(urlparse(info.source).path)) / MODEL_FILE


def drying_zone():  # type: ignore[no-untyped-def]
    """Loam tomato at full roots, 24% against field capacity 25%: 10 mm lost of a RAW near 50 mm."""
    return context(aggregates=series(SensorKind.SOIL_MOISTURE, [24.0] * 12), end=END)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(ModelSettings(store=tmp_path / "mlflow"))


def test_a_running_scorer_picks_up_a_promoted_version_and_refuses_a_tampered_one(registry: Registry) -> None:
    clock = Clock()
    scorer = ModelScorer([Follower(registry, FORECASTER, poll_s=30, clock=clock), Follower(registry, FAULT_DETECTOR)])
    scorer.refresh()
    assert (scorer.name, scorer.version) == ("fao56-baseline", "1"), "nothing promoted: the baselines"

    register(registry, tiny_forecaster(-8.0))  # a forecaster that says the zone dries fast
    scorer.refresh()
    assert scorer.version == "fao56-baseline" or scorer.name == "fao56-baseline", "not due before poll_s"
    clock.now += 31
    scorer.refresh()
    assert (scorer.name, scorer.version) == ("smartfarm-models", "forecaster-v1+detector-none")
    advice = [a for a in scorer.score(drying_zone()) if a.kind is RecommendationKind.IRRIGATION]
    assert advice, "the forecast of a fast-drying zone brings the trigger within 24 h"
    assert advice[0].inputs["forecast_sm_24h"] == pytest.approx(16.0, abs=1.0)
    assert "forecast" in advice[0].message

    bad = register(registry, tiny_forecaster(0.0))
    stored_file(bad).write_bytes(b"not the model that was registered")
    clock.now += 31
    scorer.refresh()
    follower = scorer.sources[FORECASTER]
    assert scorer.version == "forecaster-v1+detector-none", "the last good version keeps serving"
    assert isinstance(follower, Follower) and follower.last_error and "integrity check" in follower.last_error

    register(registry, tiny_forecaster(0.0))
    clock.now += 31
    scorer.refresh()
    assert scorer.version == "forecaster-v3+detector-none"
    still = [a for a in scorer.score(drying_zone()) if a.kind is RecommendationKind.IRRIGATION]
    assert not still, "a forecaster that sees no drying brings no trigger within 24 h"


def test_a_version_below_its_baseline_is_registered_but_never_served(registry: Registry) -> None:
    register(registry, tiny_forecaster(-8.0), beats=False)
    scorer = serving_scorer(registry.settings)
    assert scorer.name == "fao56-baseline"
    assert [v.promoted for v in registry.versions(FORECASTER)] == [False]
