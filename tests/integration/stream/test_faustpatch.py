"""The worker's overrides of faust-streaming's internals (``stream.faustpatch``) against the real Kafka: faust still
calls them, and a partition is read from its log start when this group never committed it or when retention deleted
records past its committed offset, and committed to its end."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from edge.loadgen import publish_messages
from smartfarm.topics import KafkaTopic, topic_specs
from stream.faustpatch import COMMIT_HOOK, SEEK_HOOK
from tests.hostile import DEVICE, FARM, good
from tests.integration.pipeline import Pipeline, read_distinct, stored_count, wait_for

HOOKS = "smartfarm_worker_offset_hooks_total"


def test_faust_calls_the_offset_hooks_and_a_never_committed_partition_starts_at_its_log_start(
    pipeline: Pipeline,
) -> None:
    topic = pipeline.mqtt.topics.telemetry(FARM, DEVICE)
    now = datetime.now(UTC)
    messages = [(topic, json.dumps(good(now - timedelta(minutes=90 - s), s)).encode()) for s in range(90)]
    deleted, kept = messages[:30], messages[30:60]
    unread, later = messages[60:75], messages[75:]
    kafka = pipeline.kafka
    raw = topic_specs(kafka.topic_prefix)[KafkaTopic.TELEMETRY_RAW].name
    partitions = [TopicPartition(raw, p) for p in range(kafka.partitions)]
    reader = KafkaConsumer(bootstrap_servers=kafka.servers, enable_auto_commit=False)
    admin = KafkaAdminClient(bootstrap_servers=kafka.servers)
    try:
        publish_messages(pipeline.device(DEVICE), deleted, client_id=DEVICE)
        read_distinct(kafka, deleted)
        starts = {tp: end for tp, end in reader.end_offsets(partitions).items() if end}
        admin.delete_records(starts)  # as retention would: the log starts past the first 30 messages
        publish_messages(pipeline.device(DEVICE), kept, client_id=DEVICE)
        read_distinct(kafka, kept)  # read from the log start: only the kept ones are there
        assert reader.beginning_offsets(list(starts)) == starts, "the first records are gone"

        worker = pipeline.worker()
        worker.wait_ready()
        wait_for("the kept readings", lambda: stored_count(pipeline.influx) == len(kept) * 4, timeout_s=60)
        rows = pipeline.influx.query("SELECT seq, value FROM reading WHERE sensor = 'sm-15'")
        assert sorted(r["seq"] for r in rows) == list(range(30, 60)), "only what the log still holds, from its start"

        ends = {tp: end for tp, end in reader.end_offsets(partitions).items() if end}
        group = f"{kafka.topic_prefix}.worker"

        def committed() -> dict[TopicPartition, int]:
            found = admin.list_group_offsets({group: list(ends)})[group]
            return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}

        wait_for("the offsets committed to the end", lambda: committed() == ends, explain=lambda: f"{committed()}")
        code, _ = worker.terminate()
        assert code == 0
        worker.log_path.rename(worker.log_path.with_suffix(".first.log"))  # the restart appends: start it afresh

        publish_messages(pipeline.device(DEVICE), unread, client_id=DEVICE)
        read_distinct(kafka, kept + unread)
        gone = {tp: end for tp, end in reader.end_offsets(partitions).items() if end}
        admin.delete_records(gone)  # retention again, now past the committed offsets
        publish_messages(pipeline.device(DEVICE), later, client_id=DEVICE)
        read_distinct(kafka, later)
        worker = pipeline.worker()
        worker.wait_ready()
        wait_for("the later readings", lambda: stored_count(pipeline.influx) == (len(kept) + len(later)) * 4)
        rows = pipeline.influx.query("SELECT seq, value FROM reading WHERE sensor = 'sm-15'")
        assert sorted(r["seq"] for r in rows) == [*range(30, 60), *range(75, 90)], "the deleted ones are gone"
        ends = {tp: end for tp, end in reader.end_offsets(partitions).items() if end}
        wait_for("the offsets committed to the end", lambda: committed() == ends, explain=lambda: f"{committed()}")
        assert "deleted by retention before they were processed" in worker.log_path.read_text()
        seeks, commits = (
            worker.metric(f'{HOOKS}{{hook="{SEEK_HOOK}"}}'),
            worker.metric(f'{HOOKS}{{hook="{COMMIT_HOOK}"}}'),
        )
        assert seeks >= 1, "faust no longer calls seek_to_committed after a rebalance: a rebalance can skip records"
        assert commits >= 1, "faust no longer calls _filter_committable_offsets: commits are not capped"
        print(f"\nlog starts {starts}, then {gone}; committed {ends}; hooks: {seeks:.0f} seeks, {commits:.0f} commits")
    finally:
        admin.close()
        reader.close()
