"""promtool on the repository's Prometheus files: the scrape config, the alert rules and their unit tests."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.helpers import repo_root


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: install it: sudo apt-get install prometheus")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus/prometheus.yml"),
        ("check", "rules", "prometheus/alerts.yml"),
        ("test", "rules", "prometheus/alerts_test.yml"),
    ],
    ids=["config", "rules", "rule-tests"],
)
def test_promtool_accepts(promtool: str, args: tuple[str, ...]) -> None:
    done = subprocess.run([promtool, *args], cwd=repo_root(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"
