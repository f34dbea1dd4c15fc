"""Declaring the pipeline's Kafka topics (the I/O side of ``smartfarm.topics.topic_specs``)."""

from __future__ import annotations

import logging
import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from smartfarm.errors import ServiceError
from smartfarm.settings import KafkaSettings
from smartfarm.topics import TopicSpec, topic_specs

log = logging.getLogger(__name__)


def new_topic(spec: TopicSpec, replication_factor: int) -> NewTopic:
    configs = {"cleanup.policy": "compact" if spec.compacted else "delete"}
    if spec.retention_ms is not None:
        configs["retention.ms"] = str(spec.retention_ms)
    return NewTopic(spec.name, spec.partitions, replication_factor, topic_configs=configs)


def _await_leaders(admin: KafkaAdminClient, partitions: dict[str, int], timeout_s: float = 30.0) -> None:
    """Wait until every partition of the new topics has a leader, so producers can write at once."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = admin.describe_topics(list(partitions))
        ready = {
            t["name"]
            for t in described
            if t["error_code"] == 0
            and len(t["partitions"]) == partitions[t["name"]]
            and all(p["leader_id"] >= 0 for p in t["partitions"])
        }
        if ready == set(partitions):
            return
        if time.monotonic() > deadline:
            raise ServiceError(f"Kafka topics {sorted(set(partitions) - ready)} have no leaders after {timeout_s:.0f}s")
        time.sleep(0.1)


def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create every pipeline topic that does not exist yet; return the names created."""
    specs = topic_specs(settings.topic_prefix, settings.partitions).values()
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.servers, client_id="smartfarm-admin")
    except KafkaError as exc:
        raise ServiceError(f"Kafka at {settings.bootstrap_servers} is unreachable: {exc}") from exc
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created = []
        for spec in missing:
            try:
                admin.create_topics([new_topic(spec, settings.replication_factor)])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another process declared it between our list and our create
            except KafkaError as exc:
                raise ServiceError(f"creating Kafka topic {spec.name} failed: {exc}") from exc
        if created:
            _await_leaders(admin, {s.name: s.partitions for s in specs if s.name in created})
            log.info("created Kafka topics %s", ", ".join(created))
        return created
    finally:
        admin.close()
