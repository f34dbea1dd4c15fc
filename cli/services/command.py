"""``smartfarm services``: fetch what the local services need."""

from __future__ import annotations

import argparse

from cli.console import add_settings_options, say, settings_from
from cli.services.kafka import fetch_kafka_jars
from cli.services.settings import ServicesSettings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    services = commands.add_parser("services", help="fetch what the local Mosquitto, Kafka and InfluxDB need")
    sub = services.add_subparsers(dest="services_command", required=True, metavar="COMMAND")
    fetch = sub.add_parser("fetch-kafka", help="fetch the Kafka broker's jars from Maven Central into the cache")
    add_settings_options(fetch, ServicesSettings, "cache_dir", "kafka_version")
    fetch.set_defaults(run=run_fetch)


def run_fetch(args: argparse.Namespace) -> int:
    settings = settings_from(ServicesSettings, args)
    libs = fetch_kafka_jars(settings.kafka_home, settings.kafka_version, quiet=True)
    say(f"Kafka {settings.kafka_version}: {sum(1 for _ in libs.glob('*.jar'))} jars in {libs}")
    return 0
