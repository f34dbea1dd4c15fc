"""Declaring the pipeline's topics, and keys landing on stable partitions, against the real Kafka."""

from __future__ import annotations

from collections import defaultdict

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2

from smartfarm.settings import KafkaSettings
from smartfarm.topics import KafkaTopic, topic_specs
from stream.admin import ensure_topics


def test_ensure_topics_creates_each_topic_once(kafka_settings: KafkaSettings) -> None:
    specs = topic_specs(kafka_settings.topic_prefix, kafka_settings.partitions)
    assert sorted(ensure_topics(kafka_settings)) == sorted(s.name for s in specs.values())
    assert ensure_topics(kafka_settings) == []
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.servers)
    try:
        described = {t["name"]: t for t in admin.describe_topics([s.name for s in specs.values()])}
    finally:
        admin.close()
    for spec in specs.values():
        assert len(described[spec.name]["partitions"]) == spec.partitions
    assert {spec.partitions for spec in specs.values()} == {6, 1}  # the layout topic has one


def test_keys_land_on_stable_partitions_in_order(kafka_settings: KafkaSettings) -> None:
    ensure_topics(kafka_settings)
    topic = topic_specs(kafka_settings.topic_prefix)[KafkaTopic.TELEMETRY_RAW].name
    devices = [f"device-{i}" for i in range(40)]
    landed: dict[str, set[int]] = defaultdict(set)
    for round_ in range(2):  # two producers: the key -> partition map must not depend on the producer
        producer = KafkaProducer(
            bootstrap_servers=kafka_settings.servers, acks="all", enable_idempotence=True, compression_type="lz4"
        )
        futures = [
            (d, producer.send(topic, key=d.encode(), value=f"{d}:{round_}:{i}".encode()))
            for i in range(5)
            for d in devices
        ]
        producer.flush()
        for device, future in futures:
            landed[device].add(future.get(10).partition)
        producer.close()

    for device, partitions in landed.items():
        assert partitions == {(murmur2(device.encode()) & 0x7FFFFFFF) % 6}, device
    assert len({p for ps in landed.values() for p in ps}) == 6, "40 keys should spread over all 6 partitions"

    consumer = KafkaConsumer(
        bootstrap_servers=kafka_settings.servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    consumer.assign([TopicPartition(topic, p) for p in range(6)])
    seen: dict[str, list[str]] = defaultdict(list)
    for record in consumer:
        key = record.key.decode()
        assert record.partition in landed[key]
        seen[key].append(record.value.decode())
        if sum(map(len, seen.values())) == 400:
            break
    consumer.close()
    for device in devices:
        assert seen[device] == [f"{device}:{r}:{i}" for r in range(2) for i in range(5)]
