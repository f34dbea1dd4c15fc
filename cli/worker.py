"""``smartfarm worker``: the stream worker (Faust) that cleans device messages and stores them in InfluxDB."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import faust
from prometheus_client.parser import text_string_to_metric_families

from cli.console import KAFKA_LOGIN, add_settings_options, say, settings_from, warn
from cli.services.base import first_error, tail_of
from ml.models import serving_scorer
from ml.scoring import model_tag
from ml.settings import ModelSettings
from smartfarm.errors import ServiceError, StorageError
from smartfarm.layout import load_layout
from smartfarm.settings import InfluxSettings, KafkaSettings, LayoutSettings
from storage.influx import InfluxClient
from storage.writer import Writer
from stream.admin import ensure_topics
from stream.metrics import ZONE_WATERMARK, WorkerMetrics
from stream.settings import WorkerSettings
from stream.worker import StreamWorker, tune_gc


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser(
        "worker",
        help="clean device messages from Kafka and store them in InfluxDB (a Faust worker)",
        description="At-least-once: a batch's offsets are committed only after InfluxDB accepted its readings and "
        "Kafka its clean records and dead letters. Run several with different --worker-id values to share the "
        "partitions; a dead worker's partitions move to the others. SIGTERM stops it cleanly.",
    )
    add_settings_options(worker, WorkerSettings, *(f for f in WorkerSettings.model_fields if f != "profile"))
    add_settings_options(worker, KafkaSettings, "bootstrap_servers", "topic_prefix", "partitions", *KAFKA_LOGIN)
    add_settings_options(worker, InfluxSettings, "url", "database", "username", "password")
    add_settings_options(worker, LayoutSettings, "layout")
    add_settings_options(worker, ModelSettings, "store", "poll_s", "alias")
    worker.set_defaults(run=run_worker)


def check_writer(influx: InfluxSettings, longest_wait_s: float = 30.0) -> None:
    """The worker's InfluxDB login and grant, checked before it consumes anything: an InfluxDB that does not answer
    yet, times out or fails (transient: restarting, or started after the worker) is waited for, with a warning at
    each try and a growing pause; any other answer stops it (a refused login or grant, StorageDenied, naming the
    settings; a missing database, naming it)."""
    pause = 1.0
    while True:
        try:
            with InfluxClient(influx) as client:
                client.check_access(write=True)
            return
        except StorageError as exc:
            if not exc.transient:
                raise
            warn(f"InfluxDB does not answer yet ({exc}); trying again in {pause:.0f} s")
            time.sleep(pause)
            pause = min(pause * 2, longest_wait_s)


def run_worker(args: argparse.Namespace) -> int:
    settings = settings_from(WorkerSettings, args)
    kafka = settings_from(KafkaSettings, args)
    influx = settings_from(InfluxSettings, args)
    layout = load_layout(settings_from(LayoutSettings, args).layout)
    ensure_topics(kafka)  # a refused Kafka login stops it here, naming the settings to fix
    check_writer(influx)  # and a refused InfluxDB login or grant here
    metrics = WorkerMetrics()
    port = metrics.serve(settings.metrics_host, settings.metrics_port)
    writer = Writer(influx, settings.write_chunk, metrics)
    scorer = serving_scorer(settings_from(ModelSettings, args))
    stream = StreamWorker(kafka, settings, layout, writer, metrics, scorer)
    say(
        f"worker {settings.worker_id}: kafka {kafka.bootstrap_servers} -> influxdb {influx.url}/{influx.database}, "
        f"metrics on http://{settings.metrics_host}:{port}/metrics; scoring with {model_tag(scorer)}"
    )
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    tune_gc()
    code = 0
    try:
        faust.Worker(stream.app, loglevel=level, quiet=True, override_logging=False).execute_from_commandline()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    finally:
        stream.stop_following()
        writer.close()
        metrics.close()
    if stream.app.crashed:  # Faust exits 0 after a crash; a supervisor must see that this one failed
        warn(f"worker {settings.worker_id}: crashed (see the log above); what it had not stored is redelivered")
        return 1
    say(f"worker {settings.worker_id}: stopped")
    return code


class WorkerProcess:
    """``smartfarm worker`` as a child process, for ``smartfarm up``, the tests and the benchmark: Faust runs its own
    event loop and signal handling, which a thread of another program cannot host.

    Args:
        env: variables on top of this process's environment (the worker's settings).
        log_path: where its output goes (appended).
        log_level: ``INFO`` also logs Faust's rebalances and readiness, which ``wait_ready`` looks for.
    """

    def __init__(self, env: Mapping[str, str], log_path: Path, worker_id: str, log_level: str = "WARNING") -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.worker_id = worker_id
        self.log_level = log_level
        self.metrics_port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120) -> None:
        """Start it and return once its metrics endpoint is up; ServiceError with its log if it dies first."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "--log-level", self.log_level, "worker"],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        marker = "metrics on http://"
        text = self._wait_for(marker, timeout_s)
        self.metrics_port = int(text.rsplit(marker, 1)[1].split("/", 1)[0].rsplit(":", 1)[1])

    def _wait_for(self, marker: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while marker not in (text := self.log_path.read_text(errors="replace")):
            self.check()
            if time.monotonic() > deadline:
                raise ServiceError(f"worker {self.worker_id}: no {marker!r} within {timeout_s:.0f} s:\n{text[-3000:]}")
            time.sleep(0.1)
        return text

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Until Faust says it holds its partitions and reads (needs ``log_level`` INFO)."""
        self._wait_for("Worker ready", timeout_s)

    def metric(self, name: str) -> float:
        """The sum of the samples of a Prometheus metric whose line starts with ``name``."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        for attempt in range(3):
            try:
                text = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except OSError as exc:  # a busy worker's scrape can time out or be reset: ask again, then say so
                self.check()
                if attempt == 2:
                    raise ServiceError(f"worker {self.worker_id}: metrics at {url} unreadable ({exc})") from exc
                time.sleep(0.5)
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))

    def zone_watermarks(self) -> dict[str, float]:
        """Each zone's advice watermark this worker reports (``farm/zone`` -> event time, seconds); empty while its
        metrics do not answer (starting, restarting)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            text = urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            return {}
        return {
            f"{sample.labels['farm']}/{sample.labels['zone']}": sample.value
            for family in text_string_to_metric_families(text)
            if family.name == ZONE_WATERMARK
            for sample in family.samples
        }

    def check(self) -> None:
        """ServiceError (with the log's tail) if it has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            cause = first_error(self.log_path)
            raise ServiceError(
                f"worker {self.worker_id} exited with code {self.proc.returncode}:\n"
                + (f"{cause}\n...\n" if cause else "")
                + tail_of(self.log_path, 30)
            )

    def status(self) -> str:
        return f"{'Worker':<10} {self.worker_id:<28} metrics on http://127.0.0.1:{self.metrics_port}/metrics"

    def terminate(self, timeout_s: float = 30) -> tuple[int, float]:
        """SIGTERM, as an operator stops it; its exit code and the seconds it took (killed if it took too long)."""
        began = time.monotonic()
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return (proc.returncode if proc else 0), 0.0
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(10)
        return code, time.monotonic() - began

    def stop(self) -> None:
        self.terminate()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.wait(10)


def advice_horizon(workers: Sequence[WorkerProcess]) -> dict[str, float]:
    """Each zone's advice watermark over the workers: the highest reported (a zone's former owner keeps reporting
    where it stopped until it restarts)."""
    marks: dict[str, float] = {}
    for worker in workers:
        for zone, mark in worker.zone_watermarks().items():
            marks[zone] = max(mark, marks.get(zone, mark))
    return marks
