"""The stream worker: a Faust app whose agents clean device messages, store them in InfluxDB and keep what they
must remember in changelog-backed tables. Agents are thin: each hands a batch to pure code (``stream.batch``).

At least once, end to end:
- ``clean-and-store`` takes up to ``batch_max`` records of ``telemetry.raw`` (or what came within
  ``batch_within_s``), cleans them, writes their readings to InfluxDB and waits for it to accept them (retrying with
  backoff, never skipping), then sends the clean records and dead letters and waits for Kafka to confirm them, and
  only then saves the devices' memories (``device-memory`` table) and lets Faust ack the batch. Faust commits acked
  offsets after flushing its producer, so no offset is committed past a reading that is not stored.
- A worker asked to stop while InfluxDB refuses leaves that batch unacknowledged (its messages are pinned), so
  nothing past it is committed; the next owner of the partition cleans it again. Writing again is harmless:
  InfluxDB overwrites a point of the same series and time.
- ``store-status`` writes ``device.status`` into InfluxDB the same way.
- ``zones`` reads ``readings.clean`` (keyed by zone) and moves each zone's event-time clock on (``stream.zones``):
  windows the watermark passed or late readings re-opened are computed from the stored readings, closed days get
  their reference ET and degree days, each closed hour is scored. It sends the aggregates, days and
  recommendations and waits for Kafka, then writes their points to InfluxDB, then saves the zones' clocks
  (``zone-clock`` table) and acks. A crash in between recomputes the same windows: an unchanged one is not emitted
  again, a recommendation gets the same id.

Agent concurrency is 1: above 1, faust-streaming can commit an offset past a message still being processed
(faust-streaming #606). The memory table's changelog is compacted (not ``compact,delete``, which stalls recovery,
#176) and partitioned like ``telemetry.raw`` (murmur2 of the device id), so a partition's memories move with it.

The package: ``base`` (the app, topics, tables, owned offsets and the batch loop), one module per agent
(``clean_agent``, ``status_agent``, ``zone_agent``), ``watch`` (lag and stall timers), ``batches`` (Faust events as
records, pinning, one bad record isolated) and ``app`` (``StreamWorker`` joining them). Every override of faust's
internals lives in ``stream.faustpatch``; the InfluxDB writer in ``storage.writer``.
"""

from stream.worker.app import StreamWorker, tune_gc
from stream.worker.base import AGENTS
from stream.worker.batches import infrastructure, isolating
from stream.worker.zone_agent import zone_times

__all__ = ["AGENTS", "StreamWorker", "infrastructure", "isolating", "tune_gc", "zone_times"]
