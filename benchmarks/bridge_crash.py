"""A bridge SIGKILLed mid-stream and restarted: how many messages reach Kafka, how many twice.

    .venv/bin/python benchmarks/bridge_crash.py [--devices 50] [--per-device 400]

Prints the figures. It chases a known defect (see architecture.md, delivery guarantees):
in four runs of the same scenario as a pytest test, 86 to 279 of 20,000 messages
published around the crash never reached Kafka; it stays a script that prints the
figures, not a test, until the cause is found and fixed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from edge.contract import Reading, Telemetry, Topics
from edge.loadgen import publish_messages
from smartfarm.services import Kafka, Mosquitto, fetch_kafka_jars
from smartfarm.services.settings import ServicesSettings
from stream.admin import ensure_topics
from stream.settings import KafkaSettings

T0 = datetime(2026, 7, 1, tzinfo=UTC)


def kafka_records(bootstrap: str, topic: str) -> list:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    consumer.assign([TopicPartition(topic, p) for p in range(6)])
    consumer.seek_to_beginning()
    records = list(consumer)
    consumer.close()
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--per-device", type=int, default=400)
    parser.add_argument("--kill-after", type=int, default=3000, help="records in Kafka before the SIGKILL")
    args = parser.parse_args()
    services = ServicesSettings()
    fetch_kafka_jars(services.kafka_home, services.kafka_version)
    topics = Topics("smartfarm")
    messages = [
        (
            topics.telemetry("farm-1", f"dev-{d:03d}"),
            Telemetry.create(
                device=f"dev-{d:03d}",
                seq=seq,
                ts=T0 + timedelta(minutes=5 * seq),
                readings=[Reading(sensor="sm-15", kind="soil_moisture", value=20.0)],
            ).encode(),
        )
        for seq in range(args.per_device)
        for d in range(args.devices)
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        Mosquitto(Path(tmp) / "mosquitto") as broker,
        Kafka(Path(tmp) / "kafka", services.kafka_home) as kafka,
    ):
        ensure_topics(KafkaSettings(bootstrap_servers=kafka.bootstrap_servers))
        env = {
            **os.environ,
            "SMARTFARM_MQTT_PORT": str(broker.port),
            "SMARTFARM_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "SMARTFARM_BRIDGE_BRIDGE_ID": "crash",
            "SMARTFARM_BRIDGE_METRICS_PORT": "0",
        }

        def start() -> subprocess.Popen[str]:
            proc = subprocess.Popen(
                [sys.executable, "-m", "smartfarm.cli", "bridge"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdout is not None
            proc.stdout.readline()
            time.sleep(0.5)
            return proc

        bridge = start()
        publisher = threading.Thread(
            target=publish_messages, args=(broker.host, broker.port, messages), kwargs={"window": 200}
        )
        publisher.start()
        consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers)
        raw = [TopicPartition("smartfarm.telemetry.raw", p) for p in range(6)]
        while sum(consumer.end_offsets(raw).values()) < args.kill_after:
            time.sleep(0.05)
        bridge.send_signal(signal.SIGKILL)
        bridge.wait(10)
        time.sleep(2)
        bridge = start()
        publisher.join(300)
        time.sleep(10)
        records = kafka_records(kafka.bootstrap_servers, "smartfarm.telemetry.raw")
        bridge.send_signal(signal.SIGTERM)
        bridge.wait(60)
    distinct = Counter((r.key, json.loads(r.value)["seq"]) for r in records)
    print(
        f"published {len(messages)}; in Kafka {len(records)} records, {len(distinct)} distinct; "
        f"lost {len(messages) - len(distinct)}; duplicates {len(records) - len(distinct)}"
    )


if __name__ == "__main__":
    main()
