"""One batch of the clean-and-store agent, without any I/O: raw records in; InfluxDB lines, clean records, dead
letters, duplicate counts and the devices' new memories out.

The agent writes the lines first and only then sends the records and saves the memories, so a worker that dies
between the two finds the messages unseen and cleans them again (InfluxDB overwrites the same points); saving the
memories first would make them duplicates that were never stored.
"""

from __future__ import annotations

import json
import logging
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from smartfarm.errors import ClockError, ContractError, RejectReason
from smartfarm.records import (
    EVENT_TIMES_HEADER,
    CleanMessage,
    Flag,
    RejectStage,
    ZoneReadings,
    event_times_header,
)
from smartfarm.topics import MqttTopics, zone_key
from storage.influx import Refusal
from storage.lines import ReadingLines
from storage.schema import DeviceClockPoint
from stream.clean import Cleaned, Cleaner, DeviceMemory, Duplicate, RawMessage, Refused, opened, refusal

log = logging.getLogger(__name__)


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
    sources: list[RawMessage] = field(default_factory=list)
    """The raw message behind each cleaned one (for a dead letter if the database refuses it)."""
    line_ends: list[int] = field(default_factory=list)
    """Where each cleaned message's lines end in ``lines``."""
    refused_lines: int = 0
    """Lines the database refused for good (their messages moved to ``refused``)."""
    clock_lines: list[str] = field(default_factory=list)
    """``device_clock`` points of the messages refused for their timestamps (device health: a suspect clock)."""

    def refuse_stored(self, refusals: Iterable[Refusal]) -> None:
        """Move the messages whose lines InfluxDB refused for good from ``cleaned`` to ``refused``, each with a
        ``storage_refused`` dead letter giving the database's answer for its first refused line: it is neither
        sent on to the zones nor counted as stored (its other readings stay stored). The device's memory keeps
        the message as seen, so a redelivery is a duplicate, not a second dead letter."""
        answers: dict[int, list[Refusal]] = {}
        for refused in refusals:
            if refused.index >= len(self.lines):  # a device_clock point: ours, no message behind it
                log.error("InfluxDB refused a device_clock point: %s", refused.detail)
                continue
            owner = bisect_right(self.line_ends, refused.index)
            answers.setdefault(owner, []).append(refused)
        if not answers:
            return
        for owner in sorted(answers):
            message, found = self.cleaned[owner], answers[owner]
            total = self.line_ends[owner] - (self.line_ends[owner - 1] if owner else 0)
            detail = (
                f"InfluxDB refused {len(found)} of the {total} readings of {message.device} seq {message.seq} "
                f"at {message.ts.isoformat()}: {found[0].detail}"
            )
            error = ContractError(RejectReason.STORAGE_REFUSED, detail)
            self.refused.append(refusal(error, self.sources[owner], RejectStage.STORE))
            self.reasons[RejectReason.STORAGE_REFUSED] += 1
            self.refused_lines += len(found)
        keep = [i for i in range(len(self.cleaned)) if i not in answers]
        self.cleaned = [self.cleaned[i] for i in keep]
        self.sources = [self.sources[i] for i in keep]
        self.line_ends = []  # the lines were written: no index into them is asked for again

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
                batch.sources.append(raw)
                batch.lines += writer.lines(outcome.message)
                batch.line_ends.append(len(batch.lines))
                batch.flags.update(outcome.flags)
            elif isinstance(outcome, Duplicate):
                batch.duplicates += 1
            else:
                batch.refused.append(outcome)
                batch.reasons[outcome.letter.reason] += 1
                if outcome.clock is not None:
                    batch.clock_lines.append(clock_line(outcome, outcome.clock))
    return batch


def clock_line(refused: Refused, clock: ClockError) -> str:
    """The ``device_clock`` point of a message refused for its timestamp, at its receipt. Receipts have
    millisecond precision, so the sequence number goes into the microseconds below it: messages received within
    one millisecond stay points of their own instead of overwriting each other."""
    letter = refused.letter
    farm, device = MqttTopics.farm_and_device_named(letter.mqtt_topic or "") or ("", None)
    point = DeviceClockPoint(
        time=letter.received_at + timedelta(microseconds=clock.seq % 1000),
        farm=farm,
        device=device or letter.device or "",
        skew_s=clock.skew_s,
        reason=letter.reason.value,
    )
    return point.to_line()
