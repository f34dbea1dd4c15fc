"""Bridge throughput against the MQTT QoS 1 ceiling, measured in one run on the same Mosquitto and Kafka.

1. Ceiling: the paced Go publisher (``benchmarks.generators``, its own process) -> Mosquitto -> a plain paho
   subscriber.
2. One bridge process (``smartfarm bridge``): the same publisher -> Mosquitto -> bridge -> Kafka (acks=all);
   the rate is counted in Kafka (the device messages in ``telemetry.raw``, envelopes opened), from the first
   publish to the last message.
3. Two bridge processes sharing the subscription, counted the same way.
4. One bridge already keeps up with that publisher on 2 cores, so phases 2 and 3 measure the publisher. To see
   what the bridges themselves can do, ``--backlog`` messages are queued in the sessions of stopped bridges, then
   one (and then two) bridge processes start and drain them; the rate counts from the moment the last bridge is
   up to the last record in Kafka.

    .venv/bin/python benchmarks/bridge_stage.py [--count 100000] [--devices 200] [--backlog 200000]

Prints each figure and the ratios; a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
from kafka import KafkaConsumer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.generators import binary, generator_report, start_go
from benchmarks.openloop import Payloads, Plan
from benchmarks.worker_stage import write_layout
from cli.services import Kafka, Mosquitto, fetch_kafka_jars, free_port
from cli.services.base import cpu_seconds
from cli.services.settings import ServicesSettings
from smartfarm import envelope
from smartfarm.settings import KafkaSettings
from smartfarm.topics import DeviceTopic, KafkaTopic, MqttTopics, topic_specs
from stream.admin import ensure_topics


class CpuMeter:
    """CPU seconds used by named processes over a phase."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def used(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}


def cpu_line(count: int, elapsed: float, used: dict[str, float]) -> str:
    per = ", ".join(f"{name} {1e6 * seconds / count:.0f}" for name, seconds in used.items())
    busy = sum(used.values()) / (elapsed * (os.cpu_count() or 1))
    return f"    CPU per message (us): {per}; machine {busy:.0%} busy"


PACED_WINDOW = 1000
"""QoS 1 messages the paced publisher keeps in flight."""
PACED_STAMP_RATE = 1000.0
"""The paced messages are stamped a millisecond apart (their stamps matter to nobody here)."""


def paced_payloads(work: Path, devices: int) -> Payloads:
    """The paced publisher's messages: the open-loop generator's (the simulator's eight readings) of every node of
    a layout of ``devices`` (written in ``work``), so the ceiling and the stages see the bytes the pipeline sees
    end to end."""
    path = work / "paced-layout.yaml"
    layout = write_layout(devices, path)
    return Payloads.simulated(path, list(layout.placements), "paced")


def loadgen(port: int, count: int, payloads: Payloads, root: str) -> subprocess.Popen[str]:
    """The Go generator publishing ``count`` of ``payloads``' messages under ``root``, paced by the broker's
    acknowledgements (``PACED_WINDOW`` in flight); its report's ``seconds`` run from its first publish to its
    last acknowledgement."""
    now = time.time()
    plan = Plan(t0=now, rate=PACED_STAMP_RATE, count=count, ts0=now)
    options = [*plan.argv(), "--paced", "--port", str(port), "--window", str(PACED_WINDOW)]
    return start_go([*options, "--client-id", f"loadgen-{root}"], payloads.under(root))


def ceiling(broker: Mosquitto, count: int, payloads: Payloads) -> tuple[float, float, str]:
    root = "ceiling"
    received = 0
    done = threading.Event()
    first: list[float] = []

    def on_message(*_: object) -> None:
        nonlocal received
        if not first:
            first.append(time.perf_counter())
        received += 1
        if received == count:
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ceiling-sub", protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.connect(broker.host, broker.port)
    sub.subscribe(MqttTopics(root).device_filter(DeviceTopic.TELEMETRY), qos=1)
    sub.loop_start()
    subscribed.wait(5)
    binary()  # built before the clock starts
    meter = CpuMeter({"mosquitto": broker.pid or 0, "subscriber": os.getpid()})
    began = time.perf_counter()
    report = generator_report(loadgen(broker.port, count, payloads, root))
    done.wait(120)
    elapsed = time.perf_counter() - began
    used = meter.used()
    sub.loop_stop()
    sub.disconnect()
    used = {"publisher": report.cpu_s, **used}
    return count / elapsed, count / report.seconds, cpu_line(count, elapsed, used)


class RawCount:
    """How many device messages a prefix's ``telemetry.raw`` topic holds: its records read as they come, each
    envelope's messages counted (``smartfarm.envelope.count``)."""

    def __init__(self, kafka: Kafka, prefix: str) -> None:
        topic = topic_specs(prefix)[KafkaTopic.TELEMETRY_RAW].name
        self.consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False)
        self.consumer.assign([TopicPartition(topic, p) for p in range(6)])
        self.consumer.seek_to_beginning()
        self.seen = 0
        self.records = 0

    def __call__(self) -> int:
        for records in self.consumer.poll(timeout_ms=20).values():
            self.seen += sum(envelope.count(r.value) if envelope.is_envelope(r.headers) else 1 for r in records)
            self.records += len(records)
        return self.seen

    def packing(self) -> str:
        return f"{self.seen / max(1, self.records):.0f} messages per record"

    def close(self) -> None:
        self.consumer.close()


def pipeline_meter(broker: Mosquitto, kafka: Kafka, bridges: list[tuple[subprocess.Popen[str], int]]) -> CpuMeter:
    """CPU of the broker, Kafka and each bridge process, from now on."""
    pids = {"mosquitto": broker.pid or 0, "kafka": kafka.pid or 0}
    pids.update({f"bridge{i + 1}": proc.pid for i, (proc, _) in enumerate(bridges)})
    return CpuMeter(pids)


def start_bridge(
    i: int, broker: Mosquitto, kafka: Kafka, root: str, prefix: str, port: int, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start bridge ``i`` of ``root`` (its id and MQTT session ``<root>-<i>``: the same ``i`` resumes the same
    session), metrics on ``port``, ``extra_env`` on top (other settings); returns at once (its first line says it
    is up)."""
    env = {
        **os.environ,
        "SMARTFARM_MQTT_PORT": str(broker.port),
        "SMARTFARM_MQTT_TOPIC_ROOT": root,
        "SMARTFARM_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "SMARTFARM_KAFKA_TOPIC_PREFIX": prefix,
        "SMARTFARM_BRIDGE_BRIDGE_ID": f"{root}-{i}",
        "SMARTFARM_BRIDGE_SHARE_GROUP": root,
        "SMARTFARM_BRIDGE_METRICS_PORT": str(port),
        **(extra_env or {}),
    }
    return subprocess.Popen([sys.executable, "-m", "cli", "bridge"], env=env, stdout=subprocess.PIPE, text=True)


def wait_up(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    proc.stdout.readline()  # "bridge ...: ... metrics on ..." once it is up


def start_bridges(
    n: int, broker: Mosquitto, kafka: Kafka, root: str, prefix: str, extra_env: dict[str, str] | None = None
) -> list[tuple[subprocess.Popen[str], int]]:
    """Start ``n`` bridge processes side by side; return once each says it is up."""
    out = []
    for i in range(n):
        port = free_port()
        out.append((start_bridge(i, broker, kafka, root, prefix, port, extra_env), port))
    for proc, _ in out:
        wait_up(proc)
    return out


def stop_bridges(bridges: list[tuple[subprocess.Popen[str], int]]) -> None:
    for bridge, _ in bridges:
        bridge.terminate()
    for bridge, _ in bridges:
        bridge.wait(60)


def bridge_metric(port: int, line_start: str, timeout_s: float = 5) -> float:
    """The sum of the samples of the bridge's metrics (on ``port``) whose line starts with ``line_start``."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start))


def forwarded(port: int) -> float:
    return bridge_metric(port, 'smartfarm_bridge_forwarded_total{kind="telemetry"}')


def through_bridges(n: int, broker: Mosquitto, kafka: Kafka, count: int, payloads: Payloads) -> tuple[float, str, str]:
    root = prefix = f"bench{n}"
    ensure_topics(KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_prefix=prefix))
    bridges = start_bridges(n, broker, kafka, root, prefix)
    time.sleep(1.0)  # the MQTT subscriptions are made just after start
    in_kafka = RawCount(kafka, prefix)
    binary()  # built before the clock starts
    meter = pipeline_meter(broker, kafka, bridges)
    began = time.perf_counter()
    proc = loadgen(broker.port, count, payloads, root)
    while in_kafka() < count and time.perf_counter() - began < 300:
        time.sleep(0.05)
    elapsed = time.perf_counter() - began
    used = meter.used()
    report = generator_report(proc)
    used = {"publisher": report.cpu_s, **used}
    own = count / report.seconds
    cpu = cpu_line(count, elapsed, used) + f"; the publisher's own rate {own:.0f}/s; {in_kafka.packing()}"
    shares = ", ".join(f"{forwarded(port):.0f}" for _, port in bridges)
    stop_bridges(bridges)
    in_kafka.close()
    return count / elapsed, shares, cpu


def drain(n: int, broker: Mosquitto, kafka: Kafka, count: int, payloads: Payloads) -> tuple[float, str, str]:
    """A backlog of ``count`` messages queued in the sessions of ``n`` stopped bridges, drained into Kafka.

    Here the bridges are the bottleneck, not the publisher: the rate is counted from the moment the last bridge
    is up to the last record, less what reached Kafka before that moment."""
    root = prefix = f"drain{n}"
    ensure_topics(KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_prefix=prefix))
    bridges = start_bridges(n, broker, kafka, root, prefix)
    time.sleep(1.0)  # subscribed: the persistent sessions now exist
    stop_bridges(bridges)
    generator_report(loadgen(broker.port, count, payloads, root))
    in_kafka = RawCount(kafka, prefix)
    bridges = start_bridges(n, broker, kafka, root, prefix)
    began = time.perf_counter()
    before = in_kafka()
    meter = pipeline_meter(broker, kafka, bridges)
    while (done := in_kafka()) < count and time.perf_counter() - began < 300:
        time.sleep(0.02)
    elapsed = time.perf_counter() - began
    used = meter.used()
    shares = ", ".join(f"{forwarded(port):.0f}" for _, port in bridges)
    stop_bridges(bridges)
    in_kafka.close()
    cpu = cpu_line(done - before, elapsed, used) + f"; {in_kafka.packing()}"
    if done < count:
        cpu += f"; INCOMPLETE: {done} of {count} after {elapsed:.0f} s"
    return (done - before) / elapsed, shares, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=200, help="eight-sensor nodes whose messages are published")
    parser.add_argument("--backlog", type=int, default=200_000, help="messages queued for the drain phases")
    args = parser.parse_args()
    services = ServicesSettings()
    fetch_kafka_jars(services.kafka_home, services.kafka_version)
    with (
        tempfile.TemporaryDirectory() as tmp,
        Mosquitto(Path(tmp) / "mosquitto") as broker,
        Kafka(Path(tmp) / "kafka", services.kafka_home) as kafka,
    ):
        paced = paced_payloads(Path(tmp), args.devices)
        top, publisher, cpu = ceiling(broker, args.count, paced)
        print(
            f"MQTT QoS 1 ceiling:   {top:8.0f} messages/s end to end ({args.count} x {paced.mean_bytes()} B; "
            f"publisher alone {publisher:.0f}/s)"
        )
        print(cpu)
        one, _, cpu = through_bridges(1, broker, kafka, args.count, paced)
        line("one bridge process:", one, f"into Kafka (acks=all)   ratio {one / top:.2f}", cpu)
        two, shares, cpu = through_bridges(2, broker, kafka, args.count, paced)
        line("two bridge processes:", two, f"ratio {two / top:.2f}, {two / one:.2f}x one; shares {shares}", cpu)
        drained1, _, cpu = drain(1, broker, kafka, args.backlog, paced)
        line("backlog, one bridge:", drained1, f"drained into Kafka ({args.backlog} queued)", cpu)
        drained2, shares, cpu = drain(2, broker, kafka, args.backlog, paced)
        line("backlog, two bridges:", drained2, f"{drained2 / drained1:.2f}x one; shares {shares}", cpu)


def line(label: str, rate: float, detail: str, cpu: str) -> None:
    print(f"{label:22s}{rate:8.0f} messages/s {detail}")
    print(cpu)


if __name__ == "__main__":
    main()
