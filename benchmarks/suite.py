"""``smartfarm bench``: every figure of the benchmark in one run, on one set of local services, each against the
ceiling it is judged by, measured in that same run (the machine is shared and noisy: only ratios within one run
mean anything).

The phases, in order (``--phases`` picks some):

``ceilings``  what the services and libraries do alone: MQTT QoS 1 paced publisher to subscriber through
              Mosquitto (``benchmarks.bridge_stage.ceiling``); Kafka's own producer and consumer performance tools
              (``benchmarks.ceilings``); a bare aiokafka ``getmany`` loop decoding every record
              (``benchmarks.worker_stage.ceiling``); InfluxDB taking our gzip line batches (``influx_ceiling``); the
              model scorers' rows per second at batch 1, 100 and 1000.
``stages``    each of our stages alone against its ceiling: the bridge (MQTT into Kafka) and the worker's
              clean-and-store (Kafka into InfluxDB) over the same messages.
``e2e``       the whole path, open loop (``benchmarks.endtoend``): the highest offered rate sustained for
              ``--duration`` seconds with p99 publish-to-stored under 2 s and nothing lost.
``profile``   the whole path at one rate (``--rate``, else the e2e best, else 2,000 msg/s) for ``--duration``
              seconds, every bridge and worker process recorded by py-spy meanwhile (``benchmarks.profiling``):
              speedscope JSON and an SVG flame graph per process in ``--work``/py-spy, the functions with the most
              own time printed.
``advice``    recommendation latency: from the reading that closes a zone's window to the recommendation on MQTT.
``windows``   the batching windows (envelope, linger, clean batch, zone gathering) against latency and CPU
              (``benchmarks.windows``): for each choice, the advice latency and the whole path at ``--rate``.
``scaling``   1, 2 and 4 bridges and workers at the sustained rate: latency, and the work each CPU-second does.
``peers``     Quix Streams doing our clean-and-store from ``telemetry.raw``; Telegraf doing MQTT into InfluxDB,
              searched like ours.
``kill``      ours and Telegraf, each killed (SIGKILL) mid-stream and restarted: readings lost and sent twice.
``faults``    the fault matrix (``benchmarks.faults``): each service stopped or killed, a long Kafka outage with a
              bridge killed in it, workers killed, devices offline, with a reset clock, flooding; every reading
              sent looked up by identity in InfluxDB: stored once, lost, stored twice, seconds to recover.
``api``       the farm API at 50 concurrent clients (``benchmarks.api_load``): requests per second and p99 of a
              zone's overview and a week of its readings, against ``/health`` and InfluxDB's own answer to the
              week's query.
``schema``    the ``reading`` measurement as a point per reading (today), a line per message and a line per device
              and kind (``benchmarks.schema``): influxd's CPU per message written, series and bytes stored, and the
              time of the dashboards' and the API's main reads rewritten for each.

It prints a table of figures, ratios and targets, and writes ``--json`` (every run) and ``--plot`` (latency
against offered load). A benchmark reports; it does not assert.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import confluent_kafka

from benchmarks import api_load, ceilings, faults, profiling, schema, windows
from benchmarks import bridge_stage as bridge_bench
from benchmarks import worker_stage as worker_bench
from benchmarks.bridge_stage import RawCount, start_bridge, wait_up
from benchmarks.endtoend import Measured, Pipeline, Restarts, advice_latency, run_rate, search, summary
from benchmarks.harness import Results, Services
from benchmarks.openloop import Payloads
from benchmarks.peers.run import phase_kill_telegraf, phase_peers
from cli.services import InfluxDB, Kafka, Mosquitto, fetch_kafka_jars
from cli.services.settings import ServicesSettings
from smartfarm.settings import InfluxSettings, KafkaSettings
from storage.influx import InfluxClient

PHASES = (
    "ceilings",
    "stages",
    "e2e",
    "profile",
    "advice",
    "windows",
    "scaling",
    "peers",
    "kill",
    "faults",
    "api",
    "schema",
)

TARGETS = {
    "e2e / MQTT ceiling": 0.5,
    "bridge / MQTT ceiling": 0.5,
    "bridge / Kafka producer ceiling": 0.5,
    "worker / decode floor": 0.5,
    "worker / InfluxDB ceiling": 0.5,
    "clean-and-store / Quix": 2.0,
    "e2e / Telegraf": 0.5,
}
"""Each ratio's floor (the issue's targets)."""

ADVICE_P99_S = 0.5
PROFILE_RATE = 2000.0
"""The profile phase's rate when neither ``--rate`` nor an e2e phase of the run gives one (msg/s)."""
PROFILE_TOP = 15
"""Functions listed per profiled process."""
RSS_LIMIT_MB = 500.0


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_before": os.getloadavg(),
    }


def versions(svc: Services) -> dict[str, str]:
    """The services' and libraries' versions the figures were measured with."""
    mosquitto = subprocess.run([svc.broker.binary, "-h"], capture_output=True, text=True, check=False).stdout
    with InfluxClient(InfluxSettings(url=svc.influxd.url)) as client:
        influxdb = client.ping()
    packages = (
        "faust-streaming",
        "confluent-kafka",
        "aiokafka",
        "paho-mqtt",
        "influxdb-client",
        "xgboost",
        "scikit-learn",
    )
    return {
        "mosquitto": mosquitto.splitlines()[0] if mosquitto else "?",
        "kafka": ServicesSettings().kafka_version,
        "influxdb": influxdb,
        "librdkafka": confluent_kafka.libversion()[0],
        **{name: metadata.version(name) for name in packages},
    }


def _say(text: str) -> None:
    print(text, flush=True)


@contextmanager
def services(work: Path) -> Iterator[Services]:
    settings = ServicesSettings()
    fetch_kafka_jars(settings.kafka_home, settings.kafka_version)
    with (
        Mosquitto(work / "mosquitto") as broker,
        Kafka(work / "kafka", settings.kafka_home, heap="1g") as kafka,
        InfluxDB(work / "influxdb") as influxd,
    ):
        yield Services(broker, kafka, influxd, work)


# -- phases ------------------------------------------------------------------------------------------------------


def phase_ceilings(svc: Services, results: Results, count: int, paced: Payloads) -> None:
    size = paced.mean_bytes()
    top, publisher, cpu = bridge_bench.ceiling(svc.broker, count, paced)
    results.ceilings["mqtt"] = {
        "msgs_per_s": top,
        "publisher_msgs_per_s": publisher,
        "messages": count,
        "bytes": size,
        "cpu": cpu.strip(),
    }
    _say(f"  MQTT QoS 1 publisher -> subscriber: {top:,.0f} msg/s ({count:,} x {size} B)")
    kafka = ceilings.kafka_ceilings(svc.kafka, svc.work / "kafka-perf", size)
    results.ceilings["kafka"] = kafka
    for name, figures in kafka.items():
        _say(f"  Kafka {name}: {figures}")
    models = ceilings.model_rates()
    results.ceilings["models"] = models
    for name, figures in models.items():
        _say(f"  model {name}: {figures}")


def phase_stages(svc: Services, results: Results, count: int, paced: Payloads, devices: int) -> None:
    """The bridge over ``count`` paced messages; then the worker over ``count`` device messages, with the decode
    floor and InfluxDB's ceiling over the very same records."""
    one, _shares, cpu = bridge_bench.through_bridges(1, svc.broker, svc.kafka, count, paced)
    results.stages["bridge"] = {"msgs_per_s": one, "cpu": cpu.strip()}
    _say(f"  bridge, MQTT into Kafka (acks=all): {one:,.0f} msg/s")
    layout_file = svc.work / "stages-layout.yaml"
    layout = worker_bench.write_layout(devices, layout_file)
    batch = worker_bench.messages(layout, count)
    rate, detail, cpu_us = worker_bench.through_workers(
        1, svc.kafka, svc.influxd, layout_file, svc.work, batch, worker_bench.BRIDGE_ENVELOPE, prefix="stage"
    )
    filled = KafkaSettings(bootstrap_servers=svc.kafka.bootstrap_servers, topic_prefix="stage")
    floor = asyncio.run(worker_bench.ceiling(filled, len(batch)))
    influx_rate, influx_cpu = worker_bench.influx_ceiling(svc.influxd, layout, worker_bench.records(filled, batch, 0))
    results.stages["worker"] = {"msgs_per_s": rate, "cpu_us_per_msg": cpu_us, "detail": detail}
    results.ceilings["decode_floor"] = {"msgs_per_s": floor}
    results.ceilings["influxdb"] = {
        "msgs_per_s": influx_rate,
        "points_per_s": 8 * influx_rate,
        "influxd_cpu_us_per_msg": influx_cpu,
    }
    _say(f"  worker, Kafka into InfluxDB: {rate:,.0f} msg/s; decode floor {floor:,.0f}; InfluxDB {influx_rate:,.0f}")


def _log_run(m: Measured) -> None:
    _say("  " + summary(m).replace("\n", "\n  "))


def phase_e2e(svc: Services, results: Results, devices: int, duration: float, start: float) -> float:
    with Pipeline(svc.broker, svc.kafka, svc.influxd, svc.work, "e2e", devices) as pipeline:
        best, runs, stopped = search(pipeline, start, duration, log=_log_run)
    results.e2e = {"best": best.as_dict() if best else None, "runs": [m.as_dict() for m in runs], "stopped": stopped}
    return best.outcome.rate if best else 0.0


def phase_profile(svc: Services, results: Results, devices: int, rate: float, duration: float) -> None:
    """Offer ``rate`` through one bridge and one worker for ``duration`` seconds with py-spy recording both."""
    folder = svc.work / "py-spy"
    with Pipeline(svc.broker, svc.kafka, svc.influxd, svc.work, "profile", devices) as pipeline:
        pids = {name: pid for name, pid in pipeline.pids().items() if name.startswith(("bridge", "worker"))}
        sampling = profiling.Sampling(pids, folder, duration)
        try:
            m = run_rate(pipeline, rate, duration, during=sampling)
        finally:
            sampling.stop()
    _log_run(m)
    processes: dict[str, Any] = {}
    for name in pids:
        if name in sampling.errors:
            _say(f"  {name}: no profile: {sampling.errors[name]}")
            processes[name] = {"error": sampling.errors[name]}
            continue
        profile = profiling.Profile.read(sampling.path(name))
        svg = folder / f"{name}.svg"
        cpu_us = m.cpu_s[name] / max(1, m.outcome.published) * 1e6
        svg.write_text(profiling.flamegraph(profile, f"{name} at {rate:.0f} msg/s, {cpu_us:.0f} us CPU a message"))
        threads = profile.thread_seconds()
        _say(
            f"  {name}: {cpu_us:.0f} us CPU a message ({m.cpu_s[name]:.1f} s), {profile.seconds:.1f} s of it sampled "
            f"running Python (py-spy itself {sampling.cpu_s.get(name, 0):.1f} s): "
            + ", ".join(f"{t} {s:.1f} s" for t, s in threads.items())
            + f"\n    {sampling.path(name)}\n    {svg}"
        )
        _say("    " + profiling.table(profile, PROFILE_TOP, m.outcome.published).replace("\n", "\n    "))
        processes[name] = {
            "speedscope": str(sampling.path(name)),
            "svg": str(svg),
            "cpu_us_per_msg": cpu_us,
            "sampled_s": profile.seconds,
            "py_spy_cpu_s": sampling.cpu_s.get(name),
            "thread_seconds": threads,
            "top": [{"function": str(t.function), "own": t.own, "total": t.total} for t in profile.top(PROFILE_TOP)],
        }
    results.profile = {"rate": rate, "hz": sampling.hz, "gil": sampling.gil, "run": m.as_dict(), "processes": processes}


def phase_advice(svc: Services, results: Results, devices: int, rate: float, within_s: float | None) -> None:
    env = {"SMARTFARM_WORKER_ZONE_WITHIN_S": str(within_s)} if within_s else None
    name = "advice" if within_s is None else f"advice{round(within_s * 1000)}"
    with Pipeline(svc.broker, svc.kafka, svc.influxd, svc.work, name, devices, worker_env=env) as pipeline:
        found = advice_latency(pipeline, rate)
    key = "default" if within_s is None else f"zone_within_s={within_s}"
    results.advice[key] = found.as_dict() | {"rate": rate}
    _say(
        f"  advice ({key}) at {rate:.0f} msg/s: {found.recommendations} recommendations {found.by_kind}; window "
        f"close -> MQTT p50 {found.p50_s:.2f} s p99 {found.p99_s:.2f} s (to the recommendation's record in Kafka "
        f"p50 {found.to_kafka_p50_s:.2f} s p99 {found.to_kafka_p99_s:.2f} s; Kafka -> MQTT by the bridge p50 "
        f"{found.egress_p50_s:.2f} s p99 {found.egress_p99_s:.2f} s)"
    )


def work_per_core(m: Measured) -> float:
    """Messages per CPU-second of the pipeline's own processes (bridges, workers, broker, Kafka, InfluxDB)."""
    cpu = sum(v for k, v in m.cpu_s.items() if not k.startswith("generator"))
    return m.outcome.published / cpu if cpu else math.nan


def phase_scaling(svc: Services, results: Results, devices: int, rate: float, duration: float) -> None:
    for n in (1, 2, 4):
        with Pipeline(svc.broker, svc.kafka, svc.influxd, svc.work, f"scale{n}", devices, bridges=n, workers=n) as p:
            m = run_rate(p, rate, duration)
        _log_run(m)
        results.scaling.append(m.as_dict() | {"msgs_per_cpu_s": work_per_core(m)})


def _raw_messages(svc: Services, prefix: str, expect: int, timeout_s: float = 30) -> int:
    """Device messages in the prefix's ``telemetry.raw`` (envelopes counted by what they hold)."""
    count = RawCount(svc.kafka, prefix)
    deadline, seen = time.time() + timeout_s, 0
    try:
        while time.time() < deadline:
            seen = count()
            if seen >= expect:
                time.sleep(1)  # and any more
                seen = count()
                break
    finally:
        count.close()
    return seen


def phase_kill_ours(svc: Services, results: Results, devices: int, rate: float, duration: float) -> None:
    """One bridge and two workers; the bridge is killed a third in and restarted 3 s later (its MQTT session
    holds what comes meanwhile), a worker two thirds in (its partitions move to the other, then back)."""
    with Pipeline(svc.broker, svc.kafka, svc.influxd, svc.work, "killours", devices, workers=2) as p:
        port = p.bridges[0][1]

        def kill_bridge() -> None:
            p.bridges[0][0].send_signal(signal.SIGKILL)
            p.bridges[0][0].wait(10)

        def restart_bridge() -> None:
            fresh = start_bridge(0, svc.broker, svc.kafka, p.name, p.name, port)
            wait_up(fresh)
            p.bridges[0] = (fresh, port)

        worker = p.workers[1]
        bridge_hook = Restarts(duration / 3, 3, kill_bridge, restart_bridge)
        worker_hook = Restarts(2 * duration / 3, 3, worker.kill, worker.start)

        def during(elapsed: float) -> None:
            bridge_hook(elapsed)
            worker_hook(elapsed)

        m = run_rate(p, rate, duration, during=during, settle_s=40)
        raw = _raw_messages(svc, p.name, m.outcome.published)
    _log_run(m)
    results.kill["ours"] = m.as_dict() | {
        "raw_messages": raw,
        "sent_twice_by_bridge": raw - m.outcome.published,
        "bridge_killed": bridge_hook.times,
        "worker_killed": worker_hook.times,
    }
    _say(
        f"  killed: bridge and a worker; {m.outcome.lost} readings lost, {raw - m.outcome.published} messages sent "
        f"twice into Kafka, {m.outcome.duplicates} dropped as duplicates by the workers"
    )


# -- report ------------------------------------------------------------------------------------------------------


def ratios(r: Results) -> dict[str, float]:
    out: dict[str, float] = {}
    mqtt = r.ceilings.get("mqtt", {}).get("msgs_per_s")
    best = (r.e2e.get("best") or {}).get("rate")
    if mqtt and best:
        out["e2e / MQTT ceiling"] = best / mqtt
    bridge = r.stages.get("bridge", {}).get("msgs_per_s")
    if mqtt and bridge:
        out["bridge / MQTT ceiling"] = bridge / mqtt
    producer = r.ceilings.get("kafka", {}).get("producer", {}).get("device_msgs_per_s")
    if bridge and producer:
        out["bridge / Kafka producer ceiling"] = bridge / producer
    worker = r.stages.get("worker", {}).get("msgs_per_s")
    if worker and r.ceilings.get("decode_floor"):
        out["worker / decode floor"] = worker / r.ceilings["decode_floor"]["msgs_per_s"]
    if worker and r.ceilings.get("influxdb"):
        out["worker / InfluxDB ceiling"] = worker / r.ceilings["influxdb"]["msgs_per_s"]
    quix = r.peers.get("quix", {}).get("msgs_per_s")
    ours = r.peers.get("ours_clean_and_store", {}).get("msgs_per_s")
    if quix and ours:
        out["clean-and-store / Quix"] = ours / quix
    telegraf = (r.peers.get("telegraf", {}).get("best") or {}).get("rate")
    if telegraf and best:
        out["e2e / Telegraf"] = best / telegraf
    return out


def table(r: Results) -> str:
    rows = [("figure", "value", "target", "met")]
    for name, value in ratios(r).items():
        floor = TARGETS[name]
        rows.append((name, f"{value:.2f}", f">= {floor}", "yes" if value >= floor else "NO"))
    for key, found in r.advice.items():
        p99 = found["p99_s"]
        rows.append(
            (
                f"advice p99, window close -> MQTT ({key})",
                f"{p99:.2f} s",
                f"< {ADVICE_P99_S} s",
                "yes" if p99 < ADVICE_P99_S else "NO",
            )
        )
    rss = [(name, mb) for run in _all_runs(r) for name, mb in run.get("rss_mb", {}).items()]
    ours = [(name, mb) for name, mb in rss if name.startswith(("bridge", "worker"))]
    if ours:
        name, mb = max(ours, key=lambda x: x[1])
        met = "yes" if mb < RSS_LIMIT_MB else "NO"
        rows.append(("largest pipeline process (peak RSS)", f"{mb:.0f} MiB ({name})", f"< {RSS_LIMIT_MB:.0f} MiB", met))
    harness = [(name, mb) for name, mb in rss if not name.startswith(("bridge", "worker"))]
    if harness:
        name, mb = max(harness, key=lambda x: x[1])
        rows.append(("largest harness process (peak RSS)", f"{mb:.0f} MiB ({name})", "", ""))
    flights = [run.get("bridge_in_flight_max", 0) for run in _all_runs(r)]
    if flights:
        rows.append(("bridge in flight at most", f"{max(flights):.0f}", "bounded", ""))
    for load in r.api.get("loads", []):
        rows.append(
            (
                f"API {load['name']} ({r.api['clients']} clients)",
                f"{load['rps']:.0f} req/s, p99 {load['p99_ms']:.0f} ms",
                "no errors",
                "yes" if load["errors"] == 0 else "NO",
            )
        )
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True)) for row in rows)


def _all_runs(r: Results) -> Iterator[dict[str, Any]]:
    yield from r.e2e.get("runs", [])
    yield from r.scaling
    yield from (r.peers.get("telegraf", {}).get("runs", []))
    yield from r.kill.values()


def plot(r: Results, path: Path) -> None:
    """p50, p95 and p99 latency against offered load, ours and Telegraf's."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    series = {"SmartFarm": r.e2e.get("runs", []), "Telegraf": r.peers.get("telegraf", {}).get("runs", [])}
    for (label, runs), colour in zip(series.items(), ("tab:green", "tab:purple"), strict=True):
        runs = sorted(runs, key=lambda m: m["rate"])
        if not runs:
            continue
        rates = [m["rate"] for m in runs]
        for q, style in (("p50_s", ":"), ("p95_s", "--"), ("p99_s", "-")):
            values = [min(m[q], 30.0) for m in runs]
            ax.plot(rates, values, style, color=colour, marker="o", label=f"{label} {q[:-2]}")
    ax.axhline(2.0, color="tab:red", linewidth=0.8, label="p99 limit 2 s")
    ax.set_xlabel("offered load (device messages/s, 8 readings each, QoS 1)")
    ax.set_ylabel("publish -> stored in InfluxDB (s)")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_title(f"Latency against offered load ({r.machine['cores']} cores, {r.started[:10]})")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the command -------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartfarm bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {', '.join(PHASES)}")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds each open-loop rate is offered")
    parser.add_argument("--devices", type=int, default=200, help="eight-sensor nodes publishing")
    parser.add_argument("--count", type=int, default=100_000, help="messages per ceiling and stage measurement")
    parser.add_argument("--start-rate", type=float, default=500.0, help="the e2e search's first rate (msg/s)")
    parser.add_argument("--rate", type=float, help="the rate of advice, scaling and kill (default: the e2e best)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--plot", type=Path, help="write latency against offered load here (PNG)")
    parser.add_argument("--work", type=Path, help="keep the services' data and logs here (default: a temp folder)")
    parser.add_argument(
        "--cases",
        help="the faults phase's cases whose key starts with one of these, comma-separated (default: all): "
        + ", ".join(c.key for c in faults.CASES),
    )
    parser.add_argument(
        "--from-json", type=Path, metavar="FILE", help="run nothing: print the table (and --plot) of a run's --json"
    )
    return parser


def phase_advices(svc: Services, results: Results, args: argparse.Namespace, _paced: Payloads, rate: float) -> None:
    phase_advice(svc, results, args.devices, min(rate, 500.0), None)
    phase_advice(svc, results, args.devices, min(rate, 500.0), 2.0)  # the zone gathering before it was counted


def phase_kills(svc: Services, results: Results, args: argparse.Namespace, _paced: Payloads, rate: float) -> None:
    phase_kill_ours(svc, results, args.devices, rate, args.duration)
    phase_kill_telegraf(svc, results, args.devices, rate, args.duration)


def phase_profiled(svc: Services, results: Results, args: argparse.Namespace, _paced: Payloads, _rate: float) -> None:
    found = (results.e2e.get("best") or {}).get("rate")
    phase_profile(svc, results, args.devices, float(args.rate or found or PROFILE_RATE), args.duration)


def phase_fault_matrix(
    svc: Services, results: Results, args: argparse.Namespace, _paced: Payloads, _rate: float
) -> None:
    cases = faults.phase_faults(svc, faults.select(args.cases), faults.Load(), _say)
    results.faults = [c.as_dict() for c in cases]


def phase_windows(svc: Services, results: Results, args: argparse.Namespace, _paced: Payloads, rate: float) -> None:
    results.windows = windows.measure(svc, args.devices, rate, min(args.duration, 30.0), _say, windows.CHOICES)


def phase_api(svc: Services, results: Results, args: argparse.Namespace, _paced: Payloads, _rate: float) -> None:
    results.api = api_load.run(svc.influxd, svc.kafka.bootstrap_servers, svc.work, min(args.duration, 30.0), _say)


def phase_schemas(svc: Services, results: Results, args: argparse.Namespace, _paced: Payloads, _rate: float) -> None:
    results.schema = schema.phase_schema(svc, args.count, args.devices, _say)


PhaseRun = Callable[[Services, Results, argparse.Namespace, Payloads, float], None]

RUNS: dict[str, PhaseRun] = {
    "ceilings": lambda svc, results, args, paced, _rate: phase_ceilings(svc, results, args.count, paced),
    "stages": lambda svc, results, args, paced, _rate: phase_stages(svc, results, args.count, paced, args.devices),
    "profile": phase_profiled,
    "advice": phase_advices,
    "windows": phase_windows,
    "scaling": lambda svc, results, args, _paced, rate: phase_scaling(svc, results, args.devices, rate, args.duration),
    "peers": lambda svc, results, args, _paced, _rate: phase_peers(svc, results, args),
    "kill": phase_kills,
    "faults": phase_fault_matrix,
    "api": phase_api,
    "schema": phase_schemas,
}
"""Every phase but ``e2e`` (which also sets the rate of the phases after it), by name."""


def run_phase(
    phase: str, svc: Services, results: Results, args: argparse.Namespace, paced: Payloads, rate: float
) -> float:
    """Run one phase; the rate the later phases offer (the e2e phase's best, unless ``--rate`` sets it)."""
    if phase == "e2e":
        best = phase_e2e(svc, results, args.devices, args.duration, args.start_rate)
        return float(args.rate or best or rate)
    RUNS[phase](svc, results, args, paced, rate)
    return rate


def finite(value: Any) -> Any:
    """``value`` with every infinite or NaN float replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def write_json(results: Results, path: Path) -> None:
    path.write_text(json.dumps(finite(results.as_dict()), indent=1, default=str, allow_nan=False))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        choose = ", ".join(PHASES)
        print(f"smartfarm bench: unknown phase(s) {', '.join(unknown)}; choose from {choose}", file=sys.stderr)
        return 2
    if args.from_json:
        return report(Results(**json.loads(args.from_json.read_text())), args.plot)
    results = Results(
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine(),
        settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    )
    with ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smartfarm-bench-")))
        work.mkdir(parents=True, exist_ok=True)
        svc = stack.enter_context(services(work))
        paced = bridge_bench.paced_payloads(work, args.devices)
        size = paced.mean_bytes()
        results.settings["payload_bytes"] = size
        results.settings["versions"] = versions(svc)
        _say(f"smartfarm bench: {args.devices} devices, {size} B messages of 8 readings, QoS 1; services in {work}")
        rate = args.rate or args.start_rate
        for phase in phases:
            _say(f"[{phase}]")
            began = time.monotonic()
            rate = run_phase(phase, svc, results, args, paced, rate)
            _say(f"  ({time.monotonic() - began:.0f} s)")
            if args.json:
                write_json(results, args.json)
    if args.json:
        write_json(results, args.json)
        _say(f"figures: {args.json}")
    return report(results, args.plot)


def report(results: Results, png: Path | None) -> int:
    _say("\n" + table(results))
    if png:
        plot(results, png)
        _say(f"plot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
