"""Quix Streams as the worker's peer in the benchmark: its virtual environment and the app as a child process.

Quix Streams pins confluent-kafka below 2.13 (and pydantic below 2.14), so it cannot live in our environment. It
gets one of its own, outside the repository, beside our Kafka jars (``ServicesSettings().cache_dir / "quix-venv"``),
holding ``QUIX_REQUIREMENTS`` and nothing that needs faust. The app (``benchmarks/peers/quix_app.py``) runs on that
venv's python with ``PYTHONPATH`` at the repository, so it cleans with our own pure modules (``stream.batch``,
``stream.clean``, ``storage.lines``, ``storage.influx``, ``smartfarm``): only the framework differs.

A venv is complete when its marker (``.complete``, written last, holding the requirements and ``pip freeze``)
names the requirements asked for; anything else is removed and built again, under a file lock so two processes do
not build it at once.

    venv_python = ensure_quix_venv(ServicesSettings().cache_dir)
    peer = QuixPeer(venv_python, servers, prefix, influx_url, database, layout_file, group, workdir)
    peer.start(); peer.wait_assigned(); ...; peer.terminate()
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from smartfarm.topics import KafkaTopic, topic_specs

REPO = Path(__file__).resolve().parents[2]

QUIXSTREAMS_VERSION = "3.28.1"

QUIX_REQUIREMENTS = (
    f"quixstreams=={QUIXSTREAMS_VERSION}",
    # What our imported modules need (smartfarm, stream.clean, stream.batch, stream.settings, storage.lines,
    # storage.influx -> storage.schema): pydantic and pydantic-settings come with quixstreams (below 2.14 / 2.16);
    # the rest at the versions our own environment runs.
    "PyYAML==6.0.4",
    "influxdb-client==1.50.0",
    "urllib3==2.8.0",
)

IMPORT_CHECK = (
    "import importlib.util, sys\n"
    "import quixstreams, quixstreams.sinks.base\n"
    "import smartfarm.layout, smartfarm.settings, smartfarm.topics, smartfarm.envelope\n"
    "import stream.batch, stream.clean, stream.settings, storage.lines, storage.influx\n"
    "import benchmarks.peers.quix_app\n"
    "assert 'faust' not in sys.modules and importlib.util.find_spec('faust') is None, 'faust is reachable'\n"
    "print(quixstreams.__version__)\n"
)
"""Run by the venv's python with ``PYTHONPATH`` at the repository: the app's whole import chain, without faust."""

MARKER = ".complete"


class QuixError(RuntimeError):
    """The Quix venv could not be built, or the app failed."""


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _marker_ok(venv: Path) -> bool:
    try:
        recorded = json.loads((venv / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded.get("requirements") == list(QUIX_REQUIREMENTS) and _venv_python(venv).exists())


def app_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the venv's python runs with: ``PYTHONPATH`` at the repository, none of our venv's."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **(extra or {})}


def _run(command: list[str], what: str, timeout_s: float = 900) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=app_env(), check=False)
    if done.returncode != 0:
        raise QuixError(
            f"{what} failed ({done.returncode}): {' '.join(command)}\n{(done.stdout + done.stderr)[-3000:]}"
        )
    return done.stdout


def ensure_quix_venv(cache_dir: Path) -> Path:
    """The python of ``cache_dir / "quix-venv"``, built (from PyPI) if missing or half-built; its import chain
    checked. QuixError, with pip's output, when it cannot be built."""
    venv = cache_dir / "quix-venv"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / "quix-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _marker_ok(venv):
            return _venv_python(venv)
        shutil.rmtree(venv, ignore_errors=True)
        base = getattr(sys, "_base_executable", sys.executable)
        _run([base, "-m", "venv", str(venv)], "creating the Quix venv")
        python = _venv_python(venv)
        pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
        _run([*pip, "install", *QUIX_REQUIREMENTS], "installing Quix Streams")
        version = _run([str(python), "-c", IMPORT_CHECK], "importing the Quix app's modules").strip()
        if version != QUIXSTREAMS_VERSION:
            raise QuixError(f"the Quix venv has quixstreams {version}, not {QUIXSTREAMS_VERSION}")
        freeze = _run([*pip, "freeze"], "listing the Quix venv").split()
        record = {"requirements": list(QUIX_REQUIREMENTS), "python": sys.version.split()[0], "freeze": freeze}
        (venv / MARKER).write_text(json.dumps(record, indent=1))  # last: a venv without it is rebuilt
        return python


def installed(venv_python: Path) -> dict[str, str]:
    """Package -> version in the venv, from its marker's ``pip freeze``."""
    record = json.loads((venv_python.parent.parent / MARKER).read_text())
    return dict(line.split("==", 1) for line in record["freeze"] if "==" in line)


class QuixPeer:
    """The Quix app as a child process: ``start``, ``wait_assigned``, ``progress``, ``kill`` or ``terminate``.

    Args:
        python: the Quix venv's python (``ensure_quix_venv``).
        bootstrap_servers, topic_prefix: Kafka and the pipeline's topics (created beforehand: ``ensure_topics``).
        influx_url, database: where the readings go (the database exists beforehand).
        layout_file: the farm layout the cleaner checks devices and sensors against (``SMARTFARM_LAYOUT``).
        group: the Kafka consumer group; keep it across a restart to resume from its commits.
        workdir: the app's log, progress file and RocksDB state (kept across a restart, as a host's disk would).
        env: more variables on top (``SMARTFARM_WORKER_BATCH_MAX``... change the worker settings it reads).
    """

    def __init__(
        self,
        python: Path,
        bootstrap_servers: str,
        topic_prefix: str,
        influx_url: str,
        database: str,
        layout_file: Path,
        group: str,
        workdir: Path,
        env: dict[str, str] | None = None,
        partitions: int = 6,
    ) -> None:
        self.python = python
        self.bootstrap_servers = bootstrap_servers
        self.topic_prefix = topic_prefix
        self.group = group
        self.workdir = workdir
        self.partitions = partitions
        self.log_path = workdir / "quix.log"
        self.progress_path = workdir / "progress.json"
        self.env = {
            "SMARTFARM_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
            "SMARTFARM_KAFKA_TOPIC_PREFIX": topic_prefix,
            "SMARTFARM_KAFKA_PARTITIONS": str(partitions),
            "SMARTFARM_INFLUX_URL": influx_url,
            "SMARTFARM_INFLUX_DATABASE": database,
            "SMARTFARM_LAYOUT": str(layout_file),
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        """Start the app (its log appended to ``log_path``); returns at once."""
        if self.proc is not None and self.proc.poll() is None:
            raise QuixError("the Quix app is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        command = [
            str(self.python),
            "-m",
            "benchmarks.peers.quix_app",
            "--group",
            self.group,
            "--state-dir",
            str(self.workdir / "state"),
            "--progress",
            str(self.progress_path),
        ]
        self.progress_path.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}: {' '.join(command)}\n".encode())
            self.proc = subprocess.Popen(
                command, env=app_env(self.env), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )

    def check(self) -> None:
        """QuixError with the log's tail if the app has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-4000:]
            raise QuixError(f"the Quix app exited with code {self.proc.returncode}:\n{tail}")

    def wait_assigned(self, timeout_s: float = 90) -> list[int]:
        """Return (the partitions it holds) once the group is stable with every ``telemetry.raw`` partition assigned
        to a live member and the app says it took them; QuixError if it exits or the time runs out."""
        raw = topic_specs(self.topic_prefix, self.partitions)[KafkaTopic.TELEMETRY_RAW].name
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        deadline = time.monotonic() + timeout_s
        while True:
            self.check()
            held = self._held(admin, raw)
            if len(held) == self.partitions and "partitions assigned" in self._this_run_log():
                return held
            if time.monotonic() > deadline:
                raise QuixError(f"the Quix app holds {held} of {raw} after {timeout_s:.0f} s:\n{self._this_run_log()}")
            time.sleep(0.3)

    def _this_run_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace").rsplit(f"--- start {self.starts}:", 1)[-1]
        except OSError:
            return ""

    def _held(self, admin: AdminClient, topic: str) -> list[int]:
        try:
            description = admin.describe_consumer_groups([self.group], request_timeout=5)[self.group].result()
        except Exception:  # the group does not exist yet, or the broker is slow to answer
            return []
        if description.state != ConsumerGroupState.STABLE:
            return []
        return sorted(
            tp.partition
            for member in description.members
            for tp in (member.assignment.topic_partitions if member.assignment else [])
            if tp.topic == topic
        )

    def progress(self) -> dict[str, Any]:
        """What this run of the app has stored so far (``lines``, ``messages``, ``duplicates``, ``refused``,
        ``dead_lettered``, ``flushes``), as its sink writes after every flush; zeros before the first."""
        try:
            return dict(json.loads(self.progress_path.read_text()))
        except (OSError, ValueError):
            return {"lines": 0, "messages": 0, "duplicates": 0, "refused": 0, "dead_lettered": 0, "flushes": 0}

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed or committed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def terminate(self, timeout_s: float = 30) -> int:
        """SIGTERM (Quix flushes its sink and commits, then exits); killed if it takes longer. Its exit code."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc is not None else 0
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(30)
