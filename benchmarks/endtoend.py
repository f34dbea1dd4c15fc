"""End to end under load: open-loop device messages over MQTT, through the bridges and workers, stored in InfluxDB.

A ``Pipeline`` is our whole ingest path on the benchmark's own Mosquitto, Kafka and InfluxDB: ``bridges`` bridge
processes sharing the MQTT subscription and ``workers`` worker processes sharing the partitions, on a layout of
``devices`` eight-sensor nodes. ``run_rate`` offers it one fixed rate for a while (load generator processes
publishing, ``benchmarks.generators``), polls InfluxDB for what is stored (``benchmarks.accounting``), and
returns what was published, stored, lost and sent twice, the latency percentiles, and each process's CPU and
resident memory.
``search`` raises the rate until a run is no longer sustained (p99 under 2 s, nothing lost) and returns the best.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from benchmarks.accounting import HORIZON_S, Arrivals, Outcome
from benchmarks.bridge_stage import CpuMeter, bridge_metric, forwarded, start_bridges, stop_bridges
from benchmarks.generators import GENERATOR_RATE, Generator, HarnessError, binary, generator_report, start_go
from benchmarks.openloop import Payloads, Plan
from benchmarks.worker_stage import start_workers, wait_holding, write_layout
from cli.services import InfluxDB, Kafka, Mosquitto
from cli.worker import WorkerProcess
from smartfarm.errors import ServiceError, StorageError
from smartfarm.settings import InfluxSettings, InfluxUsers, KafkaSettings
from storage.accounts import declare
from storage.influx import InfluxClient
from stream.admin import ensure_topics

TRACER = "bat"
"""The sensor whose points the latency polls count (one per message: every node of the layout has a battery)."""

DUPLICATES = "smartfarm_worker_duplicates_total"
START_MARGIN_S = 5.0
GENERATOR_START_S = 1.5
"""The generators are started ``START_MARGIN_S`` plus this long per generator before their first message is due:
the payloads are simulated first (once per layout, ``fleet_payloads``) and a Python generator loads the layout
and builds its own, all at once on a machine already busy."""


def resident_mb(pid: int | None) -> float:
    """A process's resident memory now (MiB), from /proc; 0 for a process that is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Meter(CpuMeter):
    """CPU seconds used by named processes over a run, and the highest resident memory seen of each."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(pids)
        self.peak = {name: 0.0 for name in pids}

    def sample(self) -> None:
        for name, pid in self.pids.items():
            self.peak[name] = max(self.peak[name], resident_mb(pid))


@dataclass
class Measured:
    """One run at one offered rate, with the processes' CPU (seconds) and peak resident memory (MiB)."""

    outcome: Outcome
    bridges: int
    workers: int
    cpu_s: dict[str, float]
    rss_mb: dict[str, float]
    bridge_in_flight: float
    payload_bytes: float
    extra: dict[str, float] = field(default_factory=dict)
    arrivals: Arrivals | None = None  # the latency polls' record (``Arrivals.recovery_s``)

    def as_dict(self) -> dict[str, object]:
        o, lat = self.outcome, self.outcome.latency
        return {
            "rate": o.rate,
            "bridges": self.bridges,
            "workers": self.workers,
            "seconds": round(o.seconds, 1),
            "published": o.published,
            "acknowledged": o.acknowledged,
            "readings_due": o.readings_due,
            "readings_stored": o.readings_stored,
            "lost": o.lost,
            "duplicates": o.duplicates,
            "p50_s": lat.p50,
            "p95_s": lat.p95,
            "p99_s": lat.p99,
            "max_s": lat.max,
            "late": lat.late,
            "generator_lag_s": round(o.generator_lag_s, 3),
            "verdict": o.verdict(),
            "cpu_s": {k: round(v, 2) for k, v in self.cpu_s.items()},
            "rss_mb": {k: round(v, 1) for k, v in self.rss_mb.items()},
            "bridge_in_flight_max": self.bridge_in_flight,
            "payload_bytes": round(self.payload_bytes),
            **self.extra,
        }


class Ingest(Protocol):
    """What ``run_rate`` drives: an ingest path from the benchmark's Mosquitto into InfluxDB (``Pipeline``, ours;
    ``benchmarks.peers.telegraf.TelegrafPipeline``, a peer's)."""

    broker: Mosquitto
    name: str  # the MQTT topic root the generators publish under
    layout_file: Path
    devices: list[str]
    influx: InfluxSettings
    sent_per_device: int
    n_bridges: int
    n_workers: int

    def pids(self) -> dict[str, int]: ...

    def duplicates(self) -> float: ...

    def in_flight(self) -> float: ...


class Pipeline:
    """Our ingest path (bridges and workers) on the benchmark's services, under its own topic prefix and database."""

    def __init__(
        self,
        broker: Mosquitto,
        kafka: Kafka,
        influxd: InfluxDB,
        work: Path,
        name: str,
        devices: int,
        bridges: int = 1,
        workers: int = 1,
        worker_env: dict[str, str] | None = None,
        bridge_env: dict[str, str] | None = None,
    ) -> None:
        self.broker, self.kafka_service, self.influxd = broker, kafka, influxd
        self.work = work / name
        self.work.mkdir(parents=True, exist_ok=True)
        self.name, self.n_bridges, self.n_workers, self.worker_env = name, bridges, workers, worker_env
        self.bridge_env = bridge_env
        self.layout_file = self.work / "layout.yaml"
        self.layout = write_layout(devices, self.layout_file)
        self.devices = list(self.layout.placements)
        self.kafka = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_prefix=name)
        self.influx = InfluxSettings(url=influxd.url, database=name)
        self.sent_per_device = 0  # every device's next sequence number
        self.bridges: list[tuple[subprocess.Popen[str], int]] = []
        self.workers: list[WorkerProcess] = []
        self._dups_base: dict[int, float] = {}  # per worker: what its earlier runs (before a restart) dropped
        self._dups_last: dict[int, float] = {}  # per worker: what its current run said last

    def __enter__(self) -> Pipeline:
        ensure_topics(self.kafka)
        declare(self.influx, InfluxUsers())
        self.workers = start_workers(
            self.n_workers, self.kafka, self.influx, self.layout_file, self.work, self.name, self.worker_env
        )
        wait_holding(self.workers)
        self.bridges = start_bridges(
            self.n_bridges, self.broker, self.kafka_service, self.name, self.name, self.bridge_env
        )
        time.sleep(1.0)  # the MQTT subscriptions are made just after start
        return self

    def __exit__(self, *_: object) -> None:
        stop_bridges(self.bridges)
        for worker in self.workers:
            worker.terminate()

    def pids(self) -> dict[str, int]:
        pids = {"mosquitto": self.broker.pid or 0, "kafka": self.kafka_service.pid or 0}
        pids["influxd"] = self.influxd.pid or 0
        pids |= {f"bridge{i + 1}": proc.pid for i, (proc, _) in enumerate(self.bridges)}
        pids |= {f"worker{i + 1}": w.proc.pid for i, w in enumerate(self.workers) if w.proc is not None}
        return pids

    def duplicates(self) -> float:
        """Duplicates the workers dropped since they started, across restarts: a worker's counter starts again
        at 0 when it is restarted, and one not answering yet (restarting) counts what it had last said."""
        for i, w in enumerate(self.workers):
            try:
                now = w.metric(DUPLICATES) if w.proc is not None else self._dups_last.get(i, 0.0)
            except ServiceError:
                now = self._dups_last.get(i, 0.0)
            if now < self._dups_last.get(i, 0.0):
                self._dups_base[i] = self._dups_base.get(i, 0.0) + self._dups_last[i]
            self._dups_last[i] = now
        return sum(self._dups_base.values()) + sum(self._dups_last.values())

    def in_flight(self) -> float:
        """Messages the bridges hold unacknowledged now (a bridge not answering, restarting, counts 0)."""
        total = 0.0
        for _, port in self.bridges:
            with contextlib.suppress(OSError):
                total += bridge_metric(port, "smartfarm_bridge_in_flight ", timeout_s=2)
        return total


def plans_for(
    pipeline: Ingest,
    rate: float,
    seconds: float,
    generators: int,
    devices: list[str] | None = None,
    more: int = 0,
    margin_s: float = START_MARGIN_S,
) -> list[tuple[Plan, list[str]]]:
    """The plans of ``generators`` processes sharing ``rate`` and the devices (by default all of the pipeline's),
    due from a moment just ahead (``margin_s``, and far enough for ``more`` generators besides to start too)."""
    t0 = math.ceil(time.time() + margin_s + GENERATOR_START_S * (generators + more))
    count = round(rate * seconds)
    everyone = pipeline.devices if devices is None else devices
    out = []
    for g in range(generators):
        devices = everyone[g::generators]
        share = count // generators + (1 if g < count % generators else 0)
        # Messages of generator g are due at t0 + i / (rate / generators), offset so the merged stream is even.
        start = t0 + g / rate
        out.append(
            (Plan(t0=start, rate=rate / generators, count=share, ts0=start, seq_base=pipeline.sent_per_device), devices)
        )
    return out


@functools.lru_cache(maxsize=4)
def fleet_payloads(layout_file: Path, devices: tuple[str, ...], topic_root: str) -> Payloads:
    """The payload templates of every device of a pipeline, simulated once (about a second for 200 devices)."""
    return Payloads.simulated(layout_file, devices, topic_root)


def go_ready(pipeline: Ingest) -> None:
    """Build the Go generator and simulate the pipeline's payloads now, before a plan's start is set: a cold
    build takes longer than the margin a plan leaves."""
    binary()
    fleet_payloads(pipeline.layout_file, tuple(pipeline.devices), pipeline.name)


def start_generator(
    pipeline: Ingest,
    plan: Plan,
    devices: list[str],
    name: str,
    break_every: int = 0,
    log: Path | None = None,
    more: Sequence[str] = (),
    generator: Generator = Generator.GO,
) -> subprocess.Popen[str]:
    """A ``generator`` process publishing ``plan`` for ``devices``; ``log``: its record of what it sent;
    ``more``: further options of its command line (both take the same)."""
    options = [
        *plan.argv(),
        *("--port", str(pipeline.broker.port), "--client-id", f"{pipeline.name}-{name}"),
        *("--break-every", str(break_every)),
        *(["--log", str(log)] if log is not None else []),
        *more,
    ]
    if generator is Generator.GO:
        fleet = fleet_payloads(pipeline.layout_file, tuple(pipeline.devices), pipeline.name)
        return start_go(options, fleet.only(devices))
    where = ["--topic-root", pipeline.name, "--layout", str(pipeline.layout_file), "--devices", ",".join(devices)]
    cmd = [sys.executable, "-m", "benchmarks.openloop", *where, *options]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def poll_stored(client: InfluxClient, arrivals: Arrivals, now: float) -> bool:
    """One latency poll; False when nothing is left to poll (True while InfluxDB is away: a fault case killed it)."""
    window = arrivals.window_ms(now)
    if window is None:
        return False
    lo, hi = window
    try:
        series = client.series(
            f"SELECT count(value) FROM reading WHERE sensor = '{TRACER}' AND time >= {lo}ms AND time < {hi}ms "
            f"GROUP BY time({arrivals.bucket_ms}ms)"
        )
    except StorageError as exc:
        if not exc.transient:
            raise
        return True
    counts = {int(t) // 1_000_000: int(n) for s in series for t, n in s.get("values", []) if n}
    arrivals.observe(now, counts)
    return True


def count_stored(client: InfluxClient, first_ms: int, end_ms: int) -> int:
    rows = client.query(f"SELECT count(value) AS n FROM reading WHERE time >= {first_ms}ms AND time < {end_ms}ms")
    return int(rows[0]["n"]) if rows else 0


Scripted = Callable[[float], Sequence[tuple[Plan, list[str]]]]
"""Given the run's start (epoch seconds), plans of devices that behave apart from the open-loop load (a device
back from an outage with its buffer, one with a reset clock...): each plan its own generator process."""


def _plans(
    pipeline: Ingest,
    rate: float,
    seconds: float,
    generators: int,
    scripted: tuple[list[str], Scripted] | None,
    horizon_s: float,
    margin_s: float,
) -> tuple[list[tuple[Plan, list[str]]], Arrivals]:
    """The open-loop plans, then the scripted devices' (``run_rate``), and what the latency polls expect."""
    apart, script = scripted if scripted is not None else ([], None)
    devices = [d for d in pipeline.devices if d not in apart]
    plans = plans_for(pipeline, rate, seconds, generators, devices, more=len(apart), margin_s=margin_s)
    arrivals = Arrivals((plan for plan, _ in plans), horizon_s=horizon_s)
    if script is not None:
        plans += script(min(plan.t0 for plan, _ in plans))
    return plans, arrivals


def run_rate(
    pipeline: Ingest,
    rate: float,
    seconds: float,
    generators: int | None = None,
    during: Callable[[float], None] | None = None,
    settle_s: float = 15.0,
    scripted: tuple[list[str], Scripted] | None = None,
    log_dir: Path | None = None,
    horizon_s: float = HORIZON_S,
    generator_options: Sequence[str] = (),
    start_margin_s: float = START_MARGIN_S,
    generator: Generator = Generator.GO,
) -> Measured:
    """Offer ``rate`` device messages per second for ``seconds``; measure until everything due is stored (or
    nothing more arrives for ``settle_s``). ``during(elapsed)`` is called at every poll (to kill a process...).
    ``generator``: which program publishes; ``generators``: how many processes, by default one per its
    ``GENERATOR_RATE`` messages/s. ``scripted``: devices
    left out of the open-loop load and the plans they follow instead (``Scripted``; their messages are counted
    as due, not in the latency). ``log_dir``: each generator logs what it published there (``gen<i>.log``).
    ``horizon_s``: how long after it was due a message still counts in the latency (``Arrivals``).
    ``generator_options``: further options of every generator's command line. ``start_margin_s``: how far ahead
    of the first due message the generators are started (``START_MARGIN_S``; more on a machine busy with more)."""
    generators = generators or max(1, math.ceil(rate / GENERATOR_RATE[generator]))
    if generator is Generator.GO:
        go_ready(pipeline)
    plans, arrivals = _plans(pipeline, rate, seconds, generators, scripted, horizon_s, start_margin_s)
    procs = [
        start_generator(
            pipeline,
            plan,
            devices,
            f"gen{g}",
            log=log_dir / f"gen{g}.log" if log_dir else None,
            more=generator_options,
            generator=generator,
        )
        for g, (plan, devices) in enumerate(plans)
    ]
    lo = min(plan.stamp_ms(0) for plan, _ in plans)
    hi = max(plan.stamp_ms(plan.count - 1) for plan, _ in plans) + 1
    meter = Meter(pipeline.pids())
    duplicates_before = pipeline.duplicates()
    in_flight = 0.0
    t0 = min(plan.t0 for plan, _ in plans)
    with InfluxClient(pipeline.influx) as client:
        last_sample = 0.0
        while True:
            now = time.time()
            if now >= t0:
                polling = poll_stored(client, arrivals, now)
                if during is not None:
                    during(now - t0)
                if not polling and all(p.poll() is not None for p in procs):
                    break
            if now - last_sample > 1.0:
                meter.sample()
                in_flight = max(in_flight, pipeline.in_flight())
                last_sample = now
            time.sleep(max(0.0, 0.1 - (time.time() - now)))
        reports = [generator_report(p) for p in procs]
        due = 8 * sum(plan.count for plan, _ in plans)
        stored = settle(client, lo, hi, due, settle_s)
    used = meter.used()
    for g, r in enumerate(reports):
        used[f"generator{g + 1}"] = r.cpu_s
        meter.peak[f"generator{g + 1}"] = r.max_rss_mb
    pipeline.sent_per_device += max(math.ceil(plan.count / len(devices)) for plan, devices in plans) + 1
    outcome = Outcome(
        rate=rate,
        seconds=seconds,
        published=sum(r.published for r in reports),
        acknowledged=sum(r.acknowledged for r in reports),
        readings_due=due,
        readings_stored=stored,
        duplicates=round(pipeline.duplicates() - duplicates_before),
        latency=arrivals.latency(stored // 8),
        generator_lag_s=max(r.max_lag_s for r in reports),
    )
    python = {k: v for k, v in meter.peak.items() if k.startswith(("bridge", "worker", "generator"))}
    python["bench"] = resident_mb(os.getpid())
    payload = sum(r.payload_bytes * r.published for r in reports) / max(1, outcome.published)
    unrouted: dict[str, float] = {
        "unrouted": sum(r.unrouted for r in reports),
        "resent": sum(r.resent for r in reports),
    }
    return Measured(
        outcome, pipeline.n_bridges, pipeline.n_workers, used, python, in_flight, payload, unrouted, arrivals
    )


def settle(client: InfluxClient, first_ms: int, end_ms: int, due: int, settle_s: float) -> int:
    """The readings stored in ``[first_ms, end_ms)`` once all ``due`` are, or once none came for ``settle_s``."""
    stored, still = count_stored(client, first_ms, end_ms), time.time()
    while stored < due and time.time() - still < settle_s:
        time.sleep(0.5)
        now_stored = count_stored(client, first_ms, end_ms)
        if now_stored != stored:
            stored, still = now_stored, time.time()
    return stored


def search(
    pipeline: Ingest,
    start: float,
    seconds: float,
    factor: float = 1.25,
    ceiling: float = math.inf,
    generators: int | None = None,
    log: Callable[[Measured], None] = lambda m: None,
) -> tuple[Measured | None, list[Measured], str]:
    """Raise the rate from ``start`` by ``factor`` until a run is not sustained (or ``ceiling`` is passed, or the
    generators cannot offer the rate), then try once halfway between the last sustained rate and the first that
    was not; the best run, all of them, and why the search stopped."""
    runs: list[Measured] = []
    best: Measured | None = None
    rate = start
    failed: float | None = None
    while rate <= ceiling:
        m = _run_or_say(pipeline, rate, seconds, generators, log)
        if m is None:
            return best, runs, f"the load generators could not offer {rate:.0f} msg/s"
        runs.append(m)
        if not m.outcome.sustained():
            failed = rate
            break
        best = m
        rate = round(rate * factor, -1)
    if failed is not None and best is not None:
        middle = round((best.outcome.rate + failed) / 2, -1)
        if best.outcome.rate < middle < failed:
            m = _run_or_say(pipeline, middle, seconds, generators, log)
            if m is not None:
                runs.append(m)
                if m.outcome.sustained():
                    best = m
    return best, runs, f"not sustained at {failed:.0f} msg/s" if failed is not None else f"stopped at {ceiling:.0f}"


def _run_or_say(
    pipeline: Ingest, rate: float, seconds: float, generators: int | None, log: Callable[[Measured], None]
) -> Measured | None:
    try:
        m = run_rate(pipeline, rate, seconds, generators)
    except HarnessError as exc:
        print(f"  {rate:.0f} msg/s not offered: {exc}", flush=True)
        return None
    log(m)
    return m


class Restarts:
    """A ``during`` hook for ``run_rate``: kills the chosen processes at a moment and restarts them later.

    ``background``: restart on a thread of its own, so the polls go on while a slow service (Kafka, a worker)
    starts and the latency of what is stored meanwhile is seen when it happens; ``times["up"]`` is set when the
    restart returned (``wait``)."""

    def __init__(
        self,
        at_s: float,
        down_s: float,
        kill: Callable[[], object],
        restart: Callable[[], object],
        background: bool = False,
    ) -> None:
        self.at_s, self.down_s, self.kill_, self.restart_ = at_s, down_s, kill, restart
        self.background = background
        self.state = "before"
        self.times: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def __call__(self, elapsed: float) -> None:
        if self.state == "before" and elapsed >= self.at_s:
            self.kill_()
            self.state, self.times["killed"] = "down", time.time()
        elif self.state == "down" and elapsed >= self.at_s + self.down_s:
            self.state, self.times["restarted"] = "up", time.time()
            if self.background:
                self._thread = threading.Thread(target=self._restart, name="restart", daemon=True)
                self._thread.start()
            else:
                self._restart()

    def _restart(self) -> None:
        try:
            self.restart_()
        except BaseException as exc:  # on a thread of its own: kept, and raised by ``wait``
            self.error = exc
            return
        self.times["up"] = time.time()

    def wait(self, timeout_s: float = 120) -> None:
        """Until a background restart has returned; what it raised, raised here."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.error is not None:
            raise self.error


def shares(pipeline: Pipeline) -> str:
    """Telemetry messages each bridge forwarded so far."""
    return ", ".join(f"{forwarded(port):.0f}" for _, port in pipeline.bridges)


def summary(m: Measured) -> str:
    o, lat = m.outcome, m.outcome.latency
    cpu = ", ".join(f"{k} {v / max(1, o.published) * 1e6:.0f}" for k, v in m.cpu_s.items())
    rss = ", ".join(f"{k} {v:.0f}" for k, v in m.rss_mb.items())
    return (
        f"{o.rate:8.0f} msg/s offered ({8 * o.rate:.0f} readings/s), {m.bridges} bridge(s) {m.workers} worker(s): "
        f"p50 {lat.p50:.2f} s p95 {lat.p95:.2f} s p99 {lat.p99:.2f} s; {o.readings_stored}/{o.readings_due} "
        f"stored, {o.duplicates} duplicates; {o.verdict()}\n"
        f"        CPU per message (us): {cpu}\n        peak RSS (MiB): {rss}; bridge in flight at most "
        f"{m.bridge_in_flight:.0f}; generator {o.generator_lag_s:.2f} s behind at worst"
    )


def dumps(runs: Sequence[Measured]) -> str:
    return json.dumps([m.as_dict() for m in runs], indent=2)


@dataclass
class AdviceLatency:
    """How long after the reading that closed its window each recommendation reached an MQTT subscriber."""

    recommendations: int
    timed: int  # those whose closing reading the run's plans hold
    published: int  # device messages the generator published
    by_kind: dict[str, int]
    p50_s: float
    p99_s: float
    max_s: float
    to_kafka_p50_s: float = math.nan  # closing reading due -> the recommendation's record in Kafka (zone agent)
    to_kafka_p99_s: float = math.nan
    egress_p50_s: float = math.nan  # the record in Kafka -> on MQTT (the bridge's egress)
    egress_p99_s: float = math.nan

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def produced_at(kafka: KafkaSettings, timeout_ms: int = 3000) -> dict[str, float]:
    """Recommendation id -> when the zone agent produced its record (the record's CreateTime, epoch seconds)."""
    from kafka import KafkaConsumer

    from smartfarm import kafkaclient
    from smartfarm.records import Recommendation
    from smartfarm.topics import KafkaTopic, topic_specs

    name = topic_specs(kafka.topic_prefix, kafka.partitions)[KafkaTopic.RECOMMENDATIONS].name
    consumer = KafkaConsumer(
        name,
        **kafkaclient.kafka_python(kafka),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=timeout_ms,
    )
    try:
        return {str(Recommendation.decode(r.value).id): r.timestamp / 1000 for r in consumer}
    finally:
        consumer.close()


def closing_due(plans: Sequence[tuple[Plan, list[str]]], zone_devices: set[str], boundary_ms: int) -> float | None:
    """When the first message of a zone's devices stamped at or after ``boundary_ms`` was due (a zone's window
    closes once its watermark, its latest event time less the grace, passes the window's end); None if no plan
    holds one."""
    best: float | None = None
    for plan, devices in plans:
        per_ms = plan.speed * 1000 / plan.rate  # event milliseconds between two messages of this plan
        i = max(0, math.floor((boundary_ms - plan.ts0 * 1000) / per_ms) - 1)
        while i < plan.count and plan.stamp_ms(i) < boundary_ms:
            i += 1
        while i < plan.count and devices[i % len(devices)] not in zone_devices:
            i += 1
        if i < plan.count and (best is None or plan.due(i) < best):
            best = plan.due(i)
    return best


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _subscribe(pipeline: Pipeline) -> tuple[Any, list[tuple[float, bytes]]]:
    """An MQTT subscriber to every zone's recommendations, running; what it receives, with the time of arrival."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from smartfarm.topics import MqttTopics

    arrived: list[tuple[float, bytes]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{pipeline.name}-advice-subscriber", protocol=mqtt.MQTTv5)
    sub.on_message = lambda _c, _u, msg: arrived.append((time.time(), bytes(msg.payload)))
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.connect(pipeline.broker.host, pipeline.broker.port)
    sub.subscribe(f"{MqttTopics(pipeline.name).root}/+/+/zones/+/recommendations", qos=1)
    sub.loop_start()
    subscribed.wait(5)
    return sub, arrived


def advice_latency(
    pipeline: Pipeline,
    rate: float,
    seconds: float = 40,
    speed: float = 600,
    grace_s: float = 900,
    break_every: int = 8,
) -> AdviceLatency:
    """Publish ``seconds`` of load at ``rate`` whose event time runs ``speed`` times real time (ending an hour ago,
    so no stamp is in the future), subscribe to every zone's recommendations over MQTT, and time each one from
    the due time of the reading that closed its window to its arrival, and to its record in Kafka."""
    from smartfarm.records import Recommendation

    sub, arrived = _subscribe(pipeline)
    go_ready(pipeline)
    t0 = math.ceil(time.time() + START_MARGIN_S)
    ts0 = t0 - seconds * speed - 3600
    count = round(rate * seconds)
    plan = Plan(t0=t0, rate=rate, count=count, ts0=ts0, speed=speed, seq_base=pipeline.sent_per_device)
    plans = [(plan, pipeline.devices)]
    report = generator_report(start_generator(pipeline, plan, pipeline.devices, "advice", break_every))
    pipeline.sent_per_device += math.ceil(count / len(pipeline.devices)) + 1
    time.sleep(10)  # the last windows' advice
    sub.loop_stop()
    sub.disconnect()
    zones: dict[tuple[str, str], set[str]] = {}
    for device, placement in pipeline.layout.placements.items():
        zones.setdefault((placement.farm.id, placement.zone.id), set()).add(device)
    latencies: list[float] = []
    to_kafka: list[float] = []
    egress: list[float] = []
    produced = produced_at(pipeline.kafka)
    kinds: dict[str, int] = {}
    for when, payload in arrived:
        advice = Recommendation.decode(payload)
        kinds[advice.kind.value] = kinds.get(advice.kind.value, 0) + 1
        if advice.window_end is None:
            continue
        boundary = round((advice.window_end.timestamp() + grace_s) * 1000)
        due = closing_due(plans, zones[(advice.farm, advice.zone)], boundary)
        if due is not None:
            latencies.append(when - due)
            if (made := produced.get(str(advice.id))) is not None:
                to_kafka.append(made - due)
                egress.append(when - made)
    return AdviceLatency(
        recommendations=len(arrived),
        timed=len(latencies),
        published=report.published,
        by_kind=kinds,
        p50_s=percentile(latencies, 0.5),
        p99_s=percentile(latencies, 0.99),
        max_s=max(latencies, default=math.nan),
        to_kafka_p50_s=percentile(to_kafka, 0.5),
        to_kafka_p99_s=percentile(to_kafka, 0.99),
        egress_p50_s=percentile(egress, 0.5),
        egress_p99_s=percentile(egress, 0.99),
    )
