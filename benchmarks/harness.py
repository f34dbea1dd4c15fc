"""What every phase of a bench run shares: the run's own services and the figures it has measured so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.services import InfluxDB, Kafka, Mosquitto


@dataclass
class Services:
    broker: Mosquitto
    kafka: Kafka
    influxd: InfluxDB
    work: Path


@dataclass
class Results:
    """Everything one run measured; ``as_dict`` is the ``--json`` file."""

    started: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    ceilings: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, Any] = field(default_factory=dict)
    e2e: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    advice: dict[str, Any] = field(default_factory=dict)
    windows: list[dict[str, Any]] = field(default_factory=list)
    scaling: list[dict[str, Any]] = field(default_factory=list)
    peers: dict[str, Any] = field(default_factory=dict)
    kill: dict[str, Any] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    api: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
