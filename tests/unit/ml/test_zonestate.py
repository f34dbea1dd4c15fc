"""The zone's soil state and outlook: the trigger is where the advice turns on, the forecast the model in service."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import date

import pandas as pd
import pytest

from ml.context import ZoneContext
from ml.models import FORECASTER, IrrigationAdvisor, ModelScorer
from ml.scoring import Baselines, Scorer, model_tag
from ml.zonestate import PHYSICS
from smartfarm.layout import SensorKind
from smartfarm.records import RecommendationKind
from tests.unit.ml.builders import END, HOUR, context, day, series

SOIL = SensorKind.SOIL_MOISTURE
STILL = [day(date(2026, 7, 14), et0=0.0)]
"""No crop water use: nothing is due later, so irrigation is advised exactly when the soil is below the trigger."""
YESTERDAY = [day(date(2026, 7, 14), et0=4.4)]


@dataclasses.dataclass(frozen=True)
class Version:
    version: int
    model: object


@dataclasses.dataclass
class Source:
    name: str
    loaded: Version | None = None

    def current(self) -> Version | None:
        return self.loaded

    def refresh(self, force: bool = False) -> bool:
        return False


@dataclasses.dataclass
class Path:
    path: Mapping[int, float]

    def forecast(self, context: ZoneContext) -> Mapping[int, float]:
        return self.path


def promoted(path: Mapping[int, float] | None = None) -> ModelScorer:
    return ModelScorer([Source(FORECASTER, Version(3, Path({6: 19.0, 24: 17.5} if path is None else path)))])


def steady(theta: float, days: list = STILL) -> ZoneContext:  # type: ignore[type-arg]
    return context(aggregates=series(SOIL, [theta] * 48), days=days)


def irrigates(scorer: Scorer, ctx: ZoneContext) -> bool:
    return any(a.kind is RecommendationKind.IRRIGATION and a.amount_mm for a in scorer.score(ctx))


SCORERS = {
    "baselines": Baselines(),
    "models-unpromoted": ModelScorer([Source(FORECASTER)]),
    "models-promoted": promoted({}),
    "advisor": IrrigationAdvisor(None),
}


@pytest.mark.parametrize("name", SCORERS)
def test_the_trigger_is_the_moisture_below_which_the_scorer_advises_irrigation(name: str) -> None:
    scorer = SCORERS[name]
    state = scorer.zone_state(steady(22.0))
    assert state is not None
    trigger = state.trigger_pct
    assert 12.0 < trigger < state.field_capacity_pct == 25.0  # tomato on loam: between wilting point and FC
    assert not irrigates(scorer, steady(trigger + 0.05)), "just above the trigger: nothing due"
    assert irrigates(scorer, steady(trigger - 0.05)), "just below it: irrigate"


def test_baselines_manage_the_roots_and_the_advisor_the_probed_depth() -> None:
    """Tomato on loam at full roots (1.0 m), probes to 45 cm: the advisor manages 0.6 m. FC 25 %, WP 12 %,
    p at ETc 5.06 mm/day = 0.3976; theta 20 % is 50 mm lost over 1 m and 30 mm over 0.6 m (the advisor's balance
    stands still without crop water use, so its corrected depletion is the measured one)."""
    base = Baselines().zone_state(steady(20.0, YESTERDAY))
    model = promoted().zone_state(steady(20.0))
    assert base is not None and model is not None
    assert base.taw_mm == pytest.approx(130.0) and model.taw_mm == pytest.approx(78.0)
    assert base.raw_mm == pytest.approx(0.3976 * 130, abs=0.01)
    assert base.trigger_pct == pytest.approx(25 - base.raw_mm / 10)
    assert model.trigger_pct == pytest.approx(25 - model.raw_mm / 6)
    assert base.depletion_mm == pytest.approx(50.0) and model.depletion_mm == pytest.approx(30.0)
    assert base.moisture_pct == model.moisture_pct == 20.0
    assert base.model == "fao56-baseline@1"
    assert model.model == model_tag(promoted()) == "smartfarm-models@forecaster-v3+detector-none"


@pytest.mark.parametrize("scorer", SCORERS.values(), ids=SCORERS.keys())
def test_no_state_or_outlook_without_soil_moisture_in_the_hour(scorer: Scorer) -> None:
    stale = context(aggregates=series(SOIL, [22.0] * 10, end=END - 2 * HOUR), days=YESTERDAY)
    for ctx in (context(days=YESTERDAY), stale):
        assert scorer.zone_state(ctx) is None
        assert scorer.soil_outlook(ctx) is None


@pytest.mark.parametrize(
    ("theta", "expected_6h", "expected_24h"),
    [
        # Kc 1.15 x ET0 4.4 = 5.06 mm/day over the 1.0 m root zone: 0.1265 points in 6 h, 0.506 in 24 h
        (20.0, 20.0 - 0.1265, 20.0 - 0.506),
        (28.0, 25.0 - 0.1265, 25.0 - 0.506),  # above field capacity it drains first
    ],
)
def test_unpromoted_scorers_forecast_the_dry_balance(theta: float, expected_6h: float, expected_24h: float) -> None:
    for scorer in (Baselines(), ModelScorer([Source(FORECASTER)]), IrrigationAdvisor(None)):
        outlook = scorer.soil_outlook(steady(theta, YESTERDAY))
        assert outlook is not None and outlook.model == PHYSICS
        assert outlook.moisture_pct[6] == pytest.approx(expected_6h, abs=1e-9)
        assert outlook.moisture_pct[24] == pytest.approx(expected_24h, abs=1e-9)


def test_the_dry_balance_is_the_one_the_forecaster_is_judged_against() -> None:
    from ml.features import zone_features
    from ml.forecast import physics

    ctx = steady(21.0, YESTERDAY)
    rows = pd.DataFrame([zone_features(ctx)])
    outlook = Baselines().soil_outlook(ctx)
    assert outlook is not None
    assert all(math.isclose(outlook.moisture_pct[h], physics(rows, h)[0]) for h in (6, 24))


def test_a_promoted_forecaster_forecasts_under_its_version() -> None:
    outlook = promoted({6: 19.0, 24: 17.5}).soil_outlook(steady(20.0, YESTERDAY))
    assert outlook is not None
    assert outlook.moisture_pct == {6: 19.0, 24: 17.5}
    assert outlook.model == "soil-moisture-forecaster@v3"
