"""The InfluxDB measurement schema: which values are tags and which are fields, and why.

A tag is indexed, and every distinct combination of tag values is a series held in InfluxDB's in-memory index.
So only identifiers from the farm layout, a bounded set, are tags (farm, zone, device, sensor, kind, severity):
a farm of 500 devices with 8 sensors each makes 4,000 reading series, whatever the message rate. Everything
that grows without bound or is only ever read back (values, sequence numbers, ids, messages, model versions)
is a field. A breaking change to a measurement gets a new measurement name; ``SCHEMA_VERSION`` records the
current one.

A point takes its values from the record or value it stores by name (``Measurement.of``); what the record does not
carry as such (a window's ``width`` tag, a day's local midnight, text for a tuple) is mapped here, once, by
``aggregate_point``, ``day_point`` and ``recommendation_point``; ``storage.zones`` reads them back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Self
from uuid import UUID

from influxdb_client import Point, WritePrecision

from smartfarm.contract import Strict, Timestamp
from smartfarm.identifiers import Identifier
from smartfarm.layout import SensorKind
from smartfarm.records import Recommendation, ZoneAggregate, ZoneDay

WIDTH_TAGS = {900: "15m", 3600: "1h"}
"""``zone_aggregate``'s ``width`` tag of a window width in seconds (also InfluxQL's GROUP BY spelling)."""


class _TagMarker:
    """Marks a model field as an InfluxDB tag."""


Tag = Annotated[Identifier, _TagMarker()]
TagKind = Annotated[SensorKind, _TagMarker()]
TagText = Annotated[str, _TagMarker()]


class Measurement(Strict):
    """A point of one measurement. Fields marked ``Tag`` become tags; ``time`` is the timestamp; the rest are
    fields. ``None`` fields are left out of the point."""

    MEASUREMENT: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1

    time: Timestamp

    @classmethod
    def of(cls, source: object, **given: Any) -> Self:
        """The point of ``source`` (a record or value): each of the measurement's names it has, by name; ``given``
        supplies what it does not carry (the time, tags it lacks) or carries in another form."""
        names = (name for name in cls.model_fields if name not in given)
        return cls(**{name: getattr(source, name) for name in names if hasattr(source, name)}, **given)

    @classmethod
    def tag_names(cls) -> tuple[str, ...]:
        return tuple(
            name for name, info in cls.model_fields.items() if any(isinstance(m, _TagMarker) for m in info.metadata)
        )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        tags = set(cls.tag_names())
        return tuple(name for name in cls.model_fields if name not in tags and name != "time")

    def to_point(self) -> Point:
        point = Point(self.MEASUREMENT).time(self.time, WritePrecision.NS)
        for name in self.tag_names():
            point.tag(name, str(getattr(self, name)))
        for name in self.field_names():
            value = getattr(self, name)
            if value is None:
                continue
            point.field(name, str(value) if isinstance(value, UUID) else value)
        return point

    def to_line(self) -> str:
        """The point as one line of InfluxDB line protocol, nanosecond precision."""
        return self.to_point().to_line_protocol()


class ReadingPoint(Measurement):
    """``reading``: one clean sensor value with its quality (``good`` or ``suspect``) and, when suspect, its flags.

    Quality is a field, not a tag: a redelivered message may be judged again with other flags, and its point must
    overwrite the first one (same series, same time) rather than start a second series. ``storage.lines`` writes
    the same lines fast."""

    MEASUREMENT: ClassVar[str] = "reading"

    farm: Tag
    zone: Tag
    device: Tag
    sensor: Tag
    kind: TagKind
    value: float
    seq: int
    quality: str
    flags: str | None = None
    depth_cm: float | None = None


class ZoneAggregatePoint(Measurement):
    """``zone_aggregate``: statistics of one sensor kind over one zone and window; time is the window start and
    ``width`` (``15m``, ``1h``) tells the windows that start together apart. A revision overwrites the point of
    its window (same series, same time), so the database holds the latest."""

    MEASUREMENT: ClassVar[str] = "zone_aggregate"

    farm: Tag
    zone: Tag
    kind: TagKind
    width: TagText
    count: int
    mean: float
    min: float
    max: float
    last: float
    revision: int


class ZoneDayPoint(Measurement):
    """``zone_day``: one zone's day; time is the day's local midnight."""

    MEASUREMENT: ClassVar[str] = "zone_day"

    farm: Tag
    zone: Tag
    et0_mm: float
    gdd: float
    tmin: float
    tmax: float
    rain_mm: float | None = None
    hours: int
    estimated: str | None = None
    revision: int


class RecommendationPoint(Measurement):
    """``recommendation``: one recommendation event; time is when it was issued."""

    MEASUREMENT: ClassVar[str] = "recommendation"

    farm: Tag
    zone: Tag
    kind: TagText
    severity: TagText
    id: UUID
    message: str
    model: str
    confidence: float
    amount_mm: float | None = None
    device: str | None = None
    sensor: str | None = None
    start_at: str | None = None
    supersedes: str | None = None
    valid_until: str | None = None


class DecisionPoint(Measurement):
    """``advice_decision``: what a person decided about a recommendation (accepted, declined, applied), at the
    time they decided. The advisor reads the declines of its zone; the API joins them to the recommendations."""

    MEASUREMENT: ClassVar[str] = "advice_decision"

    farm: Tag
    zone: Tag
    recommendation: str
    status: str
    decided_by: str
    amount_mm: float | None = None
    start_at: str | None = None
    command: str | None = None
    note: str | None = None


class FieldLogPoint(Measurement):
    """``field_log``: water a person logged for a zone through the API: an irrigation applied by hand (``kind``
    ``irrigation``, optionally answering a recommendation) or a manual rain gauge reading (``rain``), at the time
    it happened."""

    MEASUREMENT: ClassVar[str] = "field_log"

    farm: Tag
    zone: Tag
    kind: TagText
    """A tag: two values (``irrigation``, ``rain``)."""
    amount_mm: float
    logged_by: str
    recommendation: str | None = None
    note: str | None = None


class ZoneStatePoint(Measurement):
    """``zone_state``: a zone's root zone at the close of an hour (time: the hour's end), by the rule that advises
    its irrigation: the measured soil moisture against ``trigger_pct`` (field capacity less RAW at the managed
    depth, % vol; below it irrigation is advised), and the depletion, RAW and TAW in mm. No point for an hour
    without soil moisture. Recomputed the same when a window is scored again, so it overwrites its point."""

    MEASUREMENT: ClassVar[str] = "zone_state"

    farm: Tag
    zone: Tag
    moisture_pct: float
    trigger_pct: float
    field_capacity_pct: float
    depletion_mm: float
    raw_mm: float
    taw_mm: float
    model: str


class SoilForecastPoint(Measurement):
    """``soil_forecast``: a zone's soil moisture (% vol) predicted ``horizon`` (``6h``, ``24h``) after an hour's
    close; time is the time the prediction is for, so it lines up with the ``zone_state`` measured then."""

    MEASUREMENT: ClassVar[str] = "soil_forecast"

    farm: Tag
    zone: Tag
    horizon: TagText
    moisture_pct: float
    model: str


class DeviceStatusPoint(Measurement):
    """``device_status``: a device went online (1) or offline (0)."""

    MEASUREMENT: ClassVar[str] = "device_status"

    farm: Tag
    device: Tag
    online: bool
    will: bool


class DeviceClockPoint(Measurement):
    """``device_clock``: a device's message was refused for its timestamp, at the time it was received: how far its
    stamp was from its receipt (negative: behind, a clock reset to 1970 or 2000; positive: ahead). Device health
    shows these devices' clocks as suspect."""

    MEASUREMENT: ClassVar[str] = "device_clock"

    farm: Tag
    device: Tag
    reason: TagText
    """A tag: two values (``stale_timestamp``, ``future_timestamp``)."""
    skew_s: float


MEASUREMENTS: tuple[type[Measurement], ...] = (
    ReadingPoint,
    ZoneAggregatePoint,
    ZoneDayPoint,
    RecommendationPoint,
    DecisionPoint,
    FieldLogPoint,
    DeviceStatusPoint,
    DeviceClockPoint,
    ZoneStatePoint,
    SoilForecastPoint,
)


def aggregate_point(a: ZoneAggregate) -> ZoneAggregatePoint:
    """A window's point: stamped with its start, told apart from the other width starting then by ``width``."""
    return ZoneAggregatePoint.of(a, time=a.window_start, width=WIDTH_TAGS[a.width_s])


def day_point(d: ZoneDay, midnight: datetime) -> ZoneDayPoint:
    """A day's point, stamped with its local midnight (InfluxDB keeps the instant, not the date)."""
    return ZoneDayPoint.of(d, time=midnight, estimated=",".join(d.estimated) or None)


def recommendation_point(r: Recommendation) -> RecommendationPoint:
    """A recommendation's point. Two of one kind and severity issued at one window's close (two faulty sensors)
    would share series and time and overwrite each other; a sub-millisecond offset from the id keeps both,
    deterministically."""
    return RecommendationPoint.of(
        r,
        time=r.issued_at + timedelta(microseconds=r.id.int % 1000),
        kind=r.kind.value,
        severity=r.severity.value,
        start_at=r.start_at.isoformat() if r.start_at else None,
        supersedes=str(r.supersedes) if r.supersedes else None,
        valid_until=r.valid_until.isoformat(),
    )
