"""Declaring the pipeline's Kafka topics (the I/O side of ``stream.records.topic_specs``)."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from smartfarm.errors import ServiceError
from stream.records import TopicSpec, topic_specs
from stream.settings import KafkaSettings

log = logging.getLogger(__name__)


def new_topic(spec: TopicSpec, replication_factor: int) -> NewTopic:
    configs = {"cleanup.policy": "compact" if spec.compacted else "delete"}
    if spec.retention_ms is not None:
        configs["retention.ms"] = str(spec.retention_ms)
    return NewTopic(spec.name, spec.partitions, replication_factor, topic_configs=configs)


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
            log.info("created Kafka topics %s", ", ".join(created))
        return created
    finally:
        admin.close()
