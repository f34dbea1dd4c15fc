"""The worker: its core, its three agents and its timers joined into one Faust app."""

from __future__ import annotations

import gc

from smartfarm.topics import KafkaTopic
from stream.worker.base import AGENTS, STALL_CHECK_S
from stream.worker.clean_agent import CleanAndStore
from stream.worker.status_agent import StoreStatus
from stream.worker.watch import Watch
from stream.worker.zone_agent import ZoneWindows

GC_GENERATION0 = 50_000
"""Allocations between two young-generation collections (Python's default is 700). Cleaning a batch of two
thousand device messages allocates about half a million objects that mostly die young; at the default, the
collector runs hundreds of times per batch and its older generations walk Faust's long-lived objects again and
again. Measured on the clean stage alone: a quarter of its time."""


def tune_gc() -> None:
    """Fewer collections for a streaming process, and what exists at startup (modules, the app, the layout) moved
    out of the collector's sight: it lives as long as the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GENERATION0, 20, 20)


class StreamWorker(CleanAndStore, StoreStatus, ZoneWindows, Watch):
    """One worker: the Faust app, its topics, its tables and its agents, storing through ``writer``."""

    def _wire(self) -> None:
        """Each agent on its topic and the two timers, on the app."""
        app = self.app
        raw, status, clean = KafkaTopic.TELEMETRY_RAW, KafkaTopic.DEVICE_STATUS, KafkaTopic.READINGS_CLEAN
        app.agent(self.topics[raw], name=AGENTS[raw], concurrency=1)(self.clean_and_store)
        app.agent(self.topics[status], name=AGENTS[status], concurrency=1)(self.store_status)
        app.agent(self.topics[clean], name=AGENTS[clean], concurrency=1)(self.zone_windows)
        app.timer(5.0)(self.report_lag)
        app.timer(STALL_CHECK_S)(self.resume_stalled)
        app.task(self.follow_layout)
        app.task(self.follow_forecasts)
        app.on_rebalance_complete.connect(self._rebalanced)
        self._own_the_offsets()
