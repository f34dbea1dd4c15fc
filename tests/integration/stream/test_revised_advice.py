"""Advice from a partial window against the real Mosquitto, Kafka and InfluxDB, through the real bridge and worker:
hours close while one of a zone's two soil nodes lags (its readings held back), an irrigation is planned from the
other node alone; the lagging node's readings then revise those hours, which are scored again: the plan is
superseded by a cancellation, and the hours whose advice did not change publish nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.loadgen import publish_messages
from smartfarm.records import Recommendation, RecommendationKind
from smartfarm.topics import KafkaTopic
from tests.integration.pipeline import Pipeline, read_topic, telemetry, wait_for

ZONE = "tomato-north"
DRYING, LAGGING = "soil-tomato-north-1", "soil-tomato-north-2"
HOURS = 14


def publish_hours(pipeline: Pipeline, device: str, start: datetime, moisture: list[float]) -> None:
    """Readings every 5 minutes, hour ``h`` at ``moisture[h]``."""
    messages = []
    for h, theta in enumerate(moisture):
        messages += telemetry(pipeline.mqtt, device, start, range(12 * h, 12 * h + 12), theta)
    publish_messages(pipeline.device(device), messages, client_id=device)


def advice(pipeline: Pipeline) -> list[Recommendation]:
    records = [Recommendation.decode(r.value) for r in read_topic(pipeline.kafka, KafkaTopic.RECOMMENDATIONS, 1)]
    return [r for r in records if r.zone == ZONE and r.kind is RecommendationKind.IRRIGATION]


def test_a_window_revised_by_a_lagging_device_is_rescored_and_its_changed_advice_supersedes(
    pipeline: Pipeline,
) -> None:
    worker = pipeline.worker()
    worker.wait_ready()
    start = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    # One node drying from 22% to 15.5% (its zone mean, with the deeper sensor 4 points wetter, from 24% down): some
    # hour crosses into "needs water within a day" and plans an irrigation for later.
    publish_hours(pipeline, DRYING, start, [22.0 - 0.5 * h for h in range(HOURS)])

    def planned() -> list[Recommendation]:
        return [r for r in advice(pipeline) if r.amount_mm]

    wait_for("an irrigation planned from the drying node alone", lambda: bool(planned()), timeout_s=60)
    (plan,) = planned()
    assert plan.start_at is not None and plan.start_at > start + timedelta(hours=HOURS), "not yet acted on"
    first = advice(pipeline)

    # The lagging node's readings (wet, 26%) for the same hours arrive after those hours closed.
    publish_hours(pipeline, LAGGING, start, [26.0] * HOURS)

    def superseded() -> list[Recommendation]:
        return [r for r in advice(pipeline) if r.supersedes == plan.id]

    wait_for("the revised hour's advice superseding the plan", lambda: bool(superseded()), timeout_s=60)
    (cancel,) = superseded()
    assert cancel.amount_mm == 0 and cancel.window_end == plan.window_end, cancel
    assert "revised with late readings" in cancel.message, cancel.message
    wait_for(
        "every hour revised",
        lambda: worker.metric('smartfarm_worker_zone_aggregates_total{revised="true",width="60m"}') >= 3 * 10,
        timeout_s=30,
    )
    after = advice(pipeline)
    ids = [r.id for r in after]
    assert len(ids) == len(set(ids)), "no advice published twice"
    assert after == [*first, cancel], "the revised hours whose advice did not change published nothing"
    assert worker.metric("smartfarm_worker_irrigations_cancelled_total") == 1
    print(f"\nplanned {plan.amount_mm} mm at {plan.window_end}; revised: {cancel.message}")
    worker.check()
