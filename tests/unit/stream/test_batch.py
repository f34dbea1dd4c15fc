"""One clean-and-store batch without a broker: lines, the zones' ``readings.clean`` records, duplicates, refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smartfarm.envelope import ENVELOPE_HEADER, ENVELOPE_VERSION, pack
from smartfarm.errors import ContractError, RejectReason
from smartfarm.layout import load_layout
from smartfarm.records import EVENT_TIMES_HEADER, ZoneReadings, read_event_times
from smartfarm.topics import zone_key
from storage.lines import ReadingLines
from stream.batch import clean_batch
from stream.clean import Cleaned, Cleaner, DeviceMemory, RawMessage
from tests.hostile import FARM, good
from tests.unit.stream.test_clean import CLEANER, NOW, raw

NORTH = ("soil-tomato-north-1", "soil-tomato-north-2")
EAST = "soil-maize-east-1"


def batch_of(records):  # type: ignore[no-untyped-def]
    return clean_batch(records, CLEANER, ReadingLines(), {}.get)


def records() -> list:
    """Four messages each of two tomato nodes and one maize node, interleaved, then a duplicate and a refusal."""
    out = []
    for seq in range(4):
        when = NOW + timedelta(minutes=5 * seq)
        for device in (*NORTH, EAST):
            out.append((device.encode(), raw(good(when, seq, device=device), device=device)))
    out.append((EAST.encode(), raw(good(NOW, 0, device=EAST), device=EAST)))  # sent again: a duplicate
    out.append((b"ghost-1", raw(good(NOW, 0, device="ghost-1"), device="ghost-1")))
    return out


def test_a_batch_sends_one_record_per_zone_with_each_devices_messages_in_order() -> None:
    batch = batch_of(records())
    assert (len(batch.cleaned), batch.duplicates, len(batch.refused)) == (12, 1, 1)
    assert len(batch.lines) == 12 * 4
    sent = batch.zone_records()
    assert [key for key, _, _ in sent] == [zone_key(FARM, "tomato-north"), zone_key(FARM, "maize-east")]
    north, east = (ZoneReadings.decode(value) for _, value, _ in sent)
    assert (north.farm, north.zone, east.zone) == (FARM, "tomato-north", "maize-east")
    assert [(m.device, m.seq) for m in north.messages] == [(d, s) for s in range(4) for d in NORTH]
    assert [(m.device, m.seq) for m in east.messages] == [(EAST, s) for s in range(4)]
    assert list(north.messages) == [m for m in batch.cleaned if m.zone == "tomato-north"], "value for value"
    for (_, _, headers), record in zip(sent, (north, east), strict=True):
        assert [name for name, _ in headers] == [EVENT_TIMES_HEADER]
        assert read_event_times(headers[0][1]) == [m.ts.timestamp() for m in record.messages], "the body's times"


def test_packed_records_are_the_bytes_pydantic_writes_and_split_to_fit() -> None:
    messages = [m for m in batch_of(records()).cleaned if m.zone == "tomato-north"]
    (one,) = ZoneReadings.pack(FARM, "tomato-north", [m.encode() for m in messages])
    expected = ZoneReadings.create(farm=FARM, zone="tomato-north", messages=messages).encode()
    assert one == expected, "the hand-joined record is what the contract encodes"

    many = [messages[i % len(messages)].model_copy(update={"seq": i}) for i in range(3000)]
    packed = ZoneReadings.pack(FARM, "tomato-north", [m.encode() for m in many])
    assert len(packed) > 1, "3,000 messages of about 600 bytes do not fit in one record"
    assert all(len(p) <= ZoneReadings.MAX_BYTES for p in packed)
    back = [m for p in packed for m in ZoneReadings.decode(p).messages]
    assert back == many, "split in order, nothing lost"
    parts = ZoneReadings.pack_parts(FARM, "tomato-north", [m.encode() for m in many])
    assert [record for record, _ in parts] == packed
    assert [i for _, held in parts for i in held] == list(range(len(many))), "each message's index, once, in order"
    assert [len(ZoneReadings.decode(r).messages) for r, _ in parts] == [len(held) for _, held in parts]


def test_a_record_holds_one_zone_only() -> None:
    outcomes = [CLEANER.clean(raw(good(NOW, 0, device=d), device=d), DeviceMemory()) for d in (NORTH[0], EAST)]
    pair = [o.message for o in outcomes if isinstance(o, Cleaned)]
    assert [m.zone for m in pair] == ["tomato-north", "maize-east"]
    data = ZoneReadings.pack(FARM, "tomato-north", [m.encode() for m in pair])[0]
    with pytest.raises(ContractError) as refused:
        ZoneReadings.decode(data)
    assert refused.value.reason is RejectReason.INVALID_PAYLOAD
    assert "maize-east" in str(refused.value)


def test_the_cleaner_is_shared_across_batches_but_memories_come_from_the_table() -> None:
    first = batch_of(records()[:3])
    stored = dict(first.memory_values())
    again = clean_batch(records()[:3], Cleaner(load_layout()), ReadingLines(), stored.get)
    assert (again.duplicates, again.cleaned) == (3, []), "what the table remembers is not cleaned twice"


def enveloped(records: list, partition: int = 2, offset: int = 70) -> RawMessage:
    """``records`` packed into one envelope record, as the bridge writes it."""
    letters = [
        (key, dict(raw.headers)["mqtt_topic"], dict(raw.headers)["received_at"], raw.value) for key, raw in records
    ]
    headers = [("bridge_id", b"b"), (ENVELOPE_HEADER, ENVELOPE_VERSION)]
    return RawMessage(pack(letters), headers, "t.telemetry.raw", partition, offset)


def test_an_envelope_is_cleaned_as_its_messages_would_be_one_by_one() -> None:
    one_by_one = batch_of(records())
    packed = batch_of([(b"", enveloped(records()[:7])), (b"", enveloped(records()[7:]))])
    assert packed.lines == one_by_one.lines
    assert packed.cleaned == one_by_one.cleaned
    assert (packed.duplicates, packed.reasons) == (one_by_one.duplicates, one_by_one.reasons)
    (letter,) = (r.letter for r in packed.refused)
    assert (letter.reason, letter.device, letter.source_partition, letter.source_offset) == (
        RejectReason.UNKNOWN_DEVICE,
        "ghost-1",
        2,
        70,
    ), "a refused message inside names the envelope's position"


def test_a_broken_envelope_is_dead_lettered_whole_and_the_batch_goes_on() -> None:
    broken = enveloped(records()[:3])
    broken = RawMessage(broken.value[:-5], broken.headers, broken.topic, broken.partition, broken.offset)
    batch = batch_of([(b"", broken), *records()[3:6]])
    (refused,) = batch.refused
    assert refused.letter.reason is RejectReason.INVALID_PAYLOAD and "envelope unreadable" in refused.letter.detail
    assert refused.letter.payload == broken.value, "every byte kept for a replay"
    assert len(batch.cleaned) == 3


def test_the_zone_agent_reads_the_same_times_from_the_header_as_from_the_body() -> None:
    from types import SimpleNamespace

    from stream.worker import zone_times

    sent = batch_of(records()).zone_records()
    zones = {(farm.id, zone.id) for farm in load_layout().farms for zone in farm.zones}

    def events(with_header: bool) -> list[SimpleNamespace]:
        return [
            SimpleNamespace(message=SimpleNamespace(key=key, value=value, headers=headers if with_header else []))
            for key, value, headers in sent
        ]

    from_header, refused = zone_times(events(True), zones)
    from_body, refused_too = zone_times(events(False), zones)
    assert not refused and not refused_too
    assert from_header == from_body and sum(map(len, from_header.values())) == 12
    readings = [r for found in from_header.values() for m in found for r in m.readings]
    assert len(readings) == sum(len(m.readings) for m in batch_of(records()).cleaned)


def test_messages_whose_points_the_database_refused_become_dead_letters_and_the_rest_go_on() -> None:
    from smartfarm.records import RejectStage
    from storage.influx import Refusal

    batch = batch_of(records())
    per_message = [len(ReadingLines().lines(m)) for m in batch.cleaned]
    second = per_message[0]  # the first line of the second message (north-2), the last of the sixth (east)
    sixth_last = sum(per_message[:6]) - 1
    cleaned = len(batch.cleaned)
    batch.refuse_stored([Refusal(second, "partial write: dropped=1"), Refusal(sixth_last, "field type conflict")])
    assert len(batch.cleaned) == cleaned - 2 and batch.refused_lines == 2
    letters = [r.letter for r in batch.refused if r.letter.reason is RejectReason.STORAGE_REFUSED]
    assert [(x.stage, x.device) for x in letters] == [(RejectStage.STORE, NORTH[1]), (RejectStage.STORE, EAST)]
    assert "partial write: dropped=1" in letters[0].detail and "1 of the" in letters[0].detail
    assert batch.reasons[RejectReason.STORAGE_REFUSED] == 2
    zoned = {key for key, _, _ in batch.zone_records()}
    assert zone_key(FARM, "tomato-north") in zoned, "the other messages still go on to their zones"


def test_a_message_refused_for_its_clock_leaves_a_device_clock_point() -> None:
    stale = NOW.replace(year=2000)
    batch = batch_of([(EAST.encode(), raw(good(stale, 9, device=EAST), received=NOW, device=EAST))])
    assert batch.reasons == {RejectReason.STALE_TIMESTAMP: 1} and not batch.lines
    [line] = batch.clock_lines
    assert line.startswith(f"device_clock,device={EAST},farm={FARM},reason=stale_timestamp skew_s=-")
