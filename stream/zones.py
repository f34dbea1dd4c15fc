"""The zone stage: one zone's batch of clean readings in; its revised windows, closed days and recommendations out,
and each scored hour's soil state and forecast (stored only, ``ml.zonestate``).

The window logic is pure (``stream.windows``, ``stream.advice``); this module reads what it needs back from InfluxDB
(``storage.zones``) and runs blocking, on one of the agent's threads. Statistics come from the stored readings,
which the store agent writes before their clean record reaches this stage, so a window is always what the
database holds and a redelivered or re-opened window can never count a reading twice. Nothing here writes: the
agent sends the records to Kafka, then writes their points, then saves the zone's clock.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ml.context import HISTORY_H, RUN_BEFORE, SensorHour, SensorSuspicion, sensor_hour
from ml.faulthistory import FARM_KINDS
from ml.features import CONTEXT_H
from ml.scoring import Scorer, ZoneContext
from ml.timeline import HOUR_S, Day, Stats, Window, ZoneTimeline, revise, suspicions, window_stats, zone_days
from ml.zonestate import SoilOutlook
from smartfarm.layout import Farm, Layout, SensorKind, Zone
from smartfarm.records import AdviceStatus, Recommendation, ZoneAggregate, ZoneDay
from storage.influx import InfluxClient
from storage.schema import (
    Measurement,
    SoilForecastPoint,
    ZoneStatePoint,
    aggregate_point,
    day_point,
    recommendation_point,
)
from storage.zones import (
    StoredReading,
    decisions,
    hourly_means,
    recent_readings,
    stored_aggregates,
    stored_counts,
    stored_days,
    stored_readings,
)
from stream.advice import ISSUED_FOR_S, advise, forget_declined, readvise
from stream.forecasts import ForecastBook
from stream.live import LiveMessage, LiveZone
from stream.windows import WIDTHS_S, ZoneClock

log = logging.getLogger(__name__)

PREVIOUS_WITHIN_S = 12 * 3600
"""How far back a sensor's readings before an hour are looked for: past the longest silence a node sends after
(a dropout of the simulator lasts up to 9 h at 15-minute readings), and past the ``RUN_BEFORE`` readings its
run of repeats counts back over."""


def _wants_sensor_hours(scorer: Scorer) -> bool:
    """Only a scorer with a fault detector needs each sensor's hour; the others are spared the extra query."""
    return bool(getattr(scorer, "wants_sensor_hours", False))


@dataclass(slots=True)
class ZoneOutput:
    """What one zone's batch produced."""

    aggregates: list[ZoneAggregate] = field(default_factory=list)
    days: list[ZoneDay] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    """The farm's time zone: a day's point is stamped at its local midnight."""
    soil: list[Measurement] = field(default_factory=list)
    """Each scored hour's ``zone_state`` and ``soil_forecast`` points: stored only, no Kafka record."""
    counted: int = 0
    """Due windows computed from this process's own count (no readback)."""
    read_back: int = 0
    """Due windows computed from their stored readings, read back (taken over, restarted, late readings)."""
    scored: int = 0
    """Hours scored (closed, or revised after their close)."""
    with_forecast: int = 0
    """Of those, hours whose context had the farm's weather forecast."""

    def lines(self) -> list[str]:
        """The InfluxDB lines of every record (a revision overwrites its window's point)."""
        out = [aggregate_point(a).to_line() for a in self.aggregates]
        out += [day_point(d, Day.on(d.day, self.tz).start).to_line() for d in self.days]
        out += [recommendation_point(r).to_line() for r in self.recommendations]
        out += [p.to_line() for p in self.soil]
        return out


def soil_forecast_points(farm: str, zone: str, window_end: datetime, outlook: SoilOutlook) -> list[SoilForecastPoint]:
    return [
        SoilForecastPoint(
            time=window_end + timedelta(hours=h),
            farm=farm,
            zone=zone,
            horizon=f"{h}h",
            moisture_pct=theta,
            model=outlook.model,
        )
        for h, theta in sorted(outlook.moisture_pct.items())
    ]


def soil_points(scorer: Scorer, context: ZoneContext) -> list[Measurement]:
    """The hour's ``zone_state`` and ``soil_forecast`` points by the scorer; none without soil moisture."""
    farm, zone, end = context.farm.id, context.zone.id, context.window_end
    out: list[Measurement] = []
    if (state := scorer.zone_state(context)) is not None:
        out.append(ZoneStatePoint.of(state, time=end, farm=farm, zone=zone))
    if (outlook := scorer.soil_outlook(context)) is not None:
        out += soil_forecast_points(farm, zone, end, outlook)
    return out


def _stats(a: ZoneAggregate) -> Stats:
    return Stats(a.count, a.mean, a.min, a.max, a.last)


def _same_day(a: ZoneDay, b: ZoneDay) -> bool:
    pairs = ((a.tmin, b.tmin), (a.tmax, b.tmax), (a.et0_mm, b.et0_mm), (a.gdd, b.gdd), (a.rain_mm or 0, b.rain_mm or 0))
    return a.hours == b.hours and all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) for x, y in pairs)


class ZoneStage:
    """Windows, days and advice of the zones of one layout, reading back from one database.

    Args:
        grace_s: how far behind a zone's latest event time its windows stay open for late readings.
        forecasts: each farm's weather forecasts (``stream.forecasts``): an hour's context gets the newest out by
            its end.
    """

    def __init__(
        self,
        layout: Layout,
        client: InfluxClient,
        scorer: Scorer,
        grace_s: float,
        forecasts: ForecastBook | None = None,
    ) -> None:
        self.client = client
        self.scorer = scorer
        self.grace_s = grace_s
        self.forecasts = forecasts or ForecastBook()
        self.live: dict[tuple[str, str], LiveZone] = {}
        """Each zone's open windows as this process counted them (the zone thread's alone)."""
        self.use(layout)

    def use(self, layout: Layout) -> None:
        """Work by ``layout`` from now on (a zone added, a device registered or retired, while running)."""
        self.depths = {(d.id, s.id): s.depth_cm for farm in layout.farms for d in farm.devices for s in d.sensors}
        self.zones: dict[tuple[str, str], tuple[Farm, Zone]] = {
            (farm.id, zone.id): (farm, zone) for farm in layout.farms for zone in farm.zones
        }

    def refresh(self) -> None:
        """Let the scorer pick up newly promoted models; once per batch of zone steps."""
        self.scorer.refresh()

    def step(
        self,
        farm_id: str,
        zone_id: str,
        clock: ZoneClock,
        times: Iterable[float],
        messages: Sequence[LiveMessage] = (),
    ) -> ZoneOutput:
        """Move ``clock`` on by a batch's event times (in place); what became due, computed. ``messages``: the
        batch's clean messages, counted in the zone's open windows (``stream.live``), so a window that closes
        with all its readings counted here is not read back. Blocking I/O."""
        farm, zone = self.zones[(farm_id, zone_id)]
        live = self.live.get((farm_id, zone_id))
        if messages:
            if live is None:
                live = self.live[(farm_id, zone_id)] = LiveZone()
            live.feed(messages)
        tz = ZoneInfo(farm.timezone)
        due = clock.observe(times, self.grace_s, tz)
        out = ZoneOutput(tz=tz)
        if not due:
            return out
        closed = sorted(w for w in due.closed if w.width_s == HOUR_S)
        counted = self._counted(farm, zone, live, due.windows)
        wanted = [w for w in due.windows if w not in counted]
        out.counted, out.read_back = len(counted), len(wanted)
        if _wants_sensor_hours(self.scorer):
            wanted += closed  # each sensor's readings over the hour, for the fault detector
        readings = (
            stored_readings(self.client, farm.id, zone.id, min(w.start_s for w in wanted), max(w.end_s for w in wanted))
            if wanted
            else []
        )
        computed = self._computed(readings, counted, live)
        out.aggregates = self._windows(farm, zone, due.windows, computed)
        out.days = [d for d in (self._day(farm, zone, span, tz, out.aggregates) for span in sorted(due.days)) if d]
        revised = sorted(
            {
                Window(HOUR_S, int(a.window_start.timestamp()))
                for a in out.aggregates
                if a.width_s == HOUR_S and a.revision > 1
            }
            - set(closed)
        )
        flags = {w.start_s: live.suspicions(w) for w in closed if w in counted} if live is not None else {}
        self._score(farm, zone, closed, tz, out, clock, readings, revised, flags)
        if live is not None:
            live.forget(due.windows)
        return out

    def _counted(self, farm: Farm, zone: Zone, live: LiveZone | None, due: set[Window]) -> set[Window]:
        """The due windows this process counted whole (``stream.live``): as many readings of each kind as stored."""
        if live is None:
            return set()
        mine = [w for w in due if live.holds(w)]
        if not mine:
            return set()
        start, end = min(w.start_s for w in mine), max(w.end_s for w in mine)
        stored = stored_counts(self.client, farm.id, zone.id, start, end, WIDTHS_S)
        return live.complete(mine, {(Window(w, s), kind): n for (w, s, kind), n in stored.items()})

    @staticmethod
    def _computed(
        readings: list[StoredReading], counted: set[Window], live: LiveZone | None
    ) -> dict[tuple[Window, SensorKind], Stats]:
        """Each window's statistics by kind: counted here, or from the stored readings."""
        good = [(r.time_s, r.kind, r.value) for r in readings if r.good]
        out: dict[tuple[Window, SensorKind], Stats] = {}
        for width_s in WIDTHS_S:
            out.update((key, stats) for key, stats in window_stats(good, width_s).items() if key[0] not in counted)
        if live is not None:
            for window in counted:
                out.update(live.stats(window))
        return out

    def _windows(
        self, farm: Farm, zone: Zone, windows: set[Window], computed: Mapping[tuple[Window, SensorKind], Stats]
    ) -> list[ZoneAggregate]:
        out: list[ZoneAggregate] = []
        for width_s in WIDTHS_S:
            mine = [w for w in windows if w.width_s == width_s]
            if not mine:
                continue
            start, end = min(w.start_s for w in mine), max(w.end_s for w in mine)
            stored = {
                (Window.of(width_s, a.window_start.timestamp()), a.kind): (_stats(a), a.revision)
                for a in stored_aggregates(self.client, farm.id, zone.id, width_s, start, end)
            }
            out += revise(farm.id, zone.id, mine, computed, stored)
        return out

    def _hours(
        self, farm: Farm, zone: Zone, start_s: float, end_s: float, fresh: list[ZoneAggregate]
    ) -> list[ZoneAggregate]:
        """The zone's 1-hour aggregates starting in the range: stored, overlaid by this batch's new revisions."""
        found = {
            (a.window_start, a.kind): a
            for a in stored_aggregates(self.client, farm.id, zone.id, HOUR_S, start_s, end_s)
        }
        for a in fresh:
            if a.width_s == HOUR_S and start_s <= a.window_start.timestamp() < end_s:
                found[(a.window_start, a.kind)] = a
        return sorted(found.values(), key=lambda a: (a.window_start, a.kind.value))

    def _day(self, farm: Farm, zone: Zone, span: Day, tz: ZoneInfo, fresh: list[ZoneAggregate]) -> ZoneDay | None:
        made = zone_days(farm, zone, self._hours(farm, zone, span.start_s, span.end_s, fresh))
        if not made:
            return None
        day = made[0]
        before = stored_days(self.client, farm.id, zone.id, span.start_s, span.start_s + 1, {span.start_s: span.day})
        if before and _same_day(day, before[0]):
            return None
        return day.model_copy(update={"revision": before[0].revision + 1}) if before else day

    def _score(
        self,
        farm: Farm,
        zone: Zone,
        closed: list[Window],
        tz: ZoneInfo,
        out: ZoneOutput,
        clock: ZoneClock,
        readings: list[StoredReading],
        revised: list[Window],
        counted_flags: Mapping[int, list[SensorSuspicion]],
    ) -> None:
        """Score each hour that closed and each hour revised after its close (``stream.advice.readvise``), in order;
        what they need is read once for all of them. ``counted_flags``: the flag counts of the hours this process
        counted whole (the others come from ``readings``)."""
        again = set(revised)
        closed = sorted({*closed, *revised})
        if not closed:
            return
        first, last = closed[0], closed[-1]
        timeline = ZoneTimeline(
            farm,
            zone,
            self._hours(farm, zone, first.end_s - CONTEXT_H * HOUR_S, last.end_s, out.aggregates),
            self._days_before(farm, zone, last, tz, out.days),
        )
        declined = {
            rid
            for rid, d in decisions(self.client, farm.id, time.time() - ISSUED_FOR_S, zone.id).items()
            if d["status"] == AdviceStatus.DECLINED.value
        }
        if forget_declined(clock.advice, declined):
            log.info("%s/%s: the pending irrigation was declined; its water is no longer counted", farm.id, zone.id)
        flags = {**suspicions(readings, first.start_s, last.end_s), **counted_flags}
        sensors: dict[int, list[SensorHour]] = {}
        peers: dict[int, list[tuple[str, SensorHour]]] = {}
        if _wants_sensor_hours(self.scorer):
            sensors, peers = self._sensor_hours(farm, zone, closed, readings)
        for window in closed:
            context = timeline.context(
                window.end,
                suspicions=flags.get(window.start_s, ()),
                sensors=sensors.get(window.start_s, ()),
                forecast=self.forecasts.newest(farm.id, window.end),
                farm_sensors=peers.get(window.start_s, ()),
            )
            out.scored += 1
            out.with_forecast += context.forecast is not None
            if window in again:
                out.recommendations += readvise(self.scorer, context, clock.advice, clock.newest_s)
            else:
                out.recommendations += advise(self.scorer, context, clock.advice)
            out.soil += soil_points(self.scorer, context)

    def _sensor_hours(
        self, farm: Farm, zone: Zone, closed: list[Window], readings: list[StoredReading]
    ) -> tuple[dict[int, list[SensorHour]], dict[int, list[tuple[str, SensorHour]]]]:
        """Each closed hour's ``SensorHour`` of every sensor with readings in it (good and suspect: the fault
        detector judges them all), with the sensor's last readings before the hour (its gap, its first step, how
        long a repeated value had held) and its hourly means of the week before (``ml.context.HISTORY_H``); and
        the same of the farm's other zones' sensors of the kinds this zone has that read the farm's weather
        (``ml.faulthistory.FARM_KINDS``), with their zones: the detector's peers for this zone's weather sensors.
        Those zones' readings of the hour are read back as stored by now: a zone lagging behind lends fewer peers,
        never wrong ones."""
        mine = {s.kind for d in farm.devices if d.zone == zone.id for s in d.sensors}
        kinds = FARM_KINDS & mine if len(farm.zones) > 1 else frozenset()
        first, end = closed[0].start_s, closed[-1].end_s
        stored = recent_readings(
            self.client, farm.id, zone.id, first - PREVIOUS_WITHIN_S, first, RUN_BEFORE, peers_of=kinds
        )
        since = first - HISTORY_H * HOUR_S
        means = hourly_means(self.client, farm.id, zone.id, since, closed[-1].start_s, peers_of=kinds)
        own = self._each_sensors_hours(closed, readings, stored, means)
        if not kinds:
            return own, {}
        elsewhere = stored_readings(self.client, farm.id, zone.id, first, end, peers_of=kinds, own=False)
        zones = {d.id: d.zone for d in farm.devices}
        peers = {
            start_s: [(zones.get(h.device, ""), h) for h in hours]
            for start_s, hours in self._each_sensors_hours(closed, elsewhere, stored, means).items()
        }
        return own, peers

    def _each_sensors_hours(
        self,
        closed: list[Window],
        readings: list[StoredReading],
        stored: Mapping[tuple[str, str], list[tuple[float, float]]],
        means: Mapping[tuple[str, str], Mapping[int, float]],
    ) -> dict[int, list[SensorHour]]:
        """``_sensor_hours`` of ``readings``, with each sensor's ``stored`` readings before the first closed hour
        and its hourly ``means``."""
        by_sensor: dict[tuple[str, str, SensorKind], list[tuple[float, float]]] = {}
        for r in sorted(readings, key=lambda r: r.time_s):
            by_sensor.setdefault((r.device, r.sensor, r.kind), []).append((r.time_s, r.value))
        out: dict[int, list[SensorHour]] = {}
        for (device, sensor, kind), pairs in by_sensor.items():
            known = dict(stored.get((device, sensor), []))
            hourly = means.get((device, sensor), {})
            for window in closed:
                inside = [p for p in pairs if window.start_s <= p[0] < window.end_s]
                if not inside:
                    continue
                before = sorted({**known, **{t: v for t, v in pairs if t < window.start_s}}.items())[-RUN_BEFORE:]
                history = [hourly.get(window.start_s - HOUR_S * (i + 1), math.nan) for i in range(HISTORY_H)]
                depth = self.depths.get((device, sensor))
                hour = sensor_hour(device, sensor, kind, depth, inside, before, history)
                out.setdefault(window.start_s, []).append(hour)
        return out

    def _days_before(self, farm: Farm, zone: Zone, window: Window, tz: ZoneInfo, fresh: list[ZoneDay]) -> list[ZoneDay]:
        """The zone's closed days since planting, before the window's local day."""
        today = datetime.fromtimestamp(window.start_s, tz).date()
        first = min(zone.planting_date, today)
        days = [first + timedelta(days=i) for i in range((today - first).days)]
        midnights = {Day.on(d, tz).start_s: d for d in days}
        if not midnights:
            return []
        found: Mapping[date, ZoneDay] = {
            d.day: d for d in stored_days(self.client, farm.id, zone.id, min(midnights), max(midnights) + 1, midnights)
        }
        merged = {**found, **{d.day: d for d in fresh if d.day < today}}
        return [merged[d] for d in sorted(merged)]
