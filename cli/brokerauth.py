"""``smartfarm broker-auth``: the broker's password file and ACL, what ``smartfarm up`` and docker-compose's
``mosquitto-auth`` one-shot give Mosquitto.

The broker lets in only the layout's devices (passwords derived from ``SMARTFARM_EDGE_DEVICE_SECRET``), the
valves, the bridge, and the service user ``SMARTFARM_MQTT_USERNAME`` when one is set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import SecretStr

from cli.console import add_settings_options, say, settings_from
from edge.credentials import device_password, write_password_file
from edge.settings import EdgeSettings
from smartfarm.identifiers import BRIDGE_USER, valves_user
from smartfarm.layout import Layout, load_layout, replicate
from smartfarm.settings import LayoutSettings, MqttSettings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    auth = commands.add_parser(
        "broker-auth", help="write Mosquitto's password file and ACL for the layout's devices and the services"
    )
    auth.add_argument("folder", type=Path, help="where to write passwd and acl (created if missing)")
    add_settings_options(auth, EdgeSettings, "devices", "device_secret")
    add_settings_options(auth, MqttSettings, "username", "password", "topic_root")
    add_settings_options(auth, LayoutSettings, "layout")
    auth.set_defaults(run=run_broker_auth)


def write_broker_auth(folder: Path, layout: Layout, edge: EdgeSettings, mqtt: MqttSettings) -> MqttSettings:
    """The broker's password file and ACL: the layout's devices, the valves, the bridge, and the service user
    ``SMARTFARM_MQTT_USERNAME`` if set. Returns the MQTT settings the bridge logs in with."""
    folder.mkdir(parents=True, exist_ok=True)
    users = {d: device_password(edge.device_secret, d) for d in layout.placements}
    valves = valves_user(edge.shard_index)
    users[valves] = device_password(edge.device_secret, valves)
    bridge_password = users[BRIDGE_USER] = device_password(edge.device_secret, BRIDGE_USER)
    services = [BRIDGE_USER]
    if mqtt.username:
        users[mqtt.username] = mqtt.password.get_secret_value()
        services.append(mqtt.username)
    write_password_file(folder / "passwd", users)
    (folder / "acl").write_text(mqtt.topics.acl(tuple(services)))
    return mqtt.model_copy(update={"username": BRIDGE_USER, "password": SecretStr(bridge_password)})


def run_broker_auth(args: argparse.Namespace) -> int:
    edge = settings_from(EdgeSettings, args)
    mqtt = settings_from(MqttSettings, args)
    layout = load_layout(settings_from(LayoutSettings, args).layout)
    if edge.devices:
        layout = replicate(layout, edge.devices)
    write_broker_auth(args.folder, layout, edge, mqtt)
    users = len(layout.placements) + 2 + (1 if mqtt.username else 0)
    say(f"wrote {args.folder / 'passwd'} ({users} users) and {args.folder / 'acl'}")
    return 0
