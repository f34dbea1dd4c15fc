"""The fleet without a broker: a full store-and-forward buffer, and a replay that names its bad line."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from edge.fleet import prepare
from smartfarm.layout import load_layout
from smartfarm.settings import MqttSettings
from smartfarm.telemetry import Telemetry
from tests.helpers import edge_settings


def test_a_full_buffer_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    from cli.services import free_port

    nowhere = MqttSettings(host="127.0.0.1", port=free_port(), topic_root="t")
    edge = edge_settings(tmp_path, speed=1e6, duration=timedelta(hours=10), buffer_limit=30, devices=2)
    fleet, source = prepare(load_layout(), nowhere, edge)
    stats = fleet.run(source, threading.Event(), edge.speed, drain_timeout_s=0.5)
    assert stats.produced == 2 * 120
    assert stats.dropped == 2 * (120 - 30)
    assert all(list(link.outbox) and len(link.outbox) == 30 for link in fleet.links.values())
    newest = Telemetry.decode(fleet.links["wx-tomato-north"].outbox[-1])
    assert newest.seq == 119, "the newest readings are the ones kept"


def test_a_replay_of_an_unknown_device_names_the_line(tmp_path: Path) -> None:
    from smartfarm.errors import ConfigError

    bad = tmp_path / "bad.csv"
    bad.write_text("ts,device,seq,sensor,kind,value\n2026-07-01T06:00:00+00:00,ghost-1,0,air-t,air_temperature,20\n")
    with pytest.raises(ConfigError, match="line 2: device 'ghost-1' is not in the layout"):
        prepare(load_layout(), MqttSettings(), edge_settings(tmp_path), replay=bad)[1].next()
