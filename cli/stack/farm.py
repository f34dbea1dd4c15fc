"""The simulated farm of the local stack, on a thread of its own; the simulated forecast provider following its clock;
and the environment of the workers beside it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from cli.console import say
from cli.farmclock import SeasonWindow
from cli.forecast import publish_round
from cli.worker import WorkerProcess, advice_horizon
from edge.fleet import AdviceGate, FleetStats, prepare
from edge.forecast import HOUR, ISSUE_EVERY, issue_times
from edge.providers import SimulatedProvider
from edge.settings import EdgeSettings
from ml.settings import ModelSettings
from smartfarm.layout import Layout
from smartfarm.settings import InfluxSettings, KafkaSettings, MqttSettings, environment
from smartfarm.stop import StopFlag
from stream.publisher import FarmPublisher
from stream.settings import WorkerSettings

log = logging.getLogger(__name__)


class FarmRunner:
    """The simulated farm, on a thread of its own; its last statistics are kept for the live status."""

    def __init__(
        self,
        layout: Layout,
        mqtt: MqttSettings,
        edge: EdgeSettings,
        season: SeasonWindow | None,
        workers: Sequence[WorkerProcess] = (),
    ) -> None:
        self.layout = layout
        self.workers = workers
        self.mqtt = mqtt
        self.edge = edge
        self.season = season
        self.stats: FleetStats | None = None
        self.error: BaseException | None = None
        self._stop = StopFlag()
        self._thread = threading.Thread(target=self._run, name="farm", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            fleet, source = prepare(self.layout, self.mqtt, self.edge)
            # The catch-up waits for the workers' advice, so the valves water as on a live farm.
            gate = AdviceGate(partial(advice_horizon, self.workers)) if self.workers else None
            stats = fleet.run(source, self._stop, self.edge.speed, on_progress=self._progress, advice=gate)
            if not self._stop.is_set():
                say(f"  Edge       the simulated farm finished its run: {stats.line()}")
        except BaseException as exc:  # surfaced by check() on the main thread
            self.error = exc

    def _progress(self, stats: FleetStats) -> None:
        self.stats = stats

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def status(self) -> str:
        edge = self.edge
        devices = len(self.layout.placements)
        line = f"{'Edge':<10} {devices} simulated devices at {edge.speed:g}x real time (seed {edge.seed})"
        return line + (f"\n             {self.season.describe()}" if self.season else "")

    def check(self) -> None:
        if self.error is not None:
            raise self.error


class ForecastRunner:
    """The simulated forecast provider beside the simulated farm, on a thread of its own: each forecast it issues
    (00, 06, 12 and 18 UTC on the farm's clock, ``edge.forecast.issue_times``) is published to ``weather.forecast``
    once the farm's clock has passed its issue time, as a real provider publishes each model run. It follows the
    farm's own clock (the simulated time of its progress), so the catch-up, which runs as fast as the pipeline's
    advice allows, has its forecasts as the live farm does. A forecast Kafka does not take is logged and skipped."""

    POLL_S = 0.5

    def __init__(self, layout: Layout, edge: EdgeSettings, kafka: KafkaSettings, farm: FarmRunner) -> None:
        self.layout = layout
        self.edge = edge
        self.kafka = kafka
        self.farm = farm
        self.published = 0
        self.error: BaseException | None = None
        self._publisher: FarmPublisher | None = None
        self._stop = StopFlag()
        self._thread = threading.Thread(target=self._run, name="forecasts", daemon=True)

    def start(self) -> None:
        self._publisher = FarmPublisher(self.kafka, client_id="smartfarm-up-forecast")
        self._thread.start()

    def _run(self) -> None:
        assert self._publisher is not None
        provider = SimulatedProvider(self.layout.farms, self.edge)
        last: datetime | None = None
        try:
            while not self._stop.is_set():
                now = self._farm_time()
                if now is None:
                    self._stop.wait(self.POLL_S)
                    continue
                # The first time, the newest issue out; then each issue the farm's clock passed since.
                since = last + HOUR if last else now - ISSUE_EVERY + timedelta(seconds=1)
                for at in issue_times(since, now):
                    done = publish_round(provider, self.layout.farms, self._publisher.forecast, at)
                    self.published += len(done.published)
                    for farm, problem in done.failed:
                        log.warning("farm %s: the forecast issued at %s was not published: %s", farm, at, problem)
                    last = at
                self._stop.wait(self.POLL_S)
        except BaseException as exc:  # surfaced by check() on the main thread
            self.error = exc

    def _farm_time(self) -> datetime | None:
        """The farm's simulated time: its progress's, or before its first progress its start (the season's, which
        the stack sets), so the first hours it plays have the forecast issued at their start."""
        stats = self.farm.stats
        return stats.sim_time if stats is not None and stats.sim_time is not None else self.edge.start

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        if self._publisher is not None:
            self._publisher.close()

    def status(self) -> str:
        return (
            f"{'Forecasts':<10} simulated provider (seed {self.edge.seed}): each farm's forecast at 00, 06, 12 and "
            "18 UTC of the farm's clock -> Kafka weather.forecast"
        )

    def check(self) -> None:
        if self.error is not None:
            raise self.error


ACCELERATED_MAX_FUTURE_S = 10 * 365 * 86400.0
"""A simulated farm faster than real time, or in a season of its own, stamps readings ahead of the clock; the
worker's clock check is relaxed to this (ten years) for it, rather than dead-lettering the farm after a minute."""


def worker_env(
    worker: WorkerSettings,
    accelerated: bool,
    kafka: KafkaSettings,
    influx: InfluxSettings,
    layout_file: Path,
    models: ModelSettings,
) -> dict[str, str]:
    """The environment of one of the stack's workers: the stack's Kafka, InfluxDB (as the writer), layout and
    models."""
    return {
        **environment(kafka),
        **environment(influx),  # the writer
        "SMARTFARM_LAYOUT": str(layout_file),
        "SMARTFARM_MODELS_STORE": str(models.store),
        "SMARTFARM_WORKER_WORKER_ID": worker.worker_id,
        "SMARTFARM_WORKER_METRICS_PORT": str(worker.metrics_port),
        "SMARTFARM_WORKER_DATA_DIR": str(layout_file.parent / "workers" / worker.worker_id),
        "SMARTFARM_WORKER_MAX_FUTURE_S": str(ACCELERATED_MAX_FUTURE_S if accelerated else worker.max_future_s),
    }
