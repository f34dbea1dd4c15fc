"""The farm API's read routes over real HTTP against a real InfluxDB: a zone's readings downsampled per sensor and
per kind, its stored aggregates, and its harvest estimate from the stored days."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from ml.timeline import Day, window_stats
from smartfarm.layout import SensorKind, load_layout
from smartfarm.records import Recommendation, RecommendationKind, Severity, ZoneAggregate, ZoneDay
from storage.influx import InfluxClient
from storage.registry.store import FarmRegistry, Scope
from storage.schema import Measurement, ReadingPoint, aggregate_point, day_point, recommendation_point
from tests.integration.api.test_farm_api import get, is_problem

FARM = load_layout().farms[0]
ZONE = FARM.zones[0]  # tomato-north: two soil devices with sm-15 and sm-45
T0 = datetime(2026, 7, 2, 6, tzinfo=UTC)


def span(start: datetime, end: datetime) -> str:
    return urlencode({"start": start.isoformat(), "end": end.isoformat()})


def soil_readings() -> list[ReadingPoint]:
    """Two hours of sm-15 of both soil devices every 5 minutes, and one suspect reading that must not count."""
    points = [
        ReadingPoint(
            time=T0 + timedelta(minutes=5 * i),
            farm=FARM.id,
            zone=ZONE.id,
            device=device,
            sensor="sm-15",
            kind=SensorKind.SOIL_MOISTURE,
            value=20.0 + n + 0.1 * i,
            seq=i,
            quality="good",
        )
        for n, device in enumerate(("soil-tomato-north-1", "soil-tomato-north-2"))
        for i in range(24)
    ]
    suspect = points[3].model_copy(update={"time": T0 + timedelta(minutes=17), "value": 99.0, "quality": "suspect"})
    return [*points, suspect.model_copy(update={"flags": "spike"})]


def test_readings_are_buckets_per_sensor_and_per_kind(served: tuple[str, FarmRegistry], influx: InfluxClient) -> None:
    base, registry = served
    token = registry.issue_token(FARM.id, "phone", [Scope.READ])
    points = soil_readings()
    influx.write(points)
    url = f"{base}/farms/{FARM.id}/zones/{ZONE.id}/readings?kind=soil_moisture&{span(T0, T0 + timedelta(hours=2))}"

    status, _, body = get(f"{url}&every=1h", token)
    assert status == 200, body
    assert body["every"] == "1h" and body["unit"] == "%" and body["kind"] == "soil_moisture"
    good = [p for p in points if p.quality == "good"]
    for series in body["series"]:
        mine = [(p.time.timestamp(), p.kind, p.value) for p in good if p.device == series["device"]]
        expected = sorted(window_stats(mine, 3600).items())
        assert [(datetime.fromisoformat(p["at"]), p["count"]) for p in series["points"]] == [
            (w.start, s.count) for (w, _), s in expected
        ]
        for point, (_, stats) in zip(series["points"], expected, strict=True):
            assert point["mean"] == pytest.approx(stats.mean) and (point["min"], point["max"]) == (stats.min, stats.max)
    assert [(s["device"], s["sensor"]) for s in body["series"]] == [
        ("soil-tomato-north-1", "sm-15"),
        ("soil-tomato-north-2", "sm-15"),
    ]

    status, _, whole = get(f"{url}&every=30m&per=kind", token)
    assert status == 200 and [(s["device"], s["sensor"]) for s in whole["series"]] == [(None, None)]
    assert [p["count"] for p in whole["series"][0]["points"]] == [12, 12, 12, 12], "both sensors, suspect left out"
    first = [p.value for p in good if p.time < T0 + timedelta(minutes=30)]
    assert whole["series"][0]["points"][0]["mean"] == pytest.approx(sum(first) / len(first))

    status, _, auto = get(url, token)  # two hours: the finest width, a minute
    assert status == 200 and auto["every"] == "1m" and len(auto["series"][0]["points"]) == 24
    month = f"{base}/farms/{FARM.id}/zones/{ZONE.id}/readings?kind=soil_moisture&" + span(T0, T0 + timedelta(days=30))
    status, _, chosen = get(month, token)
    assert status == 200 and chosen["every"] == "1h" and len(chosen["series"][0]["points"]) == 2
    status, _, empty = get(f"{url.replace('soil_moisture', 'rainfall')}", token)
    assert status == 200 and empty["series"] == []
    status, _, default = get(f"{base}/farms/{FARM.id}/zones/{ZONE.id}/readings?kind=battery", token)
    assert status == 200 and datetime.fromisoformat(default["end"]) - datetime.fromisoformat(
        default["start"]
    ) == timedelta(days=1)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("kind=soil_moisture&every=5x", "15m or 1h"),
        ("kind=soil_moisture&every=30s", "from 1m"),
        ("kind=soil_moisture&start=2026-07-01T00:00:00Z&end=2026-07-08T00:00:00Z&every=1m", "every=5m or more"),
        ("kind=soil_moisture&start=2026-07-01T00:00:00", "timezone"),
        ("kind=soil_moisture&start=2025-01-01T00:00:00Z&end=2026-07-08T00:00:00Z", "366 days"),
        ("kind=soil_moisture&start=2026-07-08T00:00:00Z&end=2026-07-01T00:00:00Z", "before end"),
        ("kind=soil_moisture&start=0001-01-01T00:00:00Z&end=0001-01-02T00:00:00Z", "between 1970 and 2200"),
        ("kind=soil_moisture&end=9999-12-31T23:59:59Z", "between 1970 and 2200"),
        ("kind=rain", "kind"),
        ("", "kind"),
        ("kind=soil_moisture&per=device", "per"),
    ],
)
def test_bad_readings_requests_are_problems_that_say_why(
    served: tuple[str, FarmRegistry], query: str, says: str
) -> None:
    base, registry = served
    token = registry.issue_token(FARM.id, "phone", [Scope.READ])
    status, headers, problem = get(f"{base}/farms/{FARM.id}/zones/{ZONE.id}/readings?{query}", token)
    assert is_problem(status, headers, problem, 422) and says in problem["detail"], problem
    status, headers, problem = get(f"{base}/farms/{FARM.id}/zones/nowhere/readings?kind=battery", token)
    assert is_problem(status, headers, problem, 404)
    status, headers, problem = get(f"{base}/farms/hill-farm/zones/{ZONE.id}/readings?kind=battery", token)
    assert is_problem(status, headers, problem, 404)


def aggregate(kind: SensorKind, start: datetime, width_s: int, mean: float, revision: int = 1) -> ZoneAggregate:
    return ZoneAggregate.create(
        farm=FARM.id,
        zone=ZONE.id,
        kind=kind,
        window_start=start,
        window_end=start + timedelta(seconds=width_s),
        count=3,
        mean=mean,
        min=mean - 1,
        max=mean + 1,
        last=mean,
        revision=revision,
    )


def test_aggregates_of_a_width_by_window_and_kind(served: tuple[str, FarmRegistry], influx: InfluxClient) -> None:
    base, registry = served
    token = registry.issue_token(FARM.id, "phone", [Scope.READ])
    hours = [aggregate(SensorKind.SOIL_MOISTURE, T0 + timedelta(hours=h), 3600, 20.0 + h) for h in range(3)]
    hours.append(aggregate(SensorKind.AIR_TEMPERATURE, T0, 3600, 25.0))
    quarters = [aggregate(SensorKind.SOIL_MOISTURE, T0 + timedelta(minutes=15 * q), 900, 30.0 + q) for q in range(4)]
    revised = aggregate(SensorKind.SOIL_MOISTURE, T0 + timedelta(hours=1), 3600, 21.5, revision=2)
    influx.write([aggregate_point(a) for a in (*hours, *quarters, revised)])
    url = f"{base}/farms/{FARM.id}/zones/{ZONE.id}/aggregates?{span(T0, T0 + timedelta(hours=3))}"

    status, _, body = get(url, token)
    assert status == 200 and body["width"] == "1h", body
    assert [(a["kind"], a["mean"], a["revision"]) for a in body["items"]] == [
        ("air_temperature", 25.0, 1),
        ("soil_moisture", 20.0, 1),
        ("soil_moisture", 21.5, 2),
        ("soil_moisture", 22.0, 1),
    ]
    status, _, soil = get(f"{url}&width=15m&kind=soil_moisture", token)
    assert status == 200 and [a["mean"] for a in soil["items"]] == [30.0, 31.0, 32.0, 33.0]
    assert datetime.fromisoformat(soil["items"][1]["window_end"]) == T0 + timedelta(minutes=30)
    for bad in ("width=5m", "kind=rain", f"width=15m&{span(T0, T0 + timedelta(days=120))}"):
        status, headers, problem = get(f"{base}/farms/{FARM.id}/zones/{ZONE.id}/aggregates?{bad}", token)
        assert is_problem(status, headers, problem, 422), bad


def test_harvest_is_degree_days_since_planting_against_the_crops_need(
    served: tuple[str, FarmRegistry], influx: InfluxClient
) -> None:
    base, registry = served
    token = registry.issue_token(FARM.id, "phone", [Scope.READ])
    url = f"{base}/farms/{FARM.id}/zones/{ZONE.id}/harvest"
    status, _, before = get(url, token)
    assert status == 200, before
    assert before["gdd_total"] == 0 and before["days_left"] is None and before["recommendation"] is None
    assert before["gdd_target"] == 1400.0 and before["crop"] == "tomato"

    tz = ZoneInfo(FARM.timezone)
    today = datetime.now(tz).date()
    days = [today - timedelta(days=n) for n in range(10, 0, -1)]  # ten closed days, the last one yesterday
    gdds = [10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 20.0, 20.0, 20.0, 20.0]
    influx.write([day_point(zone_day(d, g), Day.on(d, tz).start) for d, g in zip(days, gdds, strict=True)])
    issued = Recommendation.create(
        id=uuid.uuid4(),
        farm=FARM.id,
        zone=ZONE.id,
        kind=RecommendationKind.HARVEST,
        severity=Severity.INFO,
        issued_at=datetime.now(UTC) - timedelta(hours=2),
        valid_until=datetime.now(UTC) + timedelta(hours=22),
        message="ready in about 12 days",
        model="rules@1",
        confidence=0.6,
    )
    points: list[Measurement] = [recommendation_point(issued)]
    influx.write(points)

    status, _, body = get(url, token)
    assert status == 200, body
    assert body["gdd_total"] == pytest.approx(170.0) and body["days_counted"] == 10
    assert body["gdd_rate_per_day"] == pytest.approx(20.0) and body["rate_days"] == 7
    assert body["days_left"] == pytest.approx((1400 - 170) / 20)
    assert date.fromisoformat(body["as_of"]) == days[-1]
    assert date.fromisoformat(body["expected"]) == days[-1] + timedelta(days=round((1400 - 170) / 20))
    assert body["share"] == pytest.approx(170 / 1400)
    assert body["recommendation"]["id"] == str(issued.id) and body["recommendation"]["message"] == issued.message
    status, headers, problem = get(f"{base}/farms/{FARM.id}/zones/nowhere/harvest", token)
    assert is_problem(status, headers, problem, 404)


def zone_day(day: date, gdd: float) -> ZoneDay:
    return ZoneDay.create(
        farm=FARM.id, zone=ZONE.id, day=day, tmin=12.0, tmax=30.0, et0_mm=5.0, gdd=gdd, hours=24, revision=1
    )
