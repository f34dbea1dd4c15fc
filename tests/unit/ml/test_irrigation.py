"""The one irrigation decision the baseline and the advisor share."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import pytest

from ml import advisor
from ml.context import MAX_MESSAGE, SensorHour, SensorSuspicion, ZoneContext
from ml.irrigation import (
    FULL,
    FULL_REGIME,
    POLICIES,
    PROBE_ERROR_PCT,
    VALID_FOR,
    WINE_GRAPE_RDI,
    Depletion,
    Irrigation,
    Layer,
    Regime,
    compose,
    decide,
    driest_layer,
    regime,
)
from ml.rules import rootzone as baselines
from ml.waterbalance import water_stress
from smartfarm.agronomy import CROPS
from smartfarm.layout import Crop, SensorKind
from smartfarm.records import RecommendationKind, Severity
from tests.unit.ml.builders import END, context, sensor_hour_of, zone


def decided(depletion: Depletion, pending_mm: float, today: Regime = FULL_REGIME) -> Irrigation:
    found = decide(depletion, pending_mm, today)
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


# --- the crop's policy ------------------------------------------------------------------------------------------

VINE = zone("vineyard-west")  # budbreak 2026-03-01, clay: FC 36 %, WP 24 %
DEFICIT = Regime(WINE_GRAPE_RDI, deficit=True)
AT_TRIGGER = replace(DUE, now_mm=90.0, due_mm=90.0)
"""RAW 60 and TAW 120: Ks 0.5 at Dr 90, the deficit's trigger."""


def test_every_crop_has_a_policy_and_only_a_deficit_promises_less_than_full_yield() -> None:
    assert set(POLICIES) == set(Crop)
    for crop, policy in POLICIES.items():
        assert policy.name and policy.why and policy.source
        if policy.is_deficit:
            assert 0 < policy.deficit_ks < 1 and policy.promised_yield_pct < 100
            assert policy.deficit_days[1] <= CROPS[crop].season_days, "the window is inside the crop's season"
        else:
            assert (policy.deficit_ks, policy.promised_yield_pct) == (1.0, 100.0)
    assert POLICIES[Crop.GRAPE] is WINE_GRAPE_RDI
    assert POLICIES[Crop.LETTUCE] is POLICIES[Crop.MAIZE] is FULL


@pytest.mark.parametrize(("age", "deficit"), [(0, False), (59, False), (60, True), (119, True), (120, False)])
def test_the_wine_grape_s_deficit_runs_from_fruit_set_to_veraison(age: int, deficit: bool) -> None:
    today = regime(VINE, VINE.planting_date + timedelta(days=age))
    assert today.deficit is deficit and today.policy is WINE_GRAPE_RDI
    assert today.p_table == CROPS[Crop.GRAPE].p and today.days_left == CROPS[Crop.GRAPE].season_days - age
    assert today.age_days == age


def test_a_policy_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="deficit days"):
        replace(WINE_GRAPE_RDI, deficit_days=(120, 60))
    with pytest.raises(ValueError, match="promised yield"):
        replace(WINE_GRAPE_RDI, promised_yield_pct=0.0)


def test_the_deficit_s_trigger_is_where_ks_falls_to_the_policy_s_and_it_refills_to_raw() -> None:
    assert DEFICIT.trigger_mm(60.0, 120.0) == 90.0
    assert water_stress(90.0, 120.0, 60.0) == pytest.approx(WINE_GRAPE_RDI.deficit_ks), "FAO-56 eq. 84"
    assert (DEFICIT.refill_to_mm(60.0), FULL_REGIME.refill_to_mm(60.0)) == (60.0, 0.0)
    assert FULL_REGIME.trigger_mm(60.0, 120.0) == 60.0


def test_in_the_deficit_window_the_valve_waits_past_raw_then_refills_only_to_raw() -> None:
    assert decide(DUE, 0.0, DEFICIT) is None, "past RAW, short of the deficit's trigger"
    assert decide(replace(DUE, now_mm=55.0, due_mm=60.0, hours=5.0), 0.0, DEFICIT) is None, "RAW ahead"
    found = decided(AT_TRIGGER, 0.0, DEFICIT)
    assert (found.amount_mm, found.hours, found.severity) == (30.0, 0.0, Severity.ADVISORY)
    assert found.numbers["trigger_mm"] == 90.0 and found.numbers["refill_to_mm"] == 60.0
    assert found.numbers["promised_yield_pct"] == WINE_GRAPE_RDI.promised_yield_pct
    assert found.words == (
        "Policy: deficit irrigation for wine grapes, fruit set to veraison (days 60-120): dry to 90 mm (Ks 0.5), "
        "refill to 60 mm; smaller berries, better wine; 85% of full yield promised."
    )
    assert decided(AT_TRIGGER, 10.0, DEFICIT).amount_mm == 20.0, "less what is planned"
    before = decided(AT_TRIGGER, 0.0, Regime(WINE_GRAPE_RDI, deficit=False, age_days=40))
    assert before.amount_mm == 90.0 and before.words == "Policy: full replenishment until fruit set (day 60)."
    after = decided(AT_TRIGGER, 0.0, Regime(WINE_GRAPE_RDI, deficit=False, age_days=130))
    assert after.amount_mm == 90.0 and after.words == "Policy: full replenishment since veraison (day 120)."


def test_full_replenishment_says_so() -> None:
    found = decided(DUE, 0.0)
    assert found.words == "Policy: full replenishment, every mm short costs yield."
    assert found.numbers["deficit"] == 0.0 and found.numbers["promised_yield_pct"] == 100.0


# --- the driest layer -------------------------------------------------------------------------------------------

CALM = replace(DUE, now_mm=40.0, due_mm=40.0, hours=None)
"""The zone's mean at Dr 40 of RAW 60, RAW more than a day away: nothing due by the mean."""


def test_a_dry_lower_layer_calls_for_water_now_though_the_zone_s_mean_does_not() -> None:
    assert decide(CALM, 0.0) is None
    found = decided(replace(CALM, driest=Layer(45.0, theta_pct=28.0, lost=0.55)), 0.0)
    assert (found.amount_mm, found.hours) == (40.0, 0.0), "the zone's mean refilled, no more: none passes the roots"
    assert decided(replace(CALM, hours=20.0, driest=Layer(45.0, 28.0, 0.55)), 0.0).hours == 0.0, "now, not at RAW"
    assert found.words.startswith("Its 45 cm layer reads 28.0%, 55% of its water gone (55% within the probes' error)")
    assert found.numbers["layer_depth_cm"] == 45.0 and found.numbers["layer_lost"] == 0.55
    assert decide(replace(CALM, driest=Layer(45.0, theta_pct=30.0, lost=0.45)), 0.0) is None, "short of p"


def test_a_layer_is_judged_at_the_table_s_p_and_at_the_dry_end_of_its_probes_error() -> None:
    cool_day = replace(CALM, driest=Layer(45.0, theta_pct=30.0, lost=0.40))  # RAW / TAW = 0.5: p raised on a cool day
    assert decide(cool_day, 0.0) is None
    assert decided(cool_day, 0.0, Regime(FULL, deficit=False, p_table=0.35)).hours == 0.0
    reading_wet = replace(CALM, driest=Layer(45.0, theta_pct=30.0, lost=0.45, margin=0.06))
    assert decided(reading_wet, 0.0).hours == 0.0


def test_in_the_deficit_window_a_dry_layer_is_part_of_the_plan() -> None:
    """The deficit is judged on the zone as a whole: its trigger on the mean, refilled to RAW on the mean."""
    dry = replace(CALM, now_mm=70.0, due_mm=70.0, hours=0.0, driest=Layer(45.0, theta_pct=26.0, lost=0.9))
    assert decide(dry, 0.0, DEFICIT) is None
    assert decided(replace(dry, now_mm=95.0, due_mm=95.0), 0.0, DEFICIT).amount_mm == 35.0


def sensors(depths: dict[tuple[str, float], float]) -> list[SensorHour]:
    """One sensor's hour per (device, depth): four readings at the given soil moisture."""
    return [
        sensor_hour_of([theta] * 4, device=device, sensor=f"sm-{depth:g}", depth=depth)
        for (device, depth), theta in depths.items()
    ]


VINE_PROBES = {("soil-1", 15.0): 33.0, ("soil-2", 15.0): 33.0, ("soil-1", 45.0): 30.0, ("soil-2", 45.0): 31.0}


def vine_context(probes: dict[tuple[str, float], float], **more: object) -> ZoneContext:
    return replace(context("vineyard-west"), sensors=sensors(probes), **more)


def test_the_driest_layer_is_the_depth_whose_probes_read_the_least_of_its_water() -> None:
    found = driest_layer(vine_context(VINE_PROBES), root_depth_m=0.6, reach_cm=15.0)
    assert found is not None and (found.depth_cm, found.theta_pct) == (45.0, 30.5)
    assert found.lost == pytest.approx((36.0 - 30.5) / 12.0)
    assert found.margin == pytest.approx(PROBE_ERROR_PCT / math.sqrt(2) / 12.0)


def test_a_flagged_probe_is_left_out_of_its_layer() -> None:
    flagged = SensorSuspicion("soil-2", "sm-45", SensorKind.SOIL_MOISTURE, 4, {"spike": 1})
    found = driest_layer(vine_context(VINE_PROBES, suspicions=[flagged]), 0.6, 15.0)
    assert found is not None and found.theta_pct == 30.0 and found.margin == pytest.approx(PROBE_ERROR_PCT / 12.0)


@pytest.mark.parametrize(
    ("probes", "root_depth_m"),
    [
        (VINE_PROBES, 0.25),  # the 45 cm probes watch 30-60 cm, below young roots: one depth left
        ({k: v for k, v in VINE_PROBES.items() if k[1] == 15.0}, 0.6),  # one depth: the zone's mean already
        ({}, 0.6),  # no sensors' hours at hand (the stream hands them only with a fault detector)
    ],
)
def test_no_layer_without_two_depths_in_the_root_zone(
    probes: dict[tuple[str, float], float], root_depth_m: float
) -> None:
    assert driest_layer(vine_context(probes), root_depth_m, 15.0) is None


# --- the harvest --------------------------------------------------------------------------------------------------


def test_near_harvest_only_what_the_crop_will_use_is_refilled() -> None:
    soon = replace(DUE, etc_mm_day=5.0)
    found = decided(soon, 0.0, Regime(FULL, deficit=False, days_left=2))
    assert found.amount_mm == 12.0, "2 days at 5 mm beyond what the soil holds: 62.2 + 10 - 60"
    assert "Harvest in 2 days: the crop uses about 10 mm until then, 0 mm of it from the soil." in found.words
    assert found.numbers["use_to_harvest_mm"] == 10.0
    assert decided(soon, 0.0, Regime(FULL, deficit=False, days_left=30)).amount_mm == 62.0
    past = decided(soon, 0.0, Regime(FULL, deficit=False, days_left=-98))
    assert past.amount_mm == 62.0 and "Harvest in" not in past.words, "past harvest there is no harvest to plan for"
    assert (
        decide(replace(DUE, now_mm=50.0, due_mm=60.0, hours=4.0, etc_mm_day=5.0), 0.0, Regime(FULL, False, 1.0, 1))
        is None
    )


# --- the words ----------------------------------------------------------------------------------------------------


def test_the_decision_s_words_follow_the_first_sentence_and_are_never_cut() -> None:
    first = "Irrigate 30 mm on Vineyard now: the root zone (0-60 cm) has lost 90 mm of water, past 60 mm."
    details = [f"Detail {i} " + "x" * 90 + "." for i in range(4)]
    words = "Policy: deficit irrigation for wine grapes " + "y" * 100 + "."
    text = compose(" ".join([first, *details]), words)
    assert text.startswith(f"{first} {words} Detail 0 ") and len(text) <= MAX_MESSAGE
    assert text.endswith(details[-1]) and "Detail 2" not in text, "the middle dropped whole, the last kept"
    assert compose("Irrigate 5 mm. Sensors read 20%.", "") == "Irrigate 5 mm. Sensors read 20%."
