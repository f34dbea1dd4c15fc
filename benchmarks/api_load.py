"""The farm API under load (``smartfarm bench --phases api``): requests per second and latency at 50 concurrent
clients, for what a farm's screens ask most, against ceilings measured in the same run.

The API runs as ``smartfarm api`` in a process of its own (uvicorn, as a farm would run it) over a SQLite registry
holding the default farm and the run's InfluxDB holding a week of that farm's readings at 5-minute intervals, with
its zones' state and forecasts. Clients are aiohttp tasks in this process, each with a keep-alive connection,
sending one request after another for ``duration`` seconds after a warm-up; every answer must be 200.

Ceilings, same run, same clients: ``/health`` (the HTTP stack and one registry round trip: what any route costs
at least), and InfluxDB answering the week-of-readings query itself over HTTP (what that route costs at least).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from api.downsample import choose_every
from cli.services import InfluxDB, free_port
from cli.services.base import port_open
from smartfarm.layout import SensorKind, load_layout
from smartfarm.settings import InfluxSettings, InfluxUsers
from storage.accounts import declare
from storage.influx import InfluxClient
from storage.registry.store import FarmRegistry, Scope
from storage.schema import ReadingPoint, SoilForecastPoint, ZoneStatePoint
from storage.zones import reading_buckets_query

CLIENTS = 50
WEEK = timedelta(days=7)
STEP = timedelta(minutes=5)


@dataclass(frozen=True)
class Load:
    """One target under ``CLIENTS`` concurrent clients."""

    name: str
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float


def week_of_readings(influx: InfluxClient, farm_id: str, end: datetime) -> int:
    """Write a week of every sensor of the farm every 5 minutes up to ``end``, and an hour's zone state and
    forecasts per zone; how many readings."""
    farm = load_layout().farm(farm_id)
    lines: list[str] = []
    start = end - WEEK
    steps = int(WEEK / STEP)
    for device in farm.devices:
        for sensor in device.sensors:
            base = 20.0 + (hash(sensor.id) % 10)
            for i in range(steps):
                at = start + i * STEP
                lines.append(
                    ReadingPoint(
                        time=at,
                        farm=farm.id,
                        zone=device.zone,
                        device=device.id,
                        sensor=sensor.id,
                        kind=sensor.kind,
                        value=base + (i % 288) / 100,
                        seq=i,
                        quality="good",
                        depth_cm=sensor.depth_cm,
                    ).to_line()
                )
    for zone in farm.zones:
        state = ZoneStatePoint(
            time=end,
            farm=farm.id,
            zone=zone.id,
            moisture_pct=21.0,
            trigger_pct=19.8,
            field_capacity_pct=25.0,
            depletion_mm=40.0,
            raw_mm=51.7,
            taw_mm=130.0,
            model="fao56-baseline@1",
        )
        lines.append(state.to_line())
        for hours in (6, 24):
            forecast = SoilForecastPoint(
                time=end + timedelta(hours=hours),
                farm=farm.id,
                zone=zone.id,
                horizon=f"{hours}h",
                moisture_pct=20.5,
                model="fao56-physics@1",
            )
            lines.append(forecast.to_line())
    for i in range(0, len(lines), 20_000):
        influx.write_lines(lines[i : i + 20_000])
    return len(lines) - 3 * len(farm.zones)


@contextmanager
def api_process(work: Path, influx: InfluxSettings, kafka_servers: str) -> Iterator[tuple[str, str]]:
    """``smartfarm api`` on a free port over a fresh registry holding the default farm; (base URL, read token)."""
    registry = FarmRegistry.at(work / "api" / "registry.db")
    registry.migrate()
    registry.import_layout(load_layout())
    token = registry.issue_token(load_layout().farms[0].id, "bench", [Scope.READ])
    registry.close()
    port = free_port()
    env = {
        **os.environ,
        "SMARTFARM_REGISTRY_URL": f"sqlite:///{(work / 'api' / 'registry.db').resolve()}",
        "SMARTFARM_INFLUX_URL": influx.url,
        "SMARTFARM_INFLUX_DATABASE": influx.database,
        "SMARTFARM_KAFKA_BOOTSTRAP_SERVERS": kafka_servers,
        "SMARTFARM_KAFKA_TOPIC_PREFIX": "apibench",
        "SMARTFARM_API_PORT": str(port),
    }
    log = (work / "api" / "api.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "cli", "api"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not port_open(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start: {(work / 'api' / 'api.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", token
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


async def _hammer(
    name: str, url: str, headers: dict[str, str], duration_s: float, warmup_s: float, check: Callable[[Any], bool]
) -> Load:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        began = time.perf_counter()
        measure_from = began + warmup_s
        stop_at = measure_from + duration_s

        async def client() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < stop_at:
                async with session.get(url) as response:
                    body = await response.json(content_type=None)
                    done = time.perf_counter()
                ok = response.status == 200 and check(body)
                if now >= measure_from:
                    latencies.append(done - now)
                    errors += not ok

        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    latencies.sort()
    seconds = duration_s
    return Load(
        name=name,
        requests=len(latencies),
        errors=errors,
        seconds=seconds,
        rps=len(latencies) / seconds,
        p50_ms=1000 * statistics.median(latencies) if latencies else float("nan"),
        p99_ms=1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
    )


def hammer(
    name: str, url: str, headers: dict[str, str], duration_s: float, check: Callable[[Any], bool] = lambda _b: True
) -> Load:
    return asyncio.run(_hammer(name, url, headers, duration_s, min(3.0, duration_s / 5), check))


def run(
    influxd: InfluxDB, kafka_servers: str, work: Path, duration_s: float, say: Callable[[str], None]
) -> dict[str, Any]:
    """The phase: each target in turn, its ceiling first; the figures as a dict (``Results.api``)."""
    influx = InfluxSettings(url=influxd.url, database="apibench")
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    declare(influx, InfluxUsers())
    with InfluxClient(influx) as client:
        readings = week_of_readings(client, "valley-farm", end)
    say(f"  a week of the default farm: {readings} readings")
    farm = load_layout().farms[0]
    zone = farm.zones[0].id
    since = (end - WEEK).isoformat()
    week = f"start={quote(since)}&end={quote(end.isoformat())}"
    every_s = choose_every(WEEK, None)
    influxql = reading_buckets_query(
        farm.id, zone, SensorKind.SOIL_MOISTURE, (end - WEEK).timestamp(), end.timestamp(), every_s
    )
    figures: dict[str, Any] = {"clients": CLIENTS, "readings": readings, "every_s": every_s}
    with api_process(work, influx, kafka_servers) as (base, token):
        auth = {"Authorization": f"Bearer {token}"}
        targets = [
            ("ceiling: /health", f"{base}/health", {}, lambda b: b.get("status") == "ok"),
            (
                "ceiling: InfluxDB, a week's query",
                f"{influxd.url}/query?db={influx.database}&q={quote(influxql)}",
                {},
                lambda b: bool(b["results"][0].get("series")),
            ),
            (
                "zone overview: /zones/{zone}/now",
                f"{base}/farms/{farm.id}/zones/{zone}/now",
                auth,
                lambda b: b["state"],
            ),
            (
                "a week of readings: /zones/{zone}/readings",
                f"{base}/farms/{farm.id}/zones/{zone}/readings?kind=soil_moisture&{week}",
                auth,
                lambda b: len(b["series"]) > 0 and len(b["series"][0]["points"]) > 500,
            ),
            ("farm: /farms/{farm}", f"{base}/farms/{farm.id}", auth, lambda b: len(b["zones"]) == len(farm.zones)),
            (
                "a week of recommendations",
                f"{base}/farms/{farm.id}/recommendations?{week}",
                auth,
                lambda b: "items" in b,
            ),
        ]
        loads = []
        for name, url, headers, check in targets:
            load = hammer(name, url, headers, duration_s, check)
            say(
                f"  {name:<40} {load.rps:8.0f} req/s  p50 {load.p50_ms:7.1f} ms  p99 {load.p99_ms:7.1f} ms"
                f"  errors {load.errors}"
            )
            loads.append(asdict(load))
    figures["loads"] = loads
    return figures
