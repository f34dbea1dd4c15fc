"""The pipeline of one test's own: a bridge on a secured broker, worker processes, a database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.services import Kafka
from storage.influx import InfluxClient
from tests.integration.pipeline import Pipeline, SecuredBroker


@pytest.fixture
def pipeline(secured_broker: SecuredBroker, kafka: Kafka, influx: InfluxClient, tmp_path: Path) -> Iterator[Pipeline]:
    running = Pipeline(secured_broker, kafka, influx, tmp_path)
    yield running
    running.close()
