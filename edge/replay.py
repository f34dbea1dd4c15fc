"""Replaying recorded readings: a CSV (as ``smartfarm edge --record`` writes it) played back as telemetry.

Columns: ``ts`` (ISO 8601 with offset), ``device``, ``seq``, ``sensor``, ``kind``, ``value``; one row per
reading, the rows of one message together. Rows of one (device, seq) become one message; messages with the
same ``ts`` form one batch, played at its time / speed. A row that cannot be read stops the replay with an error
naming the line; nothing is guessed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from edge.simulator import Message, Tick
from smartfarm.errors import ConfigError
from smartfarm.layout import Layout
from smartfarm.telemetry import Reading, Telemetry

RECORD_COLUMNS = ("ts", "device", "seq", "sensor", "kind", "value")


class Recorder:
    """Writes every reading sent, once per message, to a CSV that ``edge.replay`` can play back."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = path.open("w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(RECORD_COLUMNS)
        self._seen: set[tuple[str, int]] = set()

    def write(self, batch: Tick) -> None:
        for message in batch.messages:
            if (message.device, message.seq) in self._seen:
                continue
            self._seen.add((message.device, message.seq))
            for r in message.readings:
                self._writer.writerow(
                    (message.ts.isoformat(), message.device, message.seq, r.sensor, r.kind.value, r.value)
                )

    def close(self) -> None:
        self._file.close()


class CsvReplaySource:
    """Batches of telemetry read from a recording, for devices in ``layout``."""

    def __init__(self, path: Path, layout: Layout, devices: set[str] | None = None) -> None:
        self.path = path
        self.placements = layout.placements
        self.devices = devices
        try:
            self._file = path.open(newline="")
        except OSError as exc:
            raise ConfigError(f"cannot read replay file {path}: {exc.strerror}") from exc
        reader = csv.DictReader(self._file)
        if reader.fieldnames is None or not set(RECORD_COLUMNS) <= set(reader.fieldnames):
            raise ConfigError(f"{path}: the header must name the columns {', '.join(RECORD_COLUMNS)}")
        self._messages = self._read(reader)
        self._next: Message | None = next(self._messages, None)
        self._last = self._next.ts if self._next else datetime.now().astimezone()

    def _read(self, reader: csv.DictReader[str]) -> Iterator[Message]:
        numbered = ((reader.line_num, row) for row in reader)
        for (device, seq, ts), rows in groupby(numbered, key=lambda r: (r[1]["device"], r[1]["seq"], r[1]["ts"])):
            group = list(rows)
            line = group[0][0]
            placement = self.placements.get(device)
            if placement is None:
                raise ConfigError(f"{self.path} line {line}: device {device!r} is not in the layout")
            if self.devices is not None and device not in self.devices:
                continue
            try:
                readings = tuple(
                    Reading(sensor=row["sensor"], kind=row["kind"], value=float(row["value"])) for _, row in group
                )
                message = Telemetry.create(
                    device=device, seq=int(seq), ts=datetime.fromisoformat(ts), readings=readings
                )
            except (ValueError, ValidationError) as exc:
                raise ConfigError(f"{self.path} line {line}: {exc}") from exc
            yield Message(placement.farm.id, device, message.seq, message.ts, message.encode(), readings)

    def next(self) -> Tick | None:
        if self._next is None:
            self._file.close()
            return None
        batch = Tick(self._next.ts)
        self._last = batch.time
        while self._next is not None and self._next.ts == batch.time:
            batch.messages.append(self._next)
            self._next = next(self._messages, None)
        return batch

    def finish(self) -> Tick:
        return Tick(self._last)

    def irrigate(self, farm: str, zone: str, amount_mm: float) -> None:
        """A recording cannot change: irrigation during a replay shows in the stream, not in the readings."""
