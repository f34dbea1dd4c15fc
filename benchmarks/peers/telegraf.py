"""Telegraf as a peer: ``mqtt_consumer`` straight into the ``influxdb`` output, no Kafka in between."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from benchmarks.generators import find_go
from benchmarks.worker_stage import write_layout
from cli.services import InfluxDB, Mosquitto
from cli.services.base import tail_of
from smartfarm.errors import ServiceError
from smartfarm.settings import InfluxSettings, InfluxUsers
from smartfarm.topics import TOPIC_VERSION, DeviceTopic
from storage.accounts import declare
from stream.settings import WorkerSettings

log = logging.getLogger(__name__)

TELEGRAF_VERSION = "1.37.2"
BUILD_TAGS = "custom,inputs.mqtt_consumer,outputs.influxdb,parsers.json_v2"
_COMPLETE = ".complete"


def fetch_telegraf(cache_dir: Path, version: str = TELEGRAF_VERSION) -> Path:
    """Build a Telegraf with only the plugins the peer needs into ``cache_dir/bin`` unless a complete build is
    there; return the binary. The build log is ``cache_dir/build.log``; its time is in ``cache_dir/.complete``."""
    binary = cache_dir / "bin" / "telegraf"
    marker = cache_dir / _COMPLETE
    if marker.exists() and binary.exists():
        return binary
    go = find_go()
    if (cache_dir / "bin").exists():
        shutil.rmtree(cache_dir / "bin")  # a half-built cache is redone
    cache_dir.mkdir(parents=True, exist_ok=True)
    build_log = cache_dir / "build.log"
    env = {**os.environ, "GOSUMDB": "off", "GOBIN": str(cache_dir / "bin"), "CGO_ENABLED": "0"}
    cmd = [go, "install", "-tags", BUILD_TAGS, f"github.com/influxdata/telegraf/cmd/telegraf@v{version}"]
    log.info("building telegraf %s (%s); log in %s", version, BUILD_TAGS, build_log)
    began = time.monotonic()
    with build_log.open("wb") as out:
        result = subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, check=False
        )
    seconds = time.monotonic() - began
    if result.returncode != 0 or not binary.exists():
        raise ServiceError(
            f"building telegraf {version} failed (exit {result.returncode}) after {seconds:.0f}s:\n"
            f"{tail_of(build_log, 40)}"
        )
    marker.write_text(f"version {version}\ntags {BUILD_TAGS}\nbuild_seconds {seconds:.1f}\n")
    log.info("built telegraf %s in %.1fs", version, seconds)
    return binary


def config(mqtt_port: int, root: str, influx: InfluxSettings, client_id: str) -> str:
    """Telegraf's TOML: ``mqtt_consumer`` (QoS 1, a persistent session) parsing our telemetry JSON with ``json_v2``
    into the ``reading`` measurement our worker writes (tags farm, device, sensor, kind; fields value, seq; the
    message's own time), and the ``influxdb`` output (gzip, as the writer) at the worker's batch size and cadence
    (``WorkerSettings.write_chunk`` lines, ``batch_within_s``). No zone tag, depth, quality or flags: Telegraf knows
    no layout and does no cleaning, which is the work it is spared."""
    worker = WorkerSettings()
    pattern = f"{root}/{TOPIC_VERSION}/+/devices/+/{DeviceTopic.TELEMETRY.value}"
    return f"""\
[agent]
  interval = "10s"
  flush_interval = "{round(worker.batch_within_s * 1000)}ms"
  flush_jitter = "0s"
  metric_batch_size = {worker.write_chunk}
  metric_buffer_limit = 2000000
  omit_hostname = true

[[inputs.mqtt_consumer]]
  servers = ["tcp://127.0.0.1:{mqtt_port}"]
  topics = ["{pattern}"]
  qos = 1
  client_id = "{client_id}"
  persistent_session = true
  topic_tag = ""
  max_undelivered_messages = {MAX_UNDELIVERED}
  data_format = "json_v2"
  [[inputs.mqtt_consumer.topic_parsing]]
    topic = "{pattern}"
    tags = "_/_/farm/_/_/_"
  [[inputs.mqtt_consumer.json_v2]]
    measurement_name = "reading"
    timestamp_path = "ts"
    timestamp_format = "rfc3339"
    [[inputs.mqtt_consumer.json_v2.tag]]
      path = "device"
    [[inputs.mqtt_consumer.json_v2.field]]
      path = "seq"
      type = "int"
    [[inputs.mqtt_consumer.json_v2.object]]
      path = "readings"
      tags = ["sensor", "kind"]

[[outputs.influxdb]]
  urls = ["{influx.url}"]
  database = "{influx.database}"
  skip_database_creation = true
  username = "{influx.username}"
  password = "{influx.password.get_secret_value()}"
  content_encoding = "gzip"
  timeout = "10s"
"""


MAX_UNDELIVERED = 1000
"""Messages Telegraf takes from MQTT before their metrics are written (its at-least-once window), as the bridge's
``receive_maximum`` bounds what it holds unacknowledged."""


def points_written(influx_url: str, database: str) -> int:
    """Points InfluxDB has accepted into ``database`` since it started, rewrites included (``/debug/vars``)."""
    with urllib.request.urlopen(f"{influx_url}/debug/vars", timeout=10) as answer:
        stats = json.loads(answer.read())
    return sum(
        int(v.get("values", {}).get("writePointsOk", 0))
        for k, v in stats.items()
        if k.startswith("shard") and isinstance(v, dict) and v.get("tags", {}).get("database") == database
    )


class TelegrafPipeline:
    """Telegraf as the whole ingest path, with the interface ``benchmarks.endtoend.run_rate`` drives: MQTT straight
    into InfluxDB under its own topic root and database, on a layout of ``devices`` eight-sensor nodes."""

    n_bridges = 0
    n_workers = 0

    def __init__(self, binary: Path, broker: Mosquitto, influxd: InfluxDB, work: Path, name: str, devices: int) -> None:
        self.binary, self.broker, self.influxd = binary, broker, influxd
        self.work = work / name
        self.work.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.layout_file = self.work / "layout.yaml"
        self.layout = write_layout(devices, self.layout_file)
        self.devices = list(self.layout.placements)
        self.influx = InfluxSettings(url=influxd.url, database=name)
        self.config_path = self.work / "telegraf.conf"
        self.config_path.write_text(config(broker.port, name, self.influx, f"{name}-telegraf"))
        self.log_path = self.work / "telegraf.log"
        self.sent_per_device = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> TelegrafPipeline:
        declare(self.influx, InfluxUsers())
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), "--config", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while "Connected" not in self.log_path.read_text(errors="replace").rsplit("Loaded inputs", 1)[-1]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()  # nothing left running behind a failed start
                raise ServiceError(f"telegraf did not connect to MQTT:\n{tail_of(self.log_path, 30)}")
            time.sleep(0.2)
        time.sleep(1.0)  # the subscription follows the connection

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # Telegraf flushes what it holds, then exits
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def pids(self) -> dict[str, int]:
        pids = {"mosquitto": self.broker.pid or 0, "influxd": self.influxd.pid or 0}
        if self.proc is not None:
            pids["telegraf"] = self.proc.pid
        return pids

    def duplicates(self) -> float:
        return 0.0  # Telegraf drops nothing as a duplicate: a message taken twice is written twice

    def in_flight(self) -> float:
        return 0.0
