"""The stream worker's throughput against its ceiling, measured in one run on the same Kafka and InfluxDB.

1. Ceiling: a bare aiokafka ``getmany`` loop that decodes every ``telemetry.raw`` record with the telemetry
   contract, over the same records the worker drains.
2. One worker (``smartfarm worker``, its own process): device messages of 8 readings each (from the simulator,
   faults off) are produced into ``telemetry.raw`` as the bridge writes them, once the worker holds its partitions;
   the rate counts from the first record produced to the last reading stored, read from the worker's metrics and
   checked in InfluxDB.
3. Two workers sharing the partitions, the same way.

    .venv/bin/python benchmarks/worker_stage.py [--count 100000] [--devices 200]

Prints each figure and the ratios; a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Producer

from cli.services import InfluxDB, Kafka, fetch_kafka_jars
from cli.services.base import cpu_seconds
from cli.services.settings import ServicesSettings
from cli.worker import WorkerProcess
from edge.faults import FaultRates
from edge.simulator import FarmSimulation
from smartfarm.envelope import is_envelope, unpack
from smartfarm.layout import Layout, Sensor, SensorKind, load_layout, replicate
from smartfarm.settings import InfluxSettings, InfluxUsers, KafkaSettings
from smartfarm.telemetry import Telemetry
from smartfarm.topics import KafkaTopic, MqttTopics, topic_specs
from storage.accounts import declare
from storage.influx import InfluxClient
from storage.lines import ReadingLines
from stream.admin import ensure_topics
from stream.batch import clean_batch
from stream.clean import Cleaner, CleanRules, RawMessage
from stream.gate import Door, Packer, Router

CHUNK = 5000
"""Lines per InfluxDB request, as the worker writes them (``write_chunk``)."""

BRIDGE_ENVELOPE = 20
"""Device messages per ``telemetry.raw`` record in the stage and peer runs: what one bridge packs per
partition within its 50 ms ``envelope_ms`` at about 2,400 messages/s over 6 partitions."""

STORED = "smartfarm_worker_readings_stored_total"

EIGHT = (
    Sensor(id="sm-15", kind=SensorKind.SOIL_MOISTURE, depth_cm=15),
    Sensor(id="sm-30", kind=SensorKind.SOIL_MOISTURE, depth_cm=30),
    Sensor(id="sm-45", kind=SensorKind.SOIL_MOISTURE, depth_cm=45),
    Sensor(id="sm-60", kind=SensorKind.SOIL_MOISTURE, depth_cm=60),
    Sensor(id="st-15", kind=SensorKind.SOIL_TEMPERATURE, depth_cm=15),
    Sensor(id="st-30", kind=SensorKind.SOIL_TEMPERATURE, depth_cm=30),
    Sensor(id="st-45", kind=SensorKind.SOIL_TEMPERATURE, depth_cm=45),
    Sensor(id="bat", kind=SensorKind.BATTERY),
)


def eight_sensor_layout(devices: int) -> Layout:
    """The default farm grown to ``devices`` soil nodes of 8 sensors each."""
    base = load_layout()
    farms = tuple(
        f.model_copy(update={"devices": tuple(d.model_copy(update={"sensors": EIGHT}) for d in f.devices)})
        for f in base.farms
    )
    return replicate(Layout(farms=farms), devices)


def write_layout(devices: int, path: Path) -> Layout:
    """``eight_sensor_layout(devices)``, written to ``path`` as the components read it (``SMARTFARM_LAYOUT``)."""
    layout = eight_sensor_layout(devices)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(layout.model_dump(mode="json"), sort_keys=False))
    return layout


def messages(
    layout: Layout, count: int, interval_s: float = 300, rates: FaultRates | None = None
) -> list[tuple[str, bytes, bytes]]:
    """(device, MQTT topic, payload) of ``count`` simulated messages, all taken in the past: each device's every
    ``interval_s``, with the simulator's faults at ``rates`` (default none)."""
    per_tick = len(layout.placements)
    ticks = count // per_tick + 1
    start = datetime.now(UTC) - timedelta(seconds=interval_s * (ticks + 10))
    simulation = FarmSimulation(layout, 1, start, interval_s, rates or FaultRates.none())
    topics = MqttTopics("smartfarm")
    out: list[tuple[str, bytes, bytes]] = []
    while len(out) < count:
        for m in simulation.step().messages:
            out.append((m.device, topics.telemetry(m.farm, m.device).encode(), m.payload))
    return out[:count]


def records(kafka: KafkaSettings, batch: list[tuple[str, bytes, bytes]], envelope: int) -> list[tuple]:
    """The ``telemetry.raw`` records (value, key, partition, headers) the bridge writes for ``batch``, by the
    bridge's own router and packer: one per message, or envelopes sealed every ``envelope`` x partitions messages
    (about ``envelope`` messages each, as a busy bridge's ``envelope_ms`` gathers them)."""
    specs = topic_specs(kafka.topic_prefix, kafka.partitions)
    router = Router(
        Door(MqttTopics("smartfarm"), 16 * 1024), specs, {s.name: kafka.partitions for s in specs.values()}, "bench"
    )
    packer = Packer("bench", hold_s=0.0)
    received = time.time()
    out: list[tuple] = []
    for i, (_, topic, payload) in enumerate(batch, 1):
        route = router.route(topic.decode(), payload, received)
        if not envelope:
            out.append((route.value, route.key, route.partition, route.headers))
            continue
        packer.add(route, None, received)  # the benchmark's messages are small: no envelope fills up
        if i % (envelope * kafka.partitions) == 0 or i == len(batch):
            out += [(p.value, None, p.partition, p.headers) for p in packer.seal(received, everything=True)]
    return out


def produce(kafka: KafkaSettings, batch: list[tuple]) -> float:
    """Write the records into ``telemetry.raw``; return when Kafka has them all."""
    name = topic_specs(kafka.topic_prefix, kafka.partitions)[KafkaTopic.TELEMETRY_RAW].name
    producer = Producer(
        {"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 50, "compression.type": "lz4", "acks": "all"}
    )
    began = time.perf_counter()
    for value, key, partition, headers in batch:
        while True:
            try:
                producer.produce(name, value, key, partition=partition, headers=headers)
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(120)
    return time.perf_counter() - began


async def ceiling(kafka: KafkaSettings, count: int) -> float:
    """Records per second a bare getmany loop reads and decodes (the stage's ceiling)."""
    name = topic_specs(kafka.topic_prefix, kafka.partitions)[KafkaTopic.TELEMETRY_RAW].name
    consumer = AIOKafkaConsumer(
        name, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen = 0
    began = time.perf_counter()
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                for record in records:
                    if is_envelope(record.headers):
                        for letter in unpack(record.value):
                            Telemetry.decode(letter.payload)
                            seen += 1
                    else:
                        Telemetry.decode(record.value)
                        seen += 1
    finally:
        await consumer.stop()
    return seen / (time.perf_counter() - began)


def influx_ceiling(influxd: InfluxDB, layout: Layout, raw: list[tuple]) -> tuple[float, float]:
    """Device messages per second, and InfluxDB's CPU per message (us), when the worker's own lines for the
    ``telemetry.raw`` records ``raw`` (one per message, cleaned beforehand) are posted straight into a fresh
    database: gzip, ``CHUNK``-line requests from two threads."""
    raws = ((key, RawMessage(value, headers)) for value, key, _, headers in raw)
    lines = clean_batch(
        raws, Cleaner(layout, CleanRules(max_future_s=1e9)), ReadingLines(), dict[bytes, bytes]().get
    ).lines
    elapsed, cpu = post_chunks(influxd, "ceiling", [lines[i : i + CHUNK] for i in range(0, len(lines), CHUNK)])
    return len(raw) / elapsed, cpu / len(raw) * 1e6


def post_chunks(influxd: InfluxDB, database: str, chunks: list[list[str]]) -> tuple[float, float]:
    """Post ``chunks`` of lines, one request each, into ``database`` made afresh, as the worker writes them (gzip,
    two threads): the seconds it took and the CPU seconds influxd spent meanwhile."""
    settings = InfluxSettings(url=influxd.url, database=database)
    users = InfluxUsers()
    with InfluxClient(settings, users.admin) as admin:
        admin.drop_database()
    declare(settings, users)
    with InfluxClient(settings) as client, ThreadPoolExecutor(2) as pool:
        cpu_before = cpu_seconds(influxd.pid)
        began = time.perf_counter()
        list(pool.map(lambda chunk: client.write_lines(chunk, compress=True), chunks))
        elapsed = time.perf_counter() - began
        cpu = cpu_seconds(influxd.pid) - cpu_before
    return elapsed, cpu


def start_workers(
    n: int,
    kafka: KafkaSettings,
    influx: InfluxSettings,
    layout_file: Path,
    workdir: Path,
    prefix: str,
    env: dict[str, str] | None = None,
) -> list[WorkerProcess]:
    """Start ``n`` worker processes sharing ``kafka``'s topics (ids ``<prefix>-w0``...), metrics on free ports, the
    baselines scoring (no model promoted) and ``env`` on top; return them started, not yet holding partitions."""
    workers = []
    for i in range(n):
        worker_env = {
            "SMARTFARM_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "SMARTFARM_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "SMARTFARM_INFLUX_URL": influx.url,
            "SMARTFARM_INFLUX_DATABASE": influx.database,
            "SMARTFARM_LAYOUT": str(layout_file),  # the benchmark's devices
            "SMARTFARM_WORKER_METRICS_PORT": "0",
            "SMARTFARM_WORKER_WORKER_ID": f"{prefix}-w{i}",
            "SMARTFARM_WORKER_DATA_DIR": str(workdir / f"{prefix}-w{i}"),
            "SMARTFARM_MODELS_STORE": str(workdir / "models"),  # none promoted: the baselines score
            **(env or {}),
        }
        workers.append(WorkerProcess(worker_env, workdir / f"{prefix}-w{i}.log", f"{prefix}-w{i}", log_level="INFO"))
        workers[-1].start()
    return workers


def wait_holding(workers: list[WorkerProcess], timeout_s: float = 60) -> None:
    """Return once every worker is ready and holds partitions, and the group has settled."""
    for worker in workers:
        worker.wait_ready()
    deadline = time.monotonic() + timeout_s
    while not all("holds partitions" in w.log_path.read_text().rsplit("Worker ready", 1)[0] for w in workers):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(3)  # the group settles


def through_workers(
    n: int,
    kafka_service: Kafka,
    influxd: InfluxDB,
    layout_file: Path,
    workdir: Path,
    batch: list,
    envelope: int,
    prefix: str | None = None,
) -> tuple[float, str, dict[str, float]]:
    """``n`` workers drain ``batch`` (produced once they hold their partitions) into InfluxDB under ``prefix``
    (default ``bench<n>``): messages per second, a description, and CPU per message (us) of each process."""
    prefix = prefix or f"bench{n}"
    kafka = KafkaSettings(bootstrap_servers=kafka_service.bootstrap_servers, topic_prefix=prefix)
    influx = InfluxSettings(url=influxd.url, database=prefix)
    ensure_topics(kafka)
    declare(influx, InfluxUsers())
    workers = start_workers(n, kafka, influx, layout_file, workdir, prefix)
    try:
        wait_holding(workers)
        pids = {"kafka": kafka_service.pid, "influxd": influxd.pid}
        pids |= {f"worker {i}": w.proc.pid for i, w in enumerate(workers) if w.proc is not None}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        began = time.perf_counter()
        produce_s = produce(kafka, records(kafka, batch, envelope))
        readings = 8 * len(batch)
        while sum(w.metric(STORED) for w in workers) < readings:
            for worker in workers:
                worker.check()  # a worker that died says so, with its log
            if time.perf_counter() - began > 600:
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - began
        cpu = {name: (cpu_seconds(pid) - cpu_before[name]) / len(batch) * 1e6 for name, pid in pids.items()}
        shares = ", ".join(f"{w.metric(STORED) / 8:.0f}" for w in workers)
        with InfluxClient(influx) as client:
            rows = client.query("SELECT count(value) AS n FROM reading")
        stored = int(rows[0]["n"]) if rows else 0
        per_message = ", ".join(f"{name} {us:.0f}" for name, us in cpu.items())
        detail = (
            f"produced in {produce_s:.1f} s; messages stored per worker {shares}; {stored} readings in InfluxDB\n"
            f"    CPU per device message (us): {per_message}"
        )
        return len(batch) / elapsed, detail, cpu
    finally:
        for worker in workers:
            worker.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument(
        "--envelope",
        type=int,
        default=0,
        help="about this many messages per telemetry.raw envelope (0: one record per message)",
    )
    parser.add_argument("--one", action="store_true", help="one worker only (no two-worker run)")
    args = parser.parse_args()
    services = ServicesSettings()
    fetch_kafka_jars(services.kafka_home, services.kafka_version)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        layout_file = work / "layout.yaml"
        layout = write_layout(args.devices, layout_file)
        batch = messages(layout, args.count)
        with Kafka(work / "kafka", services.kafka_home) as kafka, InfluxDB(work / "influxdb") as influxd:
            one, one_detail, _ = through_workers(1, kafka, influxd, layout_file, work, batch, args.envelope)
            filled = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_prefix="bench1")
            bare = asyncio.run(ceiling(filled, len(batch)))
            influx_rate, influx_cpu = influx_ceiling(influxd, layout, records(filled, batch, 0))
            two, two_detail, _ = (
                (0.0, "", {})
                if args.one
                else through_workers(2, kafka, influxd, layout_file, work, batch, args.envelope)
            )
    packing = f"envelopes of {args.envelope} messages" if args.envelope else "one record per message"
    print(f"{len(batch)} device messages x 8 readings, {args.devices} devices, 6 partitions, {packing}")
    print(f"ceiling (aiokafka getmany + decode): {bare:9.0f} messages/s")
    print(
        f"InfluxDB alone (our lines, gzip, {CHUNK}-line posts from 2 threads): {influx_rate:9.0f} messages/s "
        f"({8 * influx_rate:.0f} points/s), {influx_cpu:.0f} us of influxd CPU per message"
    )
    print(
        f"one worker into InfluxDB:            {one:9.0f} messages/s ({8 * one:.0f} readings/s)  ratio {one / bare:.2f}"
    )
    print(f"    {one_detail}")
    print(f"two workers into InfluxDB:           {two:9.0f} messages/s  {two / one:.2f}x one")
    print(f"    {two_detail}")


if __name__ == "__main__":
    main()
