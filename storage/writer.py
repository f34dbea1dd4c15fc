"""Writing lines to InfluxDB from the stream worker: off the event loop, in chunks, retried while the database is
away, and what it refuses for good handed back line by line (``storage.influx.find_refused``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Protocol

from prometheus_client import Counter, Histogram

from smartfarm.errors import StorageDenied, StorageError
from smartfarm.settings import InfluxSettings
from storage.influx import InfluxClient, Refusal

log = logging.getLogger(__name__)


class WriteMetrics(Protocol):
    """What a ``Writer`` counts (the worker's ``stream.metrics.WorkerMetrics`` has them)."""

    write_seconds: Histogram
    write_lines: Histogram
    write_failures: Counter


RETRY_MAX_S = 10.0
"""Longest wait between two attempts at a write InfluxDB refused."""


class Writer:
    """Writes lines to InfluxDB off the event loop, in chunks: what the database refuses for good is handed back,
    everything else is retried until accepted or the worker stops."""

    def __init__(self, influx: InfluxSettings, chunk: int, metrics: WriteMetrics) -> None:
        self.chunk = chunk
        self.metrics = metrics
        self.client = InfluxClient(influx)  # a connection pool, shared by the writing threads; connects on use
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="influx-write")

    def _write(self, lines: list[str]) -> list[Refusal]:
        began = time.perf_counter()
        refused = self.client.write_or_refusals(lines, compress=True)
        self.metrics.write_seconds.observe(time.perf_counter() - began)
        self.metrics.write_lines.observe(len(lines))
        return refused

    async def write(self, lines: list[str], stopping: Callable[[], bool]) -> list[Refusal] | None:
        """Write every line; return the ones InfluxDB refused for good (a 4xx naming the data: beyond the retention
        policy, a field type conflict, unparseable), each with the database's answer, found by bisection
        (``storage.influx.find_refused``). None if the worker began stopping before InfluxDB answered for all.

        Retried with backoff, never skipped: unreachable, timeouts and 5xx (transient), and a missing database
        (404), logged as an error naming the fix. A refused login or grant (401, 403: ``StorageDenied``) is the
        worker's, not the data's, and the same for every batch: raised at once, never dead-lettered, so the worker
        stops with the setting to fix and its batch is redelivered once it is back. Any other exception is a bug
        and propagates."""
        loop = asyncio.get_running_loop()
        chunks = [(i, lines[i : i + self.chunk]) for i in range(0, len(lines), self.chunk)]
        refused: list[Refusal] = []
        delay = 0.25
        while chunks:
            results = await asyncio.gather(
                *(loop.run_in_executor(self._pool, partial(self._write, c)) for _, c in chunks),
                return_exceptions=True,
            )
            failed, errors = [], set()
            for (start, chunk), result in zip(chunks, results, strict=True):
                if isinstance(result, StorageDenied):
                    raise result
                if isinstance(result, StorageError):
                    failed.append((start, chunk))
                    errors.add(result)
                elif isinstance(result, BaseException):
                    raise result
                else:
                    refused += [Refusal(start + r.index, r.detail) for r in result]
            if not failed:
                return refused
            for error in {str(e): e for e in errors}.values():
                if error.transient:
                    log.warning("InfluxDB did not take a write (%s); retrying in %.1f s", error, delay)
                else:
                    log.error(
                        "InfluxDB refused the worker's writes (%s): check SMARTFARM_INFLUX_URL and _DATABASE "
                        "(`smartfarm influx-users` declares the database); retrying in %.1f s",
                        error,
                        delay,
                    )
            self.metrics.write_failures.inc(len(failed))
            chunks = failed
            if stopping():
                return None
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)
        return refused

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()
