"""Cleaning, table-driven and without a broker: refusals with their reasons, flags, duplicates and order."""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from smartfarm.errors import RejectReason
from smartfarm.layout import load_layout
from smartfarm.records import CleanMessage, Flag, Quality, RejectStage
from smartfarm.topics import MqttTopics, topic_specs
from stream.clean import Cleaned, Cleaner, CleanRules, DeviceMemory, Duplicate, RawMessage, Refused, SensorTrack
from stream.gate import DEADLETTER, Door, Router
from tests.hostile import DEVICE, FARM, good, hostile_payloads

NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)
TOPICS = MqttTopics("smartfarm")
SPECS = topic_specs("t", 6)
ROUTER = Router(Door(TOPICS, 16 * 1024), SPECS, {s.name: 6 for s in SPECS.values()}, "b")
CLEANER = Cleaner(load_layout())


def raw(doc: dict, received: datetime | None = None, device: str = DEVICE, farm: str = FARM) -> RawMessage:
    """A ``telemetry.raw`` record as the bridge writes it, received a second after it was taken unless said."""
    payload = json.dumps(doc).encode()
    when = received or datetime.fromisoformat(doc["ts"]) + timedelta(seconds=1)
    route = ROUTER.route(TOPICS.telemetry(farm, device), payload, when.timestamp())
    assert route.kind != DEADLETTER, route.reason
    return RawMessage(route.value, route.headers, route.topic, 0, 0)


def reading_doc(now: datetime, seq: int, value: float, sensor: str = "sm-15") -> dict:
    kinds = {"sm-15": "soil_moisture", "sm-45": "soil_moisture", "st-15": "soil_temperature", "bat": "battery"}
    return good(now, seq, readings=[{"sensor": sensor, "kind": kinds[sensor], "value": value}])


@pytest.mark.parametrize("case", hostile_payloads(NOW), ids=lambda c: c.name)
def test_every_hostile_payload_is_refused_with_its_reason_at_its_stage(case) -> None:  # type: ignore[no-untyped-def]
    assert len(hostile_payloads(NOW)) >= 50
    topic = TOPICS.telemetry(FARM, DEVICE)
    route = ROUTER.route(topic, case.payload, NOW.timestamp())
    if case.stage is RejectStage.BRIDGE:
        assert (route.kind, route.reason) == (DEADLETTER, case.reason)
        return
    assert route.kind == "telemetry"
    outcome = CLEANER.clean(RawMessage(route.value, route.headers, "t.telemetry.raw", 3, 41), DeviceMemory())
    assert isinstance(outcome, Refused), outcome
    letter = outcome.letter
    assert (letter.reason, letter.stage, letter.payload) == (case.reason, RejectStage.CLEAN, case.payload)
    assert (letter.mqtt_topic, letter.device, letter.source_partition, letter.source_offset) == (topic, DEVICE, 3, 41)
    assert letter.detail, "the reason is explained"
    assert outcome.key == DEVICE.encode()


def _on_a_deep_stack(depth: int, call: Callable[[], object]) -> object:
    return call() if depth == 0 else _on_a_deep_stack(depth - 1, call)


def test_a_payload_gets_the_same_reason_however_deep_the_stack_that_cleans_it() -> None:
    """A worker cleans inside an event loop, hundreds of frames deep: a value nested 200 deep once came out as
    invalid JSON there and as an invalid payload in a shallow caller."""
    topic = TOPICS.telemetry(FARM, DEVICE)
    room = sys.getrecursionlimit() - len(inspect.stack()) - 60

    def reasons() -> list[object]:
        found = []
        for case in hostile_payloads(NOW):
            route = ROUTER.route(topic, case.payload, NOW.timestamp())
            if route.kind == "telemetry":
                outcome = CLEANER.clean(RawMessage(route.value, route.headers, "t.telemetry.raw", 0, 0), DeviceMemory())
                found.append(outcome.letter.reason if isinstance(outcome, Refused) else outcome)
        return found

    assert _on_a_deep_stack(room, reasons) == reasons()


def test_a_device_not_in_the_layout_and_a_device_under_another_farm_are_refused() -> None:
    unknown = CLEANER.clean(raw(good(NOW, 1, device="ghost-1"), device="ghost-1"), DeviceMemory())
    assert isinstance(unknown, Refused) and unknown.letter.reason is RejectReason.UNKNOWN_DEVICE
    elsewhere = CLEANER.clean(raw(good(NOW, 1), farm="other-farm"), DeviceMemory())
    assert isinstance(elsewhere, Refused) and elsewhere.letter.reason is RejectReason.DEVICE_MISMATCH
    assert "belongs to farm 'valley-farm'" in elsewhere.letter.detail


def test_broken_bridge_headers_are_refused_not_crashed_on() -> None:
    outcome = CLEANER.clean(RawMessage(json.dumps(good(NOW, 1)).encode(), [("mqtt_topic", b"\xff")]), DeviceMemory())
    assert isinstance(outcome, Refused) and outcome.letter.reason is RejectReason.INVALID_PAYLOAD


def test_a_good_message_is_placed_in_its_zone_with_units_and_depths() -> None:
    outcome = CLEANER.clean(raw(good(NOW, 7)), DeviceMemory())
    assert isinstance(outcome, Cleaned)
    message = outcome.message
    assert (message.farm, message.zone, message.device, message.seq, message.ts) == (
        FARM,
        "tomato-north",
        DEVICE,
        7,
        NOW,
    )
    assert (message.out_of_order, message.late) == (False, False)
    assert [(v.sensor, v.unit, v.depth_cm, v.quality) for v in message.readings] == [
        ("sm-15", "%", 15.0, Quality.GOOD),
        ("sm-45", "%", 45.0, Quality.GOOD),
        ("st-15", "degC", 15.0, Quality.GOOD),
        ("bat", "V", None, Quality.GOOD),
    ]
    assert CleanMessage.decode(message.encode()) == message, "what trusted construction built is a valid contract"


def test_clock_drift_within_the_rule_passes_and_late_arrivals_are_marked() -> None:
    memory = DeviceMemory()
    ahead = CLEANER.clean(raw(good(NOW + timedelta(seconds=500), 1), received=NOW), memory)
    assert isinstance(ahead, Cleaned)
    late = CLEANER.clean(raw(good(NOW - timedelta(hours=6), 0), received=NOW), memory)
    assert isinstance(late, Cleaned) and late.message.late and late.message.out_of_order
    strict = Cleaner(load_layout(), CleanRules(max_future_s=60))
    refused = strict.clean(raw(good(NOW + timedelta(seconds=500), 1), received=NOW), DeviceMemory())
    assert isinstance(refused, Refused) and refused.letter.reason is RejectReason.FUTURE_TIMESTAMP


def test_duplicates_are_dropped_and_gaps_filled_late_are_accepted_once() -> None:
    memory = DeviceMemory()
    outcomes = []
    for seq in (0, 1, 1, 4, 2, 2, 0, 3, 4, 5):
        outcomes.append(CLEANER.clean(raw(good(NOW + timedelta(minutes=5 * seq), seq)), memory))
    kinds = [
        "dup" if isinstance(o, Duplicate) else ("late" if o.message.out_of_order else "new")  # type: ignore[union-attr]
        for o in outcomes
    ]
    assert kinds == ["new", "new", "dup", "new", "late", "dup", "dup", "late", "dup", "new"]
    assert memory.max_seq == 5 and memory.gaps == set()


def test_a_device_that_restarts_its_count_is_not_taken_for_a_duplicate() -> None:
    memory = DeviceMemory()
    for seq in range(100, 103):
        assert isinstance(CLEANER.clean(raw(good(NOW + timedelta(minutes=seq), seq)), memory), Cleaned)
    again = CLEANER.clean(raw(good(NOW + timedelta(hours=5), 0)), memory)
    assert isinstance(again, Cleaned) and not again.message.out_of_order
    assert isinstance(CLEANER.clean(raw(good(NOW + timedelta(minutes=101), 101)), memory), Duplicate)


def test_memory_survives_a_json_round_trip() -> None:
    memory = DeviceMemory()
    for seq in (0, 3, 9):
        CLEANER.clean(raw(good(NOW + timedelta(minutes=5 * seq), seq)), memory)
    copy = DeviceMemory.from_json(json.loads(json.dumps(memory.to_json())))
    assert copy == memory
    assert DeviceMemory.from_json(json.loads(json.dumps(DeviceMemory().to_json()))) == DeviceMemory()


def flags_of(values: list[float], sensor: str = "sm-15", step_s: float = 300) -> list[tuple[Flag, ...]]:
    memory = DeviceMemory()
    out = []
    for seq, value in enumerate(values):
        outcome = CLEANER.clean(raw(reading_doc(NOW + timedelta(seconds=step_s * seq), seq, value, sensor)), memory)
        assert isinstance(outcome, Cleaned)
        (reading,) = outcome.message.readings
        assert (reading.quality is Quality.SUSPECT) == bool(reading.flags)
        out.append(reading.flags)
    return out


@pytest.mark.parametrize(
    ("sensor", "values", "expected"),
    [
        ("sm-15", [20.0, 20.3, 20.1, 20.4], [(), (), (), ()]),
        ("sm-15", [20.0, 20.3, 45.0, 20.2, 20.4], [(), (), (Flag.SPIKE,), (), ()]),
        ("sm-15", [20.0, 20.3, 75.0, 20.2], [(), (), (Flag.OUT_OF_RANGE, Flag.SPIKE), ()]),
        ("sm-15", [0.5, 0.3, -0.2, 0.4], [(), (), (Flag.OUT_OF_RANGE,), ()]),
        ("st-15", [15.0, 15.1, 16.0], [(), (), (Flag.RATE_OF_CHANGE,)]),
        ("bat", [3.70, 3.62, 3.54, 3.46], [(), (Flag.RATE_OF_CHANGE,), (Flag.RATE_OF_CHANGE,), (Flag.RATE_OF_CHANGE,)]),
        ("sm-15", [20.0, 40.0, 40.1, 40.2, 40.1], [(), (Flag.SPIKE,), (Flag.SPIKE,), (Flag.SPIKE,), ()]),
        ("sm-15", [20.0, 20.3] + [21.5] * 8, [(), ()] + [()] * 6 + [(Flag.STUCK,)] * 2),
        ("bat", [3.7] * 10, [()] * 10),
    ],
    ids=[
        "noise",
        "spike",
        "spike out of range",
        "out of range",
        "rate",
        "battery collapse",
        "new level",
        "stuck",
        "steady battery",
    ],
)
def test_readings_are_flagged_not_dropped(sensor: str, values: list[float], expected: list[tuple[Flag, ...]]) -> None:
    assert flags_of(values, sensor) == expected


def test_a_spike_after_a_long_silence_is_not_judged() -> None:
    assert flags_of([20.0, 45.0], step_s=2 * 3600) == [(), ()]


def test_out_of_order_messages_are_judged_but_do_not_move_the_track() -> None:
    memory = DeviceMemory()
    for seq, value in ((0, 20.0), (2, 20.2)):
        CLEANER.clean(raw(reading_doc(NOW + timedelta(minutes=5 * seq), seq, value)), memory)
    late = CLEANER.clean(raw(reading_doc(NOW + timedelta(minutes=5), 1, 48.0)), memory)
    assert isinstance(late, Cleaned) and late.message.readings[0].flags == (Flag.SPIKE,)
    assert memory.sensors["sm-15"].last == 20.2


def test_a_message_that_makes_cleaning_itself_fail_is_dead_lettered_not_raised() -> None:
    memory = DeviceMemory()
    memory.sensors["sm-15"] = SensorTrack(good="corrupt", good_ts=NOW.timestamp())  # type: ignore[arg-type]
    outcome = CLEANER.clean(raw(reading_doc(NOW + timedelta(minutes=5), 1, 20.0)), memory)
    assert isinstance(outcome, Refused)
    assert outcome.letter.reason is RejectReason.INVALID_PAYLOAD
    assert outcome.letter.detail.startswith("cleaning failed: TypeError")


RESET = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), RejectReason.STALE_TIMESTAMP),
        (RESET, RejectReason.STALE_TIMESTAMP),
        (NOW - timedelta(days=365), RejectReason.STALE_TIMESTAMP),
        (NOW + timedelta(hours=1), RejectReason.FUTURE_TIMESTAMP),
    ],
)
def test_a_message_stamped_beyond_what_is_kept_is_refused_with_how_far_its_clock_is_off(
    stamp: datetime, reason: RejectReason
) -> None:
    outcome = CLEANER.clean(raw(good(stamp, 5), received=NOW), DeviceMemory())
    assert isinstance(outcome, Refused) and outcome.letter.reason is reason
    assert outcome.clock is not None and outcome.clock.seq == 5
    assert outcome.clock.skew_s == pytest.approx((stamp - NOW).total_seconds())
    assert outcome.letter.received_at == NOW and outcome.letter.device == DEVICE


def test_the_lower_bound_is_the_rule_not_a_guess() -> None:
    rules = CleanRules(max_past_s=3 * 86400)
    strict = Cleaner(load_layout(), rules)
    kept = strict.clean(raw(good(NOW - timedelta(days=2), 1), received=NOW), DeviceMemory())
    refused = strict.clean(raw(good(NOW - timedelta(days=4), 2), received=NOW), DeviceMemory())
    assert isinstance(kept, Cleaned) and kept.message.late
    assert isinstance(refused, Refused) and refused.letter.reason is RejectReason.STALE_TIMESTAMP
    assert "3.0 days" in refused.letter.detail and "clock" in refused.letter.detail


def test_a_clock_that_resets_and_comes_back_leaves_the_duplicate_memory_as_it_was() -> None:
    """A battery swap: the node counts on but stamps 2000-01-01 until it finds the time, then stamps true time
    again. Its stale messages are refused before the memory sees them, so every later message is new."""
    memory = DeviceMemory()
    before = [CLEANER.clean(raw(good(NOW + timedelta(minutes=5 * s), s)), memory) for s in range(10)]
    stale = [
        CLEANER.clean(raw(good(RESET + timedelta(minutes=5 * i), 10 + i), received=NOW + timedelta(minutes=50)), memory)
        for i in range(3)
    ]
    kept = memory.to_json()
    after = [CLEANER.clean(raw(good(NOW + timedelta(minutes=5 * s), s)), memory) for s in range(13, 20)]
    assert all(isinstance(o, Cleaned) for o in before + after)
    assert all(isinstance(o, Refused) and o.letter.reason is RejectReason.STALE_TIMESTAMP for o in stale)
    assert kept["max_seq"] == 9
    assert [o.message.seq for o in after if isinstance(o, Cleaned)] == list(range(13, 20))


def test_a_clock_reset_with_a_count_reset_is_a_restart_once_the_clock_is_right() -> None:
    """The node restarts its count at 0 too: its stale messages are refused, and once the clock is right again the
    low sequence numbers on newer timestamps are a restart, not duplicates."""
    memory = DeviceMemory()
    for s in range(100, 110):
        assert isinstance(CLEANER.clean(raw(good(NOW + timedelta(minutes=5 * s), s)), memory), Cleaned)
    late = NOW + timedelta(minutes=5 * 110)
    for s in range(3):
        outcome = CLEANER.clean(raw(good(RESET + timedelta(minutes=5 * s), s), received=late), memory)
        assert isinstance(outcome, Refused)
    back = [CLEANER.clean(raw(good(late + timedelta(minutes=5 * s), s)), memory) for s in range(3, 8)]
    assert [type(o).__name__ for o in back] == ["Cleaned"] * 5
