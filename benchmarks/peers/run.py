"""The peers' phases of ``smartfarm bench``: Quix Streams against our worker on the same clean-and-store work, and
Telegraf against our whole path, searched the same way and killed mid-stream the same way.

Clean-and-store: the very same ``telemetry.raw`` records (device messages in envelopes, as a busy bridge packs
them) are produced once the consumer holds its partitions, into a fresh topic prefix and database for each; the
rate counts from the first record produced to the last reading stored.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchmarks import worker_stage as worker_bench
from benchmarks.endtoend import Measured, Restarts, run_rate, search, summary
from benchmarks.harness import Results, Services
from benchmarks.peers.quix import QuixPeer, ensure_quix_venv, installed
from benchmarks.peers.telegraf import TELEGRAF_VERSION, TelegrafPipeline, fetch_telegraf, points_written
from cli.services.base import cpu_seconds
from cli.services.settings import ServicesSettings
from smartfarm.settings import InfluxSettings, InfluxUsers, KafkaSettings
from storage.accounts import declare
from storage.influx import InfluxClient
from stream.admin import ensure_topics
from stream.settings import WorkerSettings


def _say(text: str) -> None:
    print(text, flush=True)


def through_quix(
    svc: Services, layout_file: Path, batch: list[tuple[str, bytes, bytes]], envelope: int
) -> dict[str, Any]:
    """Quix drains ``batch`` (produced once it holds its partitions) into InfluxDB: messages per second, CPU per
    message (us) of each process, and what it stored."""
    prefix = "peer-quix"
    kafka = KafkaSettings(bootstrap_servers=svc.kafka.bootstrap_servers, topic_prefix=prefix)
    influx = InfluxSettings(url=svc.influxd.url, database=prefix)
    ensure_topics(kafka)
    declare(influx, InfluxUsers())
    python = ensure_quix_venv(ServicesSettings().cache_dir)
    peer = QuixPeer(
        python,
        kafka.bootstrap_servers,
        prefix,
        influx.url,
        influx.database,
        layout_file,
        f"{prefix}-group",
        svc.work / prefix,
        partitions=kafka.partitions,
    )
    peer.start()
    try:
        peer.wait_assigned()
        pids = {"kafka": svc.kafka.pid or 0, "influxd": svc.influxd.pid or 0, "quix": peer.pid or 0}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        began = time.perf_counter()
        produce_s = worker_bench.produce(kafka, worker_bench.records(kafka, batch, envelope))
        while peer.progress()["messages"] + peer.progress()["duplicates"] < len(batch):
            peer.check()
            if time.perf_counter() - began > 600:
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - began
        cpu = {name: (cpu_seconds(pid) - cpu_before[name]) / len(batch) * 1e6 for name, pid in pids.items()}
        with InfluxClient(influx) as client:
            rows = client.query("SELECT count(value) AS n FROM reading")
        return {
            "msgs_per_s": len(batch) / elapsed,
            "produce_s": produce_s,
            "cpu_us_per_msg": cpu,
            "readings_stored": int(rows[0]["n"]) if rows else 0,
            "progress": peer.progress(),
            "quixstreams": installed(python).get("quixstreams"),
            "confluent_kafka": installed(python).get("confluent-kafka"),
        }
    finally:
        peer.terminate()


def clean_and_store(svc: Services, results: Results, count: int, devices: int) -> None:
    """Ours, then Quix, over the same records."""
    layout_file = svc.work / "peers-layout.yaml"
    layout = worker_bench.write_layout(devices, layout_file)
    batch = worker_bench.messages(layout, count)
    rate, detail, cpu = worker_bench.through_workers(
        1, svc.kafka, svc.influxd, layout_file, svc.work, batch, worker_bench.BRIDGE_ENVELOPE, prefix="peer-ours"
    )
    worker = WorkerSettings()
    settings = {
        "envelope_messages": worker_bench.BRIDGE_ENVELOPE,
        "batch_max_records": worker.batch_max,
        "batch_within_s": worker.batch_within_s,
        "write_chunk_lines": worker.write_chunk,
        "messages": len(batch),
    }
    results.peers["ours_clean_and_store"] = {
        "msgs_per_s": rate,
        "cpu_us_per_msg": cpu,
        "detail": detail,
        "settings": settings,
    }
    _say(f"  ours, clean-and-store: {rate:,.0f} msg/s\n    {detail}")
    quix = through_quix(svc, layout_file, batch, worker_bench.BRIDGE_ENVELOPE)
    results.peers["quix"] = quix | {"settings": settings}
    per = ", ".join(f"{k} {v:.0f}" for k, v in quix["cpu_us_per_msg"].items())
    _say(
        f"  Quix Streams {quix['quixstreams']}, clean-and-store: {quix['msgs_per_s']:,.0f} msg/s; "
        f"{quix['readings_stored']} readings in InfluxDB\n    CPU per device message (us): {per}"
    )


def telegraf_binary() -> Path:
    return fetch_telegraf(ServicesSettings().cache_dir / f"telegraf-{TELEGRAF_VERSION}")


def _log_run(m: Measured) -> None:
    _say("  " + summary(m).replace("\n", "\n  "))


def phase_peers(svc: Services, results: Results, args: argparse.Namespace) -> None:
    clean_and_store(svc, results, args.count, args.devices)
    binary = telegraf_binary()
    ours = (results.e2e.get("best") or {}).get("rate")
    start = float(ours or args.start_rate)  # Telegraf is searched from our best rate up: below it, it is not judged
    with TelegrafPipeline(binary, svc.broker, svc.influxd, svc.work, "telegraf", args.devices) as pipeline:
        best, runs, stopped = search(pipeline, start, args.duration, log=_log_run)
    results.peers["telegraf"] = {
        "version": TELEGRAF_VERSION,
        "stopped": stopped,
        "best": best.as_dict() if best else None,
        "runs": [m.as_dict() for m in runs],
    }
    _say(f"  Telegraf {TELEGRAF_VERSION} sustained {best.outcome.rate if best else 0:,.0f} msg/s ({stopped})")


def phase_kill_telegraf(svc: Services, results: Results, devices: int, rate: float, duration: float) -> None:
    """Telegraf killed (SIGKILL) half way through and restarted 3 s later; its persistent session holds what comes
    meanwhile. Readings written twice: the points InfluxDB accepted less the points it holds."""
    binary = telegraf_binary()
    with TelegrafPipeline(binary, svc.broker, svc.influxd, svc.work, "killtelegraf", devices) as p:
        hook = Restarts(duration / 2, 3, p.kill, p.start)
        m = run_rate(p, rate, duration, during=hook, settle_s=40)
    _log_run(m)
    written = points_written(svc.influxd.url, "killtelegraf")
    twice = written - m.outcome.readings_stored
    results.kill["telegraf"] = m.as_dict() | {
        "points_written": written,
        "readings_written_twice": twice,
        "killed": hook.times,
    }
    _say(f"  killed: Telegraf; {m.outcome.lost} readings lost, {twice} readings written twice")
