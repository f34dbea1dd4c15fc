"""A worker serves the promoted models: its recommendations name them, each closed hour's sensor statistics reach
the fault detector through the real InfluxDB, and a version promoted while it runs is loaded without a restart. The
farm's weather forecast, published on ``weather.forecast`` before the worker starts, is in the context of every hour
it scores; a record there that is not a forecast is dead-lettered and the worker goes on."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from kafka import KafkaProducer

from cli.services.base import tail_of
from edge.loadgen import publish_messages
from edge.providers import SimulatedProvider
from edge.settings import EdgeSettings
from ml.faultdetect import FaultDetector
from ml.models import FAULT_DETECTOR
from ml.registry import Registry
from ml.settings import ModelSettings
from smartfarm import kafkaclient
from smartfarm.errors import RejectReason
from smartfarm.layout import load_layout
from smartfarm.records import DeadLetter, Recommendation, RejectStage
from smartfarm.topics import KafkaTopic, topic_specs
from stream.publisher import FarmPublisher
from tests.integration.pipeline import Pipeline, read_topic, telemetry, wait_for

DEVICES = ("soil-tomato-north-1", "soil-tomato-north-2")


def detector(trained: ModelSettings) -> FaultDetector:
    """The detector of the run's one training (``trained_models``), to register here as a test's own."""
    source = Registry(trained)
    model = source.load(source.versions(FAULT_DETECTOR)[-1])
    assert isinstance(model, FaultDetector)
    return model


def promote(registry: Registry, model: FaultDetector) -> int:
    with registry.run("test", {"what": "served models"}, data_sha256=hashlib.sha256(b"6 days").hexdigest()) as run:
        return run.register(FAULT_DETECTOR, model, {"f1": 0.6}, True).version


def publish(pipeline: Pipeline, start: datetime, seqs: range) -> None:
    for device, moisture in zip(DEVICES, (15.0, 15.5), strict=True):  # dry loam: the advisor speaks
        publish_messages(
            pipeline.device(device), telemetry(pipeline.mqtt, device, start, seqs, moisture), client_id=device
        )


def publish_forecasts(pipeline: Pipeline, issued: datetime) -> None:
    """The farm's forecast issued at ``issued`` by the simulated provider, then a record under its key that is none."""
    farm = load_layout().farms[0]
    publisher = FarmPublisher(pipeline.kafka, client_id="test-forecast")
    publisher.forecast(SimulatedProvider([farm], EdgeSettings(seed=3)).forecast(farm, issued))
    publisher.close()
    producer = KafkaProducer(**kafkaclient.kafka_python(pipeline.kafka), acks="all")
    name = topic_specs(pipeline.kafka.topic_prefix)[KafkaTopic.WEATHER_FORECAST].name
    producer.send(name, key=farm.id.encode(), value=b'{"rain": "lots"}').get(timeout=10)
    producer.close()


def test_the_worker_serves_the_promoted_detector_and_follows_a_new_promotion(
    pipeline: Pipeline, trained_models: tuple[ModelSettings, str]
) -> None:
    registry = Registry(ModelSettings(store=pipeline.workdir / "models"))
    model = detector(trained_models[0])
    assert promote(registry, model) == 1
    start = datetime(2026, 7, 1, 6, tzinfo=UTC)  # the tomatoes are in the field (planted 15 April)
    publish_forecasts(pipeline, start)
    worker = pipeline.worker(extra_env={"SMARTFARM_MODELS_POLL_S": "1"})
    worker.wait_ready()
    publish(pipeline, start, range(0, 48))  # four hours at 5 minutes

    def served() -> list[Recommendation]:
        return [Recommendation.decode(r.value) for r in read_topic(pipeline.kafka, KafkaTopic.RECOMMENDATIONS, 1)]

    wait_for("a recommendation", lambda: bool(served()), timeout_s=90, explain=lambda: tail_of(worker.log_path, 30))
    tags = {r.model for r in served()}
    assert tags == {"smartfarm-models@forecaster-none+detector-v1"}, tags
    scored = worker.metric('smartfarm_worker_scored_hours_total{forecast="yes"}')
    assert scored >= 1 and worker.metric('smartfarm_worker_scored_hours_total{forecast="no"}') == 0, scored
    (letter,) = [DeadLetter.decode(r.value) for r in read_topic(pipeline.kafka, KafkaTopic.DEADLETTER, 1)]
    assert (letter.stage, letter.reason, letter.payload) == (
        RejectStage.FORECAST,
        RejectReason.INVALID_PAYLOAD,
        b'{"rain": "lots"}',
    )

    assert promote(registry, model) == 2
    publish(pipeline, start, range(48, 96))
    wait_for(
        "the worker to load version 2",
        lambda: "loaded model sensor-fault-detector version 2" in worker.log_path.read_text(),
        timeout_s=60,
        explain=lambda: tail_of(worker.log_path, 30),
    )
    worker.check()  # still the same process: picked up without a restart
