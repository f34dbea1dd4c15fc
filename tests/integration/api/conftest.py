"""The API tests' fixtures: the farm API served over real HTTP (uvicorn on a free loopback port) on a registry of
the default layout's first farm and a second farm (``hill-farm``, no devices), and a farm of their own
(``tests.integration.api.stack``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from api.app import create_app, serve_in_thread
from cli.services import free_port
from ml.settings import ModelSettings
from smartfarm.layout import Layout, load_layout
from storage.influx import InfluxClient
from storage.registry.store import FarmRegistry
from tests.integration.api.stack import farm

__all__ = ["farm", "served", "serving"]


@contextmanager
def serving(
    folder: Path, influx: InfluxClient | None, models: ModelSettings | None = None
) -> Iterator[tuple[str, FarmRegistry]]:
    """The API's base URL and its registry, until the block ends."""
    registry = FarmRegistry.at(folder / "registry.db")
    registry.migrate()
    farm = load_layout().farms[0]
    other = farm.model_copy(update={"id": "hill-farm", "name": "Hill", "devices": ()})
    registry.import_layout(Layout(farms=(farm, other)))
    port = free_port()
    server, thread = serve_in_thread(create_app(registry, influx, models=models), "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}", registry
    finally:
        server.should_exit = True
        thread.join(10)
        registry.close()


@pytest.fixture
def served(tmp_path: Path, influx: InfluxClient) -> Iterator[tuple[str, FarmRegistry]]:
    with serving(tmp_path, influx) as found:
        yield found
