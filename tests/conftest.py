"""The whole suite's scheduling: the long tests start first, spread over the workers by their length.

``scripts/test.sh`` runs every lane in one pytest on several workers (``--dist worksteal``): xdist hands each
worker an equal run of the collection, in order, and a worker that runs dry takes half of the longest queue's
tail. A test marked ``long(seconds)`` (about how long it takes on two shared cores) is moved to the head of one
of those runs: the longest first, each to the run with the least long work so far. So the long tests start at
once on different workers and the short ones fill the gaps; left in collection order, two of them could queue
on one worker while the others run dry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import once_per_run, run_folder


def _seconds(item: pytest.Item) -> float | None:
    mark = item.get_closest_marker("long")
    return None if mark is None else float(mark.args[0])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        return
    long = sorted((item for item in items if _seconds(item) is not None), key=lambda i: -(_seconds(i) or 0.0))
    short = [item for item in items if _seconds(item) is None]
    runs: list[list[pytest.Item]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for item in long:
        w = load.index(min(load))
        runs[w].append(item)
        load[w] += _seconds(item) or 0.0
    left = len(items)
    for w, run in enumerate(runs):
        size = left // (workers - w)  # the share xdist sends this worker first (``WorkStealingScheduling``)
        take = max(0, size - len(run))
        run += short[:take]
        del short[:take]
        left -= len(run)
    items[:] = [item for run in runs for item in run] + short


@pytest.fixture(scope="session")
def run_cache(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Callable[[str, Callable[[], Any]], Any]:
    """``run_cache(name, make)``: ``make()`` once per test run, shared by the xdist workers (``once_per_run``)."""
    folder = run_folder(tmp_path_factory, worker_id)
    return lambda name, make: once_per_run(folder, name, make)
