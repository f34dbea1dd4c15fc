"""One batch of the clean-and-store agent, without any I/O: raw records in; InfluxDB lines, clean records, dead
letters, duplicate counts and the devices' new memories out.

The agent writes the lines first and only then sends the records and saves the memories, so a worker that dies
between the two finds the messages unseen and cleans them again (InfluxDB overwrites the same points); saving the
memories first would make them duplicates that were never stored.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from smartfarm.errors import RejectReason
from smartfarm.records import EVENT_TIMES_HEADER, CleanMessage, Flag, ZoneReadings, event_times_header
from smartfarm.topics import zone_key
from storage.lines import ReadingLines
from stream.clean import Cleaned, Cleaner, DeviceMemory, Duplicate, RawMessage, Refused, opened


@dataclass(slots=True)
class Batch:
    """What one batch of raw records became."""

    lines: list[str] = field(default_factory=list)
    cleaned: list[CleanMessage] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    duplicates: int = 0
    memories: dict[bytes, DeviceMemory] = field(default_factory=dict)
    flags: Counter[Flag] = field(default_factory=Counter)
    reasons: Counter[RejectReason] = field(default_factory=Counter)

    def zone_records(self) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
        """The ``readings.clean`` records of the batch (zone key, ``ZoneReadings`` JSON, the ``event_times``
        header): one per zone, or a few if its messages do not fit in one, each device's messages in the order
        they were cleaned."""
        by_zone: dict[tuple[str, str], list[CleanMessage]] = {}
        for message in self.cleaned:
            by_zone.setdefault((message.farm, message.zone), []).append(message)
        out = []
        for (farm, zone), messages in by_zone.items():
            key = zone_key(farm, zone)
            for record, held in ZoneReadings.pack_parts(farm, zone, [m.encode() for m in messages]):
                stamps = event_times_header([messages[i].ts for i in held])
                out.append((key, record, [(EVENT_TIMES_HEADER, stamps)]))
        return out

    def memory_values(self) -> Iterable[tuple[bytes, bytes]]:
        """The touched devices' memories as table entries (device id -> JSON)."""
        for key, memory in self.memories.items():
            yield key, json.dumps(memory.to_json(), separators=(",", ":")).encode()


def load_memory(stored: bytes | None) -> DeviceMemory:
    """A device's memory from its table entry (a fresh one for a device never seen)."""
    return DeviceMemory() if stored is None else DeviceMemory.from_json(json.loads(stored))


def clean_batch(
    records: Iterable[tuple[bytes, RawMessage]],
    cleaner: Cleaner,
    writer: ReadingLines,
    stored: Callable[[bytes], bytes | None],
) -> Batch:
    """Clean ``records`` (Kafka key, raw message: one device message, or an envelope of several) in order;
    ``stored`` gives a device's table entry by key."""
    batch = Batch()
    for record_key, record in records:
        inside = opened(record_key, record)
        if isinstance(inside, Refused):
            batch.refused.append(inside)
            batch.reasons[inside.letter.reason] += 1
            continue
        for key, raw in inside:
            memory = batch.memories.get(key)
            if memory is None:
                memory = batch.memories[key] = load_memory(stored(key))
            outcome = cleaner.clean(raw, memory)
            if isinstance(outcome, Cleaned):
                batch.cleaned.append(outcome.message)
                batch.lines += writer.lines(outcome.message)
                batch.flags.update(outcome.flags)
            elif isinstance(outcome, Duplicate):
                batch.duplicates += 1
            else:
                batch.refused.append(outcome)
                batch.reasons[outcome.letter.reason] += 1
    return batch
