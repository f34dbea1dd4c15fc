"""From advice to recommendation events: stable ids, cooldowns, and rain cancelling a planned irrigation."""

from __future__ import annotations

import copy
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from ml.scoring import Baselines
from smartfarm.layout import SensorKind
from smartfarm.records import RecommendationKind
from stream.advice import (
    COOLDOWN,
    ID_NAMESPACE,
    ISSUED_FOR_S,
    REVISED_MM,
    Issued,
    advise,
    changed,
    forget_declined,
    readvise,
)
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


def test_an_irrigation_s_cooldown_runs_from_when_its_valve_closes() -> None:
    """A slow valve runs longer than the cooldown: advice scored while it still runs would see the soil short of
    the water yet to come and ask for it again."""
    state: dict[str, Any] = {}
    (planned,) = irrigations(advise(SCORER, context(aggregates=soil(20.5)), state))
    assert planned.start_at is not None and planned.amount_mm
    closes = planned.start_at + timedelta(hours=planned.amount_mm / context().zone.irrigation_rate_mm_h)
    assert state["cooldown"]["irrigation"] == (closes + COOLDOWN[RecommendationKind.IRRIGATION]).timestamp()
    still_running = closes + timedelta(hours=11)
    end = still_running.replace(minute=0, second=0, microsecond=0)
    assert not irrigations(advise(SCORER, context(aggregates=soil(14.0, end), end=end), state))
    end += timedelta(hours=2)
    assert irrigations(advise(SCORER, context(aggregates=soil(14.0, end), end=end), state)), (
        "dry enough for the deficit the tomato is in by then"
    )


def test_soil_moisture_wandering_by_a_few_tenths_does_not_cancel_a_plan() -> None:
    state: dict[str, Any] = {}
    (planned,) = irrigations(advise(SCORER, context(aggregates=soil(20.7)), state))
    assert planned.inputs["hours_to_raw"] > 20, "planned near the look-ahead's edge"
    end = END + HOUR
    records = advise(SCORER, context(aggregates=soil(21.0, end), end=end), state)  # now beyond the look-ahead
    assert not irrigations(records) and state["pending"] is not None


def test_a_revised_window_with_the_same_advice_publishes_nothing() -> None:
    state: dict[str, Any] = {}
    assert irrigations(advise(SCORER, context(aggregates=soil(20.5)), state))
    before = copy.deepcopy(state)
    assert not readvise(SCORER, context(aggregates=soil(20.52)), state, END.timestamp())
    assert state == before


def test_a_revised_window_whose_irrigation_changed_publishes_one_that_supersedes_it() -> None:
    state: dict[str, Any] = {}
    (planned,) = irrigations(advise(SCORER, context(aggregates=soil(20.5)), state))
    drier = context(aggregates=soil(17.0))
    (new,) = irrigations(readvise(SCORER, drier, state, END.timestamp()))
    assert new.supersedes == planned.id and new.amount_mm and planned.amount_mm
    assert abs(new.amount_mm - planned.amount_mm) >= REVISED_MM and new.window_end == planned.window_end
    assert new.start_at == END and state["pending"] is None, "drier: water at once, the old plan is no longer held"
    again = readvise(SCORER, drier, copy.deepcopy(before_revision(planned, state)), END.timestamp())
    assert [r.id for r in irrigations(again)] == [new.id], "a redelivered revision: the same id"
    assert not readvise(SCORER, drier, state, END.timestamp()), "scored again as revised: nothing new"


def before_revision(planned, state):  # type: ignore[no-untyped-def]
    """``state`` as it was before the revision of ``planned``'s window (its issued entry back to ``planned``)."""
    out = copy.deepcopy(state)
    window = str(int(END.timestamp()))
    out["issued"][window]["irrigation"] = [str(planned.id), planned.amount_mm, planned.severity.value, None]
    assert planned.start_at is not None
    out["issued"][window]["irrigation"][3] = planned.start_at.timestamp()
    return out


def test_a_revised_window_that_no_longer_needs_water_cancels_its_irrigation_as_rain_does() -> None:
    state: dict[str, Any] = {}
    (planned,) = irrigations(advise(SCORER, context(aggregates=soil(20.5)), state))
    (cancel,) = irrigations(readvise(SCORER, context(aggregates=soil(26.0)), state, END.timestamp()))
    assert cancel.supersedes == planned.id and cancel.amount_mm == 0 and "revised with late readings" in cancel.message
    assert cancel.id == cancellation_id(planned), "the same event a rain cancellation of that plan would be"
    assert state["pending"] is None
    assert not readvise(SCORER, context(aggregates=soil(26.0)), state, END.timestamp())


def cancellation_id(planned):  # type: ignore[no-untyped-def]
    return uuid.uuid5(ID_NAMESPACE, f"{planned.id}/cancel")


def test_an_irrigation_acted_on_is_not_revised() -> None:
    state: dict[str, Any] = {}
    (planned,) = irrigations(advise(SCORER, context(aggregates=soil(20.5)), state))
    assert planned.start_at is not None
    opened = planned.start_at.timestamp()
    assert not irrigations(readvise(SCORER, context(aggregates=soil(26.0)), state, opened))
    assert not irrigations(readvise(SCORER, context(aggregates=soil(17.0)), state, opened))


def test_a_revised_window_raises_a_new_alert_and_leaves_an_old_one_to_expire() -> None:
    state: dict[str, Any] = {}
    mild = series(SensorKind.AIR_TEMPERATURE, [12.0] * 6)
    assert not advise(SCORER, context(aggregates=mild), state)
    cold = series(SensorKind.AIR_TEMPERATURE, [4.0, 3.0, 2.0, 1.5, 1.0, 0.5])
    (frost,) = readvise(SCORER, context(aggregates=cold), state, END.timestamp())
    assert frost.kind is RecommendationKind.FROST and frost.supersedes is None
    assert not readvise(SCORER, context(aggregates=mild), state, END.timestamp()), "a frost alert is not withdrawn"


def test_a_window_never_scored_or_forgotten_is_not_rescored() -> None:
    assert not readvise(SCORER, context(aggregates=soil(17.0)), {}, END.timestamp())
    state: dict[str, Any] = {}
    advise(SCORER, context(aggregates=soil(20.5)), state)
    later = END + timedelta(seconds=ISSUED_FOR_S) + 2 * HOUR
    advise(SCORER, context(aggregates=soil(30.0, later), end=later), state)
    assert str(int(END.timestamp())) not in state["issued"]
    assert not readvise(SCORER, context(aggregates=soil(17.0)), state, later.timestamp())


def test_changed_is_about_severity_and_a_real_change_of_water() -> None:
    from ml.scoring import Advice
    from smartfarm.records import Severity

    was = Issued("x", 10.0, Severity.ADVISORY.value, None)
    same = Advice(RecommendationKind.IRRIGATION, Severity.ADVISORY, "m", 0.8, {}, timedelta(hours=1), amount_mm=10.2)
    assert not changed(was, same)
    assert changed(was, replace(same, amount_mm=10.0 + REVISED_MM))
    assert changed(was, replace(same, severity=Severity.WARNING))


def test_a_declined_irrigation_is_no_longer_counted_nor_cancelled_and_its_quiet_time_stands() -> None:
    state: dict[str, Any] = {}
    (planned,) = irrigations(advise(SCORER, context(aggregates=soil(20.5)), state))
    assert not forget_declined(state, {str(uuid.uuid4())}), "another recommendation's decline changes nothing"
    assert forget_declined(state, {str(planned.id)}) and state["pending"] is None
    end = END + HOUR
    wet = [*soil(24.8, end), hour(SensorKind.RAINFALL, end, 2.5, count=12)]
    assert not irrigations(advise(SCORER, context(aggregates=wet, end=end), state)), "nothing left to cancel"
    dry = END + 2 * HOUR
    assert not irrigations(advise(SCORER, context(aggregates=soil(20.0, dry), end=dry), state)), "still quiet"
