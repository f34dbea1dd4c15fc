"""Writing line protocol and reading it back with InfluxQL, against the real InfluxDB."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cli.services import free_port
from smartfarm.errors import StorageError
from smartfarm.settings import InfluxSettings
from storage.influx import InfluxClient

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_an_unreachable_server_is_a_storage_error() -> None:
    settings = InfluxSettings(url=f"http://127.0.0.1:{free_port()}", timeout_s=1)
    with InfluxClient(settings) as client, pytest.raises(StorageError, match="unreachable"):
        client.ping()
