"""``smartfarm worker``: the stream worker (Faust) that cleans device messages and stores them in InfluxDB."""

from __future__ import annotations

import argparse
import logging

import faust

from cli.console import add_settings_options, say, settings_from, warn
from smartfarm.layout import load_layout
from smartfarm.settings import InfluxSettings, KafkaSettings, LayoutSettings
from storage.influx import InfluxClient
from stream.admin import ensure_topics
from stream.metrics import WorkerMetrics
from stream.settings import WorkerSettings
from stream.worker import StreamWorker, Writer


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser(
        "worker",
        help="clean device messages from Kafka and store them in InfluxDB (a Faust worker)",
        description="At-least-once: a batch's offsets are committed only after InfluxDB accepted its readings and "
        "Kafka its clean records and dead letters. Run several with different --worker-id values to share the "
        "partitions; a dead worker's partitions move to the others. SIGTERM stops it cleanly.",
    )
    add_settings_options(worker, WorkerSettings, *(f for f in WorkerSettings.model_fields if f != "profile"))
    add_settings_options(worker, KafkaSettings, "bootstrap_servers", "topic_prefix", "partitions")
    add_settings_options(worker, InfluxSettings, "url", "database", "username", "password")
    add_settings_options(worker, LayoutSettings, "layout")
    worker.set_defaults(run=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    settings = settings_from(WorkerSettings, args)
    kafka = settings_from(KafkaSettings, args)
    influx = settings_from(InfluxSettings, args)
    layout = load_layout(settings_from(LayoutSettings, args).layout)
    ensure_topics(kafka)
    with InfluxClient(influx) as client:
        client.create_database()
    metrics = WorkerMetrics()
    port = metrics.serve(settings.metrics_host, settings.metrics_port)
    writer = Writer(influx, settings.write_chunk, metrics)
    stream = StreamWorker(kafka, settings, layout, writer, metrics)
    say(
        f"worker {settings.worker_id}: kafka {kafka.bootstrap_servers} -> influxdb {influx.url}/{influx.database}, "
        f"metrics on http://{settings.metrics_host}:{port}/metrics"
    )
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    code = 0
    try:
        faust.Worker(stream.app, loglevel=level, quiet=True, override_logging=False).execute_from_commandline()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    finally:
        writer.close()
        metrics.close()
    if stream.app.crashed:  # Faust exits 0 after a crash; a supervisor must see that this one failed
        warn(f"worker {settings.worker_id}: crashed (see the log above); what it had not stored is redelivered")
        return 1
    say(f"worker {settings.worker_id}: stopped")
    return code
