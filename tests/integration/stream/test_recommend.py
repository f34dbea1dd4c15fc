"""The closed loop against the real Mosquitto, Kafka and InfluxDB: a dry spell on the simulated farm leads to one
irrigation per zone that needs it, which the valves apply and later soil moisture shows; heavy rain before a
planned irrigation cancels it, and its valve never opens. The same season played as a catch-up (as fast as the
pipeline's advice allows) waters as the live one did."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from cli.services import InfluxDB, Kafka
from cli.worker import advice_horizon
from edge.fleet import AdviceGate, FleetStats, prepare
from edge.settings import EdgeSettings
from edge.weather import WeatherEvent
from smartfarm.layout import load_layout
from smartfarm.records import Recommendation, RecommendationKind
from smartfarm.topics import KafkaTopic
from tests.helpers import edge_settings
from tests.integration.pipeline import Pipeline, influx_database, read_topic, securing

START = datetime(2026, 7, 1, 7, tzinfo=UTC)
"""Midnight at the farm (America/Los_Angeles), mid-season for every crop of the default layout."""
DRY = WeatherEvent.dry(START, timedelta(days=2, hours=7))
RAIN = WeatherEvent.rain(DRY.end, timedelta(hours=2), rain_mm=40.0)
AFTER = WeatherEvent.dry(RAIN.end, timedelta(days=1))


def hourly_moisture(pipeline: Pipeline, zone: str) -> dict[datetime, float]:
    rows = pipeline.influx.query(
        f"SELECT mean FROM zone_aggregate WHERE zone = '{zone}' AND kind = 'soil_moisture' AND width = '1h'"
    )
    return {datetime.fromtimestamp(r["time"] / 1e9, UTC): r["mean"] for r in rows}


@pytest.mark.long(145)
def test_a_dry_spell_irrigates_once_the_valve_applies_it_and_rain_cancels_a_planned_one_also_in_a_catch_up(
    pipeline: Pipeline, kafka: Kafka, influxdb: InfluxDB, tmp_path: Path
) -> None:
    worker = pipeline.worker()
    worker.wait_ready()
    edge = edge_settings(
        tmp_path, speed=3600.0, start=START, duration=AFTER.end - START, weather=(DRY, RAIN, AFTER), seed=1
    )
    fleet, source = prepare(load_layout(), pipeline.mqtt, edge)
    stats = fleet.run(source, threading.Event(), edge.speed)
    assert stats.acked == stats.published
    caught_up = _caught_up(edge, kafka, influxdb, tmp_path / "caught-up")

    advice = [Recommendation.decode(r.value) for r in read_topic(pipeline.kafka, KafkaTopic.RECOMMENDATIONS, 1)]
    planned = {r.id: r for r in advice if r.kind is RecommendationKind.IRRIGATION and r.amount_mm}
    cancels = {r.supersedes: r for r in advice if r.kind is RecommendationKind.IRRIGATION and r.supersedes}
    assert planned, "the dry spell made irrigation advice"
    for r in planned.values():
        assert r.start_at is not None and r.inputs["depletion_mm"] > 0 and r.model == "fao56-baseline@1"
        assert "mm" in r.message and "readily available water" in r.message
    applied = [r for r in planned.values() if r.id not in cancels]
    cancelled = [r for r in planned.values() if r.id in cancels]

    # Applied: before the rain, one per zone, and the zone's soil shows the water after its valve opened.
    assert applied and all(r.start_at is not None and r.start_at < RAIN.start for r in applied)
    zones = [r.zone for r in applied]
    assert len(zones) == len(set(zones)), "one irrigation per zone over the dry spell"
    for r in applied:
        assert r.start_at is not None
        moisture = hourly_moisture(pipeline, r.zone)
        opened = r.start_at.replace(minute=0, second=0, microsecond=0)
        before = moisture[opened - timedelta(hours=1)]
        after = max(v for t, v in moisture.items() if opened < t <= opened + timedelta(hours=8))
        assert after > before + 1.0, f"{r.zone}: soil moisture {before:.1f}% -> {after:.1f}% after the valve opened"

    # Cancelled: planned for after the rain began, cancelled before its valve was due to open.
    assert cancelled, "the rain cancelled an irrigation planned for after it"
    for r in cancelled:
        cancel = cancels[r.id]
        assert r.start_at is not None and RAIN.start < r.start_at
        assert cancel.issued_at < r.start_at and cancel.amount_mm == 0 and "rain" in cancel.message
    assert stats.irrigations == len(applied), "the valves applied exactly the irrigations not cancelled"
    assert stats.cancelled == len(cancelled)
    print(
        f"\nirrigations applied: {[(r.zone, r.amount_mm, r.start_at.isoformat()) for r in applied if r.start_at]}; "
        f"cancelled by rain: {[(r.zone, r.amount_mm) for r in cancelled]}: "
        f"{[cancels[r.id].message for r in cancelled]}"
    )
    # The same season caught up: the same irrigations applied, zone for zone, within 10 % of the water.
    print(
        f"live: {stats.irrigations} irrigations, {stats.irrigated_mm:.1f} mm; caught up: {caught_up.irrigations}, "
        f"{caught_up.irrigated_mm:.1f} mm, held {caught_up.advice_wait_s:.0f} s for advice, "
        f"{caught_up.expired} expired, ran ahead {caught_up.ran_ahead}x"
    )
    assert caught_up.ran_ahead == 0 and caught_up.expired == 0
    assert caught_up.irrigations == stats.irrigations
    assert abs(caught_up.irrigated_mm - stats.irrigated_mm) <= 0.1 * stats.irrigated_mm


def _caught_up(edge: EdgeSettings, kafka: Kafka, influxdb: InfluxDB, workdir: Path) -> FleetStats:
    """``edge``'s season played as one catch-up through a pipeline of its own (broker, topics, database, worker),
    the farm held near the worker's advice as ``smartfarm up`` holds it."""
    workdir.mkdir()
    with securing(workdir) as broker, influx_database(influxdb.url) as database:
        pipeline = Pipeline(broker, kafka, database, workdir)
        try:
            worker = pipeline.worker()
            worker.wait_ready()
            season = edge.model_copy(update={"catch_up": edge.duration, "ground_truth": workdir / "truth.jsonl"})
            fleet, source = prepare(load_layout(), pipeline.mqtt, season)
            gate = AdviceGate(partial(advice_horizon, [worker]))
            return fleet.run(source, threading.Event(), season.speed, advice=gate)
        finally:
            pipeline.close()
