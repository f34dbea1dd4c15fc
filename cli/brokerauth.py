"""``smartfarm broker-auth``: the broker's password file and ACL, what ``smartfarm up`` and docker-compose's
``mosquitto-auth`` one-shot give Mosquitto; with ``--tls`` the installation's CA and the broker's certificate
too (``FOLDER/tls``), with ``--device-cert`` a device's client certificate.

The broker lets in only the layout's devices (passwords derived from ``SMARTFARM_EDGE_DEVICE_SECRET``), the
valves, each farm's service users (``{farm}.dashboard`` and ``{farm}.advice``), the bridge, and the service user
``SMARTFARM_MQTT_USERNAME`` when one is set, each kept to its role's topics (``smartfarm.topics.MqttTopics.grants``).
``--password-of USER`` prints one user's password, for configuring a farm's service. With ``--follow`` it keeps
following the farm registry's layout topic (``stream.layouts``) and writes both files again whenever a farm
changes, so a device registered through the API can log in (and a retired one no longer can) once the broker
reloads them (SIGHUP; ``smartfarm up`` sends it, docker-compose's broker watches the files).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import SecretStr

from cli.console import KAFKA_LOGIN, add_settings_options, say, settings_from, stop_on_signals
from edge.settings import EdgeSettings
from smartfarm.certificates import TlsFiles, installation_tls, issue_client
from smartfarm.credentials import device_password, replace_file, write_password_file
from smartfarm.errors import ConfigError
from smartfarm.identifiers import BRIDGE_USER, valves_user
from smartfarm.layout import Layout, load_layout, replicate
from smartfarm.settings import KafkaSettings, LayoutSettings, MqttSettings
from smartfarm.topics import FARM_ROLES, MqttUser
from stream.admin import ensure_topics
from stream.layouts import LayoutFollower

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    auth = commands.add_parser(
        "broker-auth", help="write Mosquitto's password file and ACL for the layout's devices and the services"
    )
    auth.add_argument(
        "folder",
        type=Path,
        nargs="?",
        help="where to write passwd and acl (created if missing); not with --password-of",
    )
    auth.add_argument(
        "--password-of",
        metavar="USER",
        help="print the password of one broker user (a device, or a farm's service user such as "
        "valley-farm.dashboard) and write nothing",
    )
    add_settings_options(auth, EdgeSettings, "devices", "device_secret")
    add_settings_options(auth, MqttSettings, "username", "password", "topic_root")
    add_settings_options(auth, LayoutSettings, "layout")
    add_settings_options(auth, KafkaSettings, "bootstrap_servers", "topic_prefix", *KAFKA_LOGIN)
    auth.add_argument(
        "--tls",
        action="store_true",
        help="also make the installation's CA and the broker's certificate in FOLDER/tls when missing (kept after)",
    )
    auth.add_argument(
        "--device-cert",
        metavar="DEVICE",
        action="append",
        default=[],
        help="issue DEVICE a client certificate signed by the CA in FOLDER/tls (FOLDER/tls/clients/DEVICE.crt "
        "and .key), to log in with on the broker's certificate listener; repeatable",
    )
    auth.add_argument(
        "--follow",
        action="store_true",
        help="keep running: write the files again each time the farm registry publishes a farm (Kafka's layout topic)",
    )
    auth.set_defaults(run=run_broker_auth)


def broker_users(layout: Layout, edge: EdgeSettings, mqtt: MqttSettings) -> list[MqttUser]:
    """Every broker user of ``layout`` with its role: each device (its own farm and zone), the valves of this
    fleet shard (every zone of the layout), each farm's dashboard and advice users, and the bridge role for the
    bridge and the service user ``SMARTFARM_MQTT_USERNAME`` if set."""
    zones = ((farm.id, zone.id) for farm in layout.farms for zone in farm.zones)
    users = [MqttUser.device(d, p.farm.id, p.zone.id) for d, p in layout.placements.items()]
    users.append(MqttUser.valves(valves_user(edge.shard_index), zones))
    users += [MqttUser.farm_service(farm.id, role) for farm in layout.farms for role in FARM_ROLES]
    users += [MqttUser.bridge(name) for name in [BRIDGE_USER] + ([mqtt.username] if mqtt.username else [])]
    return users


def broker_passwords(users: Iterable[MqttUser], edge: EdgeSettings, mqtt: MqttSettings) -> dict[str, str]:
    """Each user's password: derived from the fleet secret, but the service user's, which is its setting."""
    passwords = {user.name: device_password(edge.device_secret, user.name) for user in users}
    if mqtt.username:
        passwords[mqtt.username] = mqtt.password.get_secret_value()
    return passwords


def write_broker_auth(folder: Path, layout: Layout, edge: EdgeSettings, mqtt: MqttSettings) -> MqttSettings:
    """The broker's password file and ACL: the layout's devices, the valves, each farm's service users, the bridge,
    and the service user ``SMARTFARM_MQTT_USERNAME`` if set (a bridge too). Passwords are derived from the fleet
    secret, but the service user's, which is its setting. Returns the MQTT settings the bridge logs in with."""
    folder.mkdir(parents=True, exist_ok=True)
    users = broker_users(layout, edge, mqtt)
    passwords = broker_passwords(users, edge, mqtt)
    write_password_file(folder / "passwd", passwords)
    replace_file(folder / "acl", mqtt.topics.acl(users))
    bridge_password = SecretStr(passwords[BRIDGE_USER])
    return mqtt.model_copy(update={"username": BRIDGE_USER, "password": bridge_password})


def follow_broker_auth(
    folder: Path,
    layout: Layout,
    edge: EdgeSettings,
    mqtt: MqttSettings,
    kafka: KafkaSettings,
    reload: Callable[[], None] = lambda: None,
) -> LayoutFollower:
    """A started follower of the layout topic that writes the broker's files for ``layout`` overlaid by the
    registry's farms each time one changes, then calls ``reload`` (the broker reads them again)."""

    def rewrite(now: Layout) -> None:
        write_broker_auth(folder, now, edge, mqtt)
        reload()
        log.info("broker credentials rewritten: %d devices", len(now.placements))

    return LayoutFollower(kafka, layout, rewrite, "broker-auth").start()


def run_broker_auth(args: argparse.Namespace) -> int:
    edge = settings_from(EdgeSettings, args)
    mqtt = settings_from(MqttSettings, args)
    layout = load_layout(settings_from(LayoutSettings, args).layout)
    if edge.devices:
        layout = replicate(layout, edge.devices)
    users = broker_users(layout, edge, mqtt)
    if args.password_of:
        passwords = broker_passwords(users, edge, mqtt)
        if args.password_of not in passwords:
            services = ", ".join(user.name for user in users if user.role in FARM_ROLES)
            raise ConfigError(
                f"{args.password_of!r} is not a broker user of this layout; name a device id, a farm's service user "
                f"({services}) or {BRIDGE_USER}"
            )
        say(passwords[args.password_of])
        return 0
    if args.folder is None:
        raise ConfigError("name the folder to write passwd and acl in: smartfarm broker-auth FOLDER")
    write_broker_auth(args.folder, layout, edge, mqtt)
    say(f"wrote {args.folder / 'passwd'} ({len(users)} users) and {args.folder / 'acl'}")
    tls = TlsFiles(args.folder / "tls")
    if args.tls:
        installation_tls(tls.folder)
        say(f"CA {tls.ca_file} (give it to devices) and the broker's certificate {tls.cert_file}")
    for device in args.device_cert:
        cert_file, key_file = issue_client(tls, device)
        say(f"{device}: certificate {cert_file}, key {key_file}")
    if not args.follow:
        return 0
    kafka = settings_from(KafkaSettings, args)
    ensure_topics(kafka)
    follower = follow_broker_auth(args.folder, layout, edge, mqtt, kafka)
    say(f"following {follower.topic} on {kafka.bootstrap_servers}; Ctrl-C or SIGTERM stops")
    stop_on_signals().wait()
    follower.stop()
    return 0
