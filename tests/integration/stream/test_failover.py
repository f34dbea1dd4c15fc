"""Two workers, one killed with SIGKILL mid-stream, against the real Mosquitto, Kafka and InfluxDB: the other takes
its partitions over within seconds, every reading sent is stored once with its device, sensor, time and value,
every window equals a recomputation from the stored readings, and the irrigations issued across the kill are those
the same zone code issues for the same readings without a kill.

``scripts/failover-loop.sh`` runs this test in a loop and tallies the runs (not CI: each run takes minutes)."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest

from benchmarks.matrix import Sent, stored_readings, tally
from ml.scoring import Baselines
from smartfarm.layout import load_layout
from smartfarm.mqtt import connect, mqtt_client
from smartfarm.records import Recommendation, RecommendationKind
from smartfarm.topics import KafkaTopic, MqttTopics
from storage.influx import InfluxClient
from stream.settings import WorkerSettings
from stream.windows import ZoneClock
from stream.zones import ZoneStage
from tests.helpers import unique
from tests.integration.pipeline import Pipeline, influx_database, read_topic, stored_count, telemetry, wait_for

PER_DEVICE = 1800
"""Messages per device: six and a quarter days at one every 5 minutes."""

PUBLISH_S = 24.0
"""The publisher is paced over this long (an hour of every device at a time), so that the kill at a third of the
readings comes while messages still arrive and the takeover happens mid-stream (unpaced, the whole input was
sometimes stored before the kill: nothing was in flight)."""


def publish_paced(pipeline: Pipeline, messages: list[tuple[str, bytes]], per_chunk: int) -> None:
    """Each device's messages over its own login (the broker lets a device publish only its own topics), a chunk
    of ``per_chunk`` at a time, every chunk acknowledged before the next, paced over ``PUBLISH_S``."""
    clients: dict[str, mqtt.Client] = {}
    for device in {MqttTopics.device_named(topic) or "" for topic, _ in messages}:
        login = pipeline.device(device)
        clients[device] = client = mqtt_client(login, unique(f"{device}-"))
        connect(client, login, background=False)
        client.loop_start()
    chunks = [messages[i : i + per_chunk] for i in range(0, len(messages), per_chunk)]
    began = time.monotonic()
    for n, chunk in enumerate(chunks):
        sent = [clients[MqttTopics.device_named(topic) or ""].publish(topic, body, qos=1) for topic, body in chunk]
        for info in sent:
            info.wait_for_publish(30)
        time.sleep(max(0.0, began + PUBLISH_S * (n + 1) / len(chunks) - time.monotonic()))
    for client in clients.values():
        client.disconnect()
        client.loop_stop()


def missing_seqs(influx: InfluxClient, devices: list[str]) -> dict[str, list[int]]:
    rows = influx.query("SELECT seq, value FROM reading WHERE sensor = 'sm-15' GROUP BY device")
    seen: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        seen[r["device"]].add(r["seq"])
    return {d: sorted(set(range(PER_DEVICE)) - seen[d])[:20] for d in devices if len(seen[d]) < PER_DEVICE}


Irrigation = tuple[str, str, datetime | None, float | None, datetime | None]
"""farm, zone, window end, amount, start."""


def irrigations(recommendations: list[Recommendation]) -> set[Irrigation]:
    """The irrigations still in force once every superseding record has been applied, in the order they were
    issued (a zone's records share a partition): what the valves are left holding. A window that a takeover
    scored from part of its readings and then revised (``stream.advice.readvise``) leaves its revision in force,
    as the same window scored once whole does."""
    in_force: dict[str, Recommendation] = {}
    for r in recommendations:
        if r.kind is not RecommendationKind.IRRIGATION:
            continue
        if r.supersedes is not None:
            in_force.pop(str(r.supersedes), None)
        if r.amount_mm:
            in_force[str(r.id)] = r
    return {(r.farm, r.zone, r.window_end, r.amount_mm, r.start_at) for r in in_force.values()}


def irrigations_without_a_kill(influx: InfluxClient) -> set[Irrigation]:
    """The irrigations the worker's own zone code issues for the stored readings, copied into a database of their
    own, each zone stepped once with all its readings' times: no kill, no redelivery, every hour whole."""
    with influx_database(influx.settings.url, "ref") as reference:
        influx.query(f'SELECT * INTO "{reference.database}".."reading" FROM "reading" GROUP BY *', write=True)
        stage = ZoneStage(load_layout(), reference, Baselines(), WorkerSettings().window_grace_s)
        times: dict[tuple[str, str], list[float]] = defaultdict(list)
        for r in reference.query("SELECT value FROM reading WHERE sensor = 'sm-15' GROUP BY farm, zone"):
            times[(r["farm"], r["zone"])].append(r["time"] / 1e9)
        issued = []
        for (farm, zone), stamps in sorted(times.items()):
            issued += stage.step(farm, zone, ZoneClock(), sorted(stamps)).recommendations
        return irrigations(issued)


def windows_match_the_stored_readings(influx: InfluxClient, width: str) -> tuple[int, list[str]]:
    """How many stored windows there are, and those whose count or mean differ from InfluxDB's recomputation."""
    expected = {
        (r["zone"], r["kind"], r["time"]): (r["n"], r["m"])
        for r in influx.query(
            "SELECT count(value) AS n, mean(value) AS m FROM reading WHERE quality = 'good' AND time >= 0 "
            f"GROUP BY time({width}), zone, kind fill(none)"
        )
    }
    stored = influx.query(f"SELECT count, mean FROM zone_aggregate WHERE width = '{width}' GROUP BY zone, kind")
    wrong = []
    for r in stored:
        n, mean = expected[(r["zone"], r["kind"], r["time"])]
        if r["count"] != n or not math.isclose(r["mean"], mean, rel_tol=1e-9):
            wrong.append(f"{r['zone']} {r['kind']} {r['time']}: {r['count']}/{r['mean']} against {n}/{mean}")
    return len(stored), wrong


@pytest.mark.long(48)
def test_a_killed_worker_hands_over_within_seconds_and_nothing_is_lost_or_counted_twice(pipeline: Pipeline) -> None:
    first, second = pipeline.worker("w1"), pipeline.worker("w2")
    first.wait_ready()
    second.wait_ready()
    start = (datetime.now(UTC) - timedelta(days=7)).replace(minute=0, second=0, microsecond=0)
    devices = [d for d in load_layout().placements if d.startswith("soil-")]  # the worker's layout: 8 soil nodes
    per_device = {d: telemetry(pipeline.mqtt, d, start, range(PER_DEVICE), moisture=19.0) for d in devices}
    messages = [per_device[d][s] for s in range(PER_DEVICE) for d in devices]
    publisher = threading.Thread(target=publish_paced, args=(pipeline, messages, 12 * len(devices)))
    publisher.start()
    total = len(messages) * 4
    wait_for("a third of the readings", lambda: stored_count(pipeline.influx) >= total // 3, timeout_s=120)
    seen = len(second.log_path.read_text())
    first.kill()
    killed = time.monotonic()
    at_kill, publishing = stored_count(pipeline.influx), publisher.is_alive()
    assert at_kill < total and publishing, f"the kill came mid-stream ({at_kill} of {total} stored)"
    wait_for(
        "the survivor to hold every partition",
        lambda: "holds partitions [0, 1, 2, 3, 4, 5]" in second.log_path.read_text()[seen:],
        timeout_s=60,
    )
    takeover = time.monotonic() - killed
    publisher.join(120)
    wait_for(
        "every reading",
        lambda: stored_count(pipeline.influx) == total,
        timeout_s=180,
        explain=lambda: f"(at kill {at_kill}; missing {missing_seqs(pipeline.influx, devices)})",
    )
    found = tally(
        [Sent.parse(payload) for _, payload in messages],
        stored_readings(pipeline.influx.series("SELECT value FROM reading GROUP BY *")),
    )
    assert found.stored_once == found.readings and not found.lost and not found.stored_twice, (
        f"every reading stored once, with its time and value: {found.lost} lost {found.lost_examples}, "
        f"{found.stored_twice} stored twice {found.twice_examples}"
    )
    # A batch is stored before its clean records are produced, so the topic may still be filling: read until whole.
    sent_keys = {(d, s) for d in devices for s in range(PER_DEVICE)}
    keys: list[tuple[str, int]] = []

    def cleaned() -> set[tuple[str, int]]:
        clean = read_topic(pipeline.kafka, KafkaTopic.READINGS_CLEAN, 1)
        keys[:] = [(m["device"], m["seq"]) for r in clean for m in json.loads(r.value)["messages"]]
        return set(keys)

    wait_for("every message cleaned", lambda: cleaned() >= sent_keys, timeout_s=60)
    assert set(keys) == sent_keys, "every message cleaned at least once, and nothing else"
    assert takeover < 20, f"the survivor took {takeover:.1f} s"

    # The zones: the last windows are still open (no later reading moves the watermark past them).
    hours_emitted = 4 * 3 * (PER_DEVICE * 5 // 60 - 1)  # zones x kinds x closed hours
    wait_for(
        "the closed hours' aggregates",
        lambda: windows_match_the_stored_readings(pipeline.influx, "1h")[0] >= hours_emitted,
        timeout_s=120,
        explain=lambda: f"{windows_match_the_stored_readings(pipeline.influx, '1h')[0]} of {hours_emitted}",
    )
    time.sleep(2)
    for width in ("15m", "1h"):
        count, wrong = windows_match_the_stored_readings(pipeline.influx, width)
        assert not wrong, f"{len(wrong)} of {count} {width} windows differ from the stored readings: {wrong[:5]}"
    recommendations = [
        Recommendation.decode(r.value) for r in read_topic(pipeline.kafka, KafkaTopic.RECOMMENDATIONS, 1)
    ]
    issued, reference = irrigations(recommendations), irrigations_without_a_kill(pipeline.influx)
    assert reference, "the input makes the zones irrigate (else the comparison below proves nothing)"
    assert issued == reference, (
        f"the irrigations issued across the kill differ from those without a kill: {len(issued - reference)} issued "
        f"only across it {sorted(issued - reference, key=str)[:3]}, {len(reference - issued)} only without "
        f"{sorted(reference - issued, key=str)[:3]}"
    )
    irrigation_ids = [r.id for r in recommendations if r.kind is RecommendationKind.IRRIGATION]
    sent_again = len(irrigation_ids) - len(set(irrigation_ids))
    revised = sum(1 for r in recommendations if r.kind is RecommendationKind.IRRIGATION and r.supersedes)
    print(
        f"\nSIGKILL with {at_kill} of {total} readings stored: the survivor held all 6 partitions {takeover:.1f} s "
        f"later; all {total} readings stored once; {len(keys) - len(set(keys))} clean records sent twice; "
        f"{count} hourly windows equal to the stored readings; {len(issued)} irrigations in force equal to those "
        f"without a kill ({revised} superseding records), {sent_again} sent again with the same id; "
        f"rewinds {second.metric('smartfarm_worker_rewinds_total')}"
    )
