"""From advice to recommendation events: stable ids, cooldowns, and rain cancelling a planned irrigation."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from ml.scoring import Baselines
from smartfarm.layout import SensorKind
from smartfarm.records import RecommendationKind
from stream.advice import advise
from tests.unit.ml.builders import END, HOUR, context, hour, series

SCORER = Baselines()


def soil(theta: float, end=END):  # type: ignore[no-untyped-def]
    """A tomato zone at soil moisture ``theta`` over the hour ending at ``end``, with a mild afternoon."""
    return [hour(SensorKind.SOIL_MOISTURE, end, theta), *series(SensorKind.AIR_TEMPERATURE, [22.0] * 6, end)]


def irrigations(records):  # type: ignore[no-untyped-def]
    return [r for r in records if r.kind is RecommendationKind.IRRIGATION]


def test_scoring_a_window_again_gives_the_same_ids() -> None:
    state: dict[str, Any] = {}
    first = advise(SCORER, context(aggregates=soil(20.5)), state)
    again = advise(SCORER, context(aggregates=soil(20.5)), {})
    assert irrigations(first) and [r.id for r in first] == [r.id for r in again]
    later = advise(SCORER, context(aggregates=soil(20.5, END + HOUR), end=END + HOUR), {})
    assert {r.id for r in later}.isdisjoint({r.id for r in first}), "another window, another id"


def test_a_planned_irrigation_is_not_repeated_while_it_is_pending() -> None:
    state: dict[str, Any] = {}
    first = irrigations(advise(SCORER, context(aggregates=soil(20.5)), state))
    assert len(first) == 1 and first[0].start_at is not None and first[0].start_at > END
    assert first[0].amount_mm and first[0].inputs["depletion_mm"] > 0 and first[0].model == "fao56-baseline@1"
    assert state["pending"][0] == str(first[0].id)
    for h in range(1, 4):
        end = END + h * HOUR
        assert not irrigations(advise(SCORER, context(aggregates=soil(20.4, end), end=end), state))


def test_rain_before_the_valve_opens_cancels_the_irrigation_with_an_event_that_supersedes_it() -> None:
    state: dict[str, Any] = {}
    (planned,) = irrigations(advise(SCORER, context(aggregates=soil(20.5)), state))
    end = END + HOUR
    wet = [*soil(24.8, end), hour(SensorKind.RAINFALL, end, 2.5, count=12)]
    (cancel,) = irrigations(advise(SCORER, context(aggregates=wet, end=end), state))
    assert cancel.supersedes == planned.id and cancel.amount_mm == 0
    assert "Cancel" in cancel.message and "20.5%" in cancel.message and "24.8%" in cancel.message
    assert "30 mm of rain" in cancel.message and cancel.inputs["rain_mm"] == 30
    assert state["pending"] is None
    same_again = copy.deepcopy(state)
    assert not irrigations(advise(SCORER, context(aggregates=soil(24.8, end + HOUR), end=end + HOUR), same_again))


def test_an_irrigation_whose_valve_has_opened_is_no_longer_cancelled() -> None:
    state: dict[str, Any] = {}
    (planned,) = irrigations(advise(SCORER, context(aggregates=soil(20.5)), state))
    assert planned.start_at is not None
    after = planned.start_at + timedelta(hours=1)
    end = after.replace(minute=0, second=0, microsecond=0)
    records = advise(SCORER, context(aggregates=soil(24.9, end), end=end), state)
    assert not [r for r in records if r.supersedes is not None]
    assert state["pending"] is None


def test_a_cooldown_quiets_the_same_advice_and_lets_it_speak_again_after() -> None:
    state: dict[str, Any] = {}
    cold = [*series(SensorKind.AIR_TEMPERATURE, [4.0, 3.0, 2.0, 1.5, 1.0, 0.5])]
    assert [r.kind for r in advise(SCORER, context(aggregates=cold), state)] == [RecommendationKind.FROST]
    end = END + 2 * HOUR
    colder = series(SensorKind.AIR_TEMPERATURE, [2.0, 1.5, 1.0, 0.5, 0.0, -0.5], end)
    assert not advise(SCORER, context(aggregates=colder, end=end), state)
    end = END + 13 * HOUR
    colder = series(SensorKind.AIR_TEMPERATURE, [2.0, 1.5, 1.0, 0.5, 0.0, -0.5], end)
    assert [r.kind for r in advise(SCORER, context(aggregates=colder, end=end), state)] == [RecommendationKind.FROST]


def test_soil_moisture_wandering_by_a_few_tenths_does_not_cancel_a_plan() -> None:
    state: dict[str, Any] = {}
    (planned,) = irrigations(advise(SCORER, context(aggregates=soil(20.7)), state))
    assert planned.inputs["hours_to_raw"] > 20, "planned near the look-ahead's edge"
    end = END + HOUR
    records = advise(SCORER, context(aggregates=soil(21.0, end), end=end), state)  # now beyond the look-ahead
    assert not irrigations(records) and state["pending"] is not None
