"""The valves' irrigation schedule, table-driven: hold until start, supersede, cancel, each id once; and the
thin MQTT half that only decodes and queues."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest

from edge.schedule import IrrigationSchedule, Outcome
from edge.valve import Valves
from smartfarm.records import IrrigationCommand, Recommendation
from smartfarm.settings import MqttSettings

T0 = datetime(2026, 7, 1, 6, tzinfo=UTC)
IDS = {name: uuid.uuid5(uuid.NAMESPACE_DNS, name) for name in "abcdef"}


def rec(
    name: str, amount_mm: float = 10.0, start_h: float | None = None, supersedes: str | None = None, kind: str = ""
) -> Recommendation:
    return Recommendation.create(
        id=IDS[name],
        farm="valley-farm",
        zone="lettuce-south",
        kind=kind or "irrigation",
        severity="advisory",
        issued_at=T0,
        valid_until=T0 + timedelta(days=1),
        message="test",
        model="test@1",
        confidence=0.9,
        amount_mm=amount_mm if not kind else None,
        start_at=None if start_h is None else T0 + timedelta(hours=start_h),
        supersedes=None if supersedes is None else IDS[supersedes],
    )


@dataclass(frozen=True)
class Offer:
    rec: Recommendation
    expect: Outcome


@dataclass(frozen=True)
class Due:
    hour: float
    expect: str
    """The names of the irrigations due, in order."""


CASES: dict[str, tuple[list[Offer | Due], int, int]] = {
    "at once without a start": ([Offer(rec("a"), Outcome.SCHEDULED), Due(0, "a"), Due(9, "")], 0, 0),
    "held until its start": (
        [Offer(rec("a", start_h=2), Outcome.SCHEDULED), Due(1, ""), Due(1.99, ""), Due(2, "a"), Due(3, "")],
        0,
        0,
    ),
    "a start in the past is at once": ([Offer(rec("a", start_h=-5), Outcome.SCHEDULED), Due(0, "a")], 0, 0),
    "at-once first, then by start": (
        [
            Offer(rec("a", start_h=3), Outcome.SCHEDULED),
            Offer(rec("b", start_h=1), Outcome.SCHEDULED),
            Offer(rec("c"), Outcome.SCHEDULED),
            Due(5, "cba"),
        ],
        0,
        0,
    ),
    "a retained re-delivery is ignored, held or applied": (
        [
            Offer(rec("a", start_h=1), Outcome.SCHEDULED),
            Offer(rec("a", start_h=1), Outcome.REPEATED),
            Due(1, "a"),
            Offer(rec("a", start_h=1), Outcome.REPEATED),
            Due(9, ""),
        ],
        0,
        0,
    ),
    "a cancel takes out a held irrigation": (
        [
            Offer(rec("a", start_h=2), Outcome.SCHEDULED),
            Offer(rec("c", 0, supersedes="a"), Outcome.CANCELLED),
            Due(9, ""),
        ],
        1,
        0,
    ),
    "a replacement takes its place": (
        [
            Offer(rec("a", 10, start_h=2), Outcome.SCHEDULED),
            Offer(rec("b", 6, start_h=3, supersedes="a"), Outcome.REPLACED),
            Due(2, ""),
            Due(3, "b"),
        ],
        1,
        0,
    ),
    "a cancel after the water flowed is too late": (
        [
            Offer(rec("a"), Outcome.SCHEDULED),
            Due(0, "a"),
            Offer(rec("c", 0, supersedes="a"), Outcome.TOO_LATE),
            Due(9, ""),
        ],
        0,
        1,
    ),
    "a late replacement is still held itself": (
        [
            Offer(rec("a"), Outcome.SCHEDULED),
            Due(0, "a"),
            Offer(rec("b", 5, supersedes="a"), Outcome.TOO_LATE),
            Due(0, "b"),
        ],
        0,
        1,
    ),
    "a cancelled id re-delivered does not come back": (
        [
            Offer(rec("a", start_h=2), Outcome.SCHEDULED),
            Offer(rec("c", 0, supersedes="a"), Outcome.CANCELLED),
            Offer(rec("a", start_h=2), Outcome.REPEATED),
            Offer(rec("c", 0, supersedes="a"), Outcome.REPEATED),
            Due(9, ""),
        ],
        1,
        0,
    ),
    "a cancel that overtook its target refuses it": (
        [
            Offer(rec("c", 0, supersedes="a"), Outcome.CANCELLED),
            Offer(rec("a"), Outcome.REFUSED),
            Offer(rec("a"), Outcome.REPEATED),
            Due(9, ""),
        ],
        1,
        0,
    ),
    "cancelling twice counts once": (
        [
            Offer(rec("a", start_h=2), Outcome.SCHEDULED),
            Offer(rec("c", 0, supersedes="a"), Outcome.CANCELLED),
            Offer(rec("d", 0, supersedes="a"), Outcome.IGNORED),
            Offer(rec("e", 4, supersedes="a"), Outcome.SCHEDULED),
            Due(9, "e"),
        ],
        1,
        0,
    ),
    "no water and nothing to cancel, or not irrigation": (
        [Offer(rec("a", 0), Outcome.IGNORED), Offer(rec("b", kind="frost"), Outcome.IGNORED), Due(9, "")],
        0,
        0,
    ),
}


@pytest.mark.parametrize(("steps", "cancelled", "too_late"), CASES.values(), ids=CASES.keys())
def test_the_schedule(steps: list[Offer | Due], cancelled: int, too_late: int) -> None:
    schedule = IrrigationSchedule()
    names = {str(v): k for k, v in IDS.items()}
    for i, step in enumerate(steps):
        if isinstance(step, Offer):
            assert schedule.offer(step.rec) is step.expect, f"step {i}"
        else:
            due = schedule.due(T0 + timedelta(hours=step.hour))
            assert "".join(names[d.recommendation] for d in due) == step.expect, f"step {i}"
    assert (schedule.cancelled, schedule.too_late) == (cancelled, too_late)


def test_an_irrigation_carries_what_the_fleet_applies() -> None:
    schedule = IrrigationSchedule()
    schedule.offer(rec("a", 12.5, start_h=1))
    (irrigation,) = schedule.due(T0 + timedelta(hours=1))
    assert (irrigation.farm, irrigation.zone, irrigation.amount_mm) == ("valley-farm", "lettuce-south", 12.5)
    assert irrigation.start_at == T0 + timedelta(hours=1)


def message(topic: str, payload: bytes) -> mqtt.MQTTMessage:
    out = mqtt.MQTTMessage(topic=topic.encode())
    out.payload = payload
    return out


def test_the_network_thread_only_queues_and_the_fleet_thread_decides() -> None:
    settings = MqttSettings(topic_root="t")
    valves = Valves(["valley-farm"], settings, "valves-0", "pw")
    topic = settings.topics.recommendations("valley-farm", "lettuce-south")
    valves._on_message(valves.client, None, message(topic, rec("a", start_h=1).encode()))
    valves._on_message(valves.client, None, message(topic, rec("c", 0, supersedes="a").encode()))
    valves._on_message(valves.client, None, message(topic, b"{not json"))
    other = settings.topics.recommendations("valley-farm", "maize-east")
    valves._on_message(valves.client, None, message(other, rec("b").encode()))
    assert valves.schedule.pending == {} and valves.cancelled == 0, "nothing decided on paho's thread"
    assert valves.refused == 2, "a broken payload and one on another zone's topic"
    assert valves.due(T0 + timedelta(hours=2)) == []
    assert (valves.cancelled, valves.too_late) == (1, 0)


def test_advice_past_its_valid_until_is_dropped_not_applied() -> None:
    """A catch-up delivers past windows' advice days late in a burst: none of it is applied, each is counted."""
    schedule = IrrigationSchedule()
    for name in "abc":
        schedule.offer(rec(name, start_h=1))
    schedule.offer(rec("d", start_h=30))
    late = T0 + timedelta(days=3)
    assert schedule.due(late) == []
    assert schedule.expired == 4
    fresh = IrrigationSchedule()
    fresh.offer(rec("a", start_h=1))
    assert [i.recommendation for i in fresh.due(T0 + timedelta(hours=2))] == [str(IDS["a"])]
    assert fresh.expired == 0


def command(name: str, amount_mm: float = 12.0, start_h: float = 1.0) -> IrrigationCommand:
    return IrrigationCommand.create(
        id=uuid.uuid4(),
        recommendation=IDS[name],
        farm="valley-farm",
        zone="lettuce-south",
        amount_mm=amount_mm,
        start_at=T0 + timedelta(hours=start_h),
        valid_until=T0 + timedelta(hours=start_h + 2),
        accepted_at=T0,
        accepted_by="farm office",
    )


def test_an_accepted_irrigation_is_held_until_its_start_and_applied_once() -> None:
    schedule = IrrigationSchedule()
    assert schedule.accept(command("a")) is Outcome.SCHEDULED
    assert schedule.due(T0) == []
    (applied,) = schedule.due(T0 + timedelta(hours=1))
    assert (applied.amount_mm, applied.recommendation) == (12.0, str(IDS["a"]))
    assert schedule.accept(command("a")) is Outcome.REPEATED, "a command heard twice opens the valve once"
    assert schedule.offer(rec("a")) is Outcome.REPEATED, "the recommendation it answered, heard later, too"
    assert schedule.due(T0 + timedelta(days=1)) == []


def test_an_accepted_irrigation_held_from_its_recommendation_takes_the_persons_amount() -> None:
    schedule = IrrigationSchedule()
    assert schedule.offer(rec("a", amount_mm=10.0, start_h=3)) is Outcome.SCHEDULED
    assert schedule.accept(command("a", amount_mm=6.0, start_h=1)) is Outcome.SCHEDULED
    (applied,) = schedule.due(T0 + timedelta(hours=1))
    assert applied.amount_mm == 6.0 and len(schedule.pending) == 0


def test_an_accepted_irrigation_already_cancelled_is_not_revived() -> None:
    schedule = IrrigationSchedule()
    assert schedule.offer(rec("b", amount_mm=0.0, supersedes="a")) is Outcome.CANCELLED  # the cancel came first
    assert schedule.accept(command("a")) is Outcome.REFUSED
    assert schedule.due(T0 + timedelta(days=1)) == [] and schedule.cancelled == 1
