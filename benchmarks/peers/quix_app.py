"""Quix Streams doing the worker's clean-and-store: ``telemetry.raw`` into InfluxDB, at least once.

Run by the Quix venv's python (``benchmarks.peers.quix.QuixPeer``), with ``PYTHONPATH`` at the repository: it
cleans with our own pure modules (``stream.batch.clean_batch``, ``stream.clean``, ``storage.lines``) and writes
with ``storage.influx`` (gzip, ``write_chunk`` lines per request), so only the framework differs. The settings are
our worker's (``SMARTFARM_KAFKA_*``, ``SMARTFARM_INFLUX_*``, ``SMARTFARM_WORKER_*``, ``SMARTFARM_LAYOUT``): Quix
commits every ``batch_within_s`` or ``batch_max`` records, whichever comes first, as our worker closes a batch,
and its sink writes a checkpoint's records before the offsets are committed (Quix's own at-least-once order).

What it does not do that our worker does: the devices' memories (duplicate filter, stuck and spike tracks) live
in the process only, not in a changelogged table, so after a restart the first message of each device is judged
without history; refused messages are counted, not produced as dead letters; nothing goes to ``readings.clean``.
Each of those would cost it more, so the comparison favours Quix.

After every flush it writes its totals to ``--progress`` (JSON, replaced atomically).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from quixstreams import Application
from quixstreams.sinks import BatchingSink, SinkBatch

from smartfarm.layout import load_layout
from smartfarm.settings import InfluxSettings, KafkaSettings, LayoutSettings
from smartfarm.topics import KafkaTopic, topic_specs
from storage.influx import InfluxClient
from storage.lines import ReadingLines
from stream.batch import clean_batch
from stream.clean import Cleaner, RawMessage
from stream.settings import WorkerSettings

log = logging.getLogger("quix_app")


class CleanAndStore(BatchingSink):
    """Quix's batching sink: each checkpoint's records of a partition cleaned and written before the commit."""

    def __init__(self, cleaner: Cleaner, influx: InfluxClient, chunk: int, progress: Path) -> None:
        super().__init__()
        self.cleaner, self.influx, self.chunk, self.progress = cleaner, influx, chunk, progress
        self.writer = ReadingLines()
        self.memories: dict[bytes, bytes] = {}
        self.totals: Counter[str] = Counter()

    def write(self, batch: SinkBatch) -> None:
        records = (
            (
                item.key or b"",
                RawMessage(item.value, list(item.headers or ()), batch.topic, batch.partition, item.offset),
            )
            for item in batch
        )
        done = clean_batch(records, self.cleaner, self.writer, self.memories.get)
        for start in range(0, len(done.lines), self.chunk):
            self.influx.write_lines(done.lines[start : start + self.chunk], compress=True)
        self.memories.update(done.memory_values())  # after the write, as the worker saves them
        self.totals.update(
            lines=len(done.lines),
            messages=len(done.cleaned),
            duplicates=done.duplicates,
            refused=len(done.refused),
            flushes=1,
        )
        self._report()

    def _report(self) -> None:
        tmp = self.progress.with_suffix(".tmp")
        tmp.write_text(json.dumps({"dead_lettered": 0, **self.totals}))
        os.replace(tmp, self.progress)


class SayingApplication(Application):
    """Says ``partitions assigned`` once it holds partitions (the harness waits for it before producing)."""

    def _on_assign(self, *args: Any, **kwargs: Any) -> None:
        super()._on_assign(*args, **kwargs)
        print("partitions assigned", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quix_app", description=__doc__)
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--progress", type=Path, required=True)
    args = parser.parse_args(argv)
    kafka, influx, worker = KafkaSettings(), InfluxSettings(), WorkerSettings()
    layout = load_layout(LayoutSettings().layout)
    cleaner = Cleaner(layout, worker.clean_rules(influx))
    raw = topic_specs(kafka.topic_prefix, kafka.partitions)[KafkaTopic.TELEMETRY_RAW].name
    app = SayingApplication(
        broker_address=kafka.bootstrap_servers,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=worker.batch_within_s,
        commit_every=worker.batch_max,
        processing_guarantee="at-least-once",
        state_dir=args.state_dir,
        auto_create_topics=False,
        loglevel="WARNING",
    )
    topic = app.topic(raw, key_deserializer="bytes", value_deserializer="bytes")
    with InfluxClient(influx) as client:
        app.dataframe(topic).sink(CleanAndStore(cleaner, client, worker.write_chunk, args.progress))
        app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
