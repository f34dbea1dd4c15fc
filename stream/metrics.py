"""The bridge's and the worker's Prometheus metrics, each on a registry of its own so several can share a
process (the tests run bridges and workers side by side)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from smartfarm.errors import RejectReason

ZONE_WATERMARK = "smartfarm_worker_zone_watermark_timestamp_seconds"
"""The event time up to which a zone's windows are closed and scored: how far its advice has got."""


class ServedMetrics:
    """A registry served over HTTP at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._server: Any = None

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` over HTTP; return the port (a free one when ``port`` is 0)."""
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class BridgeMetrics(ServedMetrics):
    """Counters, gauges and the delivery-latency histogram of one bridge."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.received = Counter(
            "smartfarm_bridge_received", "MQTT messages received, by topic kind", ["kind"], registry=r
        )
        self.forwarded = Counter(
            "smartfarm_bridge_forwarded", "MQTT messages confirmed by Kafka and acknowledged", ["kind"], registry=r
        )
        self.dead_lettered = Counter(
            "smartfarm_bridge_dead_lettered", "messages refused at the door, by reason", ["reason"], registry=r
        )
        self.redelivered = Counter(
            "smartfarm_bridge_redelivered", "MQTT messages the broker delivered again (DUP flag)", registry=r
        )
        self.in_flight = Gauge(
            "smartfarm_bridge_in_flight", "MQTT messages received and not yet acknowledged", registry=r
        )
        self.kafka_latency = Histogram(
            "smartfarm_bridge_kafka_delivery_seconds",
            "from MQTT receipt to Kafka's acks=all confirmation",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.kafka_resends = Counter(
            "smartfarm_bridge_kafka_resends", "records sent to Kafka again after a delivery failure", registry=r
        )
        self.reconnects = Counter("smartfarm_bridge_reconnects", "MQTT reconnections", ["link"], registry=r)
        self.egress_published = Counter(
            "smartfarm_bridge_egress_published", "recommendations published to MQTT and acknowledged", registry=r
        )
        zero_series(self.dead_lettered, self.reconnects)


def zero_series(dead_lettered: Counter, reconnects: Counter | None = None) -> None:
    """Every reason (and link) at 0 from the start: a labelled series exists only once touched, so a rate or an
    alert over one never seen would be "no data" rather than 0 (Prometheus' advice: initialise known labels)."""
    for reason in RejectReason:
        dead_lettered.labels(reason.value)
    if reconnects is not None:
        for link in ("ingress", "egress"):
            reconnects.labels(link)


STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
"""Seconds of one request or step of a stage."""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
"""Seconds, up to a day: readings held by a device through an outage arrive hours late."""


class WorkerMetrics(ServedMetrics):
    """What one stream worker did: records in and out per agent, duplicates, dead letters, flags, latencies,
    InfluxDB writes, consumer lag, and when it last stored a reading of each farm."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.records_in = Counter("smartfarm_worker_records_in", "records consumed, by agent", ["agent"], registry=r)
        self.messages_in = Counter(
            "smartfarm_worker_messages_in",
            "device messages taken from telemetry.raw (an envelope record holds many): cleaned, duplicate or refused",
            registry=r,
        )
        self.records_out = Counter(
            "smartfarm_worker_records_out", "records produced, by agent and topic", ["agent", "topic"], registry=r
        )
        self.duplicates = Counter(
            "smartfarm_worker_duplicates",
            "device messages dropped as already cleaned (same device and seq)",
            registry=r,
        )
        self.dead_lettered = Counter(
            "smartfarm_worker_dead_lettered", "messages refused by cleaning, by reason", ["reason"], registry=r
        )
        zero_series(self.dead_lettered)
        self.flags = Counter("smartfarm_worker_flags", "readings flagged suspect, by flag", ["flag"], registry=r)
        self.readings_stored = Counter("smartfarm_worker_readings_stored", "readings written to InfluxDB", registry=r)
        self.late = Counter("smartfarm_worker_late", "device messages marked late or out of order", ["why"], registry=r)
        self.from_device = Histogram(
            "smartfarm_worker_device_to_stored_seconds",
            "from a reading's device timestamp to InfluxDB accepting it",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.from_receipt = Histogram(
            "smartfarm_worker_receipt_to_stored_seconds",
            "from the bridge's receipt of a message to InfluxDB accepting its readings",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.write_seconds = Histogram(
            "smartfarm_worker_influx_write_seconds",
            "one InfluxDB write request",
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.write_lines = Histogram(
            "smartfarm_worker_influx_write_lines",
            "lines in one InfluxDB write request",
            buckets=(10, 100, 500, 1000, 2500, 5000, 10000, 25000),
            registry=r,
        )
        self.write_failures = Counter(
            "smartfarm_worker_influx_write_failures", "InfluxDB writes that failed and were retried", registry=r
        )
        self.aggregates = Counter(
            "smartfarm_worker_zone_aggregates",
            "zone window aggregates emitted, by width and whether a revision",
            ["width", "revised"],
            registry=r,
        )
        self.zone_step_seconds = Histogram(
            "smartfarm_worker_zone_step_seconds",
            "one step of the zones of a batch of clean records (their windows, days and advice, with the queries)",
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.zone_windows = Counter(
            "smartfarm_worker_zone_windows",
            "due zone windows computed, by source: counted (from the clean records this worker read) or read_back "
            "(from the stored readings: a zone taken over or restarted, late readings)",
            ["source"],
            registry=r,
        )
        self.days = Counter("smartfarm_worker_zone_days", "zone days emitted (reference ET, degree days)", registry=r)
        self.scored_hours = Counter(
            "smartfarm_worker_scored_hours",
            "zone hours scored (closed, or revised after), by whether the farm had a weather forecast out by the "
            "hour's end (forecast=yes|no)",
            ["forecast"],
            registry=r,
        )
        self.recommendations = Counter(
            "smartfarm_worker_recommendations", "recommendations emitted, by kind", ["kind"], registry=r
        )
        self.cancellations = Counter(
            "smartfarm_worker_irrigations_cancelled",
            "planned irrigations cancelled (rain, or a revised window no longer calling for water)",
            registry=r,
        )
        self.rewinds = Counter(
            "smartfarm_worker_rewinds",
            "partitions sought back because the consumer skipped records (never committed past)",
            registry=r,
        )
        self.offset_hooks = Counter(
            "smartfarm_worker_offset_hooks",
            "calls by faust of the worker's offset hooks (stream.faustpatch), by hook: none means records can be lost",
            ["hook"],
            registry=r,
        )
        self.lag = Gauge(
            "smartfarm_worker_consumer_lag",
            "records not yet processed, by agent and the topic partition it reads",
            ["agent", "tp"],
            registry=r,
        )
        self.stalled = Gauge(
            "smartfarm_worker_stalled_seconds",
            "seconds since the agent last moved on in the partition while records waited there (0: keeping up)",
            ["agent", "tp"],
            registry=r,
        )
        self._watched: set[tuple[str, str]] = set()
        self.farm_last_reading = Gauge(
            "smartfarm_worker_farm_last_reading_timestamp_seconds",
            "wall-clock time this worker last stored a reading of the farm (its start time until it has)",
            ["farm"],
            registry=r,
        )
        self.zone_watermark = Gauge(
            ZONE_WATERMARK,
            "event time up to which a zone's windows are closed and scored (its advice made), by farm and zone",
            ["farm", "zone"],
            registry=r,
        )

    def watch_farms(self, farms: Iterable[str], started_s: float) -> None:
        """Start each farm's last-reading clock at the worker's start, so a farm that never speaks still looks
        silent: a series that is absent would never fire an alert."""
        for farm in farms:
            self.farm_last_reading.labels(farm).set(started_s)

    def watched(self, looks: Iterable[tuple[str, str, int, float]]) -> None:
        """The lag and stalled seconds of every partition the agents read now, as (agent, tp, lag, stalled
        seconds); a partition no longer held loses its series, so a revoked one cannot look stalled forever."""
        now = set()
        for agent, tp, lag, stalled_s in looks:
            self.lag.labels(agent, tp).set(lag)
            self.stalled.labels(agent, tp).set(round(stalled_s, 1))
            now.add((agent, tp))
        for gone in self._watched - now:
            self.lag.remove(*gone)
            self.stalled.remove(*gone)
        self._watched = now

    def zones_advised(self, watermarks: Iterable[tuple[str, str, float]]) -> None:
        """Each (farm, zone)'s windows up to this event time are closed, scored and their records sent."""
        for farm, zone, watermark_s in watermarks:
            if math.isfinite(watermark_s):
                self.zone_watermark.labels(farm, zone).set(watermark_s)

    def stored_farms(self, farms: Iterable[str], now_s: float) -> None:
        """Readings of ``farms`` were stored at ``now_s``."""
        for farm in set(farms):
            self.farm_last_reading.labels(farm).set(now_s)
