"""Line protocol built fast: what influxdb-client's ``Point`` writes, byte for byte, without a Point per value.

At tens of thousands of readings a second, building a ``Point`` (and a pydantic ``ReadingPoint``) per value costs
more than everything else the store stage does. This module writes the same text with string formatting and
caches the escaped tag prefix of every series. ``tests/unit/storage/test_lines.py`` holds its output against
influxdb-client's serializer on awkward names and values, and against ``storage.schema.ReadingPoint``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from smartfarm.contract import epoch_us
from smartfarm.records import CleanMessage

_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})

FieldValue = float | int | bool | str | None


def time_ns(when: datetime) -> int:
    """Nanoseconds since the epoch, exactly (no float rounding), as influxdb-client computes them."""
    return epoch_us(when) * 1000


def escape_tag_value(value: str) -> str:
    escaped = value.translate(_ESCAPE_KEY)
    return escaped + " " if escaped.endswith("\\") else escaped


def format_field(value: FieldValue) -> str | None:
    """A field value as line protocol writes it; None for a value that is left out (None, NaN, infinity)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = str(value)
        return text[:-2] if text.endswith(".0") else text
    return '"' + value.translate(_ESCAPE_STRING) + '"'


def series_key(measurement: str, tags: Mapping[str, str | None]) -> str:
    """The head of a line: the measurement and its tags in key order, empty tags left out."""
    head = measurement.translate(_ESCAPE_MEASUREMENT)
    for key in sorted(tags):
        value = tags[key]
        if value is None:
            continue
        key_text, value_text = key.translate(_ESCAPE_KEY), escape_tag_value(value)
        if key_text and value_text:
            head += f",{key_text}={value_text}"
    return head


def encode_line(measurement: str, tags: Mapping[str, str | None], fields: Mapping[str, FieldValue], ns: int) -> str:
    """One line: tags and fields in key order, empty tags and unset fields left out; "" when no field is set."""
    head = series_key(measurement, tags)
    body = []
    for key in sorted(fields):
        text = format_field(fields[key])
        if text is not None:
            body.append(f"{key.translate(_ESCAPE_KEY)}={text}")
    if not body:
        return ""
    return f"{head} {','.join(body)} {ns}"


class ReadingLines:
    """The ``reading`` lines of clean messages (``storage.schema.ReadingPoint``), the tag prefix of each series
    built once: tags farm, zone, device, sensor, kind; fields value, seq, quality, flags, depth_cm."""

    MEASUREMENT = "reading"

    def __init__(self) -> None:
        self._heads: dict[tuple[str, str, str, str, str, float | None], str] = {}

    def _head(self, farm: str, zone: str, device: str, sensor: str, kind: str, depth: float | None) -> str:
        """The series key and the first field (``depth_cm``, a sensor's constant) of a sensor's lines."""
        key = (farm, zone, device, sensor, kind, depth)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) > 1_000_000:
                self._heads.clear()
            tags = {"farm": farm, "zone": zone, "device": device, "sensor": sensor, "kind": kind}
            head = series_key(self.MEASUREMENT, tags) + " "
            if depth is not None:
                head += f"depth_cm={format_field(float(depth))},"
            self._heads[key] = head
        return head

    def lines(self, message: CleanMessage) -> list[str]:
        """One line per reading of ``message``, stamped with the message's time."""
        tail = f",seq={message.seq}i,value="
        end = f" {time_ns(message.ts)}"
        farm, zone, device = message.farm, message.zone, message.device
        heads, out = self._heads, []
        for r in message.readings:
            # Enum members are read through ``_value_``: the ``value`` property is a Python call per access.
            head = heads.get((farm, zone, device, r.sensor, r.kind._value_, r.depth_cm))
            if head is None:
                head = self._head(farm, zone, device, r.sensor, r.kind._value_, r.depth_cm)
            flags = f'flags="{",".join(f._value_ for f in r.flags)}",' if r.flags else ""
            text = repr(r.value)  # what format_field writes for a finite float (clean values are finite)
            if text[-2:] == ".0":
                text = text[:-2]
            out.append(f'{head}{flags}quality="{r.quality._value_}"{tail}{text}{end}')
        return out
