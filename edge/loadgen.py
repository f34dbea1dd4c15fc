"""A paced MQTT load generator: one paho client publishing QoS 1 telemetry as fast as the broker acknowledges.

At most ``window`` messages are unacknowledged at a time (handing paho a hundred thousand QoS 1 messages at once
collapses its throughput). Used by the tests to load the bridge and the workers (the benchmark's paced load is
the Go generator's, ``benchmarks.generators``); ``python -m edge.loadgen --help``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Iterable

import paho.mqtt.client as mqtt

from smartfarm.mqtt import connect, mqtt_client
from smartfarm.settings import MqttSettings


def payload(device: str, size: int) -> bytes:
    """A valid telemetry message of ``device``, padded to about ``size`` bytes with a long sensor id."""
    doc = {
        "schema_version": 1,
        "device": device,
        "seq": 0,
        "ts": "2026-07-01T00:00:00Z",
        "readings": [
            {"sensor": "sm-15", "kind": "soil_moisture", "value": 23.4},
            {"sensor": "p", "kind": "battery", "value": 3.7},
        ],
    }
    body = json.dumps(doc, separators=(",", ":"))
    if len(body) < size:
        doc["readings"][1]["sensor"] = "p" * min(63, 1 + size - len(body))  # type: ignore[index]
        body = json.dumps(doc, separators=(",", ":"))
    return body.encode()


def publish_messages(
    settings: MqttSettings, messages: Iterable[tuple[str, bytes]], window: int = 1000, client_id: str = "loadgen"
) -> float:
    """Publish every (topic, payload) with QoS 1, in order, to the broker of ``settings`` (as its service user,
    if any); return the seconds until the last was acknowledged."""
    client = mqtt_client(settings, client_id)
    # paho itself keeps at most ``window`` in flight and queues up to ``window`` more; a full queue refuses the
    # publish and we read acknowledgements: the pace is the broker's, with no callback per message. One thread
    # runs paho's loop here, so publish() writes to the socket directly instead of waking a network thread.
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(window)
    connect(client, settings, background=False)
    while not client.is_connected():
        client.loop(timeout=0.1)
    began = time.perf_counter()
    for i, (topic, body) in enumerate(messages):
        while client.publish(topic, body, qos=1).rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            client.loop(timeout=0.01)
        if i % 64 == 0:
            client.loop(timeout=0)
    while client._out_messages:
        client.loop(timeout=0.01)
    elapsed = time.perf_counter() - began
    client.disconnect()
    return elapsed


def publish(
    settings: MqttSettings,
    count: int,
    devices: int = 100,
    size: int = 228,
    window: int = 1000,
    farm: str = "load-farm",
    client_id: str = "loadgen",
) -> float:
    """Publish ``count`` QoS 1 messages round-robin over ``devices``; return the seconds until all were acked."""
    topics = settings.topics
    names = [f"load-{i:05d}" for i in range(devices)]
    messages = [(topics.telemetry(farm, d), payload(d, size)) for d in names]
    return publish_messages(settings, (messages[i % len(messages)] for i in range(count)), window, client_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--size", type=int, default=228)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--topic-root", default="smartfarm")
    parser.add_argument("--client-id", default="loadgen")
    args = parser.parse_args()
    settings = MqttSettings(host=args.host, port=args.port, topic_root=args.topic_root)
    elapsed = publish(settings, args.count, args.devices, args.size, args.window, client_id=args.client_id)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "count": args.count,
                "seconds": elapsed,
                "rate": args.count / elapsed,
                "cpu_s": usage.ru_utime + usage.ru_stime,
            }
        )
    )


if __name__ == "__main__":
    main()
