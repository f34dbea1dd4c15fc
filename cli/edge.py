"""``smartfarm edge``: run the simulated fleet (or replay a recording) against an MQTT broker."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.console import add_settings_options, say, settings_from, stop_on_signals
from edge.fleet import prepare
from edge.settings import EdgeSettings
from smartfarm.layout import load_layout
from smartfarm.settings import LayoutSettings, MqttSettings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    edge = commands.add_parser(
        "edge",
        help="run the simulated farm's sensor nodes (or replay a recording) over MQTT",
        description="Publishes telemetry of every device in the layout over MQTT, in real or accelerated time, "
        "with faults injected at the given rates; each zone's valve applies accepted irrigation recommendations.",
    )
    edge.add_argument("--replay", type=Path, metavar="CSV", help="publish the readings of a recording instead")
    add_settings_options(edge, LayoutSettings, "layout")
    add_settings_options(edge, EdgeSettings, *(f for f in EdgeSettings.model_fields if f != "profile"))
    add_settings_options(edge, MqttSettings, "host", "port", "topic_root", "keepalive_s")
    edge.set_defaults(run=run_edge)


def run_edge(args: argparse.Namespace) -> int:
    layout_settings = settings_from(LayoutSettings, args)
    edge = settings_from(EdgeSettings, args)
    mqtt = settings_from(MqttSettings, args)
    layout = load_layout(layout_settings.layout)
    fleet, source = prepare(layout, mqtt, edge, args.replay)
    what = f"replaying {args.replay}" if args.replay else f"simulating (seed {edge.seed})"
    say(f"edge: {len(fleet.links)} devices {what} -> {mqtt.url} at {edge.speed:g}x")
    stats = fleet.run(source, stop_on_signals(), edge.speed, on_progress=lambda s: say(s.line()))
    say(f"edge: done; {stats.produced} messages produced, {stats.acked} acknowledged, {stats.dropped} dropped")
    return 0
