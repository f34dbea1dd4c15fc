"""Declaring the pipeline's Kafka topics (the I/O side of ``smartfarm.topics.topic_specs``), after checking that
Kafka lets this client in."""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from smartfarm import kafkaclient
from smartfarm.errors import ConfigError, ServiceError
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


LOGIN_TIMEOUT_S = 30.0
"""How long ``check_login`` waits for Kafka to answer (a refused login ends it at once)."""


def check_login(settings: KafkaSettings, timeout_s: float = LOGIN_TIMEOUT_S) -> None:
    """Return once Kafka answers a client of ``settings``; ConfigError at once when it refuses the login, naming
    the settings to fix; ServiceError, with the client's last error, when it does not answer within ``timeout_s``.

    kafka-python and aiokafka retry a refused login like an unreachable broker until they time out, saying only
    that they could not bootstrap; librdkafka reports it as an authentication error within a round trip, so the
    check is made with confluent-kafka's admin client."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient

    errors: list[KafkaError] = []
    config: dict[str, Any] = {**kafkaclient.confluent(settings), "client.id": "smartfarm-login", "log_level": 0}
    config["error_cb"] = errors.append
    admin = AdminClient(config)
    answer = admin.describe_cluster(request_timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while not answer.done():
        admin.poll(0.05)
        refused = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
        if refused:
            answer.cancel()
            raise ConfigError(kafkaclient.login_hint(settings, refused[-1].str()))
        if time.monotonic() > deadline:
            # "all brokers are down" follows the error that says why (refused, disconnected while asking)
            telling = [e for e in errors if e.code() != KafkaError._ALL_BROKERS_DOWN] or errors
            last = telling[-1].str() if telling else "no error reported"
            raise ServiceError(kafkaclient.no_answer_hint(settings, last, timeout_s))
    try:
        answer.result()
    except Exception as exc:
        raise ServiceError(kafkaclient.no_answer_hint(settings, exc, timeout_s)) from exc


def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create every pipeline topic that does not exist yet; return the names created. Checks the login first
    (``check_login``): every command declares the topics before it starts its clients."""
    specs = topic_specs(settings.topic_prefix, settings.partitions).values()
    check_login(settings)
    try:
        admin = KafkaAdminClient(**kafkaclient.kafka_python(settings), client_id="smartfarm-admin")
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
