"""A client for InfluxDB's 1.x HTTP API: write line protocol, run InfluxQL.

influxdb-client speaks the 2.x API (``/api/v2/write``, Flux), which InfluxDB 1.6 does not serve (it answers
404), so this module posts to the 1.x endpoints ``/write`` and ``/query`` itself, over urllib3's connection
pool, and uses influxdb-client only to build and escape line protocol (see ``storage.schema``).

It logs in with HTTP basic authentication as the user it is given (``InfluxSettings.login``, the component's own,
by default). Its password stays out of messages: a refused login names the settings to fix (``StorageDenied``), a
failed statement is quoted with its passwords redacted, and statements that change anything are posted in the
request's body rather than its URL (which proxies and access logs keep).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode

import urllib3

from smartfarm.errors import StorageDenied, StorageError
from smartfarm.settings import InfluxLogin, InfluxSettings
from storage.schema import Measurement

NO_ADMIN_YET = "create admin user first"
"""What InfluxDB 1.x with authentication on answers (403) to everything but the first admin's CREATE USER."""

_PASSWORD = re.compile(r"(PASSWORD\b[^']*)'(?:[^'\\]|\\.)*'", re.IGNORECASE)


def redacted(influxql: str) -> str:
    """``influxql`` with the string after each ``PASSWORD`` replaced by ``[REDACTED]`` (as InfluxDB's own log does)."""
    return _PASSWORD.sub(r"\1[REDACTED]", influxql)


class InfluxClient:
    """Writes points and runs InfluxQL against one database, logged in as one user.

    Args:
        settings: where InfluxDB is and which database.
        login: who logs in; the settings' own user (``InfluxSettings.login``) when None.
    """

    def __init__(self, settings: InfluxSettings, login: InfluxLogin | None = None) -> None:
        self.settings = settings
        self.database = settings.database
        self.login = login or settings.login
        self._base = settings.url.rstrip("/")
        headers = {}
        if self.login.username:
            secret = self.login.password.get_secret_value()
            headers.update(urllib3.make_headers(basic_auth=f"{self.login.username}:{secret}"))
        self._http = urllib3.PoolManager(
            maxsize=4,  # the worker writes chunks from two threads
            headers=headers,
            timeout=urllib3.Timeout(total=settings.timeout_s),
            retries=urllib3.Retry(total=3, connect=3, read=0, backoff_factor=0.2, status_forcelist=(503,)),
        )

    def __repr__(self) -> str:
        return f"InfluxClient({self._base}, database={self.database!r}, user={self.login.username!r})"

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
            answer = response.data.decode(errors="replace")[:500]
            if response.status in (401, 403):
                raise self._denied(response.status, answer)
            raise StorageError(f"InfluxDB {method} {path} answered {response.status}: {answer}", response.status)
        return response

    def _denied(self, status: int, answer: str) -> StorageDenied:
        user, settings = self.login.username, self.login.settings
        if NO_ADMIN_YET in answer:
            fix = "it has no admin yet: `smartfarm influx-users` (or `smartfarm up`) makes it"
        elif status == 401 and not user:
            fix = f"it requires a login: set {settings}"
        elif status == 401:
            fix = f"it does not know user {user!r} with that password: set {settings} to one it knows"
        else:
            fix = (
                f"user {user!r} lacks the grant on database {self.database!r}: `smartfarm influx-users` declares "
                f"the pipeline's users and their grants, or set {settings} to a user that has it"
            )
        return StorageDenied(
            f"InfluxDB at {self._base} refused {status} ({answer.strip()}): {fix}", status, user, settings
        )

    def ping(self) -> str:
        """The server's version; StorageError when it does not answer."""
        response = self._request("GET", "/ping", {})
        return str(response.headers.get("X-Influxdb-Version", "unknown"))

    def check_access(self, *, write: bool = False) -> None:
        """Raise unless this user may read (and with ``write``, write) the database: ``StorageDenied`` naming the
        settings to fix, StorageError for a database that is missing (``storage.accounts.declare`` makes it) or a
        server that does not answer. An empty write asks InfluxDB for the grant without storing anything."""
        self.query("SHOW MEASUREMENTS LIMIT 1")
        if write:
            self._request("POST", "/write", {"db": self.database, "precision": "ns"}, body=b"")

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
        fields = {"db": self.database, "q": influxql, "epoch": "ns"}
        if write:  # in the body: a statement that changes things may carry a password
            headers = {**self._http.headers, "Content-Type": "application/x-www-form-urlencoded"}
            response = self._request("POST", "/query", {}, body=urlencode(fields).encode(), headers=headers)
        else:
            response = self._request("GET", "/query", fields)
        payload = json.loads(response.data)
        out: list[dict[str, Any]] = []
        for result in payload.get("results", []):
            if "error" in result:
                raise StorageError(f"InfluxQL {redacted(influxql)!r} failed: {result['error']}")
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
