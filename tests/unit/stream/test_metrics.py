"""The worker's per-farm clock of the last stored reading: started for every farm, moved only by its own readings."""

from __future__ import annotations

from stream.metrics import WorkerMetrics

NAME = "smartfarm_worker_farm_last_reading_timestamp_seconds"


def last(metrics: WorkerMetrics, farm: str) -> float | None:
    return metrics.registry.get_sample_value(NAME, {"farm": farm})


def test_a_farm_that_never_speaks_keeps_the_workers_start_time() -> None:
    metrics = WorkerMetrics()
    metrics.watch_farms(["valley-farm", "hill-farm"], 1000.0)
    metrics.stored_farms(["valley-farm", "valley-farm"], 1300.0)
    assert last(metrics, "valley-farm") == 1300.0
    assert last(metrics, "hill-farm") == 1000.0
    metrics.stored_farms([], 1600.0)
    assert last(metrics, "valley-farm") == 1300.0
