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

``--tls both`` (the default) runs it all twice in one run, on one Kafka: on a plaintext Mosquitto and on a
TLS-only one (a CA made for the run; the publisher, the ceiling's subscriber and the bridges verify it), each
bridge figure against the ceiling over the same transport. ``--bridges 1`` and ``--backlog 0`` leave out the
two-bridge and the drain phases.

    .venv/bin/python -m benchmarks.bridge_stage [--count 100000] [--devices 200] [--backlog 200000] [--tls both]
        [--bridges 2] [--json FILE]

Prints each figure and the ratios; a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from benchmarks.generators import binary, generator_report, start_go
from benchmarks.openloop import Payloads, Plan
from benchmarks.worker_stage import write_layout
from cli.services import Kafka, Mosquitto, fetch_kafka_jars, free_port
from cli.services.base import cpu_seconds
from cli.services.settings import ServicesSettings
from smartfarm import envelope
from smartfarm.certificates import installation_tls
from smartfarm.mqtt import mqtt_client
from smartfarm.settings import KafkaSettings, MqttSettings
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


def loadgen(port: int, count: int, payloads: Payloads, root: str, ca_file: Path | None = None) -> subprocess.Popen[str]:
    """The Go generator publishing ``count`` of ``payloads``' messages under ``root``, paced by the broker's
    acknowledgements (``PACED_WINDOW`` in flight), over TLS verifying ``ca_file`` when given; its report's
    ``seconds`` run from its first publish to its last acknowledgement."""
    now = time.time()
    plan = Plan(t0=now, rate=PACED_STAMP_RATE, count=count, ts0=now)
    options = [*plan.argv(), "--paced", "--port", str(port), "--window", str(PACED_WINDOW)]
    if ca_file is not None:
        options += ["--ca-file", str(ca_file)]
    return start_go([*options, "--client-id", f"loadgen-{root}"], payloads.under(root))


def ca_of(broker: Mosquitto) -> Path | None:
    """The CA a client verifies ``broker`` with; None for a plaintext broker."""
    return None if broker.tls is None else broker.tls.ca_file


def ceiling(broker: Mosquitto, count: int, payloads: Payloads, tag: str = "") -> tuple[float, float, str]:
    root = f"ceiling{tag}"
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

    sub = mqtt_client(broker.client_settings(MqttSettings()), f"ceiling-sub{tag}")  # over TLS on a TLS broker
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
    report = generator_report(loadgen(broker.port, count, payloads, root, ca_of(broker)))
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
        **tls_env(broker),
        **(extra_env or {}),
    }
    return subprocess.Popen([sys.executable, "-m", "cli", "bridge"], env=env, stdout=subprocess.PIPE, text=True)


def tls_env(broker: Mosquitto) -> dict[str, str]:
    """The settings that have a client speak TLS to ``broker`` when it listens over TLS."""
    ca_file = ca_of(broker)
    return {} if ca_file is None else {"SMARTFARM_MQTT_TLS": "true", "SMARTFARM_MQTT_CA_FILE": str(ca_file)}


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


def through_bridges(
    n: int, broker: Mosquitto, kafka: Kafka, count: int, payloads: Payloads, tag: str = ""
) -> tuple[float, str, str]:
    root = prefix = f"bench{n}{tag}"
    ensure_topics(KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_prefix=prefix))
    bridges = start_bridges(n, broker, kafka, root, prefix)
    time.sleep(1.0)  # the MQTT subscriptions are made just after start
    in_kafka = RawCount(kafka, prefix)
    binary()  # built before the clock starts
    meter = pipeline_meter(broker, kafka, bridges)
    began = time.perf_counter()
    proc = loadgen(broker.port, count, payloads, root, ca_of(broker))
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


def drain(
    n: int, broker: Mosquitto, kafka: Kafka, count: int, payloads: Payloads, tag: str = ""
) -> tuple[float, str, str]:
    """A backlog of ``count`` messages queued in the sessions of ``n`` stopped bridges, drained into Kafka.

    Here the bridges are the bottleneck, not the publisher: the rate is counted from the moment the last bridge
    is up to the last record, less what reached Kafka before that moment."""
    root = prefix = f"drain{n}{tag}"
    ensure_topics(KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_prefix=prefix))
    bridges = start_bridges(n, broker, kafka, root, prefix)
    time.sleep(1.0)  # subscribed: the persistent sessions now exist
    stop_bridges(bridges)
    generator_report(loadgen(broker.port, count, payloads, root, ca_of(broker)))
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


TRANSPORTS = {"off": (False,), "on": (True,), "both": (False, True)}
"""``--tls``: plaintext, TLS, or both in one run (plaintext first)."""


@contextmanager
def broker_over(work: Path, tls: bool) -> Iterator[Mosquitto]:
    """A Mosquitto for the run: plaintext, or TLS only with a CA and certificate made in ``work``."""
    files = installation_tls(work / "tls") if tls else None
    with Mosquitto(work / "mosquitto", tls=files) as broker:
        yield broker


def run_over(broker: Mosquitto, kafka: Kafka, args: argparse.Namespace, paced: Payloads, tag: str) -> dict[str, float]:
    """The phases on ``broker``, printed; the figures (messages a second) by name."""
    label = "TLS" if broker.tls is not None else "plaintext"
    top, publisher, cpu = ceiling(broker, args.count, paced, tag)
    print(
        f"[{label}] MQTT QoS 1 ceiling: {top:8.0f} messages/s end to end ({args.count} x {paced.mean_bytes()} B; "
        f"publisher alone {publisher:.0f}/s)"
    )
    print(cpu)
    figures = {"mqtt_ceiling": top, "publisher_alone": publisher}

    def report(name: str, title: str, measured: tuple[float, str, str], detail: Callable[[float, str], str]) -> float:
        rate, shares, cpu = measured
        figures[name] = rate
        line(f"[{label}] {title}:", rate, detail(rate, shares), cpu)
        return rate

    one = report(
        "one_bridge",
        "one bridge",
        through_bridges(1, broker, kafka, args.count, paced, tag),
        lambda r, _: f"into Kafka (acks=all)   ratio {r / top:.2f}",
    )
    if args.bridges > 1:
        report(
            "two_bridges",
            "two bridges",
            through_bridges(2, broker, kafka, args.count, paced, tag),
            lambda r, s: f"ratio {r / top:.2f}, {r / one:.2f}x one; shares {s}",
        )
    if args.backlog:
        drained1 = report(
            "backlog_one_bridge",
            "backlog, one",
            drain(1, broker, kafka, args.backlog, paced, tag),
            lambda _, __: f"drained into Kafka ({args.backlog} queued)",
        )
        if args.bridges > 1:
            report(
                "backlog_two_bridges",
                "backlog, two",
                drain(2, broker, kafka, args.backlog, paced, tag),
                lambda r, s: f"{r / drained1:.2f}x one; shares {s}",
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=200, help="eight-sensor nodes whose messages are published")
    parser.add_argument("--backlog", type=int, default=200_000, help="messages queued for the drain phases; 0: none")
    parser.add_argument("--bridges", type=int, choices=(1, 2), default=2, help="2: the two-bridge phases too")
    parser.add_argument("--tls", choices=sorted(TRANSPORTS), default="both", help="MQTT plaintext, TLS, or both")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    services = ServicesSettings()
    fetch_kafka_jars(services.kafka_home, services.kafka_version)
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, Kafka(Path(tmp) / "kafka", services.kafka_home) as kafka:
        paced = paced_payloads(Path(tmp), args.devices)
        for tls in TRANSPORTS[args.tls]:
            name = "tls" if tls else "plaintext"
            with broker_over(Path(tmp) / name, tls) as broker:
                figures[name] = run_over(broker, kafka, args, paced, "tls" if tls else "")
    for name, got in figures.items():
        print(f"{name:10s} one bridge / MQTT ceiling {got['one_bridge'] / got['mqtt_ceiling']:.2f}")
    if len(figures) == 2:
        plain, secure = figures["plaintext"], figures["tls"]
        print(
            f"TLS / plaintext: MQTT ceiling {secure['mqtt_ceiling'] / plain['mqtt_ceiling']:.2f}, "
            f"one bridge {secure['one_bridge'] / plain['one_bridge']:.2f}"
        )
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        args.json.write_text(json.dumps({"settings": settings, "figures": figures}, indent=1) + "\n")


def line(label: str, rate: float, detail: str, cpu: str) -> None:
    print(f"{label:22s}{rate:8.0f} messages/s {detail}")
    print(cpu)


if __name__ == "__main__":
    main()
