"""Generated hostile input through the pure half of the pipeline: the bridge's door and router, the envelope and
the cleaner. Whatever the bytes, the JSON, the topic or the headers, each message passes or becomes a dead letter
with a reason; nothing raises out of them, and no message takes the cleaner's catch-all (``cleaning failed``),
which would mean the cleaning code itself broke on it. Example counts are bounded so the unit lane stays fast."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartfarm.envelope import ENVELOPE_HEADER, ENVELOPE_VERSION, EnvelopeError, Letter, pack, unpack
from smartfarm.errors import ContractError, RejectReason
from smartfarm.records import DeadLetter, RejectStage
from smartfarm.telemetry import Telemetry
from storage.lines import ReadingLines
from stream.batch import clean_batch
from stream.clean import Cleaned, DeviceMemory, Duplicate, RawMessage, Refused, opened
from stream.gate import DEADLETTER, STATUS, TELEMETRY
from tests.hostile import DEVICE, FARM, good, hostile_payloads
from tests.unit.stream.test_clean import CLEANER, NOW, ROUTER, TOPICS

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
"""Any JSON (NaN and infinities included, as Python's encoder writes them)."""

levels = st.sampled_from(["+", "#", "$SYS", "", "..", FARM, DEVICE, "telemetry", "status", "Ünïcode", "a" * 300])
topics = st.one_of(
    st.text(max_size=80),
    st.lists(levels | st.text(max_size=8), min_size=1, max_size=7).map("/".join),
    st.sampled_from([TOPICS.telemetry(FARM, DEVICE), TOPICS.status(FARM, DEVICE)]),
)
"""Any topic string: arbitrary text, topic-shaped strings with wildcards, ``$SYS``, empty and long levels."""

sensors = st.sampled_from(["sm-15", "sm-45", "st-15", "bat", "sm-99", "SM 15!", ""]) | st.text(max_size=8)
kinds = st.sampled_from(["soil_moisture", "soil_temperature", "battery", "air_temperature", "moonlight"])
numbers: st.SearchStrategy[Any] = st.integers() | st.floats() | st.sampled_from(["23.4", None, True, [], {}])
zones = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12, minutes=-59))])
times = st.datetimes(timezones=zones).map(datetime.isoformat) | st.text(max_size=30) | st.integers() | st.floats()
telemetry_docs = st.fixed_dictionaries(
    {"schema_version": st.sampled_from([1, 1, 2, "1"]), "device": st.sampled_from([DEVICE, "ghost-1", ""])},
    optional={
        "seq": st.integers() | st.floats() | st.just("1"),
        "ts": times,
        "readings": st.lists(
            st.fixed_dictionaries({"sensor": sensors, "kind": kinds, "value": numbers}, optional={"x": json_values}),
            max_size=6,
        ),
        "debug": json_values,
    },
)
"""Telemetry-shaped documents with hostile fields: they reach every check the contract and the layout make."""

payloads = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    telemetry_docs.map(lambda d: json.dumps(d).encode()),
    st.builds(
        lambda n, seq: json.dumps(good(NOW - timedelta(minutes=n), seq)).encode(),
        st.integers(0, 10**6),
        st.integers(0, 2**64),
    ),
)
header_values = st.binary(max_size=40) | st.sampled_from(
    [NOW.isoformat().encode(), b"2026-07-01T12:00:00", TOPICS.telemetry(FARM, DEVICE).encode(), b"\xff", b""]
)
headers = st.none() | st.lists(
    st.tuples(st.sampled_from(["mqtt_topic", "received_at", "bridge_id", ENVELOPE_HEADER, "x"]), header_values),
    max_size=5,
)
"""Any headers a record on ``telemetry.raw`` may carry, including envelope-looking ones from outside the bridge."""


def assert_letter(letter: DeadLetter, stage: RejectStage, payload: bytes) -> None:
    """A dead letter that says why, where it was refused, and keeps the bytes; it survives its own encoding."""
    assert letter.stage is stage
    assert letter.detail and not letter.detail.startswith("cleaning failed"), letter.detail
    assert letter.payload == payload
    assert DeadLetter.decode(letter.encode()) == letter


def assert_memory_round_trips(memory: DeviceMemory) -> None:
    stored = json.dumps(memory.to_json(), allow_nan=False)
    again = DeviceMemory.from_json(json.loads(stored))
    assert again.to_json() == memory.to_json()


@FAST
@given(topic=topics, payload=payloads, received=st.floats(0, 4e9))
def test_the_router_forwards_or_dead_letters_any_topic_and_bytes(topic: str, payload: bytes, received: float) -> None:
    route = ROUTER.route(topic, payload, received)
    assert route.kind in (TELEMETRY, STATUS, DEADLETTER)
    if route.kind == DEADLETTER:
        assert route.reason is not None
        letter = DeadLetter.decode(route.value)
        assert letter.reason is route.reason
        assert_letter(letter, RejectStage.BRIDGE, payload)
    elif route.kind == TELEMETRY:
        assert route.value == payload, "telemetry is forwarded untouched"


letters = st.tuples(st.binary(max_size=20), st.binary(max_size=40), st.binary(max_size=30), st.binary(max_size=60))


@FAST
@given(st.lists(letters, max_size=6))
def test_an_envelope_gives_back_its_messages(inside: list[tuple[bytes, bytes, bytes, bytes]]) -> None:
    value = pack(inside)
    if inside:
        assert unpack(value) == [Letter(*m) for m in inside]


@FAST
@given(st.binary(max_size=200))
def test_any_bytes_unpack_or_raise_envelope_error(value: bytes) -> None:
    try:
        got = unpack(value)
    except EnvelopeError:
        return
    assert pack(got) == value


@FAST
@given(value=st.binary(max_size=200), extra=headers)
def test_opening_any_record_gives_messages_or_one_dead_letter(value: bytes, extra: Any) -> None:
    raw = RawMessage(value, [(ENVELOPE_HEADER, ENVELOPE_VERSION), *(extra or [])], "t.telemetry.raw", 2, 9)
    inside = opened(b"k", raw)
    if isinstance(inside, Refused):
        assert_letter(inside.letter, RejectStage.CLEAN, value)
        assert (inside.letter.source_partition, inside.letter.source_offset) == (2, 9)
        return
    for _, message in inside:
        assert_outcome(CLEANER.clean(message, DeviceMemory()), message)


def assert_outcome(outcome: object, raw: RawMessage) -> None:
    assert isinstance(outcome, Cleaned | Duplicate | Refused)
    if isinstance(outcome, Refused):
        assert_letter(outcome.letter, RejectStage.CLEAN, raw.value)


@FAST
@given(payload=payloads, extra=headers, topic=topics, seen=st.integers(-1, 2**64))
def test_the_cleaner_passes_or_dead_letters_any_payload_and_headers(
    payload: bytes, extra: Any, topic: str, seen: int
) -> None:
    memory = DeviceMemory(max_seq=seen)
    through_bridge = ROUTER.route(topic, payload, NOW.timestamp())
    for raw in (RawMessage(payload, extra, "t.telemetry.raw", 0, 1), RawMessage(payload, through_bridge.headers)):
        assert_outcome(CLEANER.clean(raw, memory), raw)
        assert_memory_round_trips(memory)


@FAST
@given(doc=telemetry_docs, ahead=st.integers(-(10**6), 10**6))
def test_telemetry_shaped_documents_are_cleaned_or_refused_and_memory_stays_json(doc: dict, ahead: int) -> None:
    payload = json.dumps(doc).encode()
    route = ROUTER.route(TOPICS.telemetry(FARM, DEVICE), payload, NOW.timestamp() + ahead)
    raw = RawMessage(route.value, route.headers)
    memory = DeviceMemory()
    assert_outcome(CLEANER.clean(raw, memory), raw)
    assert_memory_round_trips(memory)


hostile_table = hostile_payloads(NOW)


@FAST
@given(
    hostile=st.lists(
        payloads.filter(lambda p: b'"schema_version": 1' not in p)
        | st.sampled_from([h.payload for h in hostile_table]),
        max_size=12,
    ),
    places=st.lists(st.integers(0, 30), max_size=12),
    enveloped=st.booleans(),
)
def test_hostile_messages_between_good_ones_never_cost_a_good_one(
    hostile: list[bytes], places: list[int], enveloped: bool
) -> None:
    topic = TOPICS.telemetry(FARM, DEVICE)
    goods = [json.dumps(good(NOW - timedelta(minutes=30 - i), 1000 + i)).encode() for i in range(30)]
    stream = list(goods)
    for payload, at in zip(hostile, places, strict=False):
        stream.insert(at, payload)
    routes = [ROUTER.route(topic, payload, NOW.timestamp()) for payload in stream]
    passed = [r for r in routes if r.kind == TELEMETRY]
    if enveloped:
        value = pack([(r.key, r.headers[0][1], r.headers[1][1], r.value) for r in passed])  # type: ignore[index]
        env = [("bridge_id", b"b"), (ENVELOPE_HEADER, ENVELOPE_VERSION)]
        records = [(DEVICE.encode(), RawMessage(value, env, "t.telemetry.raw", 0, 0))]
    else:
        records = [(r.key, RawMessage(r.value, r.headers, "t.telemetry.raw", 0, i)) for i, r in enumerate(passed)]
    batch = clean_batch(records, CLEANER, ReadingLines(), lambda _: None)
    assert sorted(m.seq for m in batch.cleaned) == list(range(1000, 1030)), "every good message is cleaned"
    assert len(batch.lines) == 30 * 4
    assert len(batch.refused) + batch.duplicates == len(passed) - 30
    for refused in batch.refused:
        assert refused.letter.detail and not refused.letter.detail.startswith("cleaning failed")
    for memory in batch.memories.values():
        assert_memory_round_trips(memory)


@FAST
@given(ts=json_values.filter(lambda v: not isinstance(v, str)))
def test_a_timestamp_that_is_not_text_is_refused_never_guessed(ts: Any) -> None:
    payload = json.dumps(good(NOW, 1, ts=ts)).encode()
    with pytest.raises(ContractError) as refused:
        Telemetry.decode(payload)
    assert refused.value.reason in (RejectReason.INVALID_PAYLOAD, RejectReason.INVALID_JSON)
