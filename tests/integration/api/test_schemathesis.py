"""Schemathesis against the live OpenAPI of the farm API (real registry, InfluxDB and Kafka behind it): property-based
requests to every operation, valid and invalid, with a token of the farm; no answer may be a 5xx and every answer
must match the schema the OpenAPI declares for it. At least 1,000 generated requests."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.integration.api.stack import FARM, Farm

MIN_REQUESTS = 1_000
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"


def test_the_api_gives_no_5xx_and_matches_its_schema_for_generated_requests(farm: Farm, tmp_path: Path) -> None:
    base = farm.api.removesuffix(f"/farms/{FARM}")
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'headers = {{ Authorization = "Bearer {farm.token}" }}\n'
        f'parameters = {{ "path.farm" = "{FARM}" }}\n'
        "[generation]\nmax-examples = 100\ndeterministic = true\n"
    )
    schemathesis = Path(sys.executable).with_name("schemathesis")
    ran = subprocess.run(
        [
            str(schemathesis),
            "--config-file",
            str(config),
            "run",
            f"{base}/openapi.json",
            "--checks",
            CHECKS,
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--warnings",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # its cache (.schemathesis/) stays out of the repository
    )
    out = ran.stdout + ran.stderr
    assert ran.returncode == 0, out[-6000:]
    generated = re.search(r"(\d[\d,]*) generated", out)
    assert generated, out[-3000:]
    print(f"Schemathesis: {generated.group(0)} requests, no issue")  # in the run's output with -rP
    assert int(generated.group(1).replace(",", "")) >= MIN_REQUESTS, out[-3000:]
