"""The Prometheus files in ``prometheus/`` against the code: the alerts read only metrics that stream/metrics.py
exports, every alert is tested both ways, and the scrape targets are the components' default metrics ports.

promtool itself runs in the integration lane (tests/integration/test_prometheus.py).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest
import yaml

from stream.metrics import BridgeMetrics, WorkerMetrics
from stream.offsets import STALL_AFTER_S
from stream.settings import BridgeSettings, WorkerSettings
from tests.helpers import repo_root

PROMETHEUS_OWN = frozenset({"up"})
"""Series that Prometheus writes itself for every scrape target."""

_SERIES_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
_PROMQL_WORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"})


def _load(name: str) -> Any:
    return yaml.safe_load((repo_root() / "prometheus" / name).read_text())


@cache
def exported() -> tuple[frozenset[str], frozenset[str]]:
    """The series names the bridge and the worker expose, and their metric family names."""
    series: set[str] = set()
    families: set[str] = set()
    for metrics in (BridgeMetrics(), WorkerMetrics()):
        for family in metrics.registry.collect():
            families.add(family.name)
            series.update(family.name + suffix for suffix in _SERIES_SUFFIXES[family.type])
    return frozenset(series), frozenset(families)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left once strings, label matchers, ranges, grouping
    clauses, function calls, keywords and numbers are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set(re.findall(r"\b([A-Za-z_:][\w:]*)\b(?!\s*\()", text))
    return {n for n in names if n not in _PROMQL_WORDS}


def rules() -> list[dict[str, Any]]:
    return [rule for group in _load("alerts.yml")["groups"] for rule in group["rules"]]


def test_the_exported_names_carry_the_suffixes_prometheus_sees() -> None:
    series, families = exported()
    assert {
        "smartfarm_bridge_received_total",
        "smartfarm_worker_consumer_lag",
        "smartfarm_worker_influx_write_seconds_bucket",
        "smartfarm_worker_influx_write_seconds_count",
    } <= series
    assert "smartfarm_bridge_received" not in series
    assert "smartfarm_worker_influx_write_seconds" in families


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('up{job=~"bridge|worker"} == 0', {"up"}),
        ("sum by (job, reason) (rate(a_total[5m])) > 1 or b_total", {"a_total", "b_total"}),
        ("x > 10000 and deriv(x[10m]) > 0", {"x"}),
        ('sum(increase(y_total{kind="telemetry"}[10m])) == 0', {"y_total"}),
        ("time() - max by (farm) (z_seconds) > 15 * 60", {"z_seconds"}),
    ],
)
def test_metric_names_are_read_out_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_every_metric_an_alert_reads_is_exported() -> None:
    series, families = exported()
    for rule in rules():
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= series | PROMETHEUS_OWN, f"{rule['alert']} reads {sorted(used - series)}"
        # The annotations may name a histogram by its family name too.
        for text in rule["annotations"].values():
            named = set(re.findall(r"\bsmartfarm_\w+", text))
            assert named <= series | families, f"{rule['alert']} names {sorted(named - series - families)}"


def test_every_series_the_rule_tests_feed_is_exported() -> None:
    series, _ = exported()
    for case in _load("alerts_test.yml")["tests"]:
        for feed in case["input_series"]:
            name = feed["series"].split("{", 1)[0].strip()
            assert name in series | PROMETHEUS_OWN, name


def test_every_alert_has_a_severity_plain_annotations_and_a_test_each_way() -> None:
    tested = _load("alerts_test.yml")
    assert tested["rule_files"] == ["alerts.yml"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in tested["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = [rule["alert"] for rule in rules()]
    assert set(names) == {"StageDown", "ConsumerLagGrowing", "AgentStalled", "DeadLettersRising", "DevicesSilent"}
    for rule in rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]
    assert fires == quiet == set(names)


def test_the_scrape_targets_are_the_default_metrics_ports() -> None:
    config = _load("prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    expected = {}
    for job, settings in (("bridge", BridgeSettings), ("worker", WorkerSettings)):
        fields = settings.model_fields
        expected[job] = [f"{fields['metrics_host'].default}:{fields['metrics_port'].default}"]
    assert targets == expected
    assert config["global"]["scrape_interval"] == "5s"


def test_the_stall_alert_fires_where_the_worker_and_the_status_line_call_a_partition_stalled() -> None:
    (rule,) = [rule for rule in rules() if rule["alert"] == "AgentStalled"]
    assert rule["expr"] == f"smartfarm_worker_stalled_seconds >= {STALL_AFTER_S:g}"
