"""Every dashboard query against a real InfluxDB 1.x and a real Prometheus, holding a few points of every
measurement and a scrape of a bridge's and a worker's registries: each must run and return rows; and the
live status's Prometheus queries (`cli.status.collect`) on the same scrape."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from cli.services.base import LocalService, find_binary, free_port
from cli.services.influxdb import InfluxDB
from cli.status import collect
from smartfarm.layout import SensorKind
from storage.influx import InfluxClient
from storage.schema import (
    DecisionPoint,
    DeviceClockPoint,
    DeviceStatusPoint,
    FieldLogPoint,
    Measurement,
    ReadingPoint,
    RecommendationPoint,
    SoilForecastPoint,
    ZoneAggregatePoint,
    ZoneDayPoint,
    ZoneStatePoint,
)
from stream.metrics import BridgeMetrics, WorkerMetrics
from tests.integration.grafana import QueryResult, check_dashboards, reader_env, run_promql
from tests.integration.pipeline import INFLUX_USERS

START = datetime(2026, 7, 1, tzinfo=UTC)
HOURS = 12
FLAGS = ("spike,stuck", "out_of_range", "rate_of_change")
ZONES = {"maize-east": ("soil-maize-east-1", "wx-maize-east-1"), "maize-west": ("soil-maize-west-1",)}


class PrometheusServer(LocalService):
    """The Prometheus binary scraping the given targets every second, on a free loopback port."""

    name = "prometheus"
    start_timeout_s = 30.0

    def __init__(self, workdir: Path, targets: dict[str, str]) -> None:
        super().__init__(workdir)
        self.binary = find_binary("prometheus", "sudo apt-get install -y prometheus")
        self.port = free_port()
        self.targets = targets
        self.url = f"http://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        jobs = [{"job_name": job, "static_configs": [{"targets": [t]}]} for job, t in self.targets.items()]
        config = {"global": {"scrape_interval": "1s"}, "scrape_configs": jobs}
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))

    def ports(self) -> list[int]:
        return [self.port]

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]

    def is_ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
            return bool(answer.status == 200)


def _fill(bridge: BridgeMetrics, worker: WorkerMetrics) -> None:
    """A value on every series the dashboards read."""
    bridge.received.labels("telemetry").inc(100)
    bridge.forwarded.labels("telemetry").inc(98)
    bridge.dead_lettered.labels("too_large").inc(2)
    bridge.redelivered.inc()
    bridge.in_flight.set(3)
    bridge.kafka_resends.inc()
    bridge.reconnects.labels("mqtt").inc()
    bridge.egress_published.inc(2)
    worker.records_in.labels("clean-and-store").inc(10)
    worker.records_out.labels("clean-and-store", "readings.clean").inc(10)
    worker.messages_in.inc(98)
    worker.duplicates.inc(1)
    worker.dead_lettered.labels("invalid_json").inc(1)
    worker.flags.labels("spike").inc(2)
    worker.readings_stored.inc(700)
    worker.late.labels("late").inc()
    worker.write_failures.inc()
    worker.aggregates.labels("60m", "false").inc(4)
    worker.days.inc()
    worker.recommendations.labels("irrigation").inc()
    worker.cancellations.inc()
    worker.rewinds.inc()
    worker.watched(
        [
            ("clean-and-store", "smartfarm.telemetry.raw:0", 5, 0.0),
            ("store-status", "smartfarm.device.status:0", 0, 0.0),
            ("zones", "smartfarm.readings.clean:0", 900, 45.0),
        ]
    )
    for seconds in (0.004, 0.02, 0.3):
        bridge.kafka_latency.observe(seconds)
        worker.from_device.observe(seconds * 10)
        worker.from_receipt.observe(seconds)
        worker.write_seconds.observe(seconds)
        worker.write_lines.observe(500)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus that has scraped a filled bridge and worker registry for a few seconds, twice filled."""
    bridge, worker = BridgeMetrics(), WorkerMetrics()
    targets = {
        "bridge": f"127.0.0.1:{bridge.serve('127.0.0.1', 0)}",
        "worker": f"127.0.0.1:{worker.serve('127.0.0.1', 0)}",
    }
    try:
        with PrometheusServer(tmp_path_factory.mktemp("prometheus"), targets) as server:
            _fill(bridge, worker)
            time.sleep(2.5)
            _fill(bridge, worker)  # so every rate() has an increase inside its window
            deadline = time.monotonic() + 15
            now = datetime.now(UTC)
            while len(run_promql(server.url, "up == 1", now - timedelta(minutes=1), now, 1)) < 2:
                assert time.monotonic() < deadline, "prometheus scraped neither registry in 15 s"
                time.sleep(0.5)
                now = datetime.now(UTC)
            time.sleep(2.5)
            yield server.url
    finally:
        bridge.close()
        worker.close()


def _points() -> Iterator[Measurement]:
    """Twelve hours of one farm, two zones: readings of every kind, the zone stage's outputs and statuses, and the
    farm's answers through the API."""
    for hour in range(HOURS):
        at = START + timedelta(hours=hour)
        for zone, devices in ZONES.items():
            for n, device in enumerate(devices):
                for k, kind in enumerate(SensorKind):
                    suspect = hour % 2 == 0 and kind is SensorKind.SOIL_MOISTURE
                    yield ReadingPoint(
                        time=at + timedelta(minutes=5 * n), farm="north", zone=zone, device=device,
                        sensor=f"{kind.value.replace('_', '-')}-{k}", kind=kind, value=20.0 + hour + k, seq=hour,
                        quality="suspect" if suspect else "good", flags=FLAGS[hour % 3] if suspect else None,
                    )  # fmt: skip
            for kind in SensorKind:
                yield ZoneAggregatePoint(
                    time=at, farm="north", zone=zone, kind=kind, width="1h", count=12, mean=25.0, min=20.0,
                    max=30.0, last=26.0, revision=1,
                )  # fmt: skip
            state = 30.0 - hour * 0.5
            yield ZoneStatePoint(
                time=at + timedelta(hours=1), farm="north", zone=zone, moisture_pct=state, trigger_pct=26.0,
                field_capacity_pct=32.0, depletion_mm=hour * 2.0, raw_mm=18.0, taw_mm=36.0, model="fao56",
            )  # fmt: skip
            for horizon, ahead in (("6h", 6), ("24h", 24)):
                yield SoilForecastPoint(
                    time=at + timedelta(hours=1 + ahead), farm="north", zone=zone, horizon=horizon,
                    moisture_pct=state - ahead * 0.1, model="forecast-v1",
                )  # fmt: skip
            if hour % 6 == 0:
                yield RecommendationPoint(
                    time=at + timedelta(minutes=30), farm="north", zone=zone, kind="irrigation", severity="warning",
                    id=uuid.uuid4(), message=f"irrigate {zone} 12 mm", model="advisor-v1", confidence=0.8,
                    amount_mm=12.0, start_at=(at + timedelta(hours=2)).isoformat(),
                )  # fmt: skip
    for zone in ZONES:
        yield ZoneDayPoint(
            time=START, farm="north", zone=zone, et0_mm=5.1, gdd=14.2, tmin=12.0, tmax=28.0, rain_mm=0.0,
            hours=24, revision=1,
        )  # fmt: skip
    for device in ("soil-maize-east-1", "wx-maize-east-1", "soil-maize-west-1"):
        yield DeviceStatusPoint(time=START, farm="north", device=device, online=True, will=False)
        yield DeviceStatusPoint(time=START + timedelta(hours=5), farm="north", device=device, online=False, will=True)
        yield DeviceStatusPoint(time=START + timedelta(hours=6), farm="north", device=device, online=True, will=False)
    yield DeviceClockPoint(
        time=START + timedelta(hours=2),
        farm="north",
        device="soil-maize-west-1",
        skew_s=-8.4e8,
        reason="stale_timestamp",
    )
    yield from _answers()


def _answers() -> Iterator[Measurement]:
    """What the farm office told the API: a recommendation declined and rain logged by hand, per zone."""
    for zone in ZONES:
        yield DecisionPoint(
            time=START + timedelta(hours=1), farm="north", zone=zone, recommendation=str(uuid.uuid4()),
            status="declined", decided_by="farm office", note="rain is coming",
        )  # fmt: skip
        yield FieldLogPoint(
            time=START + timedelta(hours=3), farm="north", zone=zone, kind="rain", amount_mm=4.5,
            logged_by="farm office",
        )  # fmt: skip


def _report(results: list[QueryResult]) -> str:
    return "\n".join(f"{r.rows:5} {r.query.dashboard} / {r.query.panel} / {r.query.ref}" for r in results)


def test_every_panel_query_runs_and_returns_rows(influxdb: InfluxDB, influx: InfluxClient, prometheus: str) -> None:
    influx.write(_points())
    env = reader_env(INFLUX_USERS)
    results = check_dashboards(influxdb.url, influx.database, prometheus, START, START + timedelta(days=2), env)
    influx_results = [r for r in results if r.query.kind == "influx"]
    assert len(influx_results) >= 30, _report(results)
    empty = [r for r in influx_results if r.rows == 0]
    assert not empty, "InfluxQL queries without rows:\n" + _report(empty)
    by_panel = {
        (r.query.panel, r.query.ref): r for r in influx_results if r.query.dashboard == "smartfarm-farm-overview"
    }
    table = by_panel[("Latest recommendations", "A")]
    assert table.rows == 2 * len(ZONES)
    assert {"zone", "kind", "severity", "message", "amount_mm", "start_at"} <= set(table.first[0])
    trigger = by_panel[("Soil moisture against the irrigation trigger", "B")]
    assert {row["mean"] for row in trigger.first} == {26.0}

    now = datetime.now(UTC)
    prom = check_dashboards(influxdb.url, influx.database, prometheus, now - timedelta(minutes=2), now, env)
    prom_results = [r for r in prom if r.query.kind == "prometheus"]
    assert len(prom_results) >= 25
    empty = [r for r in prom_results if r.rows == 0]
    assert not empty, "PromQL queries without samples:\n" + _report(empty)


def test_the_live_status_reads_every_agents_lag_and_names_the_stalled_partitions(
    influx: InfluxClient, prometheus: str
) -> None:
    snap = collect(prometheus, influx, devices=3)
    assert not snap.problems
    assert snap.lag == {"clean-and-store": 5.0, "store-status": 0.0, "zones": 900.0}
    assert snap.stalled == [("zones", "smartfarm.readings.clean:0", 45.0)]
