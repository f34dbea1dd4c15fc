"""One clean-and-store batch without a broker: lines, the zones' ``readings.clean`` records, duplicates, refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smartfarm.errors import ContractError, RejectReason
from smartfarm.layout import load_layout
from smartfarm.records import ZoneReadings
from smartfarm.topics import zone_key
from storage.lines import ReadingLines
from stream.batch import clean_batch
from stream.clean import Cleaned, Cleaner, DeviceMemory
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
    assert [key for key, _ in sent] == [zone_key(FARM, "tomato-north"), zone_key(FARM, "maize-east")]
    north, east = (ZoneReadings.decode(value) for _, value in sent)
    assert (north.farm, north.zone, east.zone) == (FARM, "tomato-north", "maize-east")
    assert [(m.device, m.seq) for m in north.messages] == [(d, s) for s in range(4) for d in NORTH]
    assert [(m.device, m.seq) for m in east.messages] == [(EAST, s) for s in range(4)]
    assert list(north.messages) == [m for m in batch.cleaned if m.zone == "tomato-north"], "value for value"


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
