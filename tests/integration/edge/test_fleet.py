"""The fleet against the real Mosquitto: delivery, store-and-forward across a broker outage, last wills,
credentials, the closed irrigation loop and replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import SecretStr

from cli.services import Mosquitto
from edge.device import DeviceRefusedError
from edge.faults import FaultRates
from edge.fleet import Fleet, FleetStats, prepare
from edge.simulator import FarmSimulation
from smartfarm.layout import Layout, load_layout, replicate
from smartfarm.records import Recommendation
from smartfarm.settings import MqttSettings
from smartfarm.telemetry import Status, Telemetry
from smartfarm.topics import DeviceTopic
from tests.helpers import FLEET_SECRET, FLEET_START, edge_settings, unique
from tests.integration.pipeline import SecuredBroker

START = FLEET_START
SECRET = FLEET_SECRET


class Subscriber:
    """Collects every message under a topic filter, over a persistent session that survives broker restarts."""

    def __init__(self, settings: MqttSettings, topic: str, username: str = "", password: str = "") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("sub-"), protocol=mqtt.MQTTv5)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 2)
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect(settings.host, settings.port, clean_start=False, properties=props)
        self.client.loop_start()
        assert subscribed.wait(5), "subscription not acknowledged"

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def wait_for(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return
            time.sleep(0.05)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def telemetry_by_device(messages: list[tuple[str, bytes, bool]]) -> dict[str, list[Telemetry]]:
    out: dict[str, list[Telemetry]] = defaultdict(list)
    for _, payload, _ in messages:
        message = Telemetry.decode(payload)
        out[message.device].append(message)
    return out


def assert_complete_and_ordered(received: dict[str, list[Telemetry]], devices: list[str], ticks: int) -> None:
    for device in devices:
        firsts: list[int] = []
        for message in received[device]:
            if message.seq not in firsts:
                firsts.append(message.seq)
            assert message.ts == START + timedelta(seconds=300 * message.seq), "original timestamp kept"
        assert firsts == list(range(ticks)), f"{device}: {firsts[:10]}..."


def test_a_50_device_fleet_delivers_every_message(secured_broker: SecuredBroker, tmp_path: Path) -> None:
    _, mqtt_settings, layout = secured_broker
    sub = Subscriber(
        mqtt_settings, mqtt_settings.topics.device_filter(DeviceTopic.TELEMETRY), "tester", "tester-password"
    )
    edge = edge_settings(tmp_path, devices=50, speed=36000.0, duration=timedelta(hours=12))
    fleet, source = prepare(layout, mqtt_settings, edge)
    began = time.monotonic()
    stats = fleet.run(source, threading.Event(), edge.speed)
    elapsed = time.monotonic() - began
    sub.wait_for(stats.produced, 20)
    sub.close()
    ticks = 12 * 12
    assert stats.produced == 50 * ticks and stats.dropped == 0 and stats.died == 0
    births_and_goodbyes = 50 + stats.reconnects + 50  # a birth per connection, one offline status each
    assert stats.acked == stats.published == stats.produced + births_and_goodbyes, "the progress line adds up"
    received = telemetry_by_device(sub.messages)
    assert len(sub.messages) == 50 * ticks, "no message lost or doubled without faults"
    assert_complete_and_ordered(received, list(layout.placements), ticks)
    print(f"\n50 devices x {ticks} messages in {elapsed:.1f}s: {50 * ticks / elapsed:.0f} messages/s")


def four_hours_in_24_s(
    layout: Layout, mqtt_settings: MqttSettings, tmp_path: Path
) -> tuple[Fleet, Callable[[], FleetStats]]:
    """Start the fleet of ``layout`` on four simulated hours at 600x (2 readings a device a second for 24 s) on a
    thread of its own; return it and what waits for its end and gives its statistics."""
    edge = edge_settings(tmp_path, speed=600.0, duration=timedelta(hours=4))
    fleet, source = prepare(layout, mqtt_settings, edge)
    outcome: dict[str, FleetStats] = {}
    runner = threading.Thread(target=lambda: outcome.update(stats=fleet.run(source, threading.Event(), edge.speed)))
    runner.start()

    def finish() -> FleetStats:
        runner.join(90)
        assert not runner.is_alive(), "the fleet did not finish within 90 s"
        return outcome["stats"]

    return fleet, finish


def test_readings_made_while_the_broker_is_down_arrive_in_order(secured_broker: SecuredBroker, tmp_path: Path) -> None:
    broker, mqtt_settings, layout = secured_broker
    small = replicate(layout, 20)
    sub = Subscriber(
        mqtt_settings, mqtt_settings.topics.device_filter(DeviceTopic.TELEMETRY), "tester", "tester-password"
    )
    # ~20 s of the readings are made while the broker is stopped for 10 s.
    fleet, finish = four_hours_in_24_s(small, mqtt_settings, tmp_path)
    time.sleep(4)
    broker.stop()
    down_at = fleet._refresh().buffered
    time.sleep(10)
    buffered_while_down = fleet._refresh().buffered
    broker.start()
    stats = finish()
    sub.wait_for(stats.produced, 30)
    sub.close()
    ticks = 4 * 12
    assert buffered_while_down > down_at + 20 * 15, "devices kept reading while the broker was away"
    assert stats.dropped == 0 and stats.reconnects >= 20
    assert_complete_and_ordered(telemetry_by_device(sub.messages), list(small.placements), ticks)
    duplicates = len(sub.messages) - stats.produced
    print(f"\nbroker down 10 s: {buffered_while_down} readings buffered, {duplicates} QoS 1 re-deliveries")


def test_what_met_no_subscriber_after_a_broker_restart_is_sent_again(
    secured_broker: SecuredBroker, tmp_path: Path
) -> None:
    """Mosquitto does not restore a shared subscription when it restarts: until the bridge subscribes again, it
    acknowledges each device message with "no matching subscribers" and drops it. The devices send those again."""
    broker, mqtt_settings, layout = secured_broker
    small = replicate(layout, 20)
    telemetry = mqtt_settings.topics.device_filter(DeviceTopic.TELEMETRY)
    sub = Subscriber(mqtt_settings, f"$share/bridge/{telemetry}", "tester", "tester-password")
    sub.client.reconnect_delay_set(5, 5)  # the devices come back first, as they do in the field
    _, finish = four_hours_in_24_s(small, mqtt_settings, tmp_path)
    time.sleep(4)
    broker.stop()
    time.sleep(1)
    broker.start()
    stats = finish()
    sub.wait_for(stats.produced, 30)
    sub.close()
    ticks = 4 * 12
    assert stats.unrouted > 0, "the restart left a time with no subscriber"
    assert stats.dropped == 0 and stats.buffered == 0
    assert stats.acked + stats.unrouted == stats.published, "each publish was acknowledged once, routed or not"
    received = telemetry_by_device(sub.messages)
    for device in small.placements:
        assert {m.seq for m in received[device]} == set(range(ticks)), f"{device}: a reading was lost"
    print(f"\nbroker restarted: {stats.unrouted} publishes met no subscriber and were sent again")


def test_the_last_will_marks_a_killed_device_offline(secured_broker: SecuredBroker, tmp_path: Path) -> None:
    broker, mqtt_settings, _ = secured_broker
    sub = Subscriber(mqtt_settings, mqtt_settings.topics.device_filter(DeviceTopic.STATUS), "tester", "tester-password")
    env = {**os.environ, "SMARTFARM_EDGE_DEVICE_SECRET": SECRET.get_secret_value()}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "edge",
            "--port",
            str(broker.port),
            "--topic-root",
            mqtt_settings.topic_root,
            "--speed",
            "60",
            "--keepalive-s",
            "5",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        sub.wait_for(12, 20)
        births = [Status.decode(p) for _, p, _ in sub.messages]
        assert {s.state.value for s in births} == {"online"} and len({s.device for s in births}) == 12
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        sub.wait_for(24, 20)
    finally:
        if proc.poll() is None:
            proc.kill()
    sub.close()
    wills = [Status.decode(p) for _, p, _ in sub.messages[12:]]
    assert len({w.device for w in wills}) == 12
    assert all(w.state.value == "offline" and w.will for w in wills)


def test_a_device_with_a_wrong_password_is_refused_with_a_clear_error(
    secured_broker: SecuredBroker, tmp_path: Path
) -> None:
    _, mqtt_settings, layout = secured_broker
    edge = edge_settings(tmp_path, device_secret=SecretStr("not-the-fleet-secret"), duration=timedelta(hours=1))
    fleet, source = prepare(layout, mqtt_settings, edge)
    with pytest.raises(DeviceRefusedError, match=r"refused device .*Not authorized"):
        fleet.run(source, threading.Event(), edge.speed, drain_timeout_s=1)


def irrigation(farm: str, zone: str, amount_mm: float, **fields: object) -> Recommendation:
    return Recommendation.create(
        id=uuid.uuid4(),
        farm=farm,
        zone=zone,
        kind="irrigation",
        severity="advisory",
        issued_at=START,
        valid_until=START + timedelta(days=1),
        message=f"Irrigate {amount_mm:g} mm",
        model="test@1",
        confidence=0.9,
        amount_mm=amount_mm,
        **fields,
    )


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def soil_moisture_gain(sub: Subscriber, seed: int, interval_s: float, ticks: int) -> dict[str, list[tuple]]:
    """Per soil device, (ts, reading - the same seed's reading without any valve) of sensor sm-15."""
    twin = FarmSimulation(load_layout(), seed, START, interval_s, FaultRates.none())
    baseline = {}
    for _ in range(ticks):
        for m in twin.step().messages:
            if m.device.startswith("soil-"):
                baseline[(m.device, m.seq)] = next(r.value for r in m.readings if r.sensor == "sm-15")
    gain: dict[str, list[tuple]] = defaultdict(list)
    for _, payload, _ in sub.messages:
        m = Telemetry.decode(payload)
        value = next(r.value for r in m.readings if r.sensor == "sm-15")
        gain[m.device].append((m.ts, value - baseline[(m.device, m.seq)]))
    return gain


@pytest.mark.long(40)
def test_valves_keep_their_schedule_and_later_readings_show_it(secured_broker: SecuredBroker, tmp_path: Path) -> None:
    """At once (lettuce), scheduled (maize, at 10:00 simulated), scheduled then cancelled (vineyard), and a cancel
    too late (lettuce again); retained re-deliveries and a broken message in between."""
    _, mqtt_settings, _ = secured_broker
    farm = "valley-farm"
    devices = ("soil-lettuce-south-1", "soil-maize-east-1", "soil-vineyard-west-1")
    subs = [
        Subscriber(mqtt_settings, mqtt_settings.topics.telemetry(farm, d), "tester", "tester-password") for d in devices
    ]
    edge = edge_settings(tmp_path, speed=7200.0, duration=timedelta(hours=16))
    fleet, source = prepare(load_layout(), mqtt_settings, edge)
    stop = threading.Event()
    outcome: dict[str, FleetStats] = {}
    runner = threading.Thread(target=lambda: outcome.update(stats=fleet.run(source, stop, edge.speed)))
    runner.start()
    wait_until(lambda: (fleet.stats.sim_time or START) >= START + timedelta(hours=6), 20, "six hours of drying")

    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("rec-"), protocol=mqtt.MQTTv5)
    publisher.username_pw_set("tester", "tester-password")
    publisher.connect(mqtt_settings.host, mqtt_settings.port)
    publisher.loop_start()

    def publish(rec: Recommendation | bytes, retain: bool = True) -> None:
        payload = rec if isinstance(rec, bytes) else rec.encode()
        topic = mqtt_settings.topics.recommendations(farm, "lettuce-south" if isinstance(rec, bytes) else rec.zone)
        publisher.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    now = irrigation(farm, "lettuce-south", 15.0)
    publish(now)
    publish(now)  # applied once
    publish(b"{not a recommendation", retain=False)
    opens_at = START + timedelta(hours=10)
    publish(irrigation(farm, "maize-east", 12.0, start_at=opens_at))
    cancelled = irrigation(farm, "vineyard-west", 20.0, start_at=START + timedelta(hours=12))
    publish(cancelled)
    publish(irrigation(farm, "vineyard-west", 0.0, supersedes=cancelled.id))
    publish(cancelled)  # a cancelled recommendation coming again does not come back
    wait_until(lambda: fleet.stats.irrigations >= 1, 5, "the lettuce irrigation")
    publish(irrigation(farm, "lettuce-south", 0.0, supersedes=now.id))
    assert fleet.stats.sim_time is not None and fleet.stats.sim_time < opens_at - timedelta(hours=1), (
        "the machine is too slow for this test's timing: the recommendations went out after "
        f"{fleet.stats.sim_time} simulated"
    )
    publisher.loop_stop()
    publisher.disconnect()
    runner.join(60)
    for sub in subs:
        sub.close()

    stats = outcome["stats"]
    assert (stats.irrigations, stats.irrigated_mm, stats.cancelled) == (2, 27.0, 1)
    assert fleet.valves is not None and (fleet.valves.refused, fleet.valves.too_late) == (1, 1)
    assert "cancelled 1" in stats.line()
    # The same seed without the valves: every difference in the readings is the water a valve let in.
    ticks = 16 * 12
    gain = soil_moisture_gain(subs[0], edge.seed, edge.interval_s, ticks)
    for sub in subs[1:]:
        gain.update(soil_moisture_gain(sub, edge.seed, edge.interval_s, ticks))
    assert all(len(gain[d]) == ticks for d in devices)
    lettuce, maize, vineyard = (gain[d] for d in devices)
    assert lettuce[0][1] == 0.0, "identical until the valve opened"
    assert min(g for _, g in lettuce) >= -0.01, "irrigation never dries the soil"
    assert lettuce[-1][1] > 2.0, "15 mm into the top 30 cm raises it by up to 5 points, less what drained"
    assert all(g == 0.0 for ts, g in maize if ts <= opens_at), "the maize valve stays shut until 10:00"
    assert maize[-1][1] > 1.5, "then 12 mm flow in"
    assert all(g == 0.0 for _, g in vineyard), "the cancelled irrigation never flows"


def test_a_recording_replays_as_the_same_payloads(mosquitto: Mosquitto, tmp_path: Path) -> None:
    settings = MqttSettings(host=mosquitto.host, port=mosquitto.port, topic_root=unique("t"))
    topic = settings.topics.device_filter(DeviceTopic.TELEMETRY)
    first = Subscriber(settings, topic)
    record = tmp_path / "farm.csv"
    edge = edge_settings(tmp_path, speed=1e5, duration=timedelta(hours=3), record=record)
    fleet, source = prepare(load_layout(), settings, edge)
    stats = fleet.run(source, threading.Event(), edge.speed)
    first.wait_for(stats.produced, 10)
    first.close()

    second = Subscriber(settings, topic)
    replayer, replay = prepare(load_layout(), settings, edge_settings(tmp_path, speed=1e5), replay=record)
    replayer.run(replay, threading.Event(), 1e5)
    second.wait_for(stats.produced, 10)
    second.close()

    def per_topic(messages: list[tuple[str, bytes, bool]]) -> dict[str, list[bytes]]:
        out: dict[str, list[bytes]] = defaultdict(list)
        for topic, payload, _ in messages:
            out[topic].append(payload)
        return out

    assert len(second.messages) == stats.produced
    assert per_topic(second.messages) == per_topic(first.messages)
    header = record.read_text().splitlines()[0]
    assert header == "ts,device,seq,sensor,kind,value"


@pytest.mark.long(31)
def test_ground_truth_is_written_as_json_lines(mosquitto: Mosquitto, tmp_path: Path) -> None:
    settings = MqttSettings(host=mosquitto.host, port=mosquitto.port, topic_root=unique("t"))
    edge = edge_settings(tmp_path, speed=1e5, duration=timedelta(hours=24), fault_spike=0.05, fault_duplicate=0.05)
    fleet, source = prepare(load_layout(), settings, edge)
    stats = fleet.run(source, threading.Event(), edge.speed)
    lines = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    assert len(lines) == sum(stats.faults.values()) > 0
    assert {line["fault"] for line in lines} == {"spike", "duplicate"}
