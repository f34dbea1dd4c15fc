"""Changes through the API take effect without a restart: a zone added and a device registered through it can log
in to the broker and have their readings stored; a retired device is refused. Real Mosquitto, Kafka, InfluxDB,
bridge and worker process, the API over real HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr

from api.app import create_app, serve_in_thread
from cli.api import changes_for
from cli.brokerauth import follow_broker_auth, write_broker_auth
from cli.services import Kafka, Mosquitto, free_port
from edge.loadgen import publish_messages
from edge.settings import EdgeSettings
from smartfarm.layout import Layout, load_layout
from smartfarm.settings import KafkaSettings, MqttSettings
from storage.influx import InfluxClient
from storage.registry.store import FarmRegistry, Scope
from stream.admin import ensure_topics
from stream.bridge import Bridge
from stream.settings import BridgeSettings
from tests.helpers import FLEET_SECRET, unique
from tests.integration.pipeline import start_worker, wait_for

FARM = "valley-farm"
ZONE = {
    "id": "olive-grove",
    "name": "Olives, north terrace",
    "crop": "tomato",
    "soil": "loam",
    "planting_date": "2026-04-15",
    "irrigation_rate_mm_h": 3.0,
    "area_ha": 1.2,
}
DEVICE = {
    "id": "soil-olive-1",
    "zone": "olive-grove",
    "sensors": [
        {"id": "sm-15", "kind": "soil_moisture", "depth_cm": 15},
        {"id": "sm-45", "kind": "soil_moisture", "depth_cm": 45},
        {"id": "bat", "kind": "battery"},
    ],
}


@dataclass
class Farm:
    api: str
    token: str
    mqtt: MqttSettings
    influx: InfluxClient


def call(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def login(settings: MqttSettings, username: str, password: str) -> str:
    """The broker's answer to a CONNECT as ``username``: "Success" or its refusal."""
    answers: list[object] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("probe"), protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
    client.connect(settings.host, settings.port)
    deadline = time.monotonic() + 10
    while not answers and time.monotonic() < deadline:
        client.loop(timeout=0.2)
    client.disconnect()
    return str(answers[0]) if answers else "no answer"


@pytest.fixture
def farm(kafka: Kafka, influx: InfluxClient, tmp_path: Path) -> Iterator[Farm]:
    """The default farm behind a broker of its own whose credentials follow the layout topic, a bridge, a worker
    and the API over a registry holding the farm, all on topics of this test's own."""
    layout = Layout(farms=(load_layout().farm(FARM),))
    root = unique("t")
    kafka_settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_prefix=root)
    ensure_topics(kafka_settings)
    edge = EdgeSettings(device_secret=FLEET_SECRET)
    auth = tmp_path / "auth"
    broker = Mosquitto(tmp_path / "broker", password_file=auth / "passwd", acl_file=auth / "acl")
    fleet = MqttSettings(host=broker.host, port=broker.port, topic_root=root)
    bridge_mqtt = write_broker_auth(auth, layout, edge, fleet)
    registry = FarmRegistry.at(tmp_path / "registry.db")
    registry.migrate()
    registry.import_layout(layout)
    with broker:
        follower = follow_broker_auth(auth, layout, edge, fleet, kafka_settings, broker.reload)
        bridge = Bridge(
            bridge_mqtt, kafka_settings, BridgeSettings(bridge_id=f"b{root}", share_group=f"g{root}", metrics_port=0)
        )
        bridge.start()
        worker = start_worker(kafka_settings, influx.settings, tmp_path, "w1")
        changes, publisher = changes_for(registry, kafka_settings, fleet, edge)
        port = free_port()
        server, thread = serve_in_thread(create_app(registry, influx, changes), "127.0.0.1", port)
        token = registry.issue_token(FARM, "farm office", [Scope.READ, Scope.WRITE])
        try:
            worker.wait_ready()
            yield Farm(f"http://127.0.0.1:{port}/farms/{FARM}", token, fleet, influx)
        finally:
            server.should_exit = True
            thread.join(10)
            publisher.close()
            worker.stop()
            bridge.stop()
            follower.stop()
            registry.close()


def stored(influx: InfluxClient, device: str) -> int:
    rows = influx.query(f"SELECT count(value) AS n FROM reading WHERE device = '{device}' AND zone = 'olive-grove'")
    return int(rows[0]["n"]) if rows else 0


def test_a_device_registered_through_the_api_logs_in_and_its_readings_are_stored_without_a_restart(
    farm: Farm,
) -> None:
    assert login(farm.mqtt, DEVICE["id"], "guess") == "Not authorized"

    status, zone = call("POST", f"{farm.api}/zones", farm.token, ZONE)
    assert status == 201 and zone["id"] == "olive-grove", zone
    status, registered = call("POST", f"{farm.api}/devices", farm.token, DEVICE)
    assert status == 201, registered
    login_ = registered["mqtt"]
    assert login_["username"] == DEVICE["id"] and login_["telemetry_topic"] == farm.mqtt.topics.telemetry(
        FARM, DEVICE["id"]
    )
    status, devices = call("GET", f"{farm.api}/devices", farm.token)
    assert DEVICE["id"] in {d["id"] for d in devices}

    wait_for(
        "the broker to let the new device in",
        lambda: login(farm.mqtt, login_["username"], login_["password"]) == "Success",
        30,
    )
    device = farm.mqtt.model_copy(update={"username": login_["username"], "password": SecretStr(login_["password"])})
    now = datetime.now(UTC).replace(microsecond=0)
    messages = []
    for seq in range(6):
        doc = {
            "schema_version": 1,
            "device": DEVICE["id"],
            "seq": seq,
            "ts": (now - timedelta(minutes=5 * (5 - seq))).isoformat(),
            "readings": [
                {"sensor": "sm-15", "kind": "soil_moisture", "value": 24.0 - seq * 0.1},
                {"sensor": "sm-45", "kind": "soil_moisture", "value": 28.0 - seq * 0.05},
                {"sensor": "bat", "kind": "battery", "value": 3.7},
            ],
        }
        messages.append((login_["telemetry_topic"], json.dumps(doc).encode()))
    publish_messages(device, messages, client_id=DEVICE["id"])
    wait_for("the new device's readings in InfluxDB", lambda: stored(farm.influx, DEVICE["id"]) == 18, 60)

    # Registered twice, or in a zone the farm lacks: refused with a problem, nothing changed.
    status, problem = call("POST", f"{farm.api}/devices", farm.token, DEVICE)
    assert status == 409 and "already registered" in problem["detail"]
    status, problem = call("POST", f"{farm.api}/devices", farm.token, {**DEVICE, "id": "x-1", "zone": "nowhere"})
    assert status == 404 and "no zone 'nowhere'" in problem["detail"]

    status, _ = call("DELETE", f"{farm.api}/devices/{DEVICE['id']}", farm.token)
    assert status == 204
    wait_for(
        "the broker to refuse the retired device",
        lambda: login(farm.mqtt, login_["username"], login_["password"]) == "Not authorized",
        30,
    )
    status, problem = call("POST", f"{farm.api}/devices", farm.token, DEVICE)
    assert status == 409 and "never reused" in problem["detail"]
