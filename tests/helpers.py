"""Small helpers both test lanes share."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import joblib
import pytest
from filelock import FileLock
from pydantic import SecretStr

from edge.faults import FaultRates
from edge.settings import EdgeSettings

T = TypeVar("T")


def unique(prefix: str) -> str:
    """A name no other test uses: a topic root, a topic prefix, a database."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def run_folder(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The folder every xdist worker of this test run shares (above each worker's own basetemp)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


def once_per_run(folder: Path, name: str, make: Callable[[], T]) -> T:
    """``make()``, computed by the first worker of the run to ask and read back from disk by the others (they wait
    on a file lock meanwhile): a module fixture's seasons and fitted models, which xdist would otherwise compute
    again on every worker that runs one of the module's tests."""
    path = folder / f"{name}.joblib"
    with FileLock(str(folder / f"{name}.lock")):
        if path.exists():
            value: T = joblib.load(path)
            return value
        made = make()
        joblib.dump(made, path)
        return made


FLEET_START = datetime(2026, 7, 1, 6, tzinfo=UTC)
FLEET_SECRET = SecretStr("test-fleet-secret")
NO_FAULTS = {f"fault_{k}": 0.0 for k in FaultRates.model_fields}


def edge_settings(tmp_path: Path, **overrides: object) -> EdgeSettings:
    """A seeded fleet starting at ``FLEET_START`` with no faults, logging its ground truth under ``tmp_path``."""
    values: dict[str, object] = {
        "speed": 3600.0,
        "interval_s": 300.0,
        "start": FLEET_START,
        "seed": 9,
        "device_secret": FLEET_SECRET,
        "progress_s": 1.0,
        "ground_truth": tmp_path / "truth.jsonl",
        **NO_FAULTS,
    }
    values.update(overrides)
    return EdgeSettings(**values)
