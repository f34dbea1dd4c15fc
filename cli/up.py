"""``smartfarm up``: the local stack, on the ports the component settings name.

The stack is an ordered list of components, each with ``start``, ``stop`` and a status line, entered into one
exit stack: they start in order, stop in reverse, and a failure while starting stops what already runs. The list
(``cli.stack.assemble``) is the three services, what the pipeline declares in them (Kafka topics; InfluxDB's admin
at its first start, the database, the writer and the reader: ``storage.accounts``), the models (trained first into
an empty registry), the bridge, the stream workers (child processes),
Prometheus, the simulated farm publishing into Mosquitto and the simulated forecast provider following its clock
(``weather.forecast``).
The broker lets in only what ``cli.brokerauth`` writes: the layout's devices, the valves, each farm's service users,
the bridge and the service user ``SMARTFARM_MQTT_USERNAME`` when one is set, each kept to its own topics. The
secrets nobody set are drawn at the first start into the data folder (``cli.localsecrets``). The workers and the
API log in to InfluxDB as the writer, the live status as the reader.
"""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from cli.console import KAFKA_LOGIN, add_settings_options, say, settings_from, stop_on_signals
from cli.localsecrets import FILE_NAME, installation_secrets
from cli.services.settings import ServicesSettings
from cli.stack.assemble import components
from cli.status import collect, render
from cli.train import HOLDOUT, SEASONS
from edge.settings import EdgeSettings
from ml.settings import ModelSettings
from smartfarm.settings import InfluxSettings, KafkaSettings, LayoutSettings, MqttSettings
from storage.influx import InfluxClient
from stream.settings import BridgeSettings, WorkerSettings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser(
        "up",
        help="run the whole stack with a simulated farm until Ctrl-C or SIGTERM",
        description="Starts Mosquitto, InfluxDB and Kafka (or uses the ones that answer at the configured "
        "addresses), trains the models when the registry is empty, runs the bridge, the workers, Prometheus and the "
        "simulated farm, then shows a live status. With no start set, the farm plays its layout's season so far as "
        "fast as the pipeline takes it and goes live just before the first harvest.",
    )
    up.add_argument(
        "--duration", type=float, default=0, help="stop after this many real seconds (0: run until stopped)"
    )
    up.add_argument("--fresh", action="store_true", help="delete the services' data from earlier runs first")
    up.add_argument("--workers", type=int, default=1, help="stream workers sharing the partitions (default 1)")
    up.add_argument(
        "--no-train",
        action="store_true",
        help="when the model registry is empty, serve the FAO-56 baselines rather than train first (about a minute)",
    )
    up.add_argument("--train-days", type=int, default=90, help="days per simulated season when it trains (default 90)")
    up.add_argument(
        "--train-seasons",
        type=int,
        default=SEASONS,
        help=f"simulated seasons it trains on when it trains (default {SEASONS}; {HOLDOUT} more are held out to judge "
        "the models)",
    )
    up.add_argument("--status-s", type=float, default=10.0, help="real seconds between live status blocks (default 10)")
    add_settings_options(up, ServicesSettings, "workdir", "cache_dir", "kafka_version", "kafka_heap", "prometheus_port")
    add_settings_options(
        up, EdgeSettings, "speed", "devices", "seed", "interval_s", "start", "catch_up", "device_secret"
    )
    add_settings_options(up, MqttSettings, "host", "port", "username", "password")
    add_settings_options(up, KafkaSettings, "bootstrap_servers", "topic_prefix", "partitions", *KAFKA_LOGIN)
    add_settings_options(up, InfluxSettings, "url", "database")
    add_settings_options(up, LayoutSettings, "layout")
    add_settings_options(up, BridgeSettings, "metrics_port")
    add_settings_options(up, WorkerSettings, "worker_id")
    add_settings_options(up, ModelSettings, "store")
    up.set_defaults(run=run_up)


def run_up(args: argparse.Namespace) -> int:
    services = settings_from(ServicesSettings, args)
    workdir = Path(services.workdir).resolve()
    if args.fresh and workdir.exists():
        shutil.rmtree(workdir)
    with installation_secrets(workdir) as drawn:
        stack = components(args, workdir)
        stop = stop_on_signals()
        if args.duration:
            timer = threading.Timer(args.duration, stop.set)
            timer.daemon = True
            timer.start()
        with ExitStack() as running:
            say("SmartFarm local stack (Ctrl-C stops it):")
            for component in stack.components:
                if stop.is_set():
                    break
                component.start()
                running.callback(component.stop)
                say(f"  {component.status()}")
            say(f"  data and logs in {workdir}")
            if drawn:
                say(f"  secrets in {workdir / FILE_NAME} (mode 0600): {', '.join(drawn)}")
            with InfluxClient(stack.influx, stack.users.reader) as influx:  # the live status only reads
                next_status = time.monotonic() + min(args.status_s, 5)
                while not stop.wait(0.5):
                    for component in stack.components:
                        component.check()
                    if time.monotonic() >= next_status:
                        next_status = time.monotonic() + args.status_s
                        snapshot = collect(stack.prometheus.url, influx, stack.devices)
                        for line in render(snapshot, datetime.now(UTC), stack.farm.stats):
                            say(line)
            say("stopping the local stack")
    say("stopped")
    return 0
