"""The ingest door over real HTTP, a real Kafka and a real worker: ChirpStack and The Things Stack uplinks and
telemetry posted by a device become the records the bridge would write for MQTT, are stored once however often
they are posted, and are refused (or answered 503) as architecture.md says."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app, serve_in_thread
from api.changes import Changes
from cli.api import changes_for
from cli.services import Kafka, free_port
from edge.settings import EdgeSettings
from smartfarm.errors import RejectReason
from smartfarm.layout import load_layout
from smartfarm.records import DeadLetter, RawHeaders, RejectStage
from smartfarm.settings import KafkaSettings, MqttSettings
from smartfarm.telemetry import Telemetry
from smartfarm.topics import KafkaTopic, MqttTopics, topic_specs
from storage.influx import InfluxClient
from storage.registry.store import FarmRegistry, Scope
from stream.gate import partition_of
from stream.publisher import PUBLISH_TIMEOUT_S
from tests.helpers import FLEET_SECRET, unique
from tests.hostile import FARM, good
from tests.integration.api.stack import send
from tests.integration.api.test_farm_api import is_problem
from tests.integration.pipeline import read_topic, start_worker, stored_count, wait_for
from tests.lorawan_examples import CHIRPSTACK_JOIN, CHIRPSTACK_UP, LPP_TWO_TEMPERATURES, TTS_UPLINK, example

CHIRP_DEVICE = "soil-tomato-north-1"
TTS_DEVICE = "soil-tomato-north-2"
CHIRP_BINDING = {"dev_eui": "0101010101010101", "fields": {"soil.vwc": "sm-15", "soil.temp": "st-15", "battery": "bat"}}
TTS_BINDING = {
    "dev_eui": "0004A30B001C0530",
    "tts_device_id": "dev1",
    "decoder": "cayenne_lpp",
    "fields": {"3": "st-15", "5": "sm-45"},
}


@contextmanager
def serving(registry: FarmRegistry, changes: Changes | None) -> Iterator[str]:
    port = free_port()
    server, thread = serve_in_thread(create_app(registry, None, changes), "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}/farms/{FARM}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Door:
    url: str
    registry: FarmRegistry
    kafka: KafkaSettings
    topics: MqttTopics
    sender: str
    """The ``bridge_id`` the API's records carry: its Kafka client id."""
    token: str
    """Of the farm, with the ingest and write scopes."""


@pytest.fixture
def door(tmp_path: Path, kafka_settings: KafkaSettings) -> Iterator[Door]:
    registry = FarmRegistry.at(tmp_path / "registry.db")
    registry.migrate()
    registry.import_layout(load_layout())
    mqtt = MqttSettings(topic_root=unique("t"))
    changes, publisher = changes_for(registry, kafka_settings, mqtt, EdgeSettings(device_secret=FLEET_SECRET))
    token = registry.issue_token(FARM, "network server", [Scope.INGEST, Scope.WRITE])
    try:
        with serving(registry, changes) as url:
            yield Door(url, registry, kafka_settings, mqtt.topics, publisher.client_id, token)
    finally:
        publisher.close()
        registry.close()


def uplinks(at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The documented ChirpStack and The Things Stack uplinks, received ``at``, with a codec's object (ChirpStack)
    and a Cayenne LPP payload (The Things Stack)."""
    chirp = example(
        CHIRPSTACK_UP,
        fCnt=41,
        time=at.isoformat(),
        object={"soil": {"vwc": 23.4, "temp": 19.2}, "battery": 3.71},
    )
    message = TTS_UPLINK["uplink_message"] | {
        "f_cnt": 7,
        "frm_payload": base64.b64encode(LPP_TWO_TEMPERATURES).decode(),
        "received_at": at.isoformat(),
    }
    tts = example(TTS_UPLINK, received_at=(at + timedelta(seconds=1)).isoformat(), uplink_message=message)
    return chirp, tts


def test_a_chirpstack_and_a_tts_uplink_posted_twice_land_in_influxdb_once(
    door: Door, influx: InfluxClient, tmp_path: Path
) -> None:
    worker = start_worker(door.kafka, influx.settings, tmp_path, "w1")
    try:
        for device, binding in ((CHIRP_DEVICE, CHIRP_BINDING), (TTS_DEVICE, TTS_BINDING)):
            status, _, bound = send("PUT", f"{door.url}/devices/{device}/lorawan", door.token, binding)
            assert status == 200 and bound["dev_eui"] == binding["dev_eui"].lower(), bound
        at = (datetime.now(UTC) - timedelta(minutes=2)).replace(microsecond=0)
        chirp, tts = uplinks(at)
        by_http = good(at - timedelta(minutes=5), 5, device=CHIRP_DEVICE)  # another time: another point
        for _ in range(2):  # a network server's retry, a gateway heard twice: the same frame counter
            status, _, accepted = send("POST", f"{door.url}/ingest/chirpstack?event=up", door.token, chirp)
            assert status == 202 and accepted == {
                "device": CHIRP_DEVICE,
                "seq": 41,
                "ts": at.isoformat().replace("+00:00", "Z"),
                "readings": 3,
            }, accepted
            status, _, accepted = send("POST", f"{door.url}/ingest/tts", door.token, tts)
            assert status == 202 and (accepted["device"], accepted["seq"], accepted["readings"]) == (TTS_DEVICE, 7, 2)
            status, _, accepted = send("POST", f"{door.url}/ingest", door.token, by_http)
            assert status == 202 and (accepted["device"], accepted["seq"]) == (CHIRP_DEVICE, 5)
        assert send("POST", f"{door.url}/ingest/chirpstack?event=join", door.token, CHIRPSTACK_JOIN)[0] == 204
        # passes the door (the contract holds) but names a sensor the device lacks: the worker's to refuse
        stray = good(at, 6, device=CHIRP_DEVICE)
        stray["readings"] = [{"sensor": "leaf-9", "kind": "leaf_wetness", "value": 12.0}]
        assert send("POST", f"{door.url}/ingest", door.token, stray)[0] == 202

        # the records are those the bridge writes for MQTT: keyed by device, on its partition, with RawHeaders
        records = read_topic(door.kafka, KafkaTopic.TELEMETRY_RAW, 7)
        assert len(records) == 7, "each accepted post is one record, nothing more"
        partitions = topic_specs(door.kafka.topic_prefix)[KafkaTopic.TELEMETRY_RAW].partitions
        for record in records:
            message = Telemetry.decode(record.value)
            headers = RawHeaders.from_kafka(record.headers)
            assert record.key == message.device.encode()
            assert record.partition == partition_of(record.key, partitions)
            assert headers.mqtt_topic == door.topics.telemetry(FARM, message.device)
            assert headers.bridge_id == door.sender
            assert abs((headers.received_at - datetime.now(UTC)).total_seconds()) < 120

        expected = {
            (CHIRP_DEVICE, "sm-15"): (41, 23.4, at),
            (CHIRP_DEVICE, "st-15"): (41, 19.2, at),
            (CHIRP_DEVICE, "bat"): (41, 3.71, at),
            (TTS_DEVICE, "st-15"): (7, 27.2, at),
            (TTS_DEVICE, "sm-45"): (7, 25.5, at),
        }
        by_http_count = len(by_http["readings"])
        wait_for("every reading", lambda: stored_count(influx) == len(expected) + by_http_count, timeout_s=90)
        wait_for("the duplicates dropped", lambda: worker.metric("smartfarm_worker_duplicates_total") >= 3)
        letters = [DeadLetter.decode(r.value) for r in read_topic(door.kafka, KafkaTopic.DEADLETTER, 1)]
        assert [(x.reason, x.stage, x.device) for x in letters] == [
            (RejectReason.UNKNOWN_SENSOR, RejectStage.CLEAN, CHIRP_DEVICE)
        ]
        assert stored_count(influx) == len(expected) + by_http_count, "stored once"
        rows = influx.query("SELECT value, seq FROM reading WHERE seq <> 5 GROUP BY device, sensor")
        stored = {
            (r["device"], r["sensor"]): (r["seq"], r["value"], datetime.fromtimestamp(r["time"] / 1e9, UTC))
            for r in rows
        }
        assert stored == expected
    finally:
        worker.stop()


def test_what_the_door_refuses_and_how(door: Door, tmp_path: Path) -> None:
    read_only = door.registry.issue_token(FARM, "dashboard", [Scope.READ])
    at = datetime.now(UTC).replace(microsecond=0)
    chirp, tts = uplinks(at)

    # scopes and farms
    status, headers, problem = send("POST", f"{door.url}/ingest", read_only, good(at, 1, device=CHIRP_DEVICE))
    assert is_problem(status, headers, problem, 403) and "'ingest' scope" in problem["detail"]
    other_farm = door.url.replace(f"/farms/{FARM}", "/farms/hill-farm")
    assert send("POST", f"{other_farm}/ingest", door.token, good(at, 1, device=CHIRP_DEVICE))[0] == 404
    status, headers, problem = send("POST", f"{door.url}/ingest", door.token, good(at, 1, device="no-such-node"))
    assert is_problem(status, headers, problem, 404) and "no-such-node" in problem["detail"]

    # the telemetry contract, checked at the door
    broken = good(at, 1, device=CHIRP_DEVICE) | {"seq": "one"}
    status, headers, problem = send("POST", f"{door.url}/ingest", door.token, broken)
    assert is_problem(status, headers, problem, 422) and "seq" in problem["detail"]
    assert is_problem(*send("POST", f"{door.url}/ingest", door.token, b"{not json"), 422)

    # webhooks: an unbound device, an uplink we cannot read, an event we do not read
    status, headers, problem = send("POST", f"{door.url}/ingest/chirpstack?event=up", door.token, chirp)
    assert is_problem(status, headers, problem, 404) and "DevEUI 0101010101010101" in problem["detail"]
    status, headers, problem = send("POST", f"{door.url}/ingest/tts", door.token, tts)
    assert is_problem(status, headers, problem, 404) and "dev1" in problem["detail"]
    no_device = {k: v for k, v in chirp.items() if k != "deviceInfo"}
    assert is_problem(*send("POST", f"{door.url}/ingest/chirpstack?event=up", door.token, no_device), 422)
    for event in ("join", "status", "ack", "txack", "log", "location", "integration"):
        status, _, body = send("POST", f"{door.url}/ingest/chirpstack?event={event}", door.token, CHIRPSTACK_JOIN)
        assert (status, body) == (204, None), event

    # bindings: sensors the device lacks, a DevEUI another device holds; read back
    lacking = CHIRP_BINDING | {"fields": {"soil.vwc": "leaf-9"}}
    status, headers, problem = send("PUT", f"{door.url}/devices/{CHIRP_DEVICE}/lorawan", door.token, lacking)
    assert is_problem(status, headers, problem, 422) and "leaf-9" in problem["detail"]
    assert send("PUT", f"{door.url}/devices/{CHIRP_DEVICE}/lorawan", door.token, CHIRP_BINDING)[0] == 200
    status, headers, problem = send("PUT", f"{door.url}/devices/{TTS_DEVICE}/lorawan", door.token, CHIRP_BINDING)
    assert is_problem(status, headers, problem, 409) and CHIRP_DEVICE in problem["detail"]
    status, headers, problem = send("GET", f"{door.url}/devices/{TTS_DEVICE}/lorawan", read_only)
    assert is_problem(status, headers, problem, 404)
    status, _, bound = send("GET", f"{door.url}/devices/{CHIRP_DEVICE}/lorawan", read_only)
    assert (status, bound) == (200, CHIRP_BINDING | {"decoder": "decoded", "tts_device_id": None})
    assert send("PUT", f"{door.url}/devices/{CHIRP_DEVICE}/lorawan", read_only, CHIRP_BINDING)[0] == 403

    # an uplink that decodes but breaks the contract: refused with the contract's reason, nothing forwarded
    not_numbers = chirp | {"object": {"soil": {"vwc": "wet"}}}
    status, headers, problem = send("POST", f"{door.url}/ingest/chirpstack?event=up", door.token, not_numbers)
    assert is_problem(status, headers, problem, 422) and problem["detail"].startswith("invalid_payload")
    no_object = {k: v for k, v in chirp.items() if k != "object"}
    status, headers, problem = send("POST", f"{door.url}/ingest/chirpstack?event=up", door.token, no_object)
    assert is_problem(status, headers, problem, 422) and "codec" in problem["detail"]
    assert read_topic(door.kafka, KafkaTopic.TELEMETRY_RAW, 0, timeout_s=2) == []

    # an API that runs without Kafka
    with serving(door.registry, None) as url:
        status, headers, problem = send("POST", f"{url}/ingest", door.token, good(at, 1, device=CHIRP_DEVICE))
        assert is_problem(status, headers, problem, 503) and "SMARTFARM_KAFKA_BOOTSTRAP_SERVERS" in problem["detail"]


def test_while_kafka_is_away_the_door_answers_503_and_accepts_nothing(door: Door, kafka: Kafka) -> None:
    at = datetime.now(UTC).replace(microsecond=0)
    message = good(at, 1, device=CHIRP_DEVICE)
    kafka.stop()
    try:
        started = time.monotonic()
        status, headers, problem = send("POST", f"{door.url}/ingest", door.token, message)
        waited = time.monotonic() - started
    finally:
        kafka.start()
    assert is_problem(status, headers, problem, 503) and headers.get("retry-after") == "5", problem
    assert "send it again" in problem["detail"] and waited < PUBLISH_TIMEOUT_S + 5
    # the client sends it again after Retry-After until it is accepted (the producer reconnects with its backoff)
    deadline = time.monotonic() + 90
    while (status := send("POST", f"{door.url}/ingest", door.token, message)[0]) == 503:
        assert time.monotonic() < deadline, "Kafka is back but the door still answers 503"
        time.sleep(int(headers.get("retry-after", "5")))
    assert status == 202
    records = read_topic(door.kafka, KafkaTopic.TELEMETRY_RAW, 1)
    seqs = [Telemetry.decode(r.value).seq for r in records]
    assert seqs and set(seqs) == {1}, "never accepted and lost (a refused send Kafka took later is a duplicate)"
