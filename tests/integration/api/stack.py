"""A farm of one test's own behind the API: its broker's credentials follow the layout topic, a bridge, the API
with Kafka (so changes and accepted irrigations reach the pipeline) over a registry holding the farm."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from api.app import create_app, serve_in_thread
from cli.api import changes_for
from cli.brokerauth import follow_broker_auth, write_broker_auth
from cli.services import Kafka, Mosquitto, free_port
from edge.settings import EdgeSettings
from edge.valve import Valves
from ml.settings import ModelSettings
from smartfarm.credentials import device_password
from smartfarm.identifiers import valves_user
from smartfarm.layout import Layout, load_layout
from smartfarm.settings import KafkaSettings, MqttSettings
from storage.influx import InfluxClient
from storage.registry.store import FarmRegistry, Scope
from stream.admin import ensure_topics
from stream.bridge import Bridge
from stream.settings import BridgeSettings
from tests.helpers import FLEET_SECRET, unique
from tests.integration.pipeline import wait_for

FARM = "valley-farm"


@dataclass
class Farm:
    api: str
    """The farm's base URL: ``http://127.0.0.1:port/farms/valley-farm``."""
    token: str
    """Read, write and ingest."""
    mqtt: MqttSettings
    kafka: KafkaSettings
    influx: InfluxClient
    edge: EdgeSettings
    workdir: Path


def call(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    status, _, answer = send(method, url, token, body)
    return status, answer


def send(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, dict[str, str], Any]:
    """(status, headers, the JSON answer or None when there is none) of a request with ``body`` as JSON."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, answer, text = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, answer, text = exc.code, dict(exc.headers), exc.read()
    return status, answer, json.loads(text) if text else None


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


@contextmanager
def listening_valves(farm: Farm) -> Iterator[Valves]:
    """The farm's simulated valves, following accepted irrigations, once subscribed to their commands."""
    user = valves_user(farm.edge.shard_index)
    valves = Valves([FARM], farm.mqtt, user, device_password(farm.edge.device_secret, user), follow="accepted")
    valves.start()
    try:
        wait_for("the valves' subscription", lambda: valves.client.is_connected(), 10)
        time.sleep(0.5)  # the SUBACK
        yield valves
    finally:
        valves.close()


@pytest.fixture
def farm(kafka: Kafka, influx: InfluxClient, tmp_path: Path) -> Iterator[Farm]:
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
        changes, publisher = changes_for(registry, kafka_settings, fleet, edge)
        port = free_port()
        models = ModelSettings(store=tmp_path / "models")  # empty: the model routes answer as before any training
        server, thread = serve_in_thread(create_app(registry, influx, changes, models), "127.0.0.1", port)
        token = registry.issue_token(FARM, "farm office", [Scope.READ, Scope.WRITE, Scope.INGEST])
        try:
            yield Farm(f"http://127.0.0.1:{port}/farms/{FARM}", token, fleet, kafka_settings, influx, edge, tmp_path)
        finally:
            server.should_exit = True
            thread.join(10)
            publisher.close()
            bridge.stop()
            follower.stop()
            registry.close()
