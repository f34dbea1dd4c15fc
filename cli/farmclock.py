"""Where in the season ``smartfarm up`` runs its simulated farm when no start is set.

Started at today's date, the default layout's crops would be months past harvest in winter, and nothing would ever
be advised. So the farm runs in the layout's own season: the fleet plays the season so far as fast as the pipeline
takes it (the catch-up), from the planting of the zone that reaches harvest first, and goes live, paced at the
chosen speed, a couple of days after that zone comes within the harvest notice. By then the worker has seen every
day since that planting, as it would have had the sensors been in the field since, so it can sum the degree days
and estimate the harvest, and the catch-up's weeks of weather have dried soils and broken sensors to advise on.

The degree days are the simulated farm's own weather (``edge.weather.FarmWeather``, the day's mean and range) put
through the stream's rule (``ml.features.growing_degree_days``); the estimate the stream makes from its readings
lands within a day or two of it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from edge.weather import Climate, FarmWeather
from ml.features import GDD_TO_HARVEST, growing_degree_days
from ml.rules.harvest import HARVEST_NOTICE_DAYS, RATE_DAYS
from smartfarm.layout import Farm, Layout, Zone

LIVE_AFTER_NOTICE_DAYS = 4
"""Days the catch-up runs past the day the first harvest comes within notice, so its estimate is out at once."""

HORIZON_DAYS = 300
"""How far past planting a zone's harvest is looked for."""

FALLBACK_DAYS = 30
"""With no harvest in reach (an unusual layout), the catch-up is this much of the season after the last planting."""

SEASON_REACH_DAYS = 300
"""How long before today the farm's season may begin: well inside InfluxDB's 52-week retention, past which the
worker refuses readings as stale (``stale_timestamp``) and the database would not keep them."""


@dataclass(frozen=True)
class SeasonWindow:
    """The simulated farm's start and catch-up, and why."""

    start: datetime
    catch_up: timedelta
    zone: str | None
    """The zone whose harvest sets the window; None for the fallback."""
    harvest_within_notice: date | None

    @property
    def live(self) -> datetime:
        return self.start + self.catch_up

    def describe(self) -> str:
        days = self.catch_up / timedelta(days=1)
        why = (
            f"{self.zone}'s harvest comes within {HARVEST_NOTICE_DAYS:.0f} days on {self.harvest_within_notice}"
            if self.zone
            else f"{FALLBACK_DAYS} days after the last planting"
        )
        return (
            f"the season from {self.start:%Y-%m-%d}: {days:.0f} days caught up as fast as the pipeline takes them, "
            f"then live from {self.live:%Y-%m-%d %H:%M} UTC ({why})"
        )


def recent_season(layout: Layout, today: date) -> Layout:
    """``layout`` with every planting moved on by the same whole years, until the earliest is at most
    ``SEASON_REACH_DAYS`` before ``today``: a layout written for a season years ago still plays, as this year's."""
    earliest = min(z.planting_date for f in layout.farms for z in f.zones)
    years = 0
    while _years_on(earliest, years) < today - timedelta(days=SEASON_REACH_DAYS):
        years += 1
    if not years:
        return layout
    data = layout.model_dump(mode="python")
    for farm in data["farms"]:
        for zone in farm["zones"]:
            zone["planting_date"] = _years_on(zone["planting_date"], years)
    return Layout.model_validate(data)


def _years_on(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a common year
        return day.replace(year=day.year + years, day=28)


def _notice_day(farm: Farm, zone: Zone, weather: FarmWeather) -> date | None:
    """The first day the stream's harvest rule would speak for this zone, from the simulated weather."""
    target = GDD_TO_HARVEST[zone.crop]
    total = 0.0
    recent: deque[float] = deque(maxlen=RATE_DAYS)
    for offset in range(HORIZON_DAYS):
        day = zone.planting_date + timedelta(days=offset)
        drawn = weather.day(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))
        gdd = growing_degree_days(
            drawn.mean_temp_c - drawn.daily_range_c / 2, drawn.mean_temp_c + drawn.daily_range_c / 2, zone.crop
        )
        total += gdd
        recent.append(gdd)
        rate = sum(recent) / len(recent)
        remaining = target - total
        if remaining <= 0 or (rate > 0 and remaining / rate <= HARVEST_NOTICE_DAYS):
            return day
    return None


def season_window(layout: Layout, seed: int, climate: Climate, interval_s: float) -> SeasonWindow:
    """The window of the layout's season that shows the most: see the module's docstring."""
    best: tuple[date, Zone] | None = None
    for farm in layout.farms:
        weather = FarmWeather(farm, seed, climate)
        for zone in farm.zones:
            notice = _notice_day(farm, zone, weather)
            if notice is not None and (best is None or notice < best[0]):
                best = (notice, zone)
    if best is None:
        planted = max(z.planting_date for f in layout.farms for z in f.zones)
        start = datetime(planted.year, planted.month, planted.day, tzinfo=UTC)
        return SeasonWindow(start, timedelta(days=FALLBACK_DAYS), None, None)
    notice, zone = best
    start = datetime(zone.planting_date.year, zone.planting_date.month, zone.planting_date.day, tzinfo=UTC)
    live = datetime(notice.year, notice.month, notice.day, tzinfo=UTC) + timedelta(days=LIVE_AFTER_NOTICE_DAYS)
    catch_up = timedelta(seconds=(live - start).total_seconds() // interval_s * interval_s)
    return SeasonWindow(start, catch_up, zone.id, notice)
