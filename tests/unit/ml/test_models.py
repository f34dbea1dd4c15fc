"""The serving scorer: the baselines until a model is promoted, then the advisor, the detector and the rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date

import pytest

from ml.context import SensorSuspicion, ZoneContext
from ml.faultdetect import Detection
from ml.models import FAULT_DETECTOR, FORECASTER, ModelScorer, fault_advice
from ml.rules.sensorfault import sensor_fault
from ml.scoring import Baselines, model_tag
from smartfarm.layout import SensorKind
from smartfarm.records import RecommendationKind, Severity
from tests.unit.ml.builders import END, context, day, hour, series

SOIL = SensorKind.SOIL_MOISTURE
AIR = SensorKind.AIR_TEMPERATURE
YESTERDAY = [day(date(2026, 7, 14), et0=4.4)]
STUCK = SensorSuspicion("soil-tomato-north-1", "sm-15", SOIL, 12, {"stuck": 12})


@dataclasses.dataclass(frozen=True)
class Version:
    version: int
    model: object


@dataclasses.dataclass
class FakeSource:
    """A registry follower: the version it holds (None before a promotion), and the refreshes it was asked for."""

    name: str
    loaded: Version | None = None
    refreshes: list[bool] = dataclasses.field(default_factory=list)

    def current(self) -> Version | None:
        return self.loaded

    def refresh(self, force: bool = False) -> bool:
        self.refreshes.append(force)
        return False


@dataclasses.dataclass
class FakeForecaster:
    path: Mapping[int, float]

    def forecast(self, context: ZoneContext) -> Mapping[int, float]:
        return self.path


@dataclasses.dataclass
class FakeDetector:
    detections: list[Detection]
    shown: list[ZoneContext] = dataclasses.field(default_factory=list)

    def detect_context(self, context: ZoneContext) -> list[Detection]:
        self.shown.append(context)
        return self.detections


def scorer(forecaster: object | None = None, detector: object | None = None) -> ModelScorer:
    return ModelScorer(
        [
            FakeSource(FORECASTER, Version(3, forecaster) if forecaster is not None else None),
            FakeSource(FAULT_DETECTOR, Version(7, detector) if detector is not None else None),
        ]
    )


CONTEXTS = [
    context(aggregates=[hour(SOIL, END, 19.5)], days=YESTERDAY),  # irrigation due now
    context(aggregates=[hour(SOIL, END, 20.0)], days=YESTERDAY),  # due in 8 h
    context(aggregates=[hour(SOIL, END, 18.0), hour(AIR, END, 33.0, high=36.0)], suspicions=[STUCK]),
    context(aggregates=series(AIR, [3.0] * 6)),
    context(),
]


# --- before any promotion -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sources", [[], [FakeSource(FORECASTER), FakeSource(FAULT_DETECTOR)]])
@pytest.mark.parametrize("ctx", CONTEXTS)
def test_with_nothing_loaded_it_scores_exactly_as_the_baselines(sources: list[FakeSource], ctx: ZoneContext) -> None:
    found = ModelScorer(sources)
    assert found.score(ctx) == Baselines().score(ctx)
    assert model_tag(found) == "fao56-baseline@1"
    assert not found.wants_sensor_hours


# --- with models --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forecaster", "detector", "version"),
    [
        (FakeForecaster({}), None, "forecaster-v3+detector-none"),
        (None, FakeDetector([]), "forecaster-none+detector-v7"),
        (FakeForecaster({}), FakeDetector([]), "forecaster-v3+detector-v7"),
    ],
)
def test_its_name_and_version_say_which_models_are_in_use(
    forecaster: FakeForecaster | None, detector: FakeDetector | None, version: str
) -> None:
    assert model_tag(scorer(forecaster, detector)) == f"smartfarm-models@{version}"


def test_with_a_forecaster_irrigation_comes_from_the_advisor() -> None:
    ctx = context(aggregates=series(SOIL, [21.0] * 48), days=YESTERDAY)
    assert Baselines().score(ctx) == []  # the rule: RAW 12 mm away at 5 mm a day, beyond 24 h
    [advice] = scorer(FakeForecaster({6: 20.5, 24: 19.0})).score(ctx)
    assert advice.kind is RecommendationKind.IRRIGATION
    assert advice.inputs["forecast_sm_24h"] == 19.0
    assert advice.start_at is not None and advice.start_at > END


def test_with_only_a_detector_the_advisor_looks_ahead_by_crop_water_use() -> None:
    ctx = context(aggregates=series(SOIL, [19.5] * 48), days=YESTERDAY)
    [advice] = scorer(detector=FakeDetector([])).score(ctx)
    assert advice.kind is RecommendationKind.IRRIGATION
    assert "water_in_mm" in advice.inputs
    assert not any(k.startswith("forecast_sm_") for k in advice.inputs)


def test_the_risk_rules_still_run_in_order_with_models_loaded() -> None:
    ctx = context(aggregates=[*series(SOIL, [19.5] * 48), hour(AIR, END, 33.0, high=36.0)], suspicions=[STUCK])
    found = scorer(FakeForecaster({})).score(ctx)
    assert [a.kind for a in found] == [
        RecommendationKind.IRRIGATION,
        RecommendationKind.HEAT,
        RecommendationKind.SENSOR_FAULT,
    ]


def detection(device: str, sensor: str | None, kind: str, score: float) -> Detection:
    return Detection(device, sensor, kind, score, f"{kind} on {device}/{sensor}")


def test_detections_become_sensor_faults_and_a_flagged_sensor_is_not_reported_twice() -> None:
    detector = FakeDetector(
        [
            detection("soil-tomato-north-1", "sm-15", "stuck", 0.9),  # the flag rule has it already
            detection("soil-tomato-north-2", "sm-45", "drift", 0.6),
            detection("wx-tomato-north", None, "dropout", 1.0),
        ]
    )
    ctx = context(suspicions=[STUCK])
    found = scorer(detector=detector).score(ctx)
    assert detector.shown == [ctx]
    assert all(a.kind is RecommendationKind.SENSOR_FAULT for a in found)
    assert [(a.device, a.sensor) for a in found] == [
        ("soil-tomato-north-1", "sm-15"),
        ("soil-tomato-north-2", "sm-45"),
        ("wx-tomato-north", None),
    ]
    assert found[0] == sensor_fault(ctx)[0]  # the flag rule's words, not the detector's
    assert found[1] == fault_advice(detector.detections[1], ctx)
    assert found[2] == fault_advice(detector.detections[2], ctx)


@pytest.mark.parametrize(
    ("score", "severity", "confidence"),
    [
        (0.9, Severity.WARNING, 0.9),
        (0.8, Severity.WARNING, 0.8),
        (0.6, Severity.ADVISORY, 0.6),
        (0.3, Severity.ADVISORY, 0.5),
        (1.0, Severity.WARNING, 0.95),
    ],
)
def test_fault_advice_carries_the_detector_s_score(score: float, severity: Severity, confidence: float) -> None:
    advice = fault_advice(detection("soil-tomato-north-2", "sm-45", "drift", score), context())
    assert (advice.severity, advice.confidence) == (severity, pytest.approx(confidence))
    assert advice.inputs["score"] == score
    assert advice.inputs["detected_drift"] == 1.0
    assert advice.message == "drift on soil-tomato-north-2/sm-45"


def test_a_long_detector_message_fits_the_contract() -> None:
    found = Detection("soil-tomato-north-2", "sm-45", "anomaly", 0.7, "x" * 900)
    assert len(fault_advice(found, context()).message) <= 500


@pytest.mark.parametrize(
    ("forecaster", "detector", "wants"),
    [
        (None, None, False),
        (FakeForecaster({}), None, False),
        (None, FakeDetector([]), True),
        (FakeForecaster({}), FakeDetector([]), True),
    ],
)
def test_only_a_detector_wants_the_sensor_hours(
    forecaster: FakeForecaster | None, detector: FakeDetector | None, wants: bool
) -> None:
    assert scorer(forecaster, detector).wants_sensor_hours is wants


def test_refresh_reaches_every_source() -> None:
    sources = [FakeSource(FORECASTER), FakeSource(FAULT_DETECTOR, Version(1, FakeDetector([]))), FakeSource("other")]
    ModelScorer(sources).refresh()
    assert [s.refreshes for s in sources] == [[False], [False], [False]]


def test_a_promotion_seen_at_refresh_is_used_at_the_next_score() -> None:
    source = FakeSource(FORECASTER)
    found = ModelScorer([source, FakeSource(FAULT_DETECTOR)])
    assert found.name == "fao56-baseline"
    source.loaded = Version(4, FakeForecaster({}))
    assert model_tag(found) == "smartfarm-models@forecaster-v4+detector-none"
