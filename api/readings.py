"""What a zone measured and what the pipeline made of it, over a time range: readings downsampled per sensor or per
kind, the zone's stored aggregates, and its harvest estimate from degree days.

Time ranges are ISO 8601 with an offset (``start`` inclusive, ``end`` exclusive), a day back from now by default,
at most ``MAX_RANGE``; buckets follow ``api.downsample``.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations at runtime.

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import UNAVAILABLE, Influx, Registry, allowed, farm_of, instant, time_range, zone_in
from api.downsample import MAX_POINTS, BadEvery, buckets, choose_every, spell
from api.problems import Problem
from ml.features import GDD_BASE_C, GDD_TO_HARVEST
from ml.rules.harvest import harvest_outlook
from ml.timeline import Day
from smartfarm.layout import Crop, SensorKind
from smartfarm.records import RecommendationKind
from storage.registry.store import Scope
from storage.schema import WIDTH_TAGS
from storage.zones import Bucket, reading_buckets, recommendations, stored_aggregates, stored_days

readings = APIRouter(prefix="/farms/{farm}", tags=["readings"], dependencies=[Depends(allowed(Scope.READ))])

Start = Annotated[AwareDatetime | None, Query(description="from (ISO 8601 with offset, inclusive); default a day ago")]
End = Annotated[AwareDatetime | None, Query(description="until (ISO 8601 with offset, exclusive); default now")]
DAY = timedelta(days=1)


class Point(BaseModel):
    """One time bucket of a series."""

    at: datetime = Field(description="the bucket's start (buckets are aligned to multiples of `every` since the epoch)")
    mean: float = Field(description="mean of the good readings in the bucket, in the kind's unit")
    min: float
    max: float
    count: int = Field(description="good readings in the bucket")


class Series(BaseModel):
    """One sensor's buckets, or the kind's over all the zone's sensors (device and sensor null)."""

    device: str | None = Field(description="the device, or null for the kind over the whole zone")
    sensor: str | None = Field(description="the sensor's id on its device, or null for the kind over the whole zone")
    points: list[Point]


class Readings(BaseModel):
    """A zone's good readings of one kind, downsampled: per bucket of `every`, per sensor or for the kind."""

    farm: str
    zone: str
    kind: SensorKind
    unit: str = Field(description="the kind's unit on the wire")
    start: datetime
    end: datetime
    every: str = Field(description="bucket width, as asked or chosen for at most ~1,000 points per series")
    series: list[Series]


def _point(b: Bucket) -> Point:
    return Point(at=datetime.fromtimestamp(b.start_s, UTC), mean=b.mean, min=b.min, max=b.max, count=b.readings)


class Per(StrEnum):
    """What a series of readings is of."""

    SENSOR = "sensor"
    """One series per sensor of the kind."""
    KIND = "kind"
    """One series of the kind over all the zone's sensors."""


@readings.get("/zones/{zone}/readings", response_model=Readings, responses=UNAVAILABLE)
def zone_readings(
    registry: Registry,
    influx: Influx,
    farm: str,
    zone: str,
    kind: Annotated[SensorKind, Query(description="the sensor kind to read")],
    start: Start = None,
    end: End = None,
    every: Annotated[
        str | None,
        Query(max_length=12, description="bucket width like 5m, 15m, 1h, 1d (1m to 366d); default: chosen"),
    ] = None,
    per: Annotated[Per, Query(description="a series per sensor, or one for the kind")] = Per.SENSOR,
) -> Readings:
    """The zone's good readings of a kind over a range: mean, min, max and count per time bucket, per sensor or
    for the kind (suspect readings are left out, as the zone's aggregates leave them out)."""
    zone_in(farm_of(registry, farm), zone)
    since, until = time_range(start, end, DAY)
    try:
        every_s = choose_every(until - since, every)
    except BadEvery as exc:
        raise Problem(422, str(exc)) from exc
    found = reading_buckets(
        influx, farm, zone, kind, since.timestamp(), until.timestamp(), every_s, by_sensor=per is Per.SENSOR
    )
    return Readings(
        farm=farm,
        zone=zone,
        kind=kind,
        unit=kind.unit,
        start=since,
        end=until,
        every=spell(every_s),
        series=[
            Series(
                device=device or None,
                sensor=sensor or None,
                points=[_point(b) for b in found[device, sensor]],
            )
            for device, sensor in sorted(found)
        ],
    )


class Width(StrEnum):
    """The widths of the zone's stored windows."""

    QUARTER = "15m"
    HOUR = "1h"


WIDTH_S = {tag: width for width, tag in WIDTH_TAGS.items()}


class Aggregate(BaseModel):
    """A zone's statistics of one sensor kind over one window, as the stream stored it (latest revision)."""

    kind: SensorKind
    window_start: datetime
    window_end: datetime
    count: int = Field(description="good readings in the window")
    mean: float
    min: float
    max: float
    last: float = Field(description="the value of the window's latest reading")
    revision: int = Field(description="1, or more when late readings changed the window")


class Aggregates(BaseModel):
    """The zone's stored aggregates of one width over a range, by window start and kind."""

    farm: str
    zone: str
    width: Width
    start: datetime
    end: datetime
    items: list[Aggregate]


@readings.get("/zones/{zone}/aggregates", response_model=Aggregates, responses=UNAVAILABLE)
def zone_aggregates(
    registry: Registry,
    influx: Influx,
    farm: str,
    zone: str,
    width: Annotated[Width, Query(description="window width: 15m or 1h")] = Width.HOUR,
    kind: Annotated[SensorKind | None, Query(description="only this kind; default every kind")] = None,
    start: Start = None,
    end: End = None,
) -> Aggregates:
    """The zone's aggregates (``zone_aggregate``) of a width whose windows start in the range: count, mean, min,
    max and last of the good readings per kind, the latest revision of each window."""
    zone_in(farm_of(registry, farm), zone)
    since, until = time_range(start, end, DAY)
    width_s = WIDTH_S[width.value]
    if buckets(until - since, width_s) > MAX_POINTS:
        raise Problem(422, f"{width.value} windows over this range are more than {MAX_POINTS:,}: ask for a shorter one")
    found = stored_aggregates(influx, farm, zone, width_s, since.timestamp(), until.timestamp())
    return Aggregates(
        farm=farm,
        zone=zone,
        width=width,
        start=since,
        end=until,
        items=[
            Aggregate(**a.model_dump(include=set(Aggregate.model_fields)))
            for a in found
            if kind is None or a.kind is kind
        ],
    )


class Recommended(BaseModel):
    """The zone's newest harvest recommendation as issued."""

    id: UUID
    issued_at: datetime
    message: str
    confidence: float


class Harvest(BaseModel):
    """A zone's harvest estimate: growing degree days since planting (from the stored days, ``zone_day``) against
    what its crop needs, at the last week's rate, by the rule that issues harvest recommendations."""

    farm: str
    zone: str
    crop: Crop
    planting_date: date
    as_of: date | None = Field(description="the last closed day counted; null before the first")
    gdd_total: float = Field(description="degree days accumulated since planting")
    gdd_target: float = Field(description="degree days the crop needs from planting to harvest")
    gdd_base_c: float = Field(description="the crop's base temperature, degC")
    gdd_rate_per_day: float | None = Field(description="degree days a day over the last rate_days days")
    rate_days: int
    days_counted: int = Field(description="closed days since planting with a stored zone_day")
    share: float = Field(description="gdd_total / gdd_target, 1 when ready")
    days_left: float | None = Field(description="days to harvest at the rate; 0 ready; null when it cannot be told")
    expected: date | None = Field(description="the local day harvest is expected, as_of + days_left")
    recommendation: Recommended | None = Field(description="the zone's newest harvest recommendation, if any")


HARVEST_LOOKBACK = timedelta(days=366)
"""How far back from today the stored days are read: a season (a vine's budbreak) is shorter."""


@readings.get("/zones/{zone}/harvest", response_model=Harvest, responses=UNAVAILABLE)
def zone_harvest(registry: Registry, influx: Influx, farm: str, zone: str) -> Harvest:
    """The zone's harvest estimate with the numbers behind it, and its newest harvest recommendation."""
    where = farm_of(registry, farm)
    found = zone_in(where, zone)
    tz = ZoneInfo(where.timezone)
    today = datetime.now(tz).date()
    first = max(found.planting_date, today - HARVEST_LOOKBACK)
    spans = [Day.on(first + timedelta(days=i), tz) for i in range(max(0, (today - first).days))]
    midnights = {span.start_s: span.day for span in spans}
    days = stored_days(influx, farm, zone, min(midnights), max(midnights) + 1, midnights) if midnights else []
    outlook = harvest_outlook(found, days)
    newest = recommendations(
        influx,
        farm,
        Day.on(found.planting_date, tz).start_s,
        datetime.now(UTC).timestamp() + 1,
        zone=zone,
        kind=RecommendationKind.HARVEST.value,
        limit=1,
    )
    recommended = (
        Recommended(
            id=newest[0]["id"],
            issued_at=instant(newest[0]["time"]),
            message=newest[0]["message"],
            confidence=newest[0]["confidence"],
        )
        if newest
        else None
    )
    base = {"farm": farm, "zone": zone, "crop": found.crop, "planting_date": found.planting_date}
    if outlook is None:
        return Harvest(
            **base,
            as_of=None,
            gdd_total=0.0,
            gdd_target=GDD_TO_HARVEST[found.crop],
            gdd_base_c=GDD_BASE_C[found.crop],
            gdd_rate_per_day=None,
            rate_days=0,
            days_counted=0,
            share=0.0,
            days_left=None,
            expected=None,
            recommendation=recommended,
        )
    as_of = days[-1].day
    return Harvest(
        **base,
        as_of=as_of,
        gdd_total=outlook.total,
        gdd_target=outlook.target,
        gdd_base_c=outlook.base_c,
        gdd_rate_per_day=outlook.rate,
        rate_days=outlook.rate_days,
        days_counted=outlook.days,
        share=min(1.0, outlook.total / outlook.target),
        days_left=outlook.days_left,
        expected=as_of + timedelta(days=round(outlook.days_left)) if outlook.days_left is not None else None,
        recommendation=recommended,
    )
