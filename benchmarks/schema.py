"""``smartfarm bench --phases schema``: the ``reading`` measurement in three shapes (``benchmarks.shapes``: A today's
point per reading, B a line per message, C a line per device and kind), measured against what they cost to write
and what they cost to read, on the bench's own InfluxDB. Nothing is migrated.

1. The same ``--count`` simulated messages of ``--devices`` eight-sensor nodes (the worker stage's, with a few
   spikes and stuck sensors so that suspect readings are stored too; taken over the week before now) are cleaned
   once by the worker's own ``stream.batch.clean_batch``.
2. Each shape's lines are built from the same clean messages (Python time per message: what the worker would
   spend), then posted into a database of their own as the worker writes (``worker_stage.post_chunks``: gzip,
   two threads), ``CHUNK_MESSAGES`` messages a request, ``ROUNDS`` times in turn: influxd's CPU per message
   during the writes and until it is idle again (cache snapshots included), messages per second.
3. Series (``SHOW SERIES EXACT CARDINALITY``), field keys, and the database's bytes on disk (TSM and WAL, from
   ``SHOW STATS``) and in InfluxDB's write cache.
4. The API's and dashboards' main reads of ``reading`` (A: ``storage.zones``' own; B and C: rewritten,
   ``benchmarks.shapes``), each once to warm and compare answers, then ``REPEATS`` times: median wall time
   (query, transfer and parsing into the API's form) and influxd's CPU per query.

A benchmark reports; it asserts nothing. Its figures go into the JSON results under ``schema``.
"""

from __future__ import annotations

import gc
import gzip
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from api.downsample import choose_every, spell
from benchmarks.harness import Services
from benchmarks.shapes import (
    Shape,
    WideLines,
    buckets_query,
    count_query,
    counts_query,
    health_of,
    health_query,
    latest_query,
    parse_buckets,
    parse_count,
    parse_counts,
    parse_health,
    parse_latest,
    parse_readback,
    readback_query,
)
from benchmarks.worker_stage import CHUNK, eight_sensor_layout, messages, post_chunks, records
from cli.services import InfluxDB
from cli.services.base import cpu_seconds
from edge.faults import FaultRates
from smartfarm.layout import Layout, SensorKind
from smartfarm.records import CleanMessage
from smartfarm.settings import InfluxSettings, KafkaSettings
from storage.influx import InfluxClient
from storage.lines import ReadingLines
from storage.zones import last_by_device, last_readings, reading_buckets, stored_counts, stored_readings
from stream.batch import clean_batch
from stream.clean import Cleaner, CleanRules, RawMessage
from stream.windows import WIDTHS_S

CHUNK_MESSAGES = CHUNK // 8
"""Messages per request in every shape: what one of the worker's 5,000-line requests carries today. The worker
sends what a batch gathered, so at a given rate a request holds the same messages whatever their shape."""
SPAN_S = 7 * 86400.0
"""The messages are spread over a week, so that the week's reads read a week."""
ROUNDS = 3
REPEATS = 7
RATES = FaultRates.none().model_copy(update={"spike": 0.002, "stuck": 0.001})
"""A few value faults, so that suspect readings (their own fields in B and C) are written and read back."""
IDLE_CPU_S = 0.05
"""influxd is idle again when it spends less than this CPU in a second."""


def database(shape: Shape) -> str:
    return f"schema-{shape.value.lower()}"


def clean_messages(layout: Layout, count: int) -> tuple[list[CleanMessage], float]:
    """``count`` simulated messages over ``SPAN_S``, cleaned as the worker cleans them; and their interval (s)."""
    interval_s = max(60.0, SPAN_S * len(layout.placements) / count)
    batch = messages(layout, count, interval_s, RATES)
    raw = records(KafkaSettings(topic_prefix="schema"), batch, 0)
    cleaned = clean_batch(
        ((key, RawMessage(value, headers)) for value, key, _, headers in raw),
        Cleaner(layout, CleanRules(max_future_s=1e9)),
        ReadingLines(),
        dict[bytes, bytes]().get,
    )
    return cleaned.cleaned, interval_s


def builder(shape: Shape) -> Callable[[CleanMessage], list[str]]:
    if shape is Shape.POINT:
        return ReadingLines().lines
    return WideLines(by_kind=shape is Shape.KIND).lines


def build(shape: Shape, cleaned: list[CleanMessage], passes: int = 3) -> tuple[list[list[str]], float]:
    """Each message's lines, and the microseconds a message took to build them: the fastest of ``passes`` passes
    after the first (each series' head cached, as in a running worker; the machine is shared)."""
    lines = builder(shape)
    built = [lines(m) for m in cleaned]
    best = float("inf")
    for _ in range(passes):
        began = time.perf_counter()
        for m in cleaned:
            lines(m)
        best = min(best, time.perf_counter() - began)
    return built, best / len(cleaned) * 1e6


def settle(pid: int | None, limit_s: float = 60.0) -> None:
    """Return once influxd spends less than ``IDLE_CPU_S`` of CPU in a second (or after ``limit_s``)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before < IDLE_CPU_S:
            return


def write_rounds(svc: Services, chunks: dict[Shape, list[list[str]]], messages: int) -> dict[Shape, dict[str, Any]]:
    """Each shape's chunks written ``ROUNDS`` times into its database made afresh, the shapes' order turning each
    round: medians of messages per second and influxd's CPU per message, during the writes and until idle."""
    runs: dict[Shape, list[dict[str, float]]] = {s: [] for s in chunks}
    shapes = list(chunks)
    for r in range(ROUNDS):
        for shape in shapes[r % len(shapes) :] + shapes[: r % len(shapes)]:
            settle(svc.influxd.pid)
            before = cpu_seconds(svc.influxd.pid)
            elapsed, cpu = post_chunks(svc.influxd, database(shape), chunks[shape])
            settle(svc.influxd.pid)
            total = cpu_seconds(svc.influxd.pid) - before
            runs[shape].append(
                {
                    "msgs_per_s": messages / elapsed,
                    "influxd_cpu_us_per_msg": cpu / messages * 1e6,
                    "influxd_cpu_us_per_msg_until_idle": max(cpu, total) / messages * 1e6,
                }
            )
    return {
        shape: {key: statistics.median(run[key] for run in found) for key in found[0]} | {"runs": found}
        for shape, found in runs.items()
    }


def series_figures(client: InfluxClient) -> dict[str, int]:
    """The database's series (distinct), the series its shards' indexes hold between them (a series in two weekly
    shards is in both), and its field keys."""
    return {
        "series": sum(len(s["values"]) for s in client.series("SHOW SERIES FROM reading")),
        "shard_series": sum(int(r[0]) for s in client.series("SHOW SERIES EXACT CARDINALITY") for r in s["values"]),
        "field_keys": sum(len(s["values"]) for s in client.series("SHOW FIELD KEYS FROM reading")),
    }


class RestingInfluxDB(InfluxDB):
    """An influxd that writes its write cache to TSM files a second after the last write and compacts a shard fully
    two seconds after, as InfluxDB does after 10 minutes and 4 hours by default: what a shard holds at rest, in
    seconds."""

    def config(self) -> str:
        quick = '  cache-snapshot-write-cold-duration = "1s"\n  compact-full-write-cold-duration = "2s"\n'
        return super().config().replace("[data]\n", "[data]\n" + quick, 1)


def _bytes(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def at_rest(work: Path, chunks: dict[Shape, list[list[str]]], limit_s: float = 180.0) -> dict[Shape, dict[str, int]]:
    """Each shape's bytes at rest: written into a ``RestingInfluxDB`` of its own, then, once the write-ahead log is
    empty and the TSM files stand still, the TSM files' bytes and the shards' series index's (TSI)."""
    out = {}
    with RestingInfluxDB(work / "schema-at-rest") as influxd:
        for shape, shape_chunks in chunks.items():
            post_chunks(influxd, database(shape), shape_chunks)
            data, wal = influxd.workdir / "data" / database(shape), influxd.workdir / "wal" / database(shape)
            deadline, last, still = time.monotonic() + limit_s, -1, 0
            while time.monotonic() < deadline and still < 3:
                time.sleep(1.0)
                tsm = _bytes(data, "*.tsm")
                still = still + 1 if tsm == last and _bytes(wal, "*.wal") == 0 else 0
                last = tsm
            index = sum(_bytes(folder, "*") for folder in data.glob("*/*/index"))
            out[shape] = {"tsm_bytes": last, "index_bytes": index, "settled": still >= 3}
    return out


def timed(run: Callable[[], Any], pid: int | None) -> tuple[Any, dict[str, float]]:
    """``run``'s answer (one warming run), then over ``REPEATS`` runs: the median milliseconds, and the mean CPU
    milliseconds per run of influxd and of this process (the answer's transfer, JSON and parsing)."""
    answer = run()
    walls = []
    cpu_before, own_before = cpu_seconds(pid), time.process_time()
    for _ in range(REPEATS):
        began = time.perf_counter()
        run()
        walls.append((time.perf_counter() - began) * 1000)
    return answer, {
        "median_ms": statistics.median(walls),
        "influxd_cpu_ms": (cpu_seconds(pid) - cpu_before) / REPEATS * 1000,
        "client_cpu_ms": (time.process_time() - own_before) / REPEATS * 1000,
    }


Read = Callable[[InfluxClient], Any]


def rewritten(query: Callable[[Shape], str], parse: Callable[[Any], Any]) -> dict[Shape, Read]:
    """B's and C's call for a read: ``query`` for the shape, its answer parsed into today's form."""

    def call(shape: Shape) -> Read:
        return lambda client: parse(client.series(query(shape)))

    return {shape: call(shape) for shape in (Shape.MESSAGE, Shape.KIND)}


def reads(layout: Layout, end_s: float) -> dict[str, dict[Shape, Read]]:
    """The main reads of ``reading``, by name: for each shape, a call that answers in today's form. The farm's first
    zone, soil moisture; the day and the week that end at ``end_s``."""
    farm = layout.farms[0].id
    zone = layout.farms[0].zones[0].id
    devices = layout.farms[0].devices
    keys = sorted({(s.kind.value, s.id) for d in devices if d.zone == zone for s in d.sensors})
    batteries = sorted({s.id for d in devices for s in d.sensors if s.kind is SensorKind.BATTERY})
    kind = SensorKind.SOIL_MOISTURE
    day, week, hours = end_s - 86400, end_s - SPAN_S, end_s - 7200
    hour = int(end_s) // 3600 * 3600  # the last whole hour's end: its windows are the ones due
    per_day = choose_every(timedelta(days=1), None)
    per_week = choose_every(timedelta(seconds=SPAN_S), None)
    return {
        f"zone readings, day ({spell(per_day)})": {
            Shape.POINT: lambda c: reading_buckets(c, farm, zone, kind, day, end_s, per_day),
            **rewritten(lambda s: buckets_query(s, farm, zone, kind, day, end_s, per_day), parse_buckets),
        },
        f"zone readings, week ({spell(per_week)})": {
            Shape.POINT: lambda c: reading_buckets(c, farm, zone, kind, week, end_s, per_week),
            **rewritten(lambda s: buckets_query(s, farm, zone, kind, week, end_s, per_week), parse_buckets),
        },
        "latest per sensor, zone": {
            Shape.POINT: lambda c: last_readings(c, farm, zone, day, end_s),
            **rewritten(lambda s: latest_query(s, farm, zone, keys, day, end_s), parse_latest),
        },
        "device health, farm": {
            Shape.POINT: lambda c: health_of(last_by_device(c, farm, week)),
            **rewritten(lambda s: health_query(s, farm, batteries, week), parse_health),
        },
        "count of readings": {
            Shape.POINT: lambda c: int(c.query("SELECT count(value) AS n FROM reading")[0]["n"]),
            **rewritten(lambda s: count_query(), parse_count),
        },
        "zone counts by window and kind, 1 h (zone stage, live)": {
            Shape.POINT: lambda c: stored_counts(c, farm, zone, hour - 3600, hour, WIDTHS_S),
            **rewritten(
                lambda s: counts_query(farm, zone, hour - 3600, hour, min(WIDTHS_S)),
                lambda a: parse_counts(a, WIDTHS_S),
            ),
        },
        "zone readback, 2 h (zone stage, recovery)": {
            Shape.POINT: lambda c: sorted(stored_readings(c, farm, zone, hours, end_s)),
            **rewritten(lambda s: readback_query(farm, zone, hours, end_s), lambda a: sorted(parse_readback(a))),
        },
    }


def read_figures(svc: Services, layout: Layout, end_s: float) -> dict[str, Any]:
    """Each main read in each shape: the timings (``timed``), whether B and C answered as A, and A's answer's size."""
    out: dict[str, Any] = {}
    for name, calls in reads(layout, end_s).items():
        found: dict[str, Any] = {}
        answers = {}
        for shape, call in calls.items():
            with InfluxClient(InfluxSettings(url=svc.influxd.url, database=database(shape))) as client:
                answers[shape], found[shape.value] = timed(partial(call, client), svc.influxd.pid)
        found["same_answers"] = all(answers[s] == answers[Shape.POINT] for s in answers)
        found["answer_size"] = len(answers[Shape.POINT]) if hasattr(answers[Shape.POINT], "__len__") else 1
        out[name] = found
    return out


def phase_schema(svc: Services, count: int, devices: int, say: Callable[[str], None]) -> dict[str, Any]:
    """The whole phase; its figures, for the results' ``schema``."""
    layout = eight_sensor_layout(devices)
    cleaned, interval_s = clean_messages(layout, count)
    readings = sum(len(m.readings) for m in cleaned)
    suspect = sum(1 for m in cleaned for r in m.readings if r.flags)
    say(
        f"  {len(cleaned):,} clean messages of {devices} devices ({readings:,} readings, {suspect:,} suspect), one "
        f"every {interval_s:.0f} s per device over {SPAN_S / 86400:.0f} days; {CHUNK_MESSAGES} messages a request"
    )
    figures: dict[str, Any] = {
        "messages": len(cleaned),
        "devices": devices,
        "readings": readings,
        "suspect_readings": suspect,
        "interval_s": interval_s,
        "chunk_messages": CHUNK_MESSAGES,
        "rounds": ROUNDS,
        "repeats": REPEATS,
        "shapes": {},
        "reads": {},
    }
    chunks: dict[Shape, list[list[str]]] = {}
    for shape in Shape:
        built, build_us = build(shape, cleaned)
        chunks[shape] = [
            [line for lines in built[i : i + CHUNK_MESSAGES] for line in lines]
            for i in range(0, len(built), CHUNK_MESSAGES)
        ]
        body = [("\n".join(chunk)).encode() for chunk in chunks[shape]]
        figures["shapes"][shape.value] = {
            "shape": shape.label,
            "lines_per_msg": sum(len(c) for c in chunks[shape]) / len(cleaned),
            "bytes_per_msg": sum(len(b) for b in body) / len(cleaned),
            "gzip_bytes_per_msg": sum(len(gzip.compress(b, compresslevel=1)) for b in body) / len(cleaned),
            "build_us_per_msg": build_us,
            "example": built[0],
        }
    for shape, written in write_rounds(svc, chunks, len(cleaned)).items():
        figures["shapes"][shape.value]["write"] = written
    for shape in Shape:
        with InfluxClient(InfluxSettings(url=svc.influxd.url, database=database(shape))) as client:
            figures["shapes"][shape.value] |= series_figures(client)
    for shape, stored in at_rest(svc.work, chunks).items():
        figures["shapes"][shape.value] |= stored
    end_s = max(m.ts for m in cleaned).timestamp() + 1
    del cleaned, chunks, built, body  # millions of objects: a collection of them would be timed with a read
    gc.collect()
    figures["reads"] = read_figures(svc, layout, end_s)
    say(table(figures))
    return figures


def table(figures: dict[str, Any]) -> str:
    """The phase's figures, a column per shape."""
    shapes = figures["shapes"]
    rows: list[tuple[str, ...]] = [("figure", *(shapes[s.value]["shape"] for s in Shape))]

    def row(name: str, value: Callable[[dict[str, Any]], str]) -> None:
        rows.append((name, *(value(shapes[s.value]) for s in Shape)))

    row("lines per message", lambda f: f"{f['lines_per_msg']:.2f}")
    row("bytes per message (gzip)", lambda f: f"{f['bytes_per_msg']:.0f} ({f['gzip_bytes_per_msg']:.0f})")
    row("line building, us per message", lambda f: f"{f['build_us_per_msg']:.1f}")
    row("write, messages/s", lambda f: f"{f['write']['msgs_per_s']:,.0f}")
    row("influxd CPU, us per message", lambda f: f"{f['write']['influxd_cpu_us_per_msg']:.1f}")
    row("  ... until idle", lambda f: f"{f['write']['influxd_cpu_us_per_msg_until_idle']:.1f}")
    row("series (in the shards' indexes)", lambda f: f"{f['series']:,} ({f['shard_series']:,})")
    row("field keys", lambda f: f"{f['field_keys']:,}")
    row("bytes at rest per message, TSM", lambda f: f"{f['tsm_bytes'] / figures['messages']:.1f}")
    row("  index (TSI), whole database", lambda f: f"{f['index_bytes']:,}")
    rows.append(("reads: median ms (influxd + client CPU ms)", *("" for _ in Shape)))
    for name, found in figures["reads"].items():
        same = "" if found["same_answers"] else " (answers differ)"
        rows.append(
            (
                f"{name}{same}",
                *(
                    f"{found[s.value]['median_ms']:.0f} ({found[s.value]['influxd_cpu_ms']:.0f} + "
                    f"{found[s.value]['client_cpu_ms']:.0f})"
                    for s in Shape
                ),
            )
        )
    width = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)) for r in rows)
