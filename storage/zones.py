"""What the zone stage and the farm API read back from InfluxDB: the stored readings (for window statistics and each
sensor's flags over an hour), the aggregates and days already emitted, as the records they were written from
(``storage.schema`` maps them the other way), and a zone's latest state and forecast. InfluxQL is written here
and nowhere else.

Every query names one farm and zone (tags) and a time range in nanoseconds, so it reads one zone's series only.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from smartfarm.layout import SensorKind
from smartfarm.records import ZoneAggregate, ZoneDay
from storage.influx import InfluxClient
from storage.schema import WIDTH_TAGS, DecisionPoint, RecommendationPoint

NS = 1_000_000_000


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _where(
    farm: str, zone: str, start_s: float, end_s: float, peers_of: Collection[SensorKind] = (), own: bool = True
) -> str:
    """The zone's series in the range and, with ``peers_of``, the farm's other zones' series of those kinds (the
    fault detector's peers of the zone's weather sensors, ``ml.faulthistory.FARM_KINDS``); without ``own``, those
    alone."""
    kinds = " OR ".join(f"kind = {_quote(k.value)}" for k in sorted(peers_of))
    if not peers_of:
        if not own:
            raise ValueError("a query of no zone's series: give peers_of, or own=True")
        scope = f"zone = {_quote(zone)}"
    elif own:
        scope = f"(zone = {_quote(zone)} OR {kinds})"
    else:
        scope = f"zone != {_quote(zone)} AND ({kinds})"
    return f"farm = {_quote(farm)} AND {scope} AND time >= {int(start_s) * NS} AND time < {int(end_s) * NS}"


class StoredReading(NamedTuple):
    """One stored reading of a zone, as the zone stage reads it back (a tuple: tens of thousands are read per
    step when a backlog drains)."""

    time_s: float
    device: str
    sensor: str
    kind: SensorKind
    value: float
    good: bool
    flags: str
    """The flags of a suspect reading, comma-separated ("" for a good one)."""


def stored_readings(
    client: InfluxClient,
    farm: str,
    zone: str,
    start_s: float,
    end_s: float,
    peers_of: Collection[SensorKind] = (),
    own: bool = True,
) -> list[StoredReading]:
    """Every reading of the zone stored in the range, good or suspect, in one query (``peers_of`` and ``own``: as
    ``_where`` scopes them).

    One scan serves both window widths and the sensors' flag counts (``sensor_hours``), computed in Python by the
    same rule (``ml.timeline.summarize``): InfluxDB 1.x runs each aggregate function of a query as its own pass
    over the data and filters on a string field slowly; five aggregates per width and two flag queries cost it
    about twice this one scan (measured on 51 devices of 8 sensors: 196 ms against 87 ms for two hours)."""
    where = _where(farm, zone, start_s, end_s, peers_of, own)
    found = client.series(f"SELECT value, quality, flags FROM reading WHERE {where} GROUP BY device, sensor, kind")
    out: list[StoredReading] = []
    for series in found:
        tags, columns = series["tags"], series["columns"]
        device, sensor, kind = tags["device"], tags["sensor"], SensorKind(tags["kind"])
        # A field no point of the range has (flags, when nothing is suspect) may be missing from the columns.
        pos = {c: i for i, c in enumerate(columns)}
        at, value, quality, flags = pos["time"], pos.get("value"), pos.get("quality"), pos.get("flags")
        if value is None:
            continue
        out += [
            StoredReading(
                row[at] / NS,
                device,
                sensor,
                kind,
                float(row[value]),
                quality is not None and row[quality] == "good",
                (row[flags] or "") if flags is not None else "",
            )
            for row in series["values"]
            if row[value] is not None
        ]
    return out


def stored_counts(
    client: InfluxClient, farm: str, zone: str, start_s: int, end_s: int, widths_s: tuple[int, ...]
) -> dict[tuple[int, int, SensorKind], int]:
    """How many readings (good or suspect) the zone has stored per window and kind, for windows of each of
    ``widths_s`` (multiples of the smallest) in the range (window-aligned): one aggregate query with a small answer,
    against which the zone stage checks the windows it counted itself (``stream.live``). Keys: (width, window
    start, kind)."""
    step = min(widths_s)
    q = (
        f"SELECT count(value) FROM reading WHERE {_where(farm, zone, start_s, end_s)} "
        f"GROUP BY time({step}s), kind fill(none)"
    )
    out: dict[tuple[int, int, SensorKind], int] = {}
    for series in client.series(q):
        kind = SensorKind(series["tags"]["kind"])
        for t, n in series["values"]:
            if not n:
                continue
            start = int(t) // NS
            for width in widths_s:
                key = (width, start // width * width, kind)
                out[key] = out.get(key, 0) + int(n)
    return out


def stored_aggregates(
    client: InfluxClient, farm: str, zone: str, width_s: int, start_s: float, end_s: float
) -> list[ZoneAggregate]:
    """The aggregates of a width already emitted whose windows start in the range (the latest revision each), as
    records, by window start."""
    q = (
        "SELECT count, mean, min, max, last, revision FROM zone_aggregate "
        f"WHERE {_where(farm, zone, start_s, end_s)} AND width = {_quote(WIDTH_TAGS[width_s])} GROUP BY kind"
    )
    out = []
    for r in client.query(q):
        if r.get("count") is None:
            continue
        start = int(r["time"]) // NS
        out.append(
            ZoneAggregate.create(
                farm=farm,
                zone=zone,
                kind=SensorKind(r["kind"]),
                window_start=datetime.fromtimestamp(start, UTC),
                window_end=datetime.fromtimestamp(start + width_s, UTC),
                count=int(r["count"]),
                mean=float(r["mean"]),
                min=float(r["min"]),
                max=float(r["max"]),
                last=float(r["last"]),
                revision=max(1, int(r["revision"])),
            )
        )
    return sorted(out, key=lambda a: a.window_start)


def stored_days(
    client: InfluxClient, farm: str, zone: str, start_s: float, end_s: float, days: dict[int, date]
) -> list[ZoneDay]:
    """The zone's days already emitted whose local midnights fall in the range; ``days`` maps a midnight (epoch
    seconds) to its local date, since InfluxDB stores only the instant."""
    q = (
        "SELECT tmin, tmax, et0_mm, gdd, rain_mm, hours, estimated, revision FROM zone_day "
        f"WHERE {_where(farm, zone, start_s, end_s)}"
    )
    out = []
    for r in client.query(q):
        midnight = int(r["time"]) // NS
        if midnight not in days:
            continue
        out.append(
            ZoneDay.create(
                farm=farm,
                zone=zone,
                day=days[midnight],
                tmin=r["tmin"],
                tmax=r["tmax"],
                et0_mm=r["et0_mm"],
                gdd=r["gdd"],
                rain_mm=r.get("rain_mm"),
                hours=int(r["hours"]),
                estimated=tuple(filter(None, (r.get("estimated") or "").split(","))),
                revision=int(r["revision"]),
            )
        )
    return sorted(out, key=lambda d: d.day)


def last_readings(
    client: InfluxClient, farm: str, zone: str, start_s: float, end_s: float
) -> dict[tuple[str, str], tuple[float, float]]:
    """Each sensor's latest stored reading in the range, ``(time_s, value)`` by (device, sensor): one aggregate
    query, for the gap before an hour (a dropout ends with one) without reading the hours in between."""
    where = _where(farm, zone, start_s, end_s)
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for series in client.series(f"SELECT last(value) FROM reading WHERE {where} GROUP BY device, sensor"):
        tags, rows = series["tags"], series["values"]
        if rows and rows[0][1] is not None:
            out[(tags["device"], tags["sensor"])] = (rows[0][0] / NS, float(rows[0][1]))
    return out


def recent_readings(
    client: InfluxClient,
    farm: str,
    zone: str,
    start_s: float,
    end_s: float,
    limit: int,
    peers_of: Collection[SensorKind] = (),
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Each sensor's latest ``limit`` stored readings in the range, ``(time_s, value)`` oldest first, by (device,
    sensor): one query, for the gap before an hour and how long a repeated value had held (the fault detector's
    ``ml.context.SensorHour.run``) without reading the hours in between. ``peers_of``: and the farm's other
    zones' sensors of those kinds (``_where``)."""
    where = _where(farm, zone, start_s, end_s, peers_of)
    query = f"SELECT value FROM reading WHERE {where} GROUP BY device, sensor ORDER BY time DESC LIMIT {int(limit)}"
    out: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for series in client.series(query):
        rows = [(row[0] / NS, float(row[1])) for row in series["values"] if row[1] is not None]
        if rows:
            out[(series["tags"]["device"], series["tags"]["sensor"])] = rows[::-1]
    return out


def hourly_means(
    client: InfluxClient, farm: str, zone: str, start_s: float, end_s: float, peers_of: Collection[SensorKind] = ()
) -> dict[tuple[str, str], dict[int, float]]:
    """Each sensor's mean over every whole UTC hour of the range it has readings in (good or suspect), by (device,
    sensor) and the hour's start (epoch seconds): the fault detector's ``ml.context.SensorHour.history``, one
    aggregate query rather than a week of readings (10,000 of a default zone at 15-minute readings).
    ``peers_of``: and the farm's other zones' sensors of those kinds (``_where``)."""
    where = _where(farm, zone, start_s, end_s, peers_of)
    query = f"SELECT mean(value) FROM reading WHERE {where} GROUP BY time(1h), device, sensor fill(none)"
    out: dict[tuple[str, str], dict[int, float]] = {}
    for series in client.series(query):
        means = {int(row[0] // NS): float(row[1]) for row in series["values"] if row[1] is not None}
        out[(series["tags"]["device"], series["tags"]["sensor"])] = means
    return out


def latest_state(client: InfluxClient, farm: str, zone: str) -> dict[str, Any] | None:
    """The zone's newest ``zone_state`` point (its fields, ``time`` in epoch ns); None before its first scored hour."""
    rows = client.query(
        f"SELECT * FROM zone_state WHERE farm = {_quote(farm)} AND zone = {_quote(zone)} ORDER BY time DESC LIMIT 1"
    )
    return rows[0] if rows else None


def latest_forecasts(client: InfluxClient, farm: str, zone: str) -> list[dict[str, Any]]:
    """The zone's newest ``soil_forecast`` point of each horizon (``time``: when the forecast is for)."""
    rows = client.query(
        f"SELECT moisture_pct, model FROM soil_forecast WHERE farm = {_quote(farm)} AND zone = {_quote(zone)} "
        "GROUP BY horizon ORDER BY time DESC LIMIT 1"
    )
    return sorted(rows, key=lambda r: int(str(r["horizon"]).rstrip("h")))


def recommendations(
    client: InfluxClient,
    farm: str,
    start_s: float,
    end_s: float,
    *,
    zone: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The farm's stored recommendations issued in the range, newest first (with ``zone``, ``kind`` and
    ``severity`` from their tags), ``limit`` of them after skipping ``offset``."""
    where = f"farm = {_quote(farm)} AND time >= {int(start_s) * NS} AND time < {int(end_s) * NS}"
    if zone is not None:
        where += f" AND zone = {_quote(zone)}"
    if kind is not None:
        where += f" AND kind = {_quote(kind)}"
    fields = ", ".join(RecommendationPoint.field_names())
    q = (
        f"SELECT {fields} FROM recommendation WHERE {where} GROUP BY zone, kind, severity "
        f"ORDER BY time DESC LIMIT {int(limit) + int(offset)}"
    )
    rows = sorted(client.query(q), key=lambda r: (-int(r["time"]), str(r["id"])))
    return rows[int(offset) : int(offset) + int(limit)]


def recommendation(client: InfluxClient, farm: str, rid: str) -> dict[str, Any] | None:
    """The farm's stored recommendation ``rid`` (as ``recommendations`` gives them), issued whenever (a replayed or
    simulated season's advice is stamped with its own time); None when there is none."""
    fields = ", ".join(RecommendationPoint.field_names())
    rows = client.query(
        f"SELECT {fields} FROM recommendation WHERE farm = {_quote(farm)} AND id = {_quote(rid)} AND time >= 0 "
        "GROUP BY zone, kind, severity LIMIT 1"
    )
    return rows[0] if rows else None


def decision_on(client: InfluxClient, farm: str, rid: str) -> dict[str, Any] | None:
    """The newest decision on the farm's recommendation ``rid``; None before any."""
    fields = ", ".join(DecisionPoint.field_names())
    rows = client.query(
        f"SELECT {fields} FROM advice_decision WHERE farm = {_quote(farm)} AND recommendation = {_quote(rid)} "
        "AND time >= 0 GROUP BY zone ORDER BY time DESC LIMIT 1"
    )
    return rows[0] if rows else None


def is_superseded(client: InfluxClient, farm: str, rid: str) -> bool:
    """Whether a recommendation of the farm replaced or cancelled ``rid``."""
    rows = client.query(
        f"SELECT supersedes FROM recommendation WHERE farm = {_quote(farm)} AND supersedes = {_quote(rid)} "
        "AND time >= 0 LIMIT 1"
    )
    return bool(rows)


def decisions(client: InfluxClient, farm: str, start_s: float, zone: str | None = None) -> dict[str, dict[str, Any]]:
    """The newest decision on each recommendation decided since ``start_s``, by recommendation id."""
    where = f"farm = {_quote(farm)} AND time >= {int(start_s) * NS}"
    if zone is not None:
        where += f" AND zone = {_quote(zone)}"
    fields = ", ".join(DecisionPoint.field_names())
    rows = client.query(f"SELECT {fields} FROM advice_decision WHERE {where} GROUP BY zone ORDER BY time ASC")
    return {str(r["recommendation"]): r for r in sorted(rows, key=lambda r: int(r["time"]))}


def superseded(client: InfluxClient, farm: str, start_s: float) -> set[str]:
    """The ids of the farm's recommendations that a recommendation issued since ``start_s`` replaced or cancelled."""
    rows = client.query(
        f"SELECT supersedes FROM recommendation WHERE farm = {_quote(farm)} AND time >= {int(start_s) * NS} "
        "AND supersedes != ''"
    )
    return {str(r["supersedes"]) for r in rows if r.get("supersedes")}


class Bucket(NamedTuple):
    """The statistics of one series over one time bucket (``start_s``: the bucket's start, epoch seconds)."""

    start_s: float
    mean: float
    min: float
    max: float
    readings: int


def reading_buckets_query(
    farm: str, zone: str, kind: SensorKind, start_s: float, end_s: float, every_s: int, *, by_sensor: bool = True
) -> str:
    """``reading_buckets``' InfluxQL (the API benchmark asks InfluxDB for it alone, as its ceiling)."""
    where = f"{_where(farm, zone, start_s, end_s)} AND kind = {_quote(kind.value)} AND quality = 'good'"
    group = f"time({int(every_s)}s)" + (", device, sensor" if by_sensor else "")
    return (
        f"SELECT mean(value), min(value), max(value), count(value) FROM reading WHERE {where} "
        f"GROUP BY {group} fill(none)"
    )


def reading_buckets(
    client: InfluxClient,
    farm: str,
    zone: str,
    kind: SensorKind,
    start_s: float,
    end_s: float,
    every_s: int,
    *,
    by_sensor: bool = True,
) -> dict[tuple[str, str], list[Bucket]]:
    """Mean, min, max and number of the zone's good readings of ``kind`` in the range, per bucket of ``every_s``
    (aligned to the epoch, empty buckets left out), per (device, sensor), or for the kind as a whole under
    ``("", "")`` when not ``by_sensor``. Suspect readings are left out, as the zone's aggregates leave them out."""
    found = client.series(reading_buckets_query(farm, zone, kind, start_s, end_s, every_s, by_sensor=by_sensor))
    out: dict[tuple[str, str], list[Bucket]] = {}
    for series in found:
        tags = series.get("tags") or {}
        key = (tags.get("device", ""), tags.get("sensor", ""))
        out[key] = [
            Bucket(row[0] / NS, float(row[1]), float(row[2]), float(row[3]), int(row[4]))
            for row in series["values"]
            if row[4]
        ]
    return out


# --- A farm's devices and pipeline, for health views: one query per question over the farm's series ------------


def _since(farm: str, start_s: float) -> str:
    return f"farm = {_quote(farm)} AND time >= {int(start_s) * NS}"


def last_by_device(client: InfluxClient, farm: str, start_s: float) -> dict[str, dict[SensorKind, tuple[float, float]]]:
    """Each device's latest stored reading of each kind since ``start_s``: ``(time_s, value)`` by kind, by device."""
    out: dict[str, dict[SensorKind, tuple[float, float]]] = {}
    q = f"SELECT last(value) FROM reading WHERE {_since(farm, start_s)} GROUP BY device, kind"
    for series in client.series(q):
        tags, rows = series["tags"], series["values"]
        if rows and rows[0][1] is not None:
            out.setdefault(tags["device"], {})[SensorKind(tags["kind"])] = (rows[0][0] / NS, float(rows[0][1]))
    return out


def last_by_zone(client: InfluxClient, measurement: str, farm: str, start_s: float) -> dict[str, float]:
    """Each zone's newest point of ``reading`` or ``zone_state`` since ``start_s``, as epoch seconds by zone."""
    field = {"reading": "value", "zone_state": "moisture_pct"}[measurement]
    q = f"SELECT last({field}) FROM {measurement} WHERE {_since(farm, start_s)} GROUP BY zone"
    return {s["tags"]["zone"]: s["values"][0][0] / NS for s in client.series(q) if s["values"]}


def device_statuses(client: InfluxClient, farm: str) -> dict[str, tuple[float, bool, bool]]:
    """Each device's newest ``device_status``: ``(time_s, online, will)`` by device (will: the broker announced it
    gone, it did not say goodbye)."""
    q = f"SELECT online, will FROM device_status WHERE farm = {_quote(farm)} GROUP BY device ORDER BY time DESC LIMIT 1"
    return {r["device"]: (int(r["time"]) / NS, bool(r["online"]), bool(r["will"])) for r in client.query(q)}


def clock_refusals(client: InfluxClient, farm: str, start_s: float) -> dict[str, tuple[int, float, str]]:
    """Each device's messages refused for their timestamp since ``start_s`` (``device_clock``): how many, and the
    newest one's skew (s) and reason, by device."""
    where = _since(farm, start_s)
    counts = {
        r["device"]: int(r["count"])
        for r in client.query(f"SELECT count(skew_s) FROM device_clock WHERE {where} GROUP BY device")
    }
    newest = client.query(
        f"SELECT skew_s FROM device_clock WHERE {where} GROUP BY device, reason ORDER BY time DESC LIMIT 1"
    )
    out: dict[str, tuple[int, float, str]] = {}
    for r in sorted(newest, key=lambda r: int(r["time"])):
        out[r["device"]] = (counts.get(r["device"], 0), float(r["skew_s"]), str(r["reason"]))
    return out


def suspect_counts(client: InfluxClient, farm: str, start_s: float) -> dict[tuple[str, str], tuple[SensorKind, int]]:
    """Each sensor's suspect readings since ``start_s``: ``(kind, how many)`` by (device, sensor)."""
    q = (
        f"SELECT count(value) FROM reading WHERE {_since(farm, start_s)} AND quality = 'suspect' "
        "GROUP BY device, sensor, kind"
    )
    return {
        (r["device"], r["sensor"]): (SensorKind(r["kind"]), int(r["count"])) for r in client.query(q) if r.get("count")
    }


def zone_states(client: InfluxClient, farm: str, zone: str, start_s: float, end_s: float) -> list[dict[str, Any]]:
    """The zone's ``zone_state`` points (one per scored hour, ``time`` its end in epoch ns) in the range, oldest
    first."""
    return client.query(f"SELECT * FROM zone_state WHERE {_where(farm, zone, start_s, end_s)} ORDER BY time")


def soil_forecasts(client: InfluxClient, farm: str, zone: str, start_s: float, end_s: float) -> list[dict[str, Any]]:
    """The zone's ``soil_forecast`` points whose predicted time is in the range (``horizon`` from its tag), oldest
    first."""
    rows = client.query(
        f"SELECT moisture_pct, model FROM soil_forecast WHERE {_where(farm, zone, start_s, end_s)} GROUP BY horizon"
    )
    return sorted(rows, key=lambda r: int(r["time"]))
