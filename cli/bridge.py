"""``smartfarm bridge``: MQTT telemetry into Kafka, Kafka recommendations back onto MQTT."""

from __future__ import annotations

import argparse

from cli.console import KAFKA_LOGIN, add_settings_options, say, settings_from, stop_on_signals
from smartfarm.settings import KafkaSettings, MqttSettings
from stream.admin import ensure_topics
from stream.bridge import Bridge
from stream.settings import BridgeSettings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bridge = commands.add_parser(
        "bridge",
        help="forward MQTT telemetry into Kafka and recommendations back to MQTT",
        description="At-least-once: an MQTT message is acknowledged only after Kafka confirmed it (acks=all). "
        "Declares the pipeline's Kafka topics if they are missing. Run several with different --bridge-id values "
        "to share the load. SIGTERM stops it cleanly.",
    )
    add_settings_options(bridge, BridgeSettings, *(f for f in BridgeSettings.model_fields if f != "profile"))
    add_settings_options(bridge, MqttSettings, "host", "port", "username", "password", "topic_root", "keepalive_s")
    add_settings_options(bridge, KafkaSettings, "bootstrap_servers", "topic_prefix", "partitions", *KAFKA_LOGIN)
    bridge.set_defaults(run=run_bridge)


def run_bridge(args: argparse.Namespace) -> int:
    settings = settings_from(BridgeSettings, args)
    mqtt = settings_from(MqttSettings, args)
    kafka = settings_from(KafkaSettings, args)
    instance = Bridge(mqtt, kafka, settings)
    stop = stop_on_signals()
    ensure_topics(kafka)
    instance.start()
    say(
        f"bridge {settings.bridge_id}: {mqtt.url} <-> kafka {kafka.bootstrap_servers}, "
        f"metrics on {instance.metrics_url}"
    )
    try:
        instance.wait(stop)
    finally:
        say(f"bridge {settings.bridge_id}: stopping")
        instance.stop()
    say(f"bridge {settings.bridge_id}: stopped")
    return 0
