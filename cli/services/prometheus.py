"""Prometheus from the Debian package, scraping the repository's scrape config with the targets of this run.

The jobs, intervals and alert rules are the repository's (``prometheus/prometheus.yml`` and ``alerts.yml``); only
each job's targets are this run's, since ``--workers N`` and free ports put the processes where the file cannot
know. The configuration written is checked by ``promtool check config`` before Prometheus starts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from cli.services.base import LocalService, find_binary, free_port
from smartfarm.errors import ServiceError

INSTALL = "sudo apt-get install -y prometheus"

REPO_CONFIG = Path(__file__).resolve().parents[2] / "prometheus"
"""The repository's scrape config and alert rules."""


def scrape_config(template: Mapping[str, Any], targets: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """``template`` (the repository's prometheus.yml) with each job's targets replaced by ``targets[job]``;
    ServiceError when a job has no targets given or a target names a job the template lacks."""
    config = json.loads(json.dumps(template))
    jobs = {job["job_name"]: job for job in config.get("scrape_configs", [])}
    unknown = sorted(set(targets) - set(jobs))
    missing = sorted(set(jobs) - set(targets))
    if unknown or missing:
        raise ServiceError(f"prometheus: targets for jobs {unknown} the scrape config lacks, none for {missing}")
    for name, job in jobs.items():
        for key in [k for k in job if k.endswith("_sd_configs")]:
            del job[key]
        job["static_configs"] = [{"targets": list(targets[name])}]
    return config


class Prometheus(LocalService):
    """A Prometheus server on 127.0.0.1 with its TSDB in ``workdir``.

    Args:
        workdir: folder for the config, the rules, the TSDB and the log.
        targets: per job of the repository's scrape config, the ``host:port`` targets of this run.
        port: the web and API port; a free one when None.
    """

    name = "prometheus"
    start_timeout_s = 30.0
    stop_timeout_s = 15.0

    def __init__(self, workdir: Path, targets: Mapping[str, Sequence[str]], port: int | None = None) -> None:
        super().__init__(workdir)
        self.binary = find_binary("prometheus", INSTALL)
        self.promtool = find_binary("promtool", INSTALL)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.targets = targets
        self.config_path = self.workdir / "prometheus.yml"

    def prepare(self) -> None:
        template = yaml.safe_load((REPO_CONFIG / "prometheus.yml").read_text())
        config = scrape_config(template, self.targets)
        for rules in config.get("rule_files", []):
            shutil.copyfile(REPO_CONFIG / rules, self.workdir / rules)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        checked = subprocess.run(
            [self.promtool, "check", "config", str(self.config_path)], capture_output=True, text=True, check=False
        )
        if checked.returncode != 0:
            raise ServiceError(f"prometheus: promtool refuses {self.config_path}:\n{checked.stdout}{checked.stderr}")

    def ports(self) -> list[int]:
        return [self.port]

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            "--storage.tsdb.retention.time=15d",
            f"--web.listen-address={self.host}:{self.port}",
        ]

    def is_ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
            return bool(answer.status == 200)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of ``promql`` now: each sample's labels (``metric``) and ``value``."""
        return instant_query(self.url, promql)


def instant_query(url: str, promql: str, timeout_s: float = 5) -> list[dict[str, Any]]:
    """An instant PromQL query against the Prometheus at ``url``; ServiceError naming the query when refused."""
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(address, timeout=timeout_s) as answer:
            body = json.load(answer)
    except (OSError, ValueError) as exc:
        raise ServiceError(f"prometheus at {url}: query {promql!r} failed ({exc})") from exc
    if body.get("status") != "success":
        raise ServiceError(f"prometheus at {url}: query {promql!r} refused: {body.get('error')}")
    return list(body["data"]["result"])
