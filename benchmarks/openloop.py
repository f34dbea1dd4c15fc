"""An open-loop MQTT load generator: device messages at a fixed rate, whatever the broker and the pipeline do.

Message ``i`` is due at ``t0 + i / rate`` (wall clock) and is stamped with its due time mapped onto event time
(``ts0 + (due - t0) * speed``), so latency measured from the stamp includes any time the generator itself fell
behind: a slow pipeline cannot slow the load down and hide its own latency (no coordinated omission). Device
``i % devices`` sends it, with that device's next sequence number, at QoS 1. The payloads are the simulator's own
eight-reading messages of the benchmark's layout, cycled, with new ``seq`` and ``ts``.

Paho keeps up to ``window`` messages in flight and queues the rest without bound; a queue that grows is the
broker not keeping up, and shows as latency. One thread runs paho's loop and the schedule. A broker that goes
away (killed, restarted) is connected to again; paho sends the messages it had not seen acknowledged once more
(QoS 1, DUP set) and those published meanwhile. When it has published and seen every acknowledgement it prints
one JSON line: the schedule, counts, its lag behind the schedule and its CPU and memory. ``--log FILE`` writes
every message it published, one payload a line (the fault matrix's record of what was sent).
``python -m benchmarks.openloop --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge.device import NO_MATCHING_SUBSCRIBERS, RESEND_AFTER_S
from edge.faults import FaultRates
from edge.simulator import FarmSimulation
from smartfarm.layout import load_layout
from smartfarm.mqtt import connect, mqtt_client
from smartfarm.settings import MqttSettings
from smartfarm.topics import MqttTopics

TEMPLATES = 12
"""Simulated messages kept per device (an hour of 5-minute readings), cycled so values move as a field's do."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What one generator publishes: ``count`` messages at ``rate`` per second from ``t0`` (wall clock), stamped
    ``ts0 + (due - t0) * speed``, each device's sequence numbers starting at ``seq_base``."""

    t0: float
    rate: float
    count: int
    ts0: float
    speed: float = 1.0
    seq_base: int = 0

    def due(self, i: int) -> float:
        return self.t0 + i / self.rate

    def stamp_ms(self, i: int) -> int:
        """The event time message ``i`` carries, in whole milliseconds (what InfluxDB stores for its readings)."""
        return math.floor((self.ts0 + (i / self.rate) * self.speed) * 1000)

    def argv(self) -> list[str]:
        """The plan as the options of a generator's command line (this program's and the Go generator's)."""
        return [
            *("--t0", repr(self.t0), "--rate", repr(self.rate), "--count", str(self.count)),
            *("--ts0", repr(self.ts0), "--speed", repr(self.speed), "--seq-base", str(self.seq_base)),
        ]


@dataclass(frozen=True, slots=True)
class Report:
    """What a generator printed at the end."""

    plan: Plan
    devices: int
    published: int
    acknowledged: int
    max_lag_s: float
    seconds: float
    cpu_s: float
    max_rss_mb: float
    payload_bytes: float
    unrouted: int = 0  # publishes the broker acknowledged with "no matching subscribers" (MQTT 5 reason 16)
    resent: int = 0  # of those, published again (``--resend-unrouted``)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Report:
        data = json.loads(text)
        return cls(plan=Plan(**data.pop("plan")), **data)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(ms: int) -> str:
    """``ms`` (milliseconds since the epoch) as the ISO 8601 UTC stamp devices send, exactly."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Payloads:
    """Per device slot: its id, its telemetry topic, and the readings part of its messages as they are and with a
    broken probe, cycled by sequence number. A message is its template with the device's ``seq`` and the due
    ``ts`` put in (string building, no JSON encoder per message); the Go generator (``benchmarks/loadgen``)
    builds the same bytes from ``to_json``."""

    devices: list[str]
    topics: list[str]
    readings: list[list[str]]
    broken: list[list[str]]

    @classmethod
    def simulated(cls, layout_path: Path | None, devices: Sequence[str], topic_root: str) -> Payloads:
        """``TEMPLATES`` simulated eight-reading messages of each of ``devices`` of the layout."""
        layout = load_layout(layout_path)
        if missing := sorted(set(devices) - set(layout.placements)):
            raise ValueError(f"devices not in the layout: {', '.join(missing)}")
        simulation = FarmSimulation(layout, 1, datetime.now(UTC) - timedelta(days=2), 300, FaultRates.none())
        wanted = set(devices)
        readings: dict[str, list[str]] = {d: [] for d in devices}
        broken: dict[str, list[str]] = {d: [] for d in devices}
        farms: dict[str, str] = {}
        while any(len(r) < TEMPLATES for r in readings.values()):
            for m in simulation.step().messages:
                if m.device in wanted and len(readings[m.device]) < TEMPLATES:
                    doc = json.loads(m.payload)
                    readings[m.device].append(json.dumps(doc["readings"], separators=(",", ":")))
                    broken[m.device].append(json.dumps(_broken(doc["readings"]), separators=(",", ":")))
                    farms[m.device] = m.farm
        topics = MqttSettings(topic_root=topic_root).topics
        return cls(
            devices=list(devices),
            topics=[topics.telemetry(farms[d], d) for d in devices],
            readings=[readings[d] for d in devices],
            broken=[broken[d] for d in devices],
        )

    def only(self, devices: Sequence[str]) -> Payloads:
        """The templates of ``devices`` alone, in that order."""
        slots = [self.devices.index(d) for d in devices]
        return Payloads(
            devices=list(devices),
            topics=[self.topics[s] for s in slots],
            readings=[self.readings[s] for s in slots],
            broken=[self.broken[s] for s in slots],
        )

    def under(self, topic_root: str) -> Payloads:
        """The same messages published under another topic root."""
        topics = MqttTopics(topic_root)
        named = [MqttTopics.farm_and_device_named(t) for t in self.topics]
        moved = [topics.telemetry(*farm_device) for farm_device in named if farm_device is not None]
        if len(moved) != len(self.topics):
            raise ValueError("a template's topic is not a device topic")
        return Payloads(devices=self.devices, topics=moved, readings=self.readings, broken=self.broken)

    def mean_bytes(self) -> int:
        """The mean size of a message, over every device's templates (with this year's stamps)."""
        slots, stamp = range(len(self.devices)), 1_780_000_000_000
        sizes = [len(self.message(d, s, stamp + s)) for d in slots for s in range(len(self.readings[d]))]
        return round(sum(sizes) / len(sizes))

    def to_json(self) -> str:
        """What the Go generator reads on its standard input."""
        return json.dumps(
            {"devices": self.devices, "topics": self.topics, "readings": self.readings, "broken": self.broken}
        )

    def message(self, slot: int, seq: int, ts: int, broken: bool = False) -> bytes:
        device = self.devices[slot]
        bodies = (self.broken if broken else self.readings)[slot]
        body = bodies[seq % len(bodies)]
        return f'{{"schema_version":1,"device":"{device}","seq":{seq},"ts":"{iso(ts)}","readings":{body}}}'.encode()


BROKEN_VALUE = 150.0
"""What a broken soil-moisture probe reports in ``--break-every`` runs: past 100 % by volume, out of range."""


def _broken(readings: list[dict[str, object]]) -> list[dict[str, object]]:
    """The readings with the first soil-moisture probe's value out of range (the rest as they were)."""
    out = [dict(r) for r in readings]
    for r in out:
        if r.get("kind") == "soil_moisture":
            r["value"] = BROKEN_VALUE
            break
    return out


def is_broken(slot: int, stamp_ms: int, every: int) -> bool:
    """Whether device ``slot`` sends its broken probe in the event hour of ``stamp_ms``: one device in ``every``,
    a different one each hour, so each hour's windows close with fresh faults to advise on (0: never)."""
    return every > 0 and (slot + stamp_ms // 3_600_000) % every == 0


RECONNECT_EVERY_S = 0.5
"""How often a generator whose broker is away tries to connect again."""


class Link:
    """paho's loop for a publisher that outlives its broker: a lost connection is opened again (at most every
    ``RECONNECT_EVERY_S``), and paho then sends again what it had not seen acknowledged."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self.next_try = 0.0
        self.reconnects = 0

    def loop(self, timeout: float) -> None:
        if self.client.loop(timeout=timeout) == mqtt.MQTT_ERR_SUCCESS:
            return
        now = time.monotonic()
        if now < self.next_try:
            time.sleep(min(timeout, self.next_try - now))
            return
        self.next_try = now + RECONNECT_EVERY_S
        try:
            self.client.reconnect()
            self.reconnects += 1
        except OSError:
            pass  # still away: the next try comes after RECONNECT_EVERY_S


class Unrouted:
    """Counts the publishes the broker acknowledged with "no matching subscribers" (nobody subscribed then: the
    message is gone); with ``resend``, publishes each again ``RESEND_AFTER_S`` later, as our devices do
    (``edge.device``: a shared subscription is not restored when Mosquitto restarts, so until the bridge
    subscribes again every device message meets no subscriber). Without it, the generator is a device that
    takes any PUBACK as delivered."""

    def __init__(self, client: mqtt.Client, resend: bool) -> None:
        self.client, self.resend = client, resend
        self.count = self.resent = 0
        self.kept: dict[int, tuple[str, bytes]] = {}
        self.waiting: list[tuple[float, str, bytes]] = []
        client.on_publish = self._on_publish

    def publish(self, topic: str, body: bytes) -> None:
        info = self.client.publish(topic, body, qos=1)
        if self.resend:
            self.kept[info.mid] = (topic, body)

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        kept = self.kept.pop(mid, None)
        if reason.value == NO_MATCHING_SUBSCRIBERS:
            self.count += 1
            if kept is not None:
                self.waiting.append((time.monotonic() + RESEND_AFTER_S, *kept))

    def again(self) -> None:
        """Publish again what waited long enough."""
        now = time.monotonic()
        while self.waiting and self.waiting[0][0] <= now:
            _, topic, body = self.waiting.pop(0)
            self.resent += 1
            self.publish(topic, body)


def run(
    settings: MqttSettings,
    plan: Plan,
    payloads: Payloads,
    window: int,
    client_id: str,
    break_every: int = 0,
    log: IO[bytes] | None = None,
    resend_unrouted: bool = False,
) -> Report:
    """Publish ``plan`` open loop; return once every message is acknowledged (or 120 s after the last is due).
    ``break_every``: see ``is_broken``; ``log``: where each published payload is written, one a line;
    ``resend_unrouted``: see ``Unrouted``."""
    client = mqtt_client(settings, client_id)
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)  # unbounded: open loop never refuses a due message
    connect(client, settings, background=False)
    link = Link(client)
    unrouted = Unrouted(client, resend_unrouted)
    while not client.is_connected():
        link.loop(timeout=0.1)
    n = len(payloads.devices)
    sent, lag, size = 0, 0.0, 0
    while time.time() < plan.t0:
        time.sleep(min(0.01, plan.t0 - time.time()))
    while sent < plan.count:
        now = time.time()
        due = min(plan.count, int((now - plan.t0) * plan.rate) + 1)
        if due > sent:
            lag = max(lag, now - plan.due(sent))
        while sent < due:
            slot, stamp = sent % n, plan.stamp_ms(sent)
            body = payloads.message(slot, plan.seq_base + sent // n, stamp, is_broken(slot, stamp, break_every))
            size += len(body)
            unrouted.publish(payloads.topics[slot], body)
            if log is not None:
                log.write(body + b"\n")
            sent += 1
            if sent % 64 == 0:
                link.loop(timeout=0)
        link.loop(timeout=max(0.0, min(0.002, plan.due(sent) - time.time())) if sent < plan.count else 0)
        unrouted.again()
    deadline = time.time() + 120
    while (client._out_messages or unrouted.waiting) and time.time() < deadline:
        link.loop(timeout=0.01)
        unrouted.again()
    acked = sent - len(client._out_messages)
    seconds = time.time() - plan.t0
    client.disconnect()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return Report(
        plan=plan,
        devices=n,
        published=sent,
        acknowledged=acked,
        max_lag_s=lag,
        seconds=seconds,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,
        payload_bytes=size / max(1, sent),
        unrouted=unrouted.count,
        resent=unrouted.resent,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--topic-root", default="smartfarm")
    parser.add_argument("--layout", type=Path, help="the layout file (default: the packaged farm)")
    parser.add_argument("--devices", required=True, help="comma-separated device ids this generator speaks for")
    parser.add_argument("--t0", type=float, required=True, help="wall-clock start (epoch seconds)")
    parser.add_argument("--rate", type=float, required=True, help="messages per second")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--ts0", type=float, help="event time of the first message (default: --t0)")
    parser.add_argument("--speed", type=float, default=1.0, help="event seconds per wall-clock second")
    parser.add_argument("--seq-base", type=int, default=0, help="every device's first sequence number")
    parser.add_argument("--window", type=int, default=2000, help="QoS 1 messages in flight at most")
    parser.add_argument("--client-id", default="openloop")
    parser.add_argument(
        "--break-every",
        type=int,
        default=0,
        help="one device in N reports an out-of-range soil probe, a new one each event hour",
    )
    parser.add_argument("--log", type=Path, help="write every published payload here, one a line")
    parser.add_argument(
        "--resend-unrouted",
        action="store_true",
        help='publish again, 1 s later, a message the broker acknowledged with "no matching subscribers"',
    )
    args = parser.parse_args(argv)
    devices = args.devices.split(",")
    payloads = Payloads.simulated(args.layout, devices, args.topic_root)
    plan = Plan(
        t0=args.t0,
        rate=args.rate,
        count=args.count,
        ts0=args.t0 if args.ts0 is None else args.ts0,
        speed=args.speed,
        seq_base=args.seq_base,
    )
    if time.time() > plan.t0:
        sys.exit(f"--t0 is {time.time() - plan.t0:.2f} s in the past: give a start far enough ahead to load the layout")
    settings = MqttSettings(host="127.0.0.1", port=args.port, topic_root=args.topic_root)
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(args.log.open("ab")) if args.log else None
        report = run(settings, plan, payloads, args.window, args.client_id, args.break_every, log, args.resend_unrouted)
    print(report.to_json(), flush=True)


if __name__ == "__main__":
    main()
