"""``smartfarm bench --phases faults``: the fault matrix. Each case runs our whole ingest path (one bridge, one or
two workers) on the benchmark's own Mosquitto, Kafka and InfluxDB, under a topic prefix and database of its own,
while open-loop generators (``benchmarks.openloop``: ``Generator.PYTHON``) publish a fleet's messages and log
every one they sent; one
fault is injected, the pipeline is left to recover, and every reading sent is looked up by its identity (device,
sensor, time, value) in InfluxDB (``benchmarks.matrix``).

Cases (``CASES``): Mosquitto stopped (SIGTERM) and killed (SIGKILL), each restarted 3 s later, with devices as
they are and with devices that publish again what the broker acknowledged "no matching subscribers"; the bridge
killed; Kafka killed and restarted; Kafka away longer than the bridge's delivery timeout with the bridge killed
during the outage; one of two workers killed, and both; InfluxDB killed and restarted; a device six simulated
hours offline delivering its buffer; a device whose clock (and count) reset; a device publishing 100 times its
rate. Whatever exits on its own meanwhile (a worker that loses Kafka crashes on purpose) is restarted at once, as
compose's ``restart: unless-stopped`` does, and named in the case's notes.

"Seconds to recover": from the fault until the last message it delayed (stored more than 2 s after it was due)
was stored (``Arrivals.recovery_s``); "-" for a device case, which stops no service.
"""

from __future__ import annotations

import math
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition

from benchmarks.bridge_stage import start_bridge, wait_up
from benchmarks.endtoend import START_MARGIN_S, Measured, Pipeline, Restarts, Scripted, run_rate
from benchmarks.generators import Generator
from benchmarks.harness import Services
from benchmarks.matrix import (
    Case,
    MessageKey,
    Plans,
    Sent,
    Tally,
    back_from_outage,
    flooding,
    recovery,
    reset_clock,
    sent_log,
    stored_readings,
    table,
    tally,
)
from cli.worker import WorkerProcess
from smartfarm import kafkaclient
from smartfarm.errors import ServiceError
from smartfarm.records import DeadLetter, RejectReason
from smartfarm.topics import KafkaTopic, topic_specs
from storage.influx import InfluxClient

BY_DESIGN = frozenset({RejectReason.STALE_TIMESTAMP})
"""Dead-letter reasons a case's device earns on purpose (a reset clock): counted apart, not as lost."""
RESTART_EVERY_S = 2.0
"""A process that exited on its own is started again at most this often (a bridge cannot start without Kafka)."""


@dataclass(frozen=True)
class Load:
    """What every case offers: ``rate`` messages/s from ``devices`` nodes for ``seconds``; the fault comes
    ``fault_at_s`` in and a killed process is down ``down_s``."""

    rate: float = 100.0
    devices: int = 50
    seconds: float = 24.0
    fault_at_s: float = 6.0
    down_s: float = 3.0
    horizon_s: float = 45.0
    settle_s: float = 20.0
    start_margin_s: float = START_MARGIN_S
    """How far ahead of the first due message the generators start (more where other work shares the cores)."""

    @property
    def per_device(self) -> float:
        return self.rate / self.devices


class Supervisor:
    """Restarts a worker or bridge that exited on its own (not one a case killed), as compose would; a ``during``
    hook for ``run_rate``."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline
        self.held: set[int] = set()  # bridges a case holds down
        self.notes: list[str] = []
        self._last: dict[str, float] = {}
        self._starting: set[int] = set()
        self.errors: list[BaseException] = []

    def __call__(self, _elapsed: float) -> None:
        now = time.monotonic()
        for i, w in enumerate(self.p.workers):
            if w.proc is not None and w.proc.poll() is not None and i not in self._starting:
                if now - self._last.get(f"w{i}", 0.0) < RESTART_EVERY_S:
                    continue
                self._last[f"w{i}"] = now
                self.notes.append(f"worker{i + 1} exited (code {w.proc.returncode}) and was restarted")
                w.proc = None
                self._starting.add(i)
                threading.Thread(target=self._start_worker, args=(i, w), daemon=True).start()
        for i, (proc, port) in enumerate(self.p.bridges):
            if i in self.held or proc.poll() is None or now - self._last.get(f"b{i}", 0.0) < RESTART_EVERY_S:
                continue
            self._last[f"b{i}"] = now
            self.notes.append(f"bridge{i + 1} exited (code {proc.returncode}) and was restarted")
            self.p.bridges[i] = (self._bridge(i, port), port)

    def _start_worker(self, i: int, w: WorkerProcess) -> None:
        try:
            w.start()
        except ServiceError as exc:  # died while starting (Kafka still away): the next look starts it again
            self.notes.append(f"worker{i + 1} did not start: {str(exc).splitlines()[0]}")
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self._starting.discard(i)

    def _bridge(self, i: int, port: int) -> subprocess.Popen[str]:
        p = self.p
        return start_bridge(i, p.broker, p.kafka_service, p.name, p.name, port, p.bridge_env)

    def kill_bridge(self, i: int = 0) -> None:
        self.held.add(i)
        proc, _ = self.p.bridges[i]
        proc.kill()
        proc.wait(10)

    def restart_bridge(self, i: int = 0, wait: bool = True) -> None:
        """Start bridge ``i`` again (its session resumed); ``wait``: until it says it is up."""
        port = self.p.bridges[i][1]
        fresh = self._bridge(i, port)
        self.p.bridges[i] = (fresh, port)
        self.held.discard(i)
        if wait:
            wait_up(fresh)

    def check(self) -> None:
        if self.errors:
            raise self.errors[0]


Hooks = Callable[["Services", Pipeline, Supervisor, Load], Sequence[Restarts]]


@dataclass
class Spec:
    """A case: its key (``--cases``), its name, the faults it injects (``Restarts`` hooks, given the pipeline),
    how many workers, the bridge's settings, and a device that behaves apart (``Scripted``)."""

    key: str
    name: str
    hooks: Hooks = lambda *_: ()
    workers: int = 1
    bridge_env: dict[str, str] = field(default_factory=dict)
    device: Callable[[str, float, Load], Plans] | None = None
    generator_options: tuple[str, ...] = ()
    horizon_s: float | None = None
    """How long after it was due a message still counts as recovered (``Load.horizon_s`` unless set)."""
    settle_s: float | None = None
    """How long nothing new may arrive before the run ends (``Load.settle_s`` unless set): a case whose dead
    letters never arrive by design waits only this long for them."""


def dead_letters(pipeline: Pipeline, timeout_ms: int = 3000) -> list[DeadLetter]:
    """Every record of the pipeline's ``deadletter`` topic."""
    name = topic_specs(pipeline.kafka.topic_prefix, pipeline.kafka.partitions)[KafkaTopic.DEADLETTER].name
    consumer = KafkaConsumer(**kafkaclient.kafka_python(pipeline.kafka), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(name, p) for p in range(pipeline.kafka.partitions)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        deadline = time.monotonic() + timeout_ms / 1000
        while any(consumer.position(p) < ends[p] for p in partitions) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                letters += [DeadLetter.decode(r.value) for r in batch]
        return letters
    finally:
        consumer.close()


def by_design(letters: Sequence[DeadLetter]) -> tuple[set[MessageKey], dict[str, int]]:
    """The messages dead-lettered for a reason in ``BY_DESIGN``, and every dead letter counted by reason."""
    keys: set[MessageKey] = set()
    reasons: dict[str, int] = {}
    for letter in letters:
        reasons[letter.reason.value] = reasons.get(letter.reason.value, 0) + 1
        if letter.reason in BY_DESIGN:
            keys.add(Sent.parse(letter.payload).key)
    return keys, reasons


def run_case(svc: Services, spec: Spec, load: Load, say: Callable[[str], None]) -> Case:
    """One case on fresh topics and a fresh database; its row of the matrix."""
    name = "f" + spec.key.replace("-", "")
    with Pipeline(
        svc.broker,
        svc.kafka,
        svc.influxd,
        svc.work,
        name,
        load.devices,
        workers=spec.workers,
        bridge_env=spec.bridge_env or None,
    ) as p:
        supervisor = Supervisor(p)
        hooks = list(spec.hooks(svc, p, supervisor, load))

        def during(elapsed: float) -> None:
            for hook in hooks:
                hook(elapsed)
            supervisor(elapsed)

        scripted: tuple[list[str], Scripted] | None = None
        if spec.device is not None:
            device, make = p.devices[0], spec.device
            scripted = ([device], lambda t0: make(device, t0, load))
        log_dir = p.work / "sent"
        log_dir.mkdir(parents=True, exist_ok=True)
        m = run_rate(
            p,
            load.rate,
            load.seconds,
            during=during,
            settle_s=spec.settle_s or load.settle_s,
            scripted=scripted,
            log_dir=log_dir,
            horizon_s=spec.horizon_s or load.horizon_s,
            generator_options=spec.generator_options,
            start_margin_s=load.start_margin_s,
            generator=Generator.PYTHON,
        )
        for hook in hooks:
            hook.wait()
        supervisor.check()
        sent = sent_log(line for path in sorted(log_dir.glob("*.log")) for line in path.read_bytes().splitlines())
        with InfluxClient(p.influx) as client:
            stored = stored_readings(client.series("SELECT value FROM reading GROUP BY *"))
        refused, reasons = by_design(dead_letters(p))
    found = tally(sent, stored, refused)
    faults = [h.times["killed"] for h in hooks if "killed" in h.times]
    recover = m.arrivals.recovery_s(min(faults)) if faults and m.arrivals is not None else math.nan
    case = Case(spec.name, found, recover, supervisor.notes + what_happened(m, found, reasons))
    say(
        f"  {spec.name}: {found.readings} readings sent, {found.stored_once} stored once, {found.lost} lost, "
        f"{found.stored_twice} stored twice, {found.by_design} dead-lettered by design; seconds to recover: "
        f"{recovery(recover)}" + "".join(f"\n    {n}" for n in case.notes)
    )
    return case


def what_happened(m: Measured, found: Tally, reasons: dict[str, int]) -> list[str]:
    """A case's notes: dead letters, messages that met no subscriber, duplicates dropped, examples of a loss."""
    notes = []
    if reasons:
        notes.append("dead letters: " + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())))
    if m.extra.get("unrouted"):
        notes.append(
            f"{m.extra['unrouted']:.0f} publishes acknowledged with 'no matching subscribers' (handed to nobody), "
            f"{m.extra['resent']:.0f} published again"
        )
    if m.outcome.duplicates:
        notes.append(f"{m.outcome.duplicates} messages dropped as duplicates by the workers")
    if m.outcome.published != m.outcome.acknowledged:
        notes.append(f"{m.outcome.published - m.outcome.acknowledged} publishes never acknowledged by the broker")
    if found.lost_examples:
        notes.append("lost, e.g. " + "; ".join(map(str, found.lost_examples[:3])))
    if found.twice_examples:
        notes.append("stored twice, e.g. " + "; ".join(map(str, found.twice_examples[:3])))
    return notes


# -- the cases -----------------------------------------------------------------------------------------------


def _service(which: str, kill: bool) -> Hooks:
    """Stop (SIGTERM) or kill (SIGKILL) one of the shared services and start it again on the same ports and data.

    Started on the main thread: a service dies with the thread that started it (``PR_SET_PDEATHSIG``), so one
    started by a restart thread would be gone as soon as that thread ended."""

    def hooks(svc: Services, _p: Pipeline, _s: Supervisor, load: Load) -> Sequence[Restarts]:
        service = {"mosquitto": svc.broker, "kafka": svc.kafka, "influxdb": svc.influxd}[which]
        down = service.kill if kill else service.stop
        return [Restarts(load.fault_at_s, load.down_s, down, service.start)]

    return hooks


def _bridge_kill(_svc: Services, _p: Pipeline, s: Supervisor, load: Load) -> Sequence[Restarts]:
    return [Restarts(load.fault_at_s, load.down_s, s.kill_bridge, s.restart_bridge, background=True)]


DELIVERY_TIMEOUT_MS = 5000
"""The bridge's ``delivery_timeout_ms`` in the long-outage case (60 s by default; shortened so the case stays
short: the outage is what must outlast it)."""
OUTAGE_S = 15.0


def _outage_with_bridge_kill(svc: Services, _p: Pipeline, s: Supervisor, load: Load) -> Sequence[Restarts]:
    """Kafka away ``OUTAGE_S`` (three times the delivery timeout); the bridge killed once its records have timed
    out and been sent again, and restarted while Kafka is still away (it cannot start without Kafka: the
    supervisor keeps starting it)."""
    kafka = svc.kafka
    outage = Restarts(load.fault_at_s, OUTAGE_S, kafka.kill, kafka.start)
    at = load.fault_at_s + 2 * DELIVERY_TIMEOUT_MS / 1000
    bridge = Restarts(at, load.down_s, s.kill_bridge, lambda: s.restart_bridge(wait=False))
    return [outage, bridge]


def _workers_kill(which: Sequence[int]) -> Hooks:
    def hooks(_svc: Services, p: Pipeline, _s: Supervisor, load: Load) -> Sequence[Restarts]:
        workers = [p.workers[i] for i in which]

        def kill() -> None:
            for w in workers:
                w.kill()

        def restart() -> None:
            for w in workers:
                w.start()

        return [Restarts(load.fault_at_s, load.down_s, kill, restart, background=True)]

    return hooks


def _offline(device: str, t0: float, load: Load) -> Plans:
    return back_from_outage(device, t0, load.per_device, load.seconds, load.fault_at_s)


def _reset(device: str, t0: float, load: Load) -> Plans:
    return reset_clock(device, t0, load.per_device, load.seconds, load.fault_at_s)


def _flood(device: str, t0: float, load: Load) -> Plans:
    return flooding(device, t0, load.per_device, load.seconds)


CASES: tuple[Spec, ...] = (
    Spec(
        "mosquitto-term",
        "Mosquitto SIGTERM, restarted; devices ignore reason 16",
        _service("mosquitto", kill=False),
    ),
    Spec("mosquitto-kill", "Mosquitto SIGKILL, restarted; devices ignore reason 16", _service("mosquitto", kill=True)),
    Spec(
        "mosquitto-term-resend",
        "Mosquitto SIGTERM, restarted; devices resend what met no subscriber, as ours do",
        _service("mosquitto", kill=False),
        generator_options=("--resend-unrouted",),
    ),
    Spec(
        "mosquitto-kill-resend",
        "Mosquitto SIGKILL, restarted; devices resend what met no subscriber, as ours do",
        _service("mosquitto", kill=True),
        generator_options=("--resend-unrouted",),
    ),
    Spec("bridge-kill", "bridge SIGKILL, restarted", _bridge_kill),
    Spec("kafka-kill", "Kafka SIGKILL, restarted", _service("kafka", kill=True)),
    Spec(
        "kafka-outage",
        f"Kafka away {OUTAGE_S:.0f} s > delivery timeout {DELIVERY_TIMEOUT_MS / 1000:.0f} s, bridge SIGKILL in it",
        _outage_with_bridge_kill,
        bridge_env={"SMARTFARM_BRIDGE_DELIVERY_TIMEOUT_MS": str(DELIVERY_TIMEOUT_MS)},
        horizon_s=100.0,
    ),
    Spec("worker-kill-one", "worker SIGKILL, one of two", _workers_kill([1]), workers=2),
    Spec("worker-kill-both", "worker SIGKILL, both of two", _workers_kill([0, 1]), workers=2),
    Spec("influxdb-kill", "InfluxDB SIGKILL, restarted", _service("influxdb", kill=True)),
    Spec("device-offline", "device 6 simulated hours offline", device=_offline),
    Spec("device-clock", "device with a reset clock", device=_reset, settle_s=5.0),
    Spec("device-flood", "device at 100x its rate", device=_flood),
)


def select(keys: str | None) -> list[Spec]:
    """The cases whose key starts with one of the comma-separated words (all of them when None)."""
    if not keys:
        return list(CASES)
    words = [w.strip().lower() for w in keys.split(",") if w.strip()]
    chosen = [c for c in CASES if any(c.key.startswith(w) for w in words)]
    if not chosen:
        raise ValueError(f"no fault case matches {keys!r}; the cases: {', '.join(c.key for c in CASES)}")
    return chosen


def phase_faults(svc: Services, specs: Sequence[Spec], load: Load, say: Callable[[str], None]) -> list[Case]:
    """Every case in turn; the matrix printed at the end."""
    cases = []
    for spec in specs:
        began = time.monotonic()
        cases.append(run_case(svc, spec, load, say))
        say(f"    ({time.monotonic() - began:.0f} s)")
    say("\n" + table(cases))
    return cases
