"""The one irrigation decision the baseline and the advisor share."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from ml import advisor
from ml.irrigation import VALID_FOR, Depletion, Irrigation, decide
from ml.rules import rootzone as baselines
from smartfarm.records import RecommendationKind, Severity
from tests.unit.ml.builders import END, context


def decided(depletion: Depletion, pending_mm: float) -> Irrigation:
    found = decide(depletion, pending_mm)
    assert found is not None, "an irrigation is called for"
    return found


DUE = Depletion(now_mm=62.2, due_mm=62.2, hours=0.0, raw_mm=60.0, taw_mm=120.0, coverage=1.0, et0_assumed=False)


def test_it_refills_to_field_capacity_in_half_millimetres_less_what_is_planned() -> None:
    assert decided(DUE, 0.0).amount_mm == 62.0
    assert decided(DUE, 10.1).amount_mm == 52.0
    assert decided(replace(DUE, due_mm=62.3), 0.0).amount_mm == 62.5
    assert decide(DUE, 62.0) is None, "what is planned covers it"


def test_a_crop_past_halfway_from_raw_to_taw_gets_a_warning_now_and_only_now() -> None:
    assert decided(DUE, 0.0).severity is Severity.ADVISORY
    stressed = replace(DUE, now_mm=91.0, due_mm=91.0)
    assert decided(stressed, 0.0).severity is Severity.WARNING
    ahead = replace(stressed, hours=5.0, due_mm=60.0)
    assert decided(ahead, 0.0).severity is Severity.ADVISORY


@pytest.mark.parametrize(
    ("coverage", "assumed", "confidence"),
    [(1.0, False, 0.95), (0.5, False, 0.725), (0.0, True, 0.5), (1.0, True, 0.85)],
)
def test_confidence_grows_with_the_sensors_coverage_and_drops_on_an_assumed_et0(
    coverage: float, assumed: bool, confidence: float
) -> None:
    decided = decide(replace(DUE, coverage=coverage, et0_assumed=assumed), 0.0)
    assert decided is not None and decided.confidence == pytest.approx(confidence)


def test_the_advice_opens_the_valve_when_raw_is_reached_and_stands_half_a_day() -> None:
    decided = decide(replace(DUE, hours=5.25, due_mm=60.0), 0.0)
    assert decided is not None
    advice = decided.advice(context(), "why", {"amount_mm": decided.amount_mm})
    assert advice.kind is RecommendationKind.IRRIGATION and advice.amount_mm == 60.0
    assert advice.start_at == END + timedelta(minutes=315) and advice.valid_for == VALID_FOR


def test_the_baseline_and_the_advisor_decide_here() -> None:
    """One rule, one home: neither keeps a decision of its own."""
    assert baselines.decide is decide
    assert advisor.decide is decide
