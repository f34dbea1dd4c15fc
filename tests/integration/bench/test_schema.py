"""The schema phase's reads on a real InfluxDB: the same clean messages written in each shape of ``reading`` give
today's answers to every main read, suspect readings included."""

from __future__ import annotations

from benchmarks.schema import clean_messages, database, reads
from benchmarks.shapes import Shape, WideLines
from benchmarks.worker_stage import eight_sensor_layout, post_chunks
from cli.services import InfluxDB
from smartfarm.settings import InfluxSettings
from storage.influx import InfluxClient
from storage.lines import ReadingLines

DEVICES, COUNT = 12, 12 * 700


def test_every_shape_answers_the_main_reads_as_today(influxdb: InfluxDB) -> None:
    layout = eight_sensor_layout(DEVICES)
    cleaned, _ = clean_messages(layout, COUNT)
    suspect = sum(1 for m in cleaned for r in m.readings if r.flags)
    assert len(cleaned) == COUNT and suspect > 0
    writers = {Shape.POINT: ReadingLines(), Shape.MESSAGE: WideLines(False), Shape.KIND: WideLines(True)}
    for shape, writer in writers.items():
        post_chunks(influxdb, database(shape), [[line for m in cleaned for line in writer.lines(m)]])
    clients = {s: InfluxClient(InfluxSettings(url=influxdb.url, database=database(s))) for s in Shape}
    try:
        for name, calls in reads(layout, max(m.ts for m in cleaned).timestamp() + 1).items():
            answers = {shape: call(clients[shape]) for shape, call in calls.items()}
            assert answers[Shape.POINT], name
            assert answers[Shape.MESSAGE] == answers[Shape.POINT], name
            assert answers[Shape.KIND] == answers[Shape.POINT], name
            if name == "count of readings":
                assert answers[Shape.POINT] == sum(len(m.readings) for m in cleaned)
    finally:
        for client in clients.values():
            client.close()
