"""The shapes of the ``reading`` measurement that the schema phase (``benchmarks.schema``) measures, without any
I/O: the lines each writes for a clean message, and the API's and dashboards' main reads rewritten for it, their
answers parsed into the form today's reads (``storage.zones``) give, so the phase can check that every shape
answers alike.

- ``Shape.POINT`` (A, today's): a point per reading, ``storage.lines.ReadingLines``: tags farm, zone, device,
  sensor, kind; fields value, seq, quality, flags, depth_cm.
- ``Shape.MESSAGE`` (B): one line per message: tags farm, zone, device; a field per reading; ``seq``.
- ``Shape.KIND`` (C): one line per device and kind in a message: tags farm, zone, device, kind; a field per
  reading of that kind; ``seq`` on each.

The field keys of B and C: a good reading's value under ``<kind>.<sensor>`` (``soil_moisture.sm-15``); a suspect
one's under ``<kind>.<sensor>.suspect``, with its flags in ``<kind>.<sensor>.flags``. Kinds and identifiers hold
no dot, so a key names its kind and sensor, and one regular expression selects a kind's good values
(``/^soil_moisture\\.[a-z0-9-]+$/``), in the API as in a Grafana panel: "good only" is which field is read, not a
string compared on every point (today's ``quality = 'good'``). ``depth_cm``, a sensor's constant, is left to the
layout (the zone stage already reads depths from it).

InfluxQL gives one selector's time only when a statement has a single selector (``last(a), last(b)`` come back
stamped with the range's start), so the latest value of each sensor is one statement per key, all sent in one
request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from smartfarm.layout import SensorKind
from smartfarm.records import CleanMessage
from storage.lines import series_key, time_ns
from storage.zones import NS, Bucket, StoredReading, _quote, _since, _where  # the one spelling of tags and ranges

MEASUREMENT = "reading"
SUSPECT = ".suspect"
FLAGS = ".flags"
READINGS = r"/^[a-z_]+\.[a-z0-9-]+(\.suspect)?$/"
"""Every reading's value field, good or suspect (not ``seq``, not the flags)."""
STORED = r"/^[a-z_]+\.[a-z0-9-]+(\.suspect|\.flags)?$/"
"""Every reading's value and flags fields."""


class Shape(StrEnum):
    """How a device message's readings are laid out in ``reading``."""

    POINT = "A"
    """Today's: a point per reading (tags farm, zone, device, sensor, kind)."""
    MESSAGE = "B"
    """A line per message (tags farm, zone, device), a field per reading."""
    KIND = "C"
    """A line per device and kind of a message (tags farm, zone, device, kind), a field per reading."""

    @property
    def label(self) -> str:
        return {"A": "A: point per reading", "B": "B: line per message", "C": "C: line per device and kind"}[self]


def field_key(kind: str, sensor: str) -> str:
    """The key of a good reading's value in B and C; ``SUSPECT`` and ``FLAGS`` appended for a suspect one's."""
    return f"{kind}.{sensor}"


def split_key(key: str) -> tuple[SensorKind, str, bool] | None:
    """(kind, sensor, suspect) of a reading's value field key; None for any other key (``seq``, flags)."""
    parts = key.split(".")
    if len(parts) == 2:
        return SensorKind(parts[0]), parts[1], False
    if len(parts) == 3 and "." + parts[2] == SUSPECT:
        return SensorKind(parts[0]), parts[1], True
    return None


class WideLines:
    """The B lines (``by_kind`` False) or C lines (True) of clean messages, each series' head built once."""

    def __init__(self, by_kind: bool) -> None:
        self.by_kind = by_kind
        self._heads: dict[tuple[str, str, str, str], str] = {}

    def _head(self, farm: str, zone: str, device: str, kind: str) -> str:
        key = (farm, zone, device, kind)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) > 1_000_000:
                self._heads.clear()
            tags = {"farm": farm, "zone": zone, "device": device, "kind": kind or None}
            head = self._heads[key] = series_key(MEASUREMENT, tags) + " "
        return head

    def lines(self, message: CleanMessage) -> list[str]:
        """One line for ``message`` (B), or one per kind it holds (C), stamped with its time: the readings' fields
        in the message's order, then ``seq``."""
        groups: dict[str, list[str]] = {}
        by_kind = self.by_kind
        for r in message.readings:
            kind = r.kind._value_  # ``_value_``: the ``value`` property is a Python call per access
            text = repr(r.value)  # what format_field writes for a finite float (clean values are finite)
            if text[-2:] == ".0":
                text = text[:-2]
            key = field_key(kind, r.sensor)
            if r.flags:
                flags = ",".join(f._value_ for f in r.flags)
                field = f'{key}{FLAGS}="{flags}",{key}{SUSPECT}={text},'
            else:
                field = f"{key}={text},"
            group = kind if by_kind else ""
            fields = groups.get(group)
            if fields is None:
                groups[group] = [field]
            else:
                fields.append(field)
        tail = f"seq={message.seq}i {time_ns(message.ts)}"
        farm, zone, device = message.farm, message.zone, message.device
        return [self._head(farm, zone, device, kind) + "".join(fields) + tail for kind, fields in groups.items()]


def _kind_filter(shape: Shape, kind: str) -> str:
    return f" AND kind = {_quote(kind)}" if shape is Shape.KIND else ""


# -- the reads, rewritten for B and C (A's are storage.zones' own) ------------------------------------------------


def buckets_query(
    shape: Shape, farm: str, zone: str, kind: SensorKind, start_s: float, end_s: float, every_s: int
) -> str:
    """``storage.zones.reading_buckets_query`` (per sensor): mean, min, max and count of the zone's good readings
    of ``kind`` per bucket, one series per device with a column per function and sensor."""
    good = rf"/^{kind.value}\.[a-z0-9-]+$/"
    where = _where(farm, zone, start_s, end_s) + _kind_filter(shape, kind.value)
    return (
        f"SELECT mean({good}), min({good}), max({good}), count({good}) FROM {MEASUREMENT} WHERE {where} "
        f"GROUP BY time({int(every_s)}s), device fill(none)"
    )


def parse_buckets(series: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[Bucket]]:
    """``buckets_query``'s answer as ``storage.zones.reading_buckets`` gives it: buckets by (device, sensor)."""
    out: dict[tuple[str, str], list[Bucket]] = {}
    for s in series:
        device, columns = s["tags"]["device"], s["columns"]
        pos = {c: i for i, c in enumerate(columns)}
        for column in columns:
            if not column.startswith("count_"):
                continue
            key = column.removeprefix("count_")
            n, mean, low, high = pos[column], pos[f"mean_{key}"], pos[f"min_{key}"], pos[f"max_{key}"]
            found = [
                Bucket(row[0] / NS, float(row[mean]), float(row[low]), float(row[high]), int(row[n]))
                for row in s["values"]
                if row[n]
            ]
            if found:
                out[(device, key.split(".", 1)[1])] = found
    return out


def _last_statements(shape: Shape, where: str, keys: Iterable[tuple[str, str]], group: str) -> list[str]:
    """One ``last`` per value field (good and suspect) of each (kind, sensor), named by its key."""
    out = []
    for kind, sensor in keys:
        for suffix in ("", SUSPECT):
            key = field_key(kind, sensor) + suffix
            out.append(
                f'SELECT last("{key}") AS "{key}" FROM {MEASUREMENT} WHERE {where}{_kind_filter(shape, kind)} '
                f"GROUP BY {group}"
            )
    return out


def latest_query(
    shape: Shape, farm: str, zone: str, keys: Sequence[tuple[str, str]], start_s: float, end_s: float
) -> str:
    """``storage.zones.last_readings``: each sensor's latest reading (good or suspect) in the range; ``keys``: the
    (kind, sensor) pairs the zone's devices have."""
    return "; ".join(_last_statements(shape, _where(farm, zone, start_s, end_s), keys, "device"))


def _newest(series: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[float, float]]:
    """The newest (time_s, value) by (device, sensor) over the ``last`` statements' answers."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for s in series:
        split = split_key(s["columns"][1])
        if split is None or not s["values"] or s["values"][0][1] is None:
            continue
        at, value = s["values"][0]
        who = (s["tags"]["device"], split[1])
        if who not in out or at / NS > out[who][0]:
            out[who] = (at / NS, float(value))
    return out


def parse_latest(series: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[float, float]]:
    """``latest_query``'s answer as ``storage.zones.last_readings`` gives it."""
    return _newest(series)


Health = dict[str, tuple[float, tuple[float, float] | None]]
"""By device: when it last reported (time_s), and its newest battery reading ``(time_s, volts)`` if any."""


def health_query(shape: Shape, farm: str, batteries: Sequence[str], start_s: float) -> str:
    """What device health reads of ``reading`` (``storage.zones.last_by_device``): each device's last message
    (``seq``, on every line) and its battery's newest reading; ``batteries``: the farm's battery sensor ids."""
    where = _since(farm, start_s)
    seen = f'SELECT last(seq) AS "seq" FROM {MEASUREMENT} WHERE {where} GROUP BY device'
    kind = SensorKind.BATTERY.value
    return "; ".join([seen, *_last_statements(shape, where, [(kind, b) for b in batteries], "device")])


def parse_health(series: Sequence[Mapping[str, Any]]) -> Health:
    """``health_query``'s answer."""
    seen = {s["tags"]["device"]: s["values"][0][0] / NS for s in series if s["columns"][1] == "seq" and s["values"]}
    battery: dict[str, tuple[float, float]] = {}
    for (device, _), newest in _newest(s for s in series if s["columns"][1] != "seq").items():
        if device not in battery or newest[0] > battery[device][0]:
            battery[device] = newest
    return {device: (at, battery.get(device)) for device, at in seen.items()}


def health_of(by_device: Mapping[str, Mapping[SensorKind, tuple[float, float]]]) -> Health:
    """Today's answer (``storage.zones.last_by_device``: the latest reading of each kind, by device) in the same
    form, as ``api.health`` reads it."""
    return {
        device: (max(t for t, _ in kinds.values()), kinds.get(SensorKind.BATTERY))
        for device, kinds in by_device.items()
        if kinds
    }


def count_query() -> str:
    """How many readings are stored: a count per value field, summed by ``parse_count``."""
    return f"SELECT count({READINGS}) FROM {MEASUREMENT}"


def parse_count(series: Iterable[Mapping[str, Any]]) -> int:
    return sum(int(v or 0) for s in series for row in s["values"] for v in row[1:])


def counts_query(farm: str, zone: str, start_s: int, end_s: int, step_s: int) -> str:
    """``storage.zones.stored_counts``: the zone's readings (good or suspect) per ``step_s`` bucket, a count per
    value field (its key names the kind)."""
    where = _where(farm, zone, start_s, end_s)
    return f"SELECT count({READINGS}) FROM {MEASUREMENT} WHERE {where} GROUP BY time({int(step_s)}s) fill(none)"


def parse_counts(
    series: Iterable[Mapping[str, Any]], widths_s: tuple[int, ...]
) -> dict[tuple[int, int, SensorKind], int]:
    """``counts_query``'s answer as ``storage.zones.stored_counts`` gives it: by (width, window start, kind)."""
    out: dict[tuple[int, int, SensorKind], int] = {}
    for s in series:
        kinds = [(i, split[0]) for i, c in enumerate(s["columns"]) if (split := split_key(c.removeprefix("count_")))]
        for row in s["values"]:
            start = int(row[0]) // NS
            for i, kind in kinds:
                if row[i]:
                    for width in widths_s:
                        key = (width, start // width * width, kind)
                        out[key] = out.get(key, 0) + int(row[i])
    return out


def readback_query(farm: str, zone: str, start_s: float, end_s: float) -> str:
    """``storage.zones.stored_readings``: every reading of the zone in the range, good or suspect, with flags."""
    return f"SELECT {STORED} FROM {MEASUREMENT} WHERE {_where(farm, zone, start_s, end_s)} GROUP BY device"


def parse_readback(series: Iterable[Mapping[str, Any]]) -> list[StoredReading]:
    """``readback_query``'s answer as ``storage.zones.stored_readings`` gives it (in another order)."""
    out: list[StoredReading] = []
    for s in series:
        device, columns = s["tags"]["device"], s["columns"]
        pos = {c: i for i, c in enumerate(columns)}
        fields = [(i, split) for i, c in enumerate(columns) if (split := split_key(c)) is not None]
        for row in s["values"]:
            at = row[0] / NS
            for i, (kind, sensor, suspect) in fields:
                if row[i] is None:
                    continue
                flags = pos.get(field_key(kind.value, sensor) + FLAGS) if suspect else None
                text = row[flags] if flags is not None else ""
                out.append(StoredReading(at, device, sensor, kind, float(row[i]), not suspect, text or ""))
    return out
