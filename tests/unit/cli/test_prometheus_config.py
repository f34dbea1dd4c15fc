"""The scrape config ``smartfarm up`` gives Prometheus: the repository's, with this run's targets."""

from __future__ import annotations

import pytest
import yaml

from cli.services.prometheus import REPO_CONFIG, scrape_config
from smartfarm.errors import ServiceError


def test_the_repository_config_keeps_its_jobs_and_rules_with_this_runs_targets() -> None:
    template = yaml.safe_load((REPO_CONFIG / "prometheus.yml").read_text())
    config = scrape_config(template, {"bridge": ["127.0.0.1:9108"], "worker": ["127.0.0.1:9109", "127.0.0.1:9110"]})
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["worker"]["static_configs"] == [{"targets": ["127.0.0.1:9109", "127.0.0.1:9110"]}]
    assert config["rule_files"] == template["rule_files"]
    assert config["global"] == template["global"]
    assert template["scrape_configs"][1]["static_configs"] == [{"targets": ["127.0.0.1:9109"]}], "template unchanged"


def test_discovery_gives_way_to_the_static_targets() -> None:
    template = yaml.safe_load((REPO_CONFIG / "compose.yml").read_text())
    config = scrape_config(template, {"bridge": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]})
    worker = next(job for job in config["scrape_configs"] if job["job_name"] == "worker")
    assert "dns_sd_configs" not in worker
    assert worker["static_configs"] == [{"targets": ["127.0.0.1:2"]}]


@pytest.mark.parametrize(
    "targets", [{"bridge": ["127.0.0.1:1"]}, {"bridge": ["a:1"], "worker": ["b:2"], "faust": ["c:3"]}]
)
def test_a_job_without_targets_or_a_target_without_a_job_is_refused(targets: dict[str, list[str]]) -> None:
    template = yaml.safe_load((REPO_CONFIG / "prometheus.yml").read_text())
    with pytest.raises(ServiceError, match="targets for jobs"):
        scrape_config(template, targets)
