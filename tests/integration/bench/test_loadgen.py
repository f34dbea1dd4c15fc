"""The Go load generator (``benchmarks/loadgen``, built by ``benchmarks.generators``) held against the Python
reference on a real Mosquitto: every payload a subscriber receives is byte for byte what
``benchmarks.openloop.Payloads.message`` makes for the same slot, sequence number and stamp, in order, and so is
its ``--log``; its report counts what the broker acknowledged, "no matching subscribers" included; it publishes
those again with ``--resend-unrouted``; and it outlives a broker killed and restarted under it."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.bridge_stage import loadgen
from benchmarks.generators import binary, generator_report, start_go
from benchmarks.openloop import Payloads, Plan, Report, is_broken
from benchmarks.worker_stage import write_layout
from cli.services import Mosquitto
from smartfarm.topics import DeviceTopic, MqttTopics
from tests.helpers import unique

DEVICES = 6


@pytest.fixture(scope="module")
def go_generator() -> Path:
    return binary()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A layout of ``DEVICES`` nodes, and their ids."""
    path = tmp_path_factory.mktemp("loadgen") / "layout.yaml"
    return path, list(write_layout(DEVICES, path).placements)


class Subscriber:
    """Every telemetry message under a topic root, in the order it came (topic, payload)."""

    def __init__(self, broker: Mosquitto, root: str) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{root}-sub", protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, msg: self.got.append((msg.topic, bytes(msg.payload)))
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(MqttTopics(root).device_filter(DeviceTopic.TELEMETRY), qos=1)
        self.client.loop_start()
        assert subscribed.wait(10), "the subscription was not acknowledged"

    def wait_for(self, count: int, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.got) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def root() -> str:
    return unique("gen")


def run_go(port: int, plan: Plan, payloads: Payloads, *more: str) -> Report:
    return generator_report(start_go([*plan.argv(), "--port", str(port), *more], payloads))


def starting_soon(rate: float, count: int, ts0: float | None = None, speed: float = 1.0, seq_base: int = 0) -> Plan:
    """A plan due from a second ahead (the generator starts in milliseconds)."""
    t0 = time.time() + 1.0
    return Plan(t0=t0, rate=rate, count=count, ts0=t0 if ts0 is None else ts0, speed=speed, seq_base=seq_base)


def test_every_payload_is_the_python_reference_byte_for_byte(
    go_generator: Path, mosquitto: Mosquitto, fleet: tuple[Path, list[str]], root: str, tmp_path: Path
) -> None:
    payloads = Payloads.simulated(*fleet, root)
    # Event time at 900x across two hours, so one device in 3 breaks its probe, a different one each hour.
    plan = starting_soon(rate=250.0, count=600, ts0=1_780_000_000.123, speed=900.0, seq_base=7)
    expected = []
    for i in range(plan.count):
        slot, stamp = i % DEVICES, plan.stamp_ms(i)
        broken = is_broken(slot, stamp, 3)
        expected.append((payloads.topics[slot], payloads.message(slot, 7 + i // DEVICES, stamp, broken)))
    assert sum(b'"value":150.0' in body for _, body in expected) > plan.count // 6, "broken probes are in the run"
    sub = Subscriber(mosquitto, root)
    log = tmp_path / "sent.log"
    report = run_go(mosquitto.port, plan, payloads, "--break-every", "3", "--log", str(log), "--window", "50")
    sub.wait_for(plan.count)
    sub.close()
    assert sub.got == expected
    assert log.read_bytes() == b"".join(body + b"\n" for _, body in expected)
    assert (report.published, report.acknowledged, report.unrouted, report.resent) == (600, 600, 0, 0)
    assert report.devices == DEVICES and report.plan == plan
    assert report.payload_bytes == pytest.approx(sum(len(b) for _, b in expected) / plan.count)
    assert plan.due(plan.count - 1) - plan.t0 <= report.seconds < plan.count / plan.rate + 10
    assert 0 <= report.max_lag_s < 1.0 and 0 < report.cpu_s < 5 and 0 < report.max_rss_mb < 100


def test_paced_it_counts_what_met_no_subscriber(
    go_generator: Path, mosquitto: Mosquitto, fleet: tuple[Path, list[str]], root: str
) -> None:
    payloads = Payloads.simulated(*fleet, "elsewhere")
    report = generator_report(loadgen(mosquitto.port, 2000, payloads, root))
    assert (report.published, report.acknowledged, report.unrouted, report.resent) == (2000, 2000, 2000, 0)
    assert report.payload_bytes == pytest.approx(payloads.mean_bytes(), abs=3)
    assert report.seconds < 10


def test_what_met_no_subscriber_is_published_again(
    go_generator: Path, mosquitto: Mosquitto, fleet: tuple[Path, list[str]], root: str
) -> None:
    payloads = Payloads.simulated(*fleet, root)
    plan = starting_soon(rate=100.0, count=200)
    options = [*plan.argv(), "--port", str(mosquitto.port), "--resend-unrouted", "--resend-after-s", "0.5"]
    proc = start_go(options, payloads)
    time.sleep(max(0.0, plan.t0 + 0.5 - time.time()))  # half a second of messages meets nobody
    sub = Subscriber(mosquitto, root)
    report = generator_report(proc)
    sub.wait_for(plan.count)
    sub.close()
    assert report.published == report.acknowledged == plan.count
    assert report.unrouted == report.resent > 10
    seen = [json.loads(body) for _, body in sub.got]
    assert sorted((m["device"], m["seq"]) for m in seen) == sorted(
        (payloads.devices[i % DEVICES], i // DEVICES) for i in range(plan.count)
    ), "every message arrived once"


def test_it_outlives_a_broker_killed_and_restarted(
    go_generator: Path, fleet: tuple[Path, list[str]], root: str, tmp_path: Path
) -> None:
    payloads = Payloads.simulated(*fleet, root)
    plan = starting_soon(rate=200.0, count=600)
    with Mosquitto(tmp_path / "mosquitto") as broker:
        log = tmp_path / "sent.log"
        proc = start_go([*plan.argv(), "--port", str(broker.port), "--log", str(log)], payloads)
        time.sleep(max(0.0, plan.t0 + 1.0 - time.time()))
        broker.kill()
        time.sleep(1.0)
        broker.start()
        report = generator_report(proc)
    assert report.published == report.acknowledged == plan.count
    assert report.seconds < plan.count / plan.rate + 10
    assert report.max_lag_s < 1.0, "the schedule went on while the broker was away"
    assert len(log.read_bytes().splitlines()) == plan.count
    assert math.isclose(report.plan.t0, plan.t0)
