"""The Grafana provisioning and dashboards against the code they show: every datasource a panel names is
provisioned, every InfluxQL query names only measurements, fields and tags of ``storage/schema.py``, every PromQL
one only metrics that ``stream/metrics.py`` registers, every variable used is defined. Pure: no services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from storage.schema import MEASUREMENTS
from stream.metrics import BridgeMetrics, WorkerMetrics
from tests.helpers import repo_root
from tests.integration.grafana import (
    DASHBOARDS,
    Query,
    all_queries,
    datasources,
    expand,
    label_names,
    load_dashboards,
    metric_names,
    panels,
    references,
    variables_used,
)

FROM = datetime(2026, 7, 1, tzinfo=UTC)
TO = FROM + timedelta(days=1)
SAMPLE = {"farm": "north", "zone": ["maize-east", "maize-west"], "device": "soil-maize-east-1", "kind": "rainfall"}
EXPECTED = {"smartfarm-farm-overview", "smartfarm-zone-detail", "smartfarm-device-health", "smartfarm-pipeline"}

SCHEMA = {m.MEASUREMENT: (set(m.tag_names()), set(m.field_names())) for m in MEASUREMENTS}
QUERIES = list(all_queries())
INFLUX = [q for q in QUERIES if q.kind == "influx"]
PROM = [q for q in QUERIES if q.kind == "prometheus"]


def _id(query: Query) -> str:
    return f"{query.dashboard}:{query.panel}:{query.ref}"


def _registered() -> tuple[set[str], set[str]]:
    """The series names the bridge's and the worker's registries export and their label names."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}
    names: set[str] = set()
    labels = {"job", "instance", "le"}
    for metrics in (BridgeMetrics(), WorkerMetrics()):
        registry: CollectorRegistry = metrics.registry
        for family in registry.collect():
            names |= {family.name + s for s in suffixes.get(family.type, ("",))}
        for collector in vars(metrics).values():
            labels |= set(getattr(collector, "_labelnames", ()))  # prometheus_client has no public accessor
    return names, labels


METRICS, LABELS = _registered()


def check_influxql(statement: str) -> list[str]:
    """What an expanded InfluxQL statement names that the schema does not define."""
    refs = references(statement)
    if refs.measurement not in SCHEMA:
        return [f"measurement {refs.measurement!r}"]
    tags, fields = SCHEMA[refs.measurement]
    problems = [f"selected {n!r}" for n in sorted(refs.selected - tags - fields)]
    problems += [f"filtered on {n!r}" for n in sorted(refs.filtered - tags - fields)]
    problems += [f"grouped by {n!r}, not a tag" for n in sorted(refs.grouped - tags)]
    problems += [f"unquoted word {w!r}" for w in sorted(refs.unknown_words)]
    return problems


def check_promql(expr: str) -> list[str]:
    problems = [f"metric {n!r}" for n in sorted(metric_names(expr) - METRICS - {"up"})]
    return problems + [f"label {n!r}" for n in sorted(label_names(expr) - LABELS)]


def test_the_four_dashboards_parse_with_fixed_uids_and_a_recent_schema() -> None:
    boards = load_dashboards()
    assert set(boards) == EXPECTED
    assert len(list(DASHBOARDS.glob("*.json"))) == len(boards), "two dashboard files share a uid"
    for uid, board in boards.items():
        assert 36 <= board["schemaVersion"] <= 41, uid
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), f"{uid}: panel ids repeat"
        assert all(p.get("targets") for p in panels(board) if p["type"] != "row"), f"{uid}: a panel has no query"


def test_datasource_provisioning_parses_and_names_both_stores() -> None:
    assert datasources() == {"smartfarm-influx": "influx", "smartfarm-prometheus": "prometheus"}
    folder = repo_root() / "grafana" / "provisioning"
    prometheus = yaml.safe_load((folder / "datasources" / "prometheus.yaml").read_text())["datasources"][0]
    assert prometheus["url"] == "${GRAFANA_PROMETHEUS_URL}"
    scrape = yaml.safe_load((repo_root() / "prometheus" / "prometheus.yml").read_text())["global"]["scrape_interval"]
    assert prometheus["jsonData"]["timeInterval"] == scrape, "$__rate_interval must span four real scrapes"
    provider = yaml.safe_load((folder / "dashboards" / "smartfarm.yaml").read_text())["providers"][0]
    assert provider["type"] == "file"
    compose = yaml.safe_load((repo_root() / "docker-compose.yml").read_text())["services"]["grafana"]
    mount = f"./grafana/dashboards:{provider['options']['path']}:ro"
    assert mount in compose["volumes"], "the provider's path is not where compose mounts the dashboards"
    assert "GRAFANA_PROMETHEUS_URL" in compose["environment"]


def _sources(node: Any) -> list[Any]:
    """Every ``datasource`` value anywhere in a dashboard model."""
    if isinstance(node, dict):
        found = [node["datasource"]] if "datasource" in node else []
        return found + [s for v in node.values() for s in _sources(v)]
    if isinstance(node, list):
        return [s for v in node for s in _sources(v)]
    return []


def test_every_datasource_reference_is_a_provisioned_uid() -> None:
    provisioned = datasources()
    for uid, board in load_dashboards().items():
        for panel in panels(board):
            assert isinstance(panel.get("datasource"), dict), f"{uid} / {panel['title']}: no datasource uid"
        for source in _sources(board):
            assert isinstance(source, dict), f"{uid}: datasource by name {source!r}, not by uid"
            if source.get("type") != "grafana":
                assert source["uid"] in provisioned, f"{uid}: datasource {source['uid']!r} is not provisioned"
                assert provisioned[source["uid"]] == {"influxdb": "influx"}.get(source["type"], source["type"])


def test_influx_targets_are_raw_influxql() -> None:
    for board in load_dashboards().values():
        for panel in panels(board):
            for target in panel["targets"]:
                if target["datasource"]["uid"] == "smartfarm-influx":
                    assert target["rawQuery"] is True, f"{board['uid']} / {panel['title']}"


@pytest.mark.parametrize("query", INFLUX, ids=_id)
def test_influxql_names_only_what_the_schema_defines(query: Query) -> None:
    assert check_influxql(expand(query, FROM, TO, SAMPLE)) == []


@pytest.mark.parametrize("query", PROM, ids=_id)
def test_promql_names_only_registered_metrics(query: Query) -> None:
    assert check_promql(expand(query, FROM, TO, SAMPLE, "5s", "5s")) == []


def test_every_variable_used_is_defined() -> None:
    for uid, board in load_dashboards().items():
        defined = {v["name"] for v in board.get("templating", {}).get("list", [])}
        for query in (q for q in QUERIES if q.dashboard == uid):
            assert variables_used(query.text) <= defined, f"{uid} / {query.panel}: {query.text}"
        for panel in panels(board):
            assert variables_used(panel["title"]) <= defined, f"{uid}: title {panel['title']!r}"


def test_the_dashboards_cover_every_measurement() -> None:
    shown = {references(expand(q, FROM, TO, SAMPLE)).measurement for q in INFLUX}
    assert shown == set(SCHEMA)


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ('SELECT mean("moisture") FROM "zone_state" WHERE time >= 0ms', "selected 'moisture'"),
        ('SELECT mean("value") FROM "readings"', "measurement 'readings'"),
        ('SELECT mean("value") FROM "reading" WHERE "zome" =~ /^a$/', "filtered on 'zome'"),
        ('SELECT count("value") FROM "reading" GROUP BY time(1m), "flags" fill(0)', "grouped by 'flags', not a tag"),
        ('SELECT mean(value) FROM "reading"', "unquoted word 'value'"),
        ('SHOW TAG VALUES FROM "reading" WITH KEY = "quality"', "grouped by 'quality', not a tag"),
        ('SELECT last("trigger_pct") FROM "soil_forecast" GROUP BY "zone"', "selected 'trigger_pct'"),
    ],
)
def test_the_influxql_check_refuses_what_the_schema_lacks(statement: str, problem: str) -> None:
    assert problem in check_influxql(statement)


def test_the_influxql_check_accepts_tags_and_fields_and_ignores_literals() -> None:
    statement = (
        'SELECT last("value") AS "made up", "zone" FROM "reading" WHERE "kind" = \'not "a" field\' AND '
        '"flags" =~ /bogus "x"/ AND time >= 1ms and time <= 2ms GROUP BY time(1h), "device" fill(none)'
    )
    assert check_influxql(statement) == []
    with pytest.raises(ValueError, match="not a SELECT"):
        references('DELETE FROM "reading"')


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(smartfarm_worker_messages_total[1m]))", "metric 'smartfarm_worker_messages_total'"),
        ("smartfarm_worker_readings_stored", "metric 'smartfarm_worker_readings_stored'"),  # the _total is missing
        ("sum by (reson) (rate(smartfarm_worker_dead_lettered_total[1m]))", "label 'reson'"),
        ('smartfarm_bridge_in_flight{jobb="bridge"}', "label 'jobb'"),
    ],
)
def test_the_promql_check_refuses_unregistered_names(expr: str, problem: str) -> None:
    assert problem in check_promql(expr)


def test_metric_names_skip_functions_keywords_labels_and_strings() -> None:
    expr = 'histogram_quantile(0.99, sum by (le) (rate(a_bucket{job="b_c"}[5m]))) / on (job) up offset 1m'
    assert metric_names(expr) == {"a_bucket", "up"}


def test_expansion_follows_grafana() -> None:
    query = Query("d", "p", "A", "influx", 'SELECT "x" FROM "m" WHERE "zone" =~ /^$zone$/ AND "farm" = \'$farm\'')
    text = expand(
        Query("d", "p", "A", "influx", query.text + " AND $timeFilter GROUP BY time($__interval)"), FROM, TO, SAMPLE
    )
    assert "/^(maize-east|maize-west)$/" in text
    assert "\"farm\" = 'north'" in text
    start = int(FROM.timestamp() * 1000)
    assert f"time >= {start}ms and time <= {start + 86_400_000}ms" in text
    assert text.endswith("GROUP BY time(2m)")  # a day over 1000 points is 86.4 s, rounded up to 2 m
    assert (
        expand(Query("d", "p", "A", "influx", "/^${farm:regex}$/ [[device]]"), FROM, TO, {"farm": "a.b", "device": "d"})
        == "/^a\\.b$/ d"
    )
    rate = expand(
        Query("d", "p", "A", "prometheus", "rate(x[$__rate_interval])"),
        FROM,
        FROM + timedelta(minutes=5),
        {},
        "5s",
        "5s",
    )
    assert rate == "rate(x[20s])"  # four scrapes: the interval (5 s) plus one scrape is less
    with pytest.raises(KeyError, match="nope"):
        expand(Query("d", "p", "A", "influx", "$nope"), FROM, TO, {})
