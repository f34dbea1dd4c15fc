"""A client for InfluxDB's 1.x HTTP API: write line protocol, run InfluxQL.

influxdb-client speaks the 2.x API (``/api/v2/write``, Flux), which InfluxDB 1.6 does not serve (it answers
404), so this module posts to the 1.x endpoints ``/write`` and ``/query`` itself, over urllib3's connection
pool, and uses influxdb-client only to build and escape line protocol (see ``storage.schema``).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode

import urllib3

from smartfarm.errors import StorageError
from smartfarm.settings import InfluxSettings
from storage.schema import Measurement


class InfluxClient:
    """Writes points and runs InfluxQL against one database."""

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        self.database = settings.database
        self._base = settings.url.rstrip("/")
        headers = {}
        if settings.username:
            headers.update(
                urllib3.make_headers(basic_auth=f"{settings.username}:{settings.password.get_secret_value()}")
            )
        self._http = urllib3.PoolManager(
            maxsize=4,  # the worker writes chunks from two threads
            headers=headers,
            timeout=urllib3.Timeout(total=settings.timeout_s),
            retries=urllib3.Retry(total=3, connect=3, read=0, backoff_factor=0.2, status_forcelist=(503,)),
        )

    def close(self) -> None:
        self._http.clear()

    def __enter__(self) -> InfluxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        fields: dict[str, str],
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        url = f"{self._base}{path}?{urlencode(fields)}" if fields else f"{self._base}{path}"
        try:
            response = self._http.request(method, url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            raise StorageError(f"InfluxDB at {self._base} is unreachable: {exc}") from exc
        if response.status >= 300:
            raise StorageError(
                f"InfluxDB {method} {path} answered {response.status}: {response.data.decode(errors='replace')[:500]}",
                response.status,
            )
        return response

    def ping(self) -> str:
        """The server's version; StorageError when it does not answer."""
        response = self._request("GET", "/ping", {})
        return str(response.headers.get("X-Influxdb-Version", "unknown"))

    def create_database(self) -> None:
        """Create the database with its retention policy as default; a no-op when it exists."""
        name = self.database
        self.query(f'CREATE DATABASE "{name}" WITH DURATION {self.settings.retention} NAME "default"', write=True)

    def drop_database(self) -> None:
        self.query(f'DROP DATABASE "{self.database}"', write=True)

    def write_lines(self, lines: Iterable[str], *, compress: bool = False) -> int:
        """Write line-protocol lines (nanosecond timestamps) in one request; return how many were sent.

        A point with the series and time of one already stored overwrites it, so writing a batch again (after a
        redelivery) never doubles a value. ``compress``: gzip the body (level 1: most of the gain, little CPU)."""
        body = "\n".join(lines).encode()
        if not body:
            return 0
        count = body.count(b"\n") + 1
        headers = None
        if compress:
            body = gzip.compress(body, compresslevel=1)
            headers = {**self._http.headers, "Content-Encoding": "gzip"}
        self._request("POST", "/write", {"db": self.database, "precision": "ns"}, body=body, headers=headers)
        return count

    def write_or_refusals(self, lines: Sequence[str], *, compress: bool = False) -> list[Refusal]:
        """Write ``lines``; return the ones InfluxDB refused for good, each with its answer (``find_refused``).

        Raises StorageError for anything else: transient (unreachable, a timeout, 5xx: try again) or the
        configuration's (credentials, a missing database)."""
        return find_refused(lines, partial(self.write_lines, compress=compress))

    def write(self, points: Iterable[Measurement]) -> int:
        return self.write_lines(p.to_line() for p in points)

    def query(self, influxql: str, *, write: bool = False) -> list[dict[str, Any]]:
        """Run InfluxQL; return the rows of every series as dicts (column -> value), series tags included."""
        rows: list[dict[str, Any]] = []
        for series in self.series(influxql, write=write):
            tags = series.get("tags", {})
            for values in series.get("values", []):
                row = dict(zip(series["columns"], values, strict=True))
                row.update(tags)
                row.setdefault("name", series.get("name"))
                rows.append(row)
        return rows

    def series(self, influxql: str, *, write: bool = False) -> list[dict[str, Any]]:
        """Run InfluxQL; return its series as InfluxDB sends them (``name``, ``tags``, ``columns``, ``values``):
        for reading many rows back without a dict per row."""
        response = self._request(
            "POST" if write else "GET", "/query", {"db": self.database, "q": influxql, "epoch": "ns"}
        )
        payload = json.loads(response.data)
        out: list[dict[str, Any]] = []
        for result in payload.get("results", []):
            if "error" in result:
                raise StorageError(f"InfluxQL {influxql!r} failed: {result['error']}")
            out += result.get("series", [])
        return out


@dataclass(frozen=True, slots=True)
class Refusal:
    """A line InfluxDB refused for good: its index in what was written, and the database's answer."""

    index: int
    detail: str


def find_refused(lines: Sequence[str], write: Callable[[Sequence[str]], object]) -> list[Refusal]:
    """Write ``lines`` with ``write`` and find exactly the lines the database refuses (a ``StorageError`` that
    ``refuses_data``), by bisection: a refused request is split in halves and each half written again, down to
    single lines. InfluxDB 1.x's partial write stores the good points of a refused request and says only how many it
    dropped (``points beyond retention policy dropped=12``), not which; writing a stored point again overwrites it
    with itself, so the bisection costs requests, never data. A batch of n lines with k bad ones takes about
    2k log2(n/k) requests. Any other error propagates (the caller retries the whole write)."""
    refused: list[Refusal] = []
    todo: list[tuple[int, int]] = [(0, len(lines))]
    while todo:
        start, end = todo.pop()
        if start >= end:
            continue
        try:
            write(lines[start:end])
        except StorageError as exc:
            if not exc.refuses_data:
                raise
            if end - start == 1:
                refused.append(Refusal(start, str(exc)))
                continue
            middle = (start + end) // 2
            todo += [(middle, end), (start, middle)]  # the first half first: refusals come out in order
    return refused
