"""Farms kept apart on the broker: every role against every topic, through the real Mosquitto with the password file
and ACL ``smartfarm broker-auth`` writes.

The table below is written out by hand (not taken from ``MqttTopics.grants``): what each user may publish and read
on the topics of two farms. Every user publishes a retained QoS 1 message on every topic (MQTT 5: a refused
publish is acknowledged with "not authorised"), then subscribes to every topic and keeps what the broker delivers:
only what the table allows may arrive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import SecretStr

from cli.brokerauth import write_broker_auth
from cli.services import Mosquitto
from edge.settings import EdgeSettings
from smartfarm.credentials import device_password
from smartfarm.layout import Layout, load_layout
from smartfarm.mqtt import connect, mqtt_client
from smartfarm.settings import MqttSettings
from tests.helpers import FLEET_SECRET, unique

A, B = "valley-farm", "hill-farm"
A1, A2, B1 = "soil-tomato-north-1", "soil-maize-east-1", "soil-hill-1"
NORTH, EAST, HILL = (A, "tomato-north"), (A, "maize-east"), (B, "hill-top")
SERVICE, SERVICE_PASSWORD = "ops-bridge", "ops-bridge-password"


def two_farms() -> Layout:
    """The bundled farm and a small second one, with a zone and a device of its own."""
    layout = load_layout()
    valley = layout.farms[0]
    zone = valley.zones[0].model_copy(update={"id": HILL[1], "name": "Hill top"})
    device = next(d for d in valley.devices if d.id == A1).model_copy(update={"id": B1, "zone": HILL[1]})
    hill = valley.model_copy(update={"id": B, "name": "Hill farm", "zones": [zone], "devices": [device]})
    return layout.model_copy(update={"farms": [valley, hill]})


@dataclass(frozen=True)
class Topics:
    """The topics of the table, by a short name."""

    settings: MqttSettings

    def all(self) -> dict[str, str]:
        t = self.settings.topics
        named = {}
        for farm, device in ((A, A1), (A, A2), (B, B1)):
            named[f"telemetry {device}"] = t.telemetry(farm, device)
            named[f"status {device}"] = t.status(farm, device)
        for farm, zone in (NORTH, EAST, HILL):
            named[f"advice {zone}"] = t.recommendations(farm, zone)
            named[f"commands {zone}"] = t.commands(farm, zone)
        named[f"telemetry {A1} under {B}"] = t.telemetry(B, A1)  # a device of farm A posing in farm B
        named[f"telemetry {A2} by another"] = t.telemetry(A, "soil-maize-east-2")  # another device's topic
        return named


EVERY_ZONE = {f"{kind} {zone}" for kind in ("advice", "commands") for _, zone in (NORTH, EAST, HILL)}
FARM_A_ZONES = {f"{kind} {zone}" for kind in ("advice", "commands") for _, zone in (NORTH, EAST)}
FARM_A_DEVICES = {f"{kind} {device}" for kind in ("telemetry", "status") for device in (A1, A2)}
EVERY_DEVICE = FARM_A_DEVICES | {f"telemetry {B1}", f"status {B1}"}

# user -> (may publish on, may read); every other pair is refused.
TABLE: dict[str, tuple[set[str], set[str]]] = {
    A1: ({f"telemetry {A1}", f"status {A1}"}, {"advice tomato-north", "commands tomato-north"}),
    A2: ({f"telemetry {A2}", f"status {A2}"}, {"advice maize-east", "commands maize-east"}),
    B1: ({f"telemetry {B1}", f"status {B1}"}, {"advice hill-top", "commands hill-top"}),
    "valves-0-of-1": (set(), EVERY_ZONE),
    "smartfarm-bridge": (EVERY_ZONE, EVERY_DEVICE),
    SERVICE: (EVERY_ZONE, EVERY_DEVICE),
    f"{A}.dashboard": (set(), FARM_A_DEVICES | FARM_A_ZONES),
    f"{A}.advice": (set(), FARM_A_ZONES),
    f"{B}.dashboard": (set(), {f"telemetry {B1}", f"status {B1}", "advice hill-top", "commands hill-top"}),
    f"{B}.advice": (set(), {"advice hill-top", "commands hill-top"}),
}


MOSQUITTO: list[Mosquitto] = []


@pytest.fixture(scope="module")
def broker_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("access")


@pytest.fixture(scope="module")
def broker(broker_files: Path) -> Iterator[MqttSettings]:
    """The module's broker, with broker-auth's files for the two farms (``MOSQUITTO[0]`` reloads them)."""
    service = MqttSettings(topic_root=unique("acl"), username=SERVICE, password=SecretStr(SERVICE_PASSWORD))
    write_broker_auth(broker_files, two_farms(), EdgeSettings(device_secret=FLEET_SECRET), service)
    passwd, acl = broker_files / "passwd", broker_files / "acl"
    with Mosquitto(broker_files / "broker", password_file=passwd, acl_file=acl) as mosquitto:
        MOSQUITTO[:] = [mosquitto]
        yield service.model_copy(update={"host": mosquitto.host, "port": mosquitto.port})


def password(user: str) -> str:
    return SERVICE_PASSWORD if user == SERVICE else device_password(FLEET_SECRET, user)


@dataclass
class Session:
    """One user's connection: what the broker answered to its publishes, and what it delivered."""

    client: mqtt.Client
    connected: threading.Event = field(default_factory=threading.Event)
    refused: ReasonCode | None = None
    acks: dict[int, ReasonCode] = field(default_factory=dict)
    received: dict[str, bytes] = field(default_factory=dict)
    subscribed: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def open(cls, settings: MqttSettings, user: str, secret: str) -> Session:
        client = mqtt_client(settings, unique(f"{user}-"), username=user, password=secret)
        session = cls(client)

        def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
            if reason.is_failure:
                session.refused = reason
            session.connected.set()

        client.on_connect = on_connect
        client.on_publish = lambda _c, _u, mid, reason, _p: session.acks.__setitem__(mid, reason)
        client.on_message = lambda _c, _u, msg: session.received.__setitem__(msg.topic, bytes(msg.payload))
        client.on_subscribe = lambda *_: session.subscribed.set()
        client.reconnect_delay_set(30, 30)  # a refused login is not tried again during the test
        connect(client, settings, background=False)
        client.loop_start()
        assert session.connected.wait(10), f"{user}: no CONNACK"
        return session

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_every_role_reaches_only_its_own_topics(broker: MqttSettings) -> None:
    named = Topics(broker).all()
    published: dict[str, set[str]] = {}
    for user in TABLE:
        session = Session.open(broker, user, password(user))
        assert session.refused is None, f"{user} was refused: {session.refused}"
        mids = {
            session.client.publish(topic, user.encode(), qos=1, retain=True).mid: name for name, topic in named.items()
        }
        deadline = time.monotonic() + 10
        while len(session.acks) < len(mids) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert set(session.acks) == set(mids), f"{user}: not every publish was acknowledged"
        published[user] = {mids[mid] for mid, reason in session.acks.items() if not reason.is_failure}
        refusals = {str(reason) for reason in session.acks.values() if reason.is_failure}
        assert refusals <= {"Not authorized"}, f"{user}: refused for another reason: {refusals}"
        session.close()
    assert published == {user: writes for user, (writes, _) in TABLE.items()}

    written = set().union(*published.values())  # the topics holding a retained message now
    for user, (_, reads) in TABLE.items():
        session = Session.open(broker, user, password(user))
        session.client.subscribe([(topic, 1) for topic in named.values()])
        assert session.subscribed.wait(10), f"{user}: no SUBACK"
        wanted = {named[name] for name in reads & written}
        deadline = time.monotonic() + 5
        while not wanted <= set(session.received) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # anything refused would come in the same burst
        session.close()
        got = {name for name, topic in named.items() if topic in session.received}
        assert got == reads & written, f"{user} read {sorted(got)}, allowed {sorted(reads & written)}"


@pytest.mark.parametrize(
    ("user", "secret"),
    [("", ""), (A1, "not-its-password"), (A1, device_password(SecretStr("another-fleet"), A1)), ("stranger", "x")],
    ids=["anonymous", "wrong-password", "another-fleets-password", "unknown-user"],
)
def test_only_known_users_with_their_own_password_get_in(broker: MqttSettings, user: str, secret: str) -> None:
    settings = broker.model_copy(update={"username": "", "password": SecretStr("")})
    session = Session.open(settings, user, secret)
    session.close()
    assert session.refused is not None and session.refused.value in {0x86, 0x87}, session.refused


def test_a_device_moved_to_another_zone_reads_that_zone_once_the_broker_reloads(
    broker: MqttSettings, broker_files: Path
) -> None:
    """The files written again for a changed layout (as ``--follow`` does) and the broker reloaded (SIGHUP): the
    device now reads its new zone's advice and no longer its old one's."""
    bridge = Session.open(broker, SERVICE, SERVICE_PASSWORD)
    for farm, zone in (NORTH, EAST):
        bridge.client.publish(
            broker.topics.recommendations(farm, zone), b"advice", qos=1, retain=True
        ).wait_for_publish(5)
    bridge.close()
    layout = two_farms()
    valley = layout.farms[0]
    moved = [d.model_copy(update={"zone": EAST[1]}) if d.id == A1 else d for d in valley.devices]
    layout = layout.model_copy(update={"farms": [valley.model_copy(update={"devices": moved}), layout.farms[1]]})
    try:
        write_broker_auth(broker_files, layout, EdgeSettings(device_secret=FLEET_SECRET), broker)
        MOSQUITTO[0].reload()
        time.sleep(0.5)
        device = Session.open(broker, A1, password(A1))
        device.client.subscribe([(broker.topics.recommendations(*zone), 1) for zone in (NORTH, EAST)])
        assert device.subscribed.wait(10)
        time.sleep(0.5)
        device.close()
        assert set(device.received) == {broker.topics.recommendations(*EAST)}
    finally:
        write_broker_auth(broker_files, two_farms(), EdgeSettings(device_secret=FLEET_SECRET), broker)
        MOSQUITTO[0].reload()
