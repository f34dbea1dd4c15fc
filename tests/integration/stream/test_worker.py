"""The stream worker against the real Mosquitto, Kafka and InfluxDB, through the real bridge: hostile payloads,
a faulty simulated fleet stored exactly once, and InfluxDB going away."""

from __future__ import annotations

import csv
import json
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.services import InfluxDB
from edge.faults import FaultKind, FaultRecord
from edge.fleet import prepare
from edge.loadgen import publish_messages
from smartfarm.errors import RejectReason
from smartfarm.layout import load_layout
from smartfarm.records import DeadLetter, RejectStage
from smartfarm.topics import KafkaTopic
from storage.influx import InfluxClient
from stream.clean import CleanRules
from tests.helpers import edge_settings
from tests.hostile import DEVICE, FARM, good, hostile_payloads
from tests.integration.pipeline import INFLUX_USERS, Pipeline, read_topic, stored_count, wait_for

LAG, STALLED = "smartfarm_worker_consumer_lag", "smartfarm_worker_stalled_seconds"


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
        messages += [(topic, h.payload) for h in hostile[i::60]]  # every hostile case, between good ones
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


@pytest.mark.long(37)
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
        # the stall is loud: the cleaning agent stands still with records waiting, and its gauge counts it
        assert worker.metric(f'{LAG}{{agent="clean-and-store"') > 0
        assert worker.metric(f'{STALLED}{{agent="clean-and-store"') > 0
    finally:
        influxdb.start()
    wait_for("every reading", lambda: stored_count(pipeline.influx) == 3 * 160 * 4, timeout_s=90)
    time.sleep(3)
    assert stored_count(pipeline.influx) == 3 * 160 * 4, "nothing doubled"
    wait_for("every agent caught up", lambda: worker.metric(LAG) == 0 == worker.metric(STALLED), timeout_s=20)
    text = urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5).read().decode()
    watched = {line.split('agent="', 1)[1].split('"', 1)[0] for line in text.splitlines() if line.startswith(LAG)}
    assert watched == {"clean-and-store", "store-status", "zones"}, "the lag of every agent's input"
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
    rates = {
        "spike": 0.01,
        "stuck": 0.003,
        "duplicate": 0.01,
        "out_of_order": 0.01,
        "malformed": 0.01,
        "clock_reset": 0.001,
    }
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
    doubled = of[FaultKind.DUPLICATE]
    refused = {key for f in faults for key in f.refused()}
    stale = {key for f in faults if f.fault is FaultKind.CLOCK_RESET for key in f.refused()}
    with (tmp_path / "sent.csv").open() as f:
        recorded = list(csv.DictReader(f))
    messages = {(r["device"], int(r["seq"])) for r in recorded}
    refused &= messages  # a device that died mid-reset never sent the rest
    sent = {
        (r["device"], r["sensor"], int(r["seq"])): float(r["value"])
        for r in recorded
        if (r["device"], int(r["seq"])) not in refused
    }
    wait_for("every valid reading", lambda: stored_count(pipeline.influx) >= len(sent), timeout_s=120)
    rows = pipeline.influx.query("SELECT value, seq, quality, flags FROM reading GROUP BY device, sensor")
    stored = {(r["device"], r["sensor"], r["seq"]): r["value"] for r in rows}
    assert len(rows) == len(stored) == len(sent), "each reading once"
    assert stored == sent, "value for value"

    letters = [DeadLetter.decode(r.value) for r in read_topic(pipeline.kafka, KafkaTopic.DEADLETTER, len(refused))]
    assert len(letters) == len(refused) + len(refused & doubled), "exactly the malformed and stale payloads sent"
    assert {(d.device, d.stage) for d in letters} <= {(device, RejectStage.CLEAN) for device, _ in refused}
    assert stale & messages, "the clock resets stamped some messages"
    assert sum(d.reason is RejectReason.STALE_TIMESTAMP for d in letters) == len(stale & messages) + len(
        stale & messages & doubled
    ), "a reset clock's messages are refused as stale, no other"
    dropped = len(doubled - refused)
    wait_for("the duplicates' count", lambda: worker.metric("smartfarm_worker_duplicates_total") >= dropped)
    assert worker.metric("smartfarm_worker_duplicates_total") == dropped
    assert worker.metric("smartfarm_worker_messages_in_total") == len(messages) + len(doubled), (
        "every device message counted once out of its envelope, a doubled one twice"
    )

    flagged = {(r["device"], r["sensor"], r["seq"]): set(r["flags"].split(",")) for r in rows if r["flags"]}
    spikes = [
        (f.device, f.sensor, f.seq) for f in faults if f.fault is FaultKind.SPIKE and (f.device, f.seq) not in refused
    ]
    found = [s for s in spikes if "spike" in flagged.get(s, set()) or "rate_of_change" in flagged.get(s, set())]
    stuck_readings = [
        (f.device, f.sensor, f.seq + i)
        for f in faults
        if f.fault is FaultKind.STUCK
        for i in range(CleanRules().stuck_after, f.ticks)
        if (f.device, f.seq + i) not in refused
    ]
    stuck_found = [s for s in stuck_readings if "stuck" in flagged.get(s, set())]
    explained = set(spikes) | {(d, s, q + 1) for d, s, q in spikes} | set(stuck_readings)
    unexplained = [k for k in flagged if k not in explained]
    print(
        f"\n{len(sent)} readings stored once, value for value; {len(letters)} dead letters for {len(refused)} "
        f"malformed or stale payloads ({len(stale & messages)} stale); {dropped} duplicates dropped; "
        f"spikes flagged {len(found)}/{len(spikes)}; "
        f"stuck readings flagged {len(stuck_found)}/{len(stuck_readings)}; "
        f"flags without an injected fault {len(unexplained)} of {len(sent)} readings"
    )
    assert spikes and len(found) >= 0.8 * len(spikes)
    assert stuck_readings and len(stuck_found) >= 0.8 * len(stuck_readings)
    assert len(unexplained) <= 0.002 * len(sent)


RESET_STAMPS = ("2000-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2000-01-01T00:15:00Z")
"""A field node after its real-time clock reset (a battery swap, no GNSS or NTP): its next messages."""


def publish_with_a_clock_reset(pipeline: Pipeline, now: datetime) -> tuple[int, str]:
    """Three devices publish 40 messages each; the second one stamps three of them from a reset clock, then finds
    the time again. Returns the messages with a true stamp, and the reset device."""
    devices = ["soil-tomato-north-1", "soil-maize-east-1", "soil-lettuce-south-1"]
    reset = devices[1]
    true = 0
    for device in devices:
        topic = pipeline.mqtt.topics.telemetry(FARM, device)
        docs = []
        for seq in range(40):
            doc = good(now - timedelta(hours=2) + timedelta(minutes=3 * seq), seq, device=device)
            if device == reset and 20 <= seq < 23:
                doc["ts"] = RESET_STAMPS[seq - 20]
            else:
                true += 1
            docs.append(doc)
        publish_messages(pipeline.device(device), [(topic, json.dumps(d).encode()) for d in docs], client_id=device)
    return true, reset


def test_a_device_whose_clock_reset_is_dead_lettered_and_every_other_reading_is_stored(pipeline: Pipeline) -> None:
    worker = pipeline.worker()
    worker.wait_ready()
    true, reset = publish_with_a_clock_reset(pipeline, datetime.now(UTC))
    letters = [DeadLetter.decode(r.value) for r in read_topic(pipeline.kafka, KafkaTopic.DEADLETTER, 3)]
    assert {(d.reason, d.stage, d.device) for d in letters} == {
        (RejectReason.STALE_TIMESTAMP, RejectStage.CLEAN, reset)
    }
    assert sorted(json.loads(d.payload)["ts"] for d in letters) == sorted(RESET_STAMPS)
    wait_for("every true reading", lambda: stored_count(pipeline.influx) == true * 4)
    clock = pipeline.influx.query("SELECT skew_s, reason FROM device_clock GROUP BY device")
    assert [r["device"] for r in clock] == [reset] * 3 and all(r["skew_s"] < -8e8 for r in clock)
    after = pipeline.influx.query(f"SELECT count(value) AS n FROM reading WHERE device = '{reset}' AND seq >= 23")
    assert after[0]["n"] == 17 * 4, "the reset device's later messages flow: its duplicate memory was not poisoned"
    assert worker.metric('smartfarm_worker_dead_lettered_total{reason="stale_timestamp"}') == 3
    worker.check()


def test_points_influxdb_refuses_are_dead_lettered_with_its_answer_and_the_stream_moves_on(pipeline: Pipeline) -> None:
    """The cleaning's lower bound relaxed past the database's retention: InfluxDB refuses the reset clock's points
    (400 partial write, beyond retention policy). The batch is not retried for ever: exactly those messages are
    dead-lettered with the database's answer and every other reading is stored. Then the worker's grant is revoked:
    a refusal of the worker, not of its data, which stops it (exit 1) naming the grant, with nothing dead-lettered."""
    worker = pipeline.worker(max_past_s=str(100 * 365 * 86400))
    worker.wait_ready()
    true, reset = publish_with_a_clock_reset(pipeline, datetime.now(UTC))
    letters = [DeadLetter.decode(r.value) for r in read_topic(pipeline.kafka, KafkaTopic.DEADLETTER, 3)]
    assert {(d.reason, d.stage, d.device) for d in letters} == {
        (RejectReason.STORAGE_REFUSED, RejectStage.STORE, reset)
    }
    assert all("beyond retention policy" in d.detail for d in letters), letters[0].detail
    assert sorted(json.loads(d.payload)["ts"] for d in letters) == sorted(RESET_STAMPS)
    wait_for("every true reading", lambda: stored_count(pipeline.influx) == true * 4)
    assert worker.metric('smartfarm_worker_dead_lettered_total{reason="storage_refused"}') == 3
    worker.check()

    # The worker's own grant revoked (an operator's slip) is not the data's fault: the worker stops, naming the
    # grant to mend, instead of dead-lettering every reading; what it had not stored stays in Kafka.
    writer = pipeline.influx.settings
    admin = InfluxClient(writer, INFLUX_USERS.admin)
    admin.query(f'REVOKE ALL ON "{writer.database}" FROM "{writer.username}"', write=True)
    device = "soil-tomato-north-1"
    later = [good(datetime.now(UTC) - timedelta(minutes=10 - seq), seq, device=device) for seq in range(40, 44)]
    topic = pipeline.mqtt.topics.telemetry(FARM, device)
    publish_messages(pipeline.device(device), [(topic, json.dumps(d).encode()) for d in later], client_id=device)
    wait_for("the worker to stop", lambda: worker.proc is not None and worker.proc.poll() is not None, 60)
    assert worker.proc is not None and worker.proc.returncode == 1, "a supervisor sees that it failed"
    log = worker.log_path.read_text()
    assert f"user '{writer.username}' lacks the grant" in log and "smartfarm influx-users" in log
    assert writer.password.get_secret_value() not in log
    assert len(read_topic(pipeline.kafka, KafkaTopic.DEADLETTER, 3)) == 3, "nothing more dead-lettered"
    assert stored_count(admin) == true * 4, "the later readings wait in Kafka"
    admin.close()
