"""The end-to-end benchmark's own accounting, on the real path (Mosquitto, a bridge, a worker, Kafka, InfluxDB): a
run at a low rate reports exactly what was published and stored and nothing lost; a run whose points of one device
are deleted behind its back reports exactly those as lost."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from benchmarks.endtoend import Pipeline, run_rate
from cli.services import InfluxDB, Kafka, Mosquitto
from storage.influx import InfluxClient

RATE, SECONDS, DEVICES = 40.0, 10.0, 20
CUT_S = 3.0
"""The points of the first device stamped in the run's first ``CUT_S`` seconds are deleted ``2 * CUT_S`` in."""


@pytest.fixture(scope="module")
def pipeline(
    mosquitto: Mosquitto, kafka: Kafka, influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    with Pipeline(mosquitto, kafka, influxdb, tmp_path_factory.mktemp("bench"), "acct", DEVICES) as p:
        yield p


def test_a_low_rate_run_reports_the_exact_counts_and_nothing_lost(pipeline: Pipeline) -> None:
    m = run_rate(pipeline, RATE, SECONDS)
    o = m.outcome
    assert o.published == o.acknowledged == RATE * SECONDS
    assert o.readings_due == o.readings_stored == 8 * o.published
    assert o.lost == 0 and o.duplicates == 0
    assert o.sustained(), o.verdict()
    assert 0 < o.latency.p50 <= o.latency.p99 < 2.0
    assert set(m.rss_mb) >= {"bridge1", "worker1", "generator1"} and all(v > 0 for v in m.rss_mb.values())


class DeleteOnce:
    """A ``during`` hook: ``2 * CUT_S`` into the run, deletes the points of ``device`` stamped in its first
    ``CUT_S`` seconds (the run starts on a whole second, and ``during`` gets the seconds since), counting them."""

    def __init__(self, pipeline: Pipeline, device: str) -> None:
        self.pipeline, self.device = pipeline, device
        self.deleted: int | None = None

    def __call__(self, elapsed: float) -> None:
        if self.deleted is not None or elapsed < 2 * CUT_S:
            return
        t0_ms = round(time.time() - elapsed) * 1000
        where = f"device = '{self.device}' AND time >= {t0_ms}ms AND time < {t0_ms + round(CUT_S * 1000)}ms"
        with InfluxClient(self.pipeline.influx) as client:
            rows = client.query(f"SELECT count(value) AS n FROM reading WHERE {where}")
            self.deleted = int(rows[0]["n"]) if rows else 0
            client.query(f"DELETE FROM reading WHERE {where}", write=True)


def test_points_deleted_behind_its_back_are_reported_lost(pipeline: Pipeline) -> None:
    hook = DeleteOnce(pipeline, pipeline.devices[0])  # the generator's slot 0: messages 0, DEVICES, 2 * DEVICES...
    m = run_rate(pipeline, RATE, SECONDS, during=hook, settle_s=3)
    assert hook.deleted == 8 * math.ceil(CUT_S * RATE / DEVICES), "each of the device's points in the cut was stored"
    assert m.outcome.published == m.outcome.acknowledged == RATE * SECONDS
    assert m.outcome.readings_due == 8 * m.outcome.published
    assert m.outcome.lost == hook.deleted
    assert not m.outcome.sustained()
