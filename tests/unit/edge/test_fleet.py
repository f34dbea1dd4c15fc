"""The fleet without a broker: a full store-and-forward buffer, a replay that names its bad line, and the pacing
of a catch-up."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.fleet import AdviceGate, Pacer, prepare
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


T0 = datetime(2026, 6, 1, tzinfo=UTC)


def test_the_pacer_plays_the_catch_up_as_the_links_take_it_then_paces_from_where_it_ended() -> None:
    pacer = Pacer(speed=60.0, catch_up=timedelta(hours=2))
    assert pacer.due(T0, 100.0, lambda: True) == 100.0
    assert pacer.catching_up
    assert pacer.due(T0 + timedelta(hours=1), 101.0, lambda: True) == 101.0, "ready links: at once"
    assert pacer.due(T0 + timedelta(hours=1), 101.5, lambda: False) > 101.5, "backed-up links: not yet"
    assert pacer.due(T0 + timedelta(hours=2), 102.0, lambda: True) == 102.0, "the first batch past it goes now"
    assert not pacer.catching_up
    assert pacer.due(T0 + timedelta(hours=2, minutes=5), 103.0, lambda: False) == pytest.approx(107.0)


def test_without_a_catch_up_every_batch_is_paced_from_the_first() -> None:
    pacer = Pacer(speed=3600.0, catch_up=timedelta(0))
    assert pacer.due(T0, 5.0, lambda: False) == 5.0
    assert not pacer.catching_up
    assert pacer.due(T0 + timedelta(hours=2), 5.0, lambda: True) == pytest.approx(7.0)


T0 = datetime(2026, 7, 1, tzinfo=UTC)


class Marks:
    """What the workers report: each zone's advice watermark (event time, seconds)."""

    def __init__(self) -> None:
        self.zones: dict[str, float] = {}

    def __call__(self) -> dict[str, float]:
        return dict(self.zones)

    def at(self, **hours: float) -> None:
        self.zones = {zone: (T0 + timedelta(hours=h)).timestamp() for zone, h in hours.items()}


def test_the_advice_gate_holds_the_catch_up_within_its_lead_of_the_slowest_zone() -> None:
    marks = Marks()
    gate = AdviceGate(marks, lead=timedelta(hours=2), patience_s=20, poll_s=0)
    assert gate.ready(T0, now=0.0), "the first batch sets the start"
    assert gate.ready(T0 + timedelta(hours=2), now=0.1), "no advice yet: up to the lead past the start"
    assert not gate.ready(T0 + timedelta(hours=2, minutes=5), now=0.2)
    marks.at(a=3, b=1)
    assert gate.ready(T0 + timedelta(hours=3), now=1.2), "the slowest zone (b) at 1 h: up to 3 h"
    assert not gate.ready(T0 + timedelta(hours=3, minutes=5), now=1.3)
    marks.at(a=3, b=2)
    assert gate.ready(T0 + timedelta(hours=3, minutes=5), now=2.3)
    assert gate.waited_s == pytest.approx(1.0 + 1.0) and gate.ran_ahead == 0, "held 0.2-1.2 and 1.3-2.3"


def test_a_silent_zone_holds_nobody_back() -> None:
    marks = Marks()
    marks.at(a=10, b=10, dead=1)
    assert AdviceGate.advised(marks()) == (T0 + timedelta(hours=10)).timestamp(), "9 h behind: its devices are gone"
    marks.at(a=10, b=10, slow=5)
    assert AdviceGate.advised(marks()) == (T0 + timedelta(hours=5)).timestamp(), "5 h behind: still waited for"
    assert AdviceGate.advised({}) is None


def test_advice_that_stops_moving_is_waited_for_then_the_catch_up_runs_on_until_it_moves_again() -> None:
    marks = Marks()
    marks.at(a=1)
    gate = AdviceGate(marks, lead=timedelta(hours=2), patience_s=20, poll_s=0)
    assert gate.ready(T0, now=0.0)
    assert not gate.ready(T0 + timedelta(hours=4), now=10.0)
    assert gate.ready(T0 + timedelta(hours=4), now=20.0) and gate.ran_ahead == 1, "the worker is down: run on"
    assert gate.ready(T0 + timedelta(hours=9), now=20.1), "and keep running, not 20 s a batch"
    marks.at(a=8)
    assert not gate.ready(T0 + timedelta(hours=10, minutes=5), now=21.0), "advice moves again: held again"
    assert gate.ready(T0 + timedelta(hours=10), now=21.1)
