"""Ceilings measured by the fastest plain tool for a stage, in the same run as our stage: Kafka's own producer and
consumer performance tools (``org.apache.kafka.tools``, from the same jars as the broker) and the model scorers'
rows per second. The MQTT, decode-floor and InfluxDB ceilings live beside the stage they bound
(``benchmarks.bridge_stage.ceiling``, ``benchmarks.worker_stage.ceiling``, ``benchmarks.worker_stage.influx_ceiling``).

    kafka_ceilings(kafka, work, record_bytes=258)  # {"producer": {...}, "consumer": {...}}
    model_rates()                                  # {"forecaster 24h": {"1": rows/s, "100": ..., "1000": ...}, ...}

The producer runs with the bridge's own settings (acks=all, idempotence, lz4, ``BridgeSettings`` linger and batch
size) and one record per device message, so its records per second are device messages per second.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cli.services import Kafka
from edge.faults import FaultRates
from edge.season import SeasonRecipe, farmer_valves, run_season
from ml.dataset import forecast_table
from ml.faultdetect import FaultDetector, sensor_hours_table
from ml.faulthistory import balance_inputs
from ml.forecast import Forecaster
from smartfarm.layout import load_layout
from smartfarm.settings import KafkaSettings
from smartfarm.topics import KafkaTopic, topic_specs
from stream.admin import ensure_topics
from stream.settings import BridgeSettings

PERF_PREFIX = "perf"
"""The tools write into this prefix's ``telemetry.raw``: the bridge's topic, with its partitions and settings."""
BATCHES = (1, 100, 1000)

_PRODUCER_LINE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency")


def _tool(kafka: Kafka, main_class: str, args: list[str], timeout_s: float) -> str:
    cmd = [kafka.java, "-Xmx512m", "-cp", f"{kafka.libs}/*", main_class, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{main_class} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def parse_producer(output: str) -> dict[str, float]:
    """The summary line ProducerPerformance prints last: records/s, MB/s and latency."""
    lines = [m for m in (_PRODUCER_LINE.search(line) for line in output.splitlines()) if m]
    if not lines:
        raise ValueError(f"no summary line in ProducerPerformance output: {output[-500:]!r}")
    last = lines[-1]
    return {
        "records": int(last[1]),
        "records_per_s": float(last[2]),
        "mb_per_s": float(last[3]),
        "avg_latency_ms": float(last[4]),
    }


def parse_consumer(output: str) -> dict[str, float]:
    """ConsumerPerformance's CSV: a header line and one line of values."""
    rows = [line for line in output.splitlines() if line.count(",") >= 5]
    if len(rows) < 2:
        raise ValueError(f"no figures in ConsumerPerformance output: {output[-500:]!r}")
    header = [h.strip() for h in rows[0].split(",")]
    values = [v.strip() for v in rows[1].split(",")]
    figures = dict(zip(header, values, strict=False))
    return {
        "records": int(figures["data.consumed.in.nMsg"]),
        "records_per_s": float(figures["nMsg.sec"]),
        "mb_per_s": float(figures["MB.sec"]),
    }


def kafka_ceilings(kafka: Kafka, work: Path, record_bytes: int = 258, count: int = 500_000) -> dict[str, Any]:
    """Kafka alone: ``count`` records of ``record_bytes`` produced as the bridge produces them, then consumed."""
    work.mkdir(parents=True, exist_ok=True)
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_prefix=PERF_PREFIX)
    ensure_topics(settings)
    topic = topic_specs(settings.topic_prefix, settings.partitions)[KafkaTopic.TELEMETRY_RAW].name
    bridge = BridgeSettings()
    props = [
        f"bootstrap.servers={kafka.bootstrap_servers}",
        "acks=all",
        "enable.idempotence=true",
        "compression.type=lz4",
        f"linger.ms={bridge.linger_ms}",
        f"batch.size={bridge.batch_bytes}",
    ]
    produced = parse_producer(
        _tool(
            kafka,
            "org.apache.kafka.tools.ProducerPerformance",
            [
                "--topic",
                topic,
                "--num-records",
                str(count),
                "--record-size",
                str(record_bytes),
                "--throughput",
                "-1",
                "--producer-props",
                *props,
            ],
            600,
        )
    )
    consumed = parse_consumer(
        _tool(
            kafka,
            "org.apache.kafka.tools.ConsumerPerformance",
            [
                "--bootstrap-server",
                kafka.bootstrap_servers,
                "--topic",
                topic,
                "--messages",
                str(count),
                "--group",
                f"perf-{time.time_ns()}",
                "--timeout",
                "60000",
            ],
            600,
        )
    )
    used = {
        "record_bytes": record_bytes,
        "acks": "all",
        "idempotence": True,
        "compression": "lz4",
        "linger_ms": bridge.linger_ms,
        "batch_bytes": bridge.batch_bytes,
        "partitions": settings.partitions,
    }
    return {
        "producer": produced | {"device_msgs_per_s": produced["records_per_s"], "settings": used},
        "consumer": consumed | {"device_msgs_per_s": consumed["records_per_s"]},
    }


# -- models ------------------------------------------------------------------------------------------------------


def _rows_per_s(predict: Any, table: pd.DataFrame, batch: int, budget_s: float = 1.0) -> float:
    """Rows per second of ``predict`` on batches of ``batch`` rows drawn from ``table``, over about ``budget_s``."""
    rng = np.random.default_rng(batch)
    frames = [table.iloc[rng.integers(0, len(table), batch)].reset_index(drop=True) for _ in range(8)]
    predict(frames[0])  # warm
    calls, began = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - began) < budget_s or calls < 3:
        predict(frames[calls % len(frames)])
        calls += 1
    return calls * batch / elapsed


def model_rates(days: int = 8) -> dict[str, dict[str, float]]:
    """Fit the forecaster and the fault detector on a simulated season (``days`` long, the default farm), then time
    each at batch sizes 1, 100 and 1000 rows."""
    start = datetime(2026, 6, 1, tzinfo=UTC)
    recipe = SeasonRecipe(seed=5, start=start, days=days, rates=FaultRates(stuck=0.01, spike=0.01))
    season = run_season(load_layout(), recipe, farmer_valves(5))
    forecast = forecast_table(season.layout, season.readings, season.truth, season=5)
    forecaster = Forecaster.fit(forecast, seed=0)
    hours = sensor_hours_table(season.readings, balance_inputs(forecast))
    detector = FaultDetector.fit(hours, seed=0)
    scorers: dict[str, Callable[[pd.DataFrame], object]] = {
        f"forecaster {h}h (XGBoost)": partial(forecaster.predict, horizon=h) for h in forecaster.models
    }
    scorers["fault detector (rules + isolation forest)"] = partial(detector.predict, use_forest=True)
    scorers["fault detector (rules only)"] = partial(detector.predict, use_forest=False)
    tables = {name: (forecast if name.startswith("forecaster") else hours) for name in scorers}
    return {name: {str(b): _rows_per_s(fn, tables[name], b) for b in BATCHES} for name, fn in scorers.items()}
