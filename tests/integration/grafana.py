"""The Grafana dashboards' queries, as Grafana would send them: found, expanded and run.

Grafana cannot run here, so its panels are tested through their queries. This module (a) walks every dashboard
file and yields each query, panel targets, template variables and annotations alike; (b) expands Grafana's macros
and variables the way its InfluxDB and Prometheus datasources do; (c) runs the result against a real InfluxDB 1.x
(``/query``, logged in as the provisioned datasource's user: the reader) or Prometheus (``/api/v1/query_range``)
on loopback. ``references`` and ``metric_names`` read what a
query names, for ``tests/unit/test_dashboards.py`` to hold against ``storage/schema.py`` and ``stream/metrics.py``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import SecretStr

from smartfarm.settings import InfluxLogin, InfluxSettings, InfluxUsers, env_name
from storage.influx import InfluxClient

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources"

Kind = Literal["influx", "prometheus"]
Value = str | Sequence[str]
KINDS: dict[str, Kind] = {"influxdb": "influx", "prometheus": "prometheus"}

BUILTINS = frozenset(
    {"timeFilter", "__interval", "__interval_ms", "__rate_interval", "__range", "__range_s", "__from", "__to", "col"}
)
"""Names Grafana fills itself (``$col`` and ``$tag_x`` only in InfluxDB aliases, never in a query)."""

_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]|\$(\w+)")


@dataclass(frozen=True)
class Query:
    """One query of a dashboard: a panel target, a template variable or an annotation."""

    dashboard: str
    panel: str
    ref: str
    kind: Kind
    text: str


@dataclass
class QueryResult:
    """What one expanded query returned: its row count and first rows (column -> value, series tags included)."""

    query: Query
    expanded: str
    rows: int
    first: list[dict[str, Any]] = field(default_factory=list)


def datasources() -> dict[str, Kind]:
    """The provisioned datasources: uid -> kind."""
    found: dict[str, Kind] = {}
    for path in sorted(DATASOURCES.glob("*.yaml")):
        for source in yaml.safe_load(path.read_text())["datasources"]:
            found[source["uid"]] = KINDS[source["type"]]
    return found


def reader_env(users: InfluxUsers) -> dict[str, str]:
    """Grafana's environment for the InfluxDB datasource's login, as docker-compose.yml gives it: the reader's."""
    return {
        env_name(InfluxUsers, "reader_username"): users.reader_username,
        env_name(InfluxUsers, "reader_password"): users.reader_password.get_secret_value(),
    }


def datasource_login(env: Mapping[str, str]) -> InfluxLogin:
    """The user the provisioned InfluxDB datasource logs in as, its ``$VARS`` expanded from ``env`` as Grafana's
    provisioning expands them from its environment; AssertionError naming a variable ``env`` lacks."""

    def expand(text: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match[1] or match[2]
            assert name in env, f"the InfluxDB datasource names ${name}, which Grafana's environment lacks"
            return env[name]

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)

    for path in sorted(DATASOURCES.glob("*.yaml")):
        for source in yaml.safe_load(path.read_text())["datasources"]:
            if KINDS[source["type"]] == "influx":
                password = SecretStr(expand(source["secureJsonData"]["password"]))
                return InfluxLogin(expand(source["user"]), password, f"the datasource of {path.name}")
    raise AssertionError("no InfluxDB datasource is provisioned")


def scrape_intervals() -> dict[str, str]:
    """Each provisioned datasource's ``timeInterval`` (Grafana's lower bound for ``$__interval``): uid -> duration."""
    found: dict[str, str] = {}
    for path in sorted(DATASOURCES.glob("*.yaml")):
        for source in yaml.safe_load(path.read_text())["datasources"]:
            found[source["uid"]] = source.get("jsonData", {}).get("timeInterval", "15s")
    return found


def load_dashboards(folder: Path = DASHBOARDS) -> dict[str, dict[str, Any]]:
    """Every dashboard file, parsed: uid -> dashboard model."""
    boards: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        board = json.loads(path.read_text())
        boards[board["uid"]] = board
    return boards


def panels(board: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _uid(source: Any) -> str:
    return str(source.get("uid")) if isinstance(source, Mapping) else str(source)


def queries(board: Mapping[str, Any], sources: Mapping[str, Kind] | None = None) -> Iterator[Query]:
    """Each query of one dashboard, in the order Grafana resolves them: variables, annotations, panels."""
    sources = datasources() if sources is None else sources
    uid = board["uid"]
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            text = variable["query"]
            text = text["query"] if isinstance(text, Mapping) else text
            yield Query(
                uid, f"variable {variable['name']}", variable["name"], sources[_uid(variable["datasource"])], text
            )
    for annotation in board.get("annotations", {}).get("list", []):
        if annotation.get("builtIn"):
            continue
        kind = sources[_uid(annotation["datasource"])]
        text = annotation.get("query") or annotation.get("expr") or annotation.get("target", {}).get("query")
        yield Query(uid, f"annotation {annotation['name']}", annotation["name"], kind, text)
    for panel in panels(board):
        for target in panel.get("targets", []):
            source = target.get("datasource") or panel["datasource"]
            kind = sources[_uid(source)]
            text = target["query"] if kind == "influx" else target["expr"]
            yield Query(uid, panel["title"], target["refId"], kind, text)


def all_queries(folder: Path = DASHBOARDS) -> Iterator[Query]:
    sources = datasources()
    for board in load_dashboards(folder).values():
        yield from queries(board, sources)


def variables_used(text: str) -> set[str]:
    """The variable names a query refers to (``$x``, ``${x}``, ``${x:fmt}``, ``[[x]]``), Grafana's own excluded."""
    names = {next(g for g in (m[0], m[2], m[3]) if g) for m in _VARIABLE.findall(text)}
    return {n for n in names if n not in BUILTINS and not n.startswith("tag_")}


# -- time and intervals ------------------------------------------------------------------------------------------

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NICE: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900)
_NICE += (1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800)


def seconds(duration: str) -> float:
    """``"10s"``, ``"5m"``, ``"1h"`` as seconds."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", duration)
    if found is None:
        raise ValueError(f"not a duration: {duration!r}")
    return float(found[1]) * _UNITS[found[2]]


def duration(secs: float) -> str:
    """Seconds as the largest whole unit InfluxQL and PromQL both read: 3600 -> ``"1h"``, 0.5 -> ``"500ms"``."""
    for unit in ("w", "d", "h", "m", "s"):
        count = secs / _UNITS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{round(secs * 1000)}ms"


def interval(time_from: datetime, time_to: datetime, minimum: str, max_points: int = 1000) -> float:
    """Grafana's ``$__interval`` in seconds: the range over the panel's points, rounded up to a nice step, not
    below the datasource's ``timeInterval``."""
    raw = (time_to - time_from).total_seconds() / max_points
    nice = next((step for step in _NICE if step >= raw), _NICE[-1])
    return max(nice, seconds(minimum))


# -- expansion ---------------------------------------------------------------------------------------------------

_REGEX_SPECIAL = re.compile(r"([\\^$*+?.()|{}\[\]/])")


def _regex_escape(value: str) -> str:
    return _REGEX_SPECIAL.sub(r"\\\1", value)


def _inside_regex(text: str, position: int) -> bool:
    """Whether ``position`` lies inside an InfluxQL ``/.../`` literal or a PromQL ``=~"..."`` matcher."""
    for literal in re.finditer(r"[=!]~\s*(/(?:\\.|[^/\\])*/|\"(?:\\.|[^\"\\])*\")", text):
        if literal.start(1) < position < literal.end(1):
            return True
    return False


def _format(value: Value, regex: bool, fmt: str | None) -> str:
    values = [value] if isinstance(value, str) else list(value)
    if fmt == "regex" or (fmt is None and regex):
        if len(values) == 1:
            return _regex_escape(values[0])
        return "(" + "|".join(_regex_escape(v) for v in values) + ")"
    if fmt == "pipe":
        return "|".join(values)
    if len(values) == 1:
        return values[0]
    return "{" + ",".join(values) + "}"  # Grafana's default glob form, for a multi-value outside a regex


def expand(
    query: Query,
    time_from: datetime,
    time_to: datetime,
    variables: Mapping[str, Value],
    minimum_interval: str = "10s",
    scrape_interval: str = "15s",
) -> str:
    """The query as Grafana sends it: ``$timeFilter`` as ``time >= <ms>ms and time <= <ms>ms``, the interval
    macros as durations, each variable in its regex form inside a regex (``=~ /^$zone$/``: a multi-value
    becomes ``(a|b)``, escaped) and plain elsewhere. KeyError names a variable that has no value."""
    step = interval(time_from, time_to, minimum_interval)
    scrape = seconds(scrape_interval)
    span = (time_to - time_from).total_seconds()
    start_ms, end_ms = round(time_from.timestamp() * 1000), round(time_to.timestamp() * 1000)
    macros = {
        "timeFilter": f"time >= {start_ms}ms and time <= {end_ms}ms",
        "__interval": duration(step),
        "__interval_ms": str(round(step * 1000)),
        "__rate_interval": duration(max(step + scrape, 4 * scrape)),
        "__range": duration(span),
        "__range_s": str(round(span)),
        "__from": str(start_ms),
        "__to": str(end_ms),
    }
    text = query.text

    def replace(found: re.Match[str]) -> str:
        name = found[1] or found[3] or found[4]
        if name in macros:
            return macros[name]
        if name not in variables:
            raise KeyError(f"{query.dashboard} / {query.panel}: variable ${name} has no value")
        return _format(variables[name], _inside_regex(text, found.start()), found[2])

    return _VARIABLE.sub(replace, text)


# -- what a query names ------------------------------------------------------------------------------------------


@dataclass
class References:
    """What one InfluxQL statement names: its measurement, the identifiers of its SELECT and WHERE clauses, the
    tags of its GROUP BY (or SHOW TAG VALUES' key) and the bare words none of these explain."""

    measurement: str
    selected: set[str] = field(default_factory=set)
    filtered: set[str] = field(default_factory=set)
    grouped: set[str] = field(default_factory=set)
    unknown_words: set[str] = field(default_factory=set)


INFLUXQL_FUNCTIONS = frozenset(
    [
        "count",
        "distinct",
        "integral",
        "mean",
        "median",
        "mode",
        "spread",
        "stddev",
        "sum",
        "bottom",
        "first",
        "last",
        "max",
        "min",
        "percentile",
        "sample",
        "top",
        "abs",
        "ceil",
        "floor",
        "round",
        "derivative",
        "difference",
        "elapsed",
        "moving_average",
        "non_negative_derivative",
        "non_negative_difference",
        "cumulative_sum",
    ]
)
INFLUXQL_WORDS = frozenset({"and", "or", "not", "time", "now", "as", "true", "false"})

_CLAUSE_END = r"(?=\s+(?:GROUP\s+BY|ORDER\s+BY|LIMIT|SLIMIT|OFFSET|FILL|TZ)\b|\s*$)"


def _strip_literals(text: str) -> str:
    """Without its string and regex literals, which may hold any word."""
    text = re.sub(r"'(?:\\.|[^'\\])*'", "''", text)
    return re.sub(r"/(?:\\.|[^/\\])*/", "//", text)


def _identifiers(clause: str) -> tuple[set[str], set[str]]:
    """The double-quoted identifiers of a clause and its other words (numbers and durations left out)."""
    quoted = set(re.findall(r'"((?:\\.|[^"\\])*)"', clause))
    rest = re.sub(r'"(?:\\.|[^"\\])*"', " ", clause)
    words = {w.lower() for w in re.findall(r"\b[A-Za-z_]\w*\b", rest) if not re.fullmatch(r"\d+\w*", w)}
    words -= {u for u in ("ms", "s", "m", "h", "d", "w", "u", "ns")}
    return quoted, words


def references(statement: str) -> References:
    """What an (expanded) InfluxQL ``SELECT`` or ``SHOW TAG VALUES`` statement names. ValueError on a statement
    of another shape, so a dashboard cannot slip in a query this reader does not check."""
    text = _strip_literals(" ".join(statement.split()))
    shown = re.fullmatch(r'SHOW TAG VALUES FROM "(\w+)" WITH KEY = "(\w+)"(?: WHERE (.+))?', text, flags=re.IGNORECASE)
    if shown:
        refs = References(shown[1], grouped={shown[2]})
        if shown[3]:
            refs.filtered, words = _identifiers(shown[3])
            refs.unknown_words = words - INFLUXQL_WORDS
        return refs
    found = re.fullmatch(r'SELECT (.+?) FROM "(\w+)"(?: WHERE (.+?))?' + _CLAUSE_END + r"(.*)", text, re.IGNORECASE)
    if found is None:
        raise ValueError(f'not a SELECT ... FROM "measurement" statement this reader checks: {statement!r}')
    select = re.sub(r'\bAS\s+"(?:\\.|[^"\\])*"', " ", found[1], flags=re.IGNORECASE)
    refs = References(found[2])
    refs.selected, words = _identifiers(select)
    unknown = words - INFLUXQL_FUNCTIONS - INFLUXQL_WORDS
    if found[3]:
        refs.filtered, more = _identifiers(found[3])
        unknown |= more - INFLUXQL_WORDS
    tail = found[4] or ""
    grouped = re.search(r"GROUP BY (.+?)(?=\s+(?:ORDER\s+BY|LIMIT|SLIMIT|OFFSET|FILL|TZ)\b|\s*$)", tail, re.I)
    if grouped:
        clause = re.sub(r"\btime\([^)]*\)", " ", grouped[1], flags=re.IGNORECASE)
        refs.grouped, more = _identifiers(clause)
        unknown |= more
    refs.unknown_words = unknown
    return refs


PROMQL_WORDS = frozenset(
    [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "and",
        "or",
        "unless",
        "inf",
        "nan",
    ]
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: words that are not functions, keywords, labels (inside
    ``{}``, ``by ()``, ``on ()``...), durations or strings."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for found in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        if found[2] or found[1].lower() in PROMQL_WORDS:
            continue
        names.add(found[1])
    return names


def label_names(expr: str) -> set[str]:
    """The label names a PromQL expression groups or matches by (``by (x)``, ``{x="..."}``)."""
    labels: set[str] = set()
    for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels |= {w.strip() for w in clause.split(",") if w.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)):
        labels |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
    return labels


# -- running -----------------------------------------------------------------------------------------------------


def _loopback(url: str) -> str:
    host = urllib.parse.urlsplit(url).hostname
    if host != "127.0.0.1":
        raise ValueError(f"queries go to 127.0.0.1 only, not {url}")
    return url.rstrip("/")


def run_influxql(url: str, database: str, statement: str, login: InfluxLogin) -> list[dict[str, Any]]:
    """The rows of an InfluxQL statement against the InfluxDB 1.x at ``url`` (series tags in each row), as
    ``login``."""
    with InfluxClient(InfluxSettings(url=_loopback(url), database=database), login) as client:
        return client.query(statement)


def run_promql(
    url: str, expr: str, time_from: datetime, time_to: datetime, step: float, timeout_s: float = 10
) -> list[dict[str, Any]]:
    """One row per sample of a PromQL range query (labels, ``time`` in s, ``value``); RuntimeError when refused."""
    fields = {"query": expr, "start": time_from.timestamp(), "end": time_to.timestamp(), "step": step}
    address = f"{_loopback(url)}/api/v1/query_range?{urllib.parse.urlencode(fields)}"
    try:
        with urllib.request.urlopen(address, timeout=timeout_s) as answer:
            body = json.load(answer)
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
    if body.get("status") != "success":
        raise RuntimeError(f"prometheus refused {expr!r}: {body.get('error')}")
    rows: list[dict[str, Any]] = []
    for series in body["data"]["result"]:
        for when, value in series.get("values", []):
            rows.append({**series["metric"], "time": when, "value": float(value)})
    return rows


def _resolve(
    board: Mapping[str, Any], given: Mapping[str, Value], run: Any, sources: Mapping[str, Kind]
) -> dict[str, Value]:
    """Every template variable's value: the caller's, else what Grafana would pick from the variable's own
    query (all values for an "All" variable, the saved current one or the first for a single one)."""
    values: dict[str, Value] = dict(given)
    queried = {q.ref: q for q in queries(board, sources) if q.panel.startswith("variable ")}
    for variable in board.get("templating", {}).get("list", []):
        name = variable["name"]
        if name in values or name not in queried:
            continue
        found = [str(row["value"]) for row in run(queried[name], values)]
        current = variable.get("current", {}).get("value")
        if variable.get("includeAll") and current in ("$__all", ["$__all"]):
            values[name] = found
        elif current in found:
            values[name] = current
        else:
            values[name] = found[:1]
    return values


def check_dashboards(
    influx_url: str,
    database: str,
    prometheus_url: str,
    time_from: datetime,
    time_to: datetime,
    env: Mapping[str, str],
    variables: Mapping[str, Value] | None = None,
    first: int = 3,
) -> list[QueryResult]:
    """Run every query of every dashboard over ``time_from``..``time_to`` against the InfluxDB and Prometheus
    at these loopback URLs; per query, its row count and ``first`` rows. Variables missing from ``variables``
    take the values Grafana would give them. InfluxQL runs as the provisioned datasource logs in, with ``env`` as
    Grafana's environment (``reader_env``). A query that fails raises, naming its dashboard and panel."""
    sources = datasources()
    login = datasource_login(env)
    minimum = scrape_intervals()
    influx_min = next(minimum[u] for u, k in sources.items() if k == "influx")
    prom_min = next(minimum[u] for u, k in sources.items() if k == "prometheus")
    expanded: dict[Query, str] = {}

    def run(query: Query, values: Mapping[str, Value]) -> list[dict[str, Any]]:
        if query.kind == "influx":
            text = expand(query, time_from, time_to, values, influx_min)
            expanded[query] = text
            return run_influxql(influx_url, database, text, login)
        text = expand(query, time_from, time_to, values, prom_min, scrape_interval=prom_min)
        expanded[query] = text
        step = interval(time_from, time_to, prom_min)
        return run_promql(prometheus_url, text, time_from, time_to, step)

    results: list[QueryResult] = []
    for board in load_dashboards().values():
        values = _resolve(board, variables or {}, run, sources)
        for query in queries(board, sources):
            try:
                rows = run(query, values)
            except Exception as exc:
                raise RuntimeError(f"{query.dashboard} / {query.panel} / {query.ref}: {exc}") from exc
            results.append(QueryResult(query, expanded[query], len(rows), rows[:first]))
    return results
