"""The stream worker against the real Mosquitto, Kafka and InfluxDB, through the real bridge: hostile payloads,
a faulty simulated fleet stored exactly once, and InfluxDB going away."""

from __future__ import annotations

import csv
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from cli.services import InfluxDB, Kafka
from cli.worker import WorkerProcess
from edge.credentials import device_password
from edge.faults import FaultKind, FaultRecord
from edge.fleet import prepare
from edge.loadgen import publish_messages
from smartfarm.layout import load_layout
from smartfarm.records import DeadLetter, RejectStage
from smartfarm.settings import KafkaSettings, MqttSettings
from smartfarm.topics import KafkaTopic
from storage.influx import InfluxClient
from stream.admin import ensure_topics
from stream.clean import CleanRules
from stream.settings import BridgeSettings
from tests.helpers import FLEET_SECRET, edge_settings, unique
from tests.hostile import DEVICE, FARM, good, hostile_payloads
from tests.integration.pipeline import Running, SecuredBroker, read_topic, start_worker


class Pipeline:
    """A bridge on a secured broker, a worker process and a database, all of one test's own."""

    def __init__(self, broker: SecuredBroker, kafka: Kafka, influx: InfluxClient, workdir: Path) -> None:
        _, mqtt, self.layout = broker
        tag = unique("")
        self.mqtt = mqtt
        self.kafka = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_prefix=f"t{tag}")
        self.influx = influx
        self.workdir = workdir
        ensure_topics(self.kafka)
        service = mqtt.model_copy(update={"username": "tester", "password": SecretStr("tester-password")})
        bridge = BridgeSettings(bridge_id=f"b{tag}", share_group=f"g{tag}", metrics_port=0)
        self.bridge = Running(service, self.kafka, bridge)
        self.workers: list[WorkerProcess] = []

    def worker(self, name: str = "w1", **settings: str) -> WorkerProcess:
        worker = start_worker(self.kafka, self.influx.settings, self.workdir, name, **settings)
        self.workers.append(worker)
        return worker

    def device(self, device: str) -> MqttSettings:
        """MQTT settings that log in as ``device`` with its real password."""
        password = SecretStr(device_password(FLEET_SECRET, device))
        return self.mqtt.model_copy(update={"username": device, "password": password})

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.bridge.stop()


@pytest.fixture
def pipeline(secured_broker: SecuredBroker, kafka: Kafka, influx: InfluxClient, tmp_path: Path) -> Iterator[Pipeline]:
    running = Pipeline(secured_broker, kafka, influx, tmp_path)
    yield running
    running.close()


def wait_for(what: str, check, timeout_s: float = 60, explain=lambda: "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what} {explain()}"
        time.sleep(0.25)


def stored_count(influx: InfluxClient) -> int:
    rows = influx.query("SELECT count(value) AS n FROM reading")
    return int(rows[0]["n"]) if rows else 0


def test_hostile_payloads_are_dead_lettered_with_their_reasons_while_good_ones_are_stored(
    pipeline: Pipeline,
) -> None:
    worker = pipeline.worker()
    worker.wait_ready()
    now = datetime.now(UTC)
    hostile = hostile_payloads(now)
    topic = pipeline.mqtt.topics.telemetry(FARM, DEVICE)
    messages = []
    for i in range(60):
        messages.append((topic, json.dumps(good(now - timedelta(minutes=60 - i), 100 + i)).encode()))
        if i < len(hostile):
            messages.append((topic, hostile[i].payload))
    publish_messages(pipeline.device(DEVICE), messages, client_id=DEVICE)

    expected = Counter((h.stage, h.reason) for h in hostile)
    letters = [DeadLetter.decode(r.value) for r in read_topic(pipeline.kafka, KafkaTopic.DEADLETTER, len(hostile))]
    assert Counter((d.stage, d.reason) for d in letters) == expected
    assert all(d.device == DEVICE and d.detail for d in letters)
    assert sorted(d.payload for d in letters) == sorted(h.payload for h in hostile), "the original bytes are kept"
    wait_for("the good readings", lambda: stored_count(pipeline.influx) == 60 * 4)
    clean_refusals = sum(1 for h in hostile if h.stage is RejectStage.CLEAN)
    wait_for("the worker's count", lambda: worker.metric("smartfarm_worker_dead_lettered_total") == clean_refusals)
    worker.check()  # still up
    code, seconds = worker.terminate()
    assert code == 0 and seconds < 10, f"SIGTERM: exit {code} after {seconds:.1f} s"
    print(f"\n{len(hostile)} hostile payloads dead-lettered ({clean_refusals} by the worker); SIGTERM: {seconds:.1f} s")


def test_influxdb_stopped_for_15_seconds_loses_nothing_and_commits_nothing_unwritten(
    pipeline: Pipeline, influxdb: InfluxDB
) -> None:
    worker = pipeline.worker(batch_max="200")
    worker.wait_ready()
    now = datetime.now(UTC)
    devices = ["soil-tomato-north-1", "soil-maize-east-1", "soil-lettuce-south-1"]

    def publish(seqs: range) -> None:
        for device in devices:
            topic = pipeline.mqtt.topics.telemetry(FARM, device)
            docs = [good(now - timedelta(hours=3) + timedelta(minutes=s), s, device=device) for s in seqs]
            publish_messages(pipeline.device(device), [(topic, json.dumps(d).encode()) for d in docs], client_id=device)

    publish(range(0, 100))
    wait_for("the first readings", lambda: stored_count(pipeline.influx) == 3 * 100 * 4)
    influxdb.stop()
    try:
        publish(range(100, 160))
        time.sleep(15)
        worker.check()  # it waits for InfluxDB rather than crashing
        assert worker.metric("smartfarm_worker_influx_write_failures_total") > 0
    finally:
        influxdb.start()
    wait_for("every reading", lambda: stored_count(pipeline.influx) == 3 * 160 * 4, timeout_s=90)
    time.sleep(3)
    assert stored_count(pipeline.influx) == 3 * 160 * 4, "nothing doubled"
    rows = pipeline.influx.query("SELECT count(value) AS n FROM reading GROUP BY device, sensor")
    assert {(r["device"], r["sensor"], r["n"]) for r in rows} == {
        (d, s, 160) for d in devices for s in ("sm-15", "sm-45", "st-15", "bat")
    }
    code, seconds = worker.terminate()
    assert code == 0 and seconds < 10


def test_a_faulty_simulated_fleet_is_stored_once_value_for_value_and_its_faults_are_found(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    worker = pipeline.worker()
    worker.wait_ready()
    rates = {"spike": 0.01, "stuck": 0.003, "duplicate": 0.01, "out_of_order": 0.01, "malformed": 0.01}
    edge = edge_settings(
        tmp_path,
        speed=1e6,
        start=datetime.now(UTC) - timedelta(days=2),
        duration=timedelta(days=2),
        record=tmp_path / "sent.csv",
        **{f"fault_{k}": v for k, v in rates.items()},
    )
    fleet, source = prepare(load_layout(), pipeline.mqtt, edge)
    stats = fleet.run(source, threading.Event(), edge.speed)
    assert stats.dropped == 0 and stats.acked == stats.published

    faults = [FaultRecord.model_validate_json(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    of = {kind: {(f.device, f.seq) for f in faults if f.fault is kind} for kind in FaultKind}
    malformed, doubled = of[FaultKind.MALFORMED], of[FaultKind.DUPLICATE]
    with (tmp_path / "sent.csv").open() as f:
        sent = {
            (r["device"], r["sensor"], int(r["seq"])): float(r["value"])
            for r in csv.DictReader(f)
            if (r["device"], int(r["seq"])) not in malformed
        }
    wait_for("every valid reading", lambda: stored_count(pipeline.influx) >= len(sent), timeout_s=120)
    rows = pipeline.influx.query("SELECT value, seq, quality, flags FROM reading GROUP BY device, sensor")
    stored = {(r["device"], r["sensor"], r["seq"]): r["value"] for r in rows}
    assert len(rows) == len(stored) == len(sent), "each reading once"
    assert stored == sent, "value for value"

    letters = [DeadLetter.decode(r.value) for r in read_topic(pipeline.kafka, KafkaTopic.DEADLETTER, len(malformed))]
    assert len(letters) == len(malformed) + len(malformed & doubled), "exactly the malformed payloads sent"
    assert {(d.device, d.stage) for d in letters} <= {(device, RejectStage.CLEAN) for device, _ in malformed}
    dropped = len(doubled - malformed)
    wait_for("the duplicates' count", lambda: worker.metric("smartfarm_worker_duplicates_total") >= dropped)
    assert worker.metric("smartfarm_worker_duplicates_total") == dropped

    flagged = {(r["device"], r["sensor"], r["seq"]): set(r["flags"].split(",")) for r in rows if r["flags"]}
    spikes = [
        (f.device, f.sensor, f.seq) for f in faults if f.fault is FaultKind.SPIKE and (f.device, f.seq) not in malformed
    ]
    found = [s for s in spikes if "spike" in flagged.get(s, set()) or "rate_of_change" in flagged.get(s, set())]
    stuck_readings = [
        (f.device, f.sensor, f.seq + i)
        for f in faults
        if f.fault is FaultKind.STUCK
        for i in range(CleanRules().stuck_after, f.ticks)
        if (f.device, f.seq + i) not in malformed
    ]
    stuck_found = [s for s in stuck_readings if "stuck" in flagged.get(s, set())]
    explained = set(spikes) | {(d, s, q + 1) for d, s, q in spikes} | set(stuck_readings)
    unexplained = [k for k in flagged if k not in explained]
    print(
        f"\n{len(sent)} readings stored once, value for value; {len(letters)} dead letters for {len(malformed)} "
        f"malformed payloads; {dropped} duplicates dropped; spikes flagged {len(found)}/{len(spikes)}; "
        f"stuck readings flagged {len(stuck_found)}/{len(stuck_readings)}; "
        f"flags without an injected fault {len(unexplained)} of {len(sent)} readings"
    )
    assert spikes and len(found) >= 0.8 * len(spikes)
    assert stuck_readings and len(stuck_found) >= 0.8 * len(stuck_readings)
    assert len(unexplained) <= 0.002 * len(sent)
