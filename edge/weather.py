"""Farm weather, generated from a seed: a daily cycle on top of day-to-day variation, the sun, wind and rain.

Pure and deterministic: ``FarmWeather(farm, seed).at(t, step_s)`` gives the same values for the same inputs,
whatever order the times are asked in, because each day's draws come from a generator seeded by
(seed, farm, day). A climate's ``events`` (a dry spell, a downpour) override the drawn rain and sky over their
span without touching any generator, so a run without events is exactly what it was before they existed.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal, Self

from pydantic import AwareDatetime, Field, model_validator
from pyfao56.refet import ascehourly

from smartfarm.contract import Strict
from smartfarm.layout import Farm

SOLAR_CONSTANT = 1361.0  # W/m2


class WeatherEvent(Strict):
    """A scenario override of the drawn weather over [start, end), for tests and demos.

    ``dry``: no rain and a clear sky, whatever the day drew. ``rain``: exactly ``rain_mm`` spread evenly over the
    span instead of the drawn rain, with the overcast sky and humid air of rain. A climate's events must not
    overlap (``check_events``), so no rule is needed for which one wins.
    """

    kind: Literal["dry", "rain"]
    start: AwareDatetime
    end: AwareDatetime
    rain_mm: float = Field(0.0, ge=0, le=1000)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"a {self.kind} event must end after it starts ({self.start} .. {self.end})")
        if (self.kind == "rain") != (self.rain_mm > 0):
            raise ValueError("a rain event needs rain_mm > 0 and a dry event none")
        return self

    @classmethod
    def dry(cls, start: datetime, duration: timedelta) -> Self:
        """A dry spell of ``duration`` from ``start``."""
        return cls(kind="dry", start=start, end=start + duration)

    @classmethod
    def rain(cls, start: datetime, duration: timedelta, rain_mm: float) -> Self:
        """``rain_mm`` of rain spread evenly over ``duration`` from ``start``."""
        return cls(kind="rain", start=start, end=start + duration, rain_mm=rain_mm)

    def covers(self, when: datetime) -> bool:
        return self.start <= when < self.end

    @property
    def rate_mm_h(self) -> float:
        return self.rain_mm / ((self.end - self.start).total_seconds() / 3600)

    def rain_between(self, begin: datetime, end: datetime) -> float:
        """The event's rain over [begin, end), mm: exact for any step, aligned with the event or not."""
        overlap_s = (min(end, self.end) - max(begin, self.start)).total_seconds()
        return self.rate_mm_h * overlap_s / 3600 if overlap_s > 0 else 0.0


def check_events(events: tuple[WeatherEvent, ...]) -> tuple[WeatherEvent, ...]:
    """``events`` unchanged, or ValueError naming the first two that overlap."""
    ordered = sorted(events, key=lambda e: e.start)
    for earlier, later in itertools.pairwise(ordered):
        if later.start < earlier.end:
            raise ValueError(
                f"weather events overlap: {earlier.kind} {earlier.start}..{earlier.end} and "
                f"{later.kind} {later.start}..{later.end}"
            )
    return events


@dataclass(frozen=True, slots=True)
class Climate:
    """The climate the weather is drawn from; the defaults are a Mediterranean summer-dry climate.

    ``events`` override the drawn weather where they apply (see ``WeatherEvent``).
    """

    mean_temp_c: float = 15.5
    annual_amplitude_c: float = 8.0
    daily_range_c: float = 14.0
    anomaly_sd_c: float = 2.5
    p_wet_after_dry: float = 0.12
    p_wet_after_wet: float = 0.45
    mean_rain_mm: float = 9.0
    mean_wind_ms: float = 2.2
    dew_point_depression_c: float = 9.0
    events: tuple[WeatherEvent, ...] = ()

    def __post_init__(self) -> None:
        check_events(self.events)


@dataclass(frozen=True, slots=True)
class Day:
    """One day's draws."""

    mean_temp_c: float
    daily_range_c: float
    cloud: float
    """0 clear to 1 overcast."""
    wind_ms: float
    rain_mm: float
    rain_start_h: float
    rain_hours: float
    dew_point_c: float


@dataclass(frozen=True, slots=True)
class Weather:
    """The weather over one step ending at ``time``; rain and reference ET are totals over the step."""

    time: datetime
    air_temp_c: float
    humidity_pct: float
    solar_wm2: float
    wind_ms: float
    rain_mm: float
    et0_mm: float


def sun_elevation_deg(latitude: float, longitude: float, when: datetime) -> float:
    """Elevation of the sun above the horizon (degrees), from the declination and the hour angle."""
    utc = when.astimezone(UTC)
    doy = utc.timetuple().tm_yday
    gamma = 2 * math.pi / 365 * (doy - 1 + (utc.hour - 12) / 24)
    declination = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    eq_time_min = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    solar_minutes = utc.hour * 60 + utc.minute + utc.second / 60 + eq_time_min + 4 * longitude
    hour_angle = math.radians(solar_minutes / 4 - 180)
    lat = math.radians(latitude)
    sin_elev = math.sin(lat) * math.sin(declination) + math.cos(lat) * math.cos(declination) * math.cos(hour_angle)
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_elev))))


def solar_hour(longitude: float, when: datetime) -> float:
    """Local mean solar time in hours (0-24)."""
    utc = when.astimezone(UTC)
    return (utc.hour + utc.minute / 60 + utc.second / 3600 + longitude / 15) % 24


def saturation_vapour_pressure_kpa(temp_c: float) -> float:
    """FAO-56 eq. 11."""
    return 0.6108 * math.exp(17.27 * temp_c / (temp_c + 237.3))


def reference_et_mm_per_h(
    farm: Farm, when: datetime, solar_wm2: float, temp_c: float, vapour_kpa: float, wind_ms: float
) -> float:
    """Hourly ASCE standardized reference ET (short crop, the FAO-56 grass reference) at ``when``, mm/h."""
    utc = when.astimezone(UTC)
    et, _ = ascehourly(
        "S",
        farm.elevation_m,
        farm.latitude,
        # pyfao56 follows ASCE in counting longitude positive west of Greenwich; ours is positive east.
        -farm.longitude,
        0.0,
        utc.timetuple().tm_yday,
        utc.hour + utc.minute / 60 + utc.second / 3600,
        solar_wm2 * 0.0036,
        temp_c,
        vapr=vapour_kpa,
        wndsp=max(wind_ms, 0.1),
    )
    return max(0.0, float(et))


class FarmWeather:
    """The weather of one farm, from a seed."""

    def __init__(self, farm: Farm, seed: int, climate: Climate | None = None) -> None:
        self.farm = farm
        self.seed = seed
        self.climate = climate or Climate()
        self._day = lru_cache(maxsize=64)(self._draw_day)

    def _seasonal_mean(self, day: date) -> float:
        c = self.climate
        peak = 200 if self.farm.latitude >= 0 else 17  # late July in the north, mid-January in the south
        return c.mean_temp_c + c.annual_amplitude_c * math.cos(2 * math.pi * (day.timetuple().tm_yday - peak) / 365)

    def _wet(self, day: date, depth: int = 0) -> bool:
        # A two-state Markov chain, evaluated back a few days so any day can be asked for on its own.
        rng = random.Random(f"{self.seed}:{self.farm.id}:wet:{day.isoformat()}")
        if depth >= 6:
            p = self.climate.p_wet_after_dry / (1 - self.climate.p_wet_after_wet + self.climate.p_wet_after_dry)
            return rng.random() < p
        previous = self._wet(day - timedelta(days=1), depth + 1)
        return rng.random() < (self.climate.p_wet_after_wet if previous else self.climate.p_wet_after_dry)

    def _anomaly(self, day: date) -> float:
        # AR(1) day-to-day temperature anomaly, also evaluated back a fixed number of days.
        value = 0.0
        for back in range(10, -1, -1):
            d = day - timedelta(days=back)
            rng = random.Random(f"{self.seed}:{self.farm.id}:anomaly:{d.isoformat()}")
            value = 0.7 * value + rng.gauss(0, self.climate.anomaly_sd_c * math.sqrt(1 - 0.49))
        return value

    def _draw_day(self, day: date) -> Day:
        c = self.climate
        rng = random.Random(f"{self.seed}:{self.farm.id}:day:{day.isoformat()}")
        wet = self._wet(day)
        cloud = min(1.0, 0.6 + 0.4 * rng.random()) if wet else max(0.0, rng.gauss(0.12, 0.12))
        rain = rng.expovariate(1 / c.mean_rain_mm) if wet else 0.0
        mean_temp = self._seasonal_mean(day) + self._anomaly(day) - 2.0 * cloud
        daily_range = c.daily_range_c * (1 - 0.6 * cloud) * rng.uniform(0.85, 1.15)
        return Day(
            mean_temp_c=mean_temp,
            daily_range_c=daily_range,
            cloud=cloud,
            wind_ms=c.mean_wind_ms * rng.lognormvariate(0, 0.35),
            rain_mm=rain,
            rain_start_h=rng.uniform(0, 20),
            rain_hours=rng.uniform(1.5, 6.0),
            dew_point_c=mean_temp
            - daily_range / 2
            - c.dew_point_depression_c * (1 - cloud) * rng.uniform(0.6, 1.0)
            + (2.0 if wet else 0.0),
        )

    def solar_date(self, when: datetime) -> date:
        """The farm's local solar day at ``when``: the days the weather is drawn by."""
        return (when.astimezone(UTC) + timedelta(hours=self.farm.longitude / 15)).date()

    def day(self, when: datetime) -> Day:
        return self._day(self.solar_date(when))

    def air_temp_c(self, when: datetime) -> float:
        d = self.day(when)
        # The daily cycle peaks at 15:00 solar time and bottoms out at 03:00.
        return d.mean_temp_c + d.daily_range_c / 2 * math.cos(
            2 * math.pi * (solar_hour(self.farm.longitude, when) - 15) / 24
        )

    def event(self, when: datetime) -> WeatherEvent | None:
        """The scenario event in force at ``when``, if any."""
        return next((e for e in self.climate.events if e.covers(when)), None)

    def rain_rate_mm_h(self, when: datetime) -> float:
        event = self.event(when)
        if event is not None:
            return event.rate_mm_h
        d = self.day(when)
        hour = solar_hour(self.farm.longitude, when)
        if d.rain_mm and d.rain_start_h <= hour < d.rain_start_h + d.rain_hours:
            return d.rain_mm / d.rain_hours
        return 0.0

    def solar_wm2(self, when: datetime) -> float:
        elevation = sun_elevation_deg(self.farm.latitude, self.farm.longitude, when)
        if elevation <= 0:
            return 0.0
        doy = when.astimezone(UTC).timetuple().tm_yday
        top = SOLAR_CONSTANT * (1 + 0.033 * math.cos(2 * math.pi * doy / 365)) * math.sin(math.radians(elevation))
        clear_sky = top * 0.75 * math.sin(math.radians(elevation)) ** 0.15
        cloud = self.day(when).cloud
        event = self.event(when)
        if event is not None and event.kind == "dry":
            cloud = 0.0
        if self.rain_rate_mm_h(when) > 0:
            cloud = max(cloud, 0.9)
        return clear_sky * (1 - 0.72 * cloud)

    def at(self, when: datetime, step_s: float) -> Weather:
        """The weather at ``when``, with rain and reference ET summed over the ``step_s`` seconds before it."""
        d = self.day(when)
        temp = self.air_temp_c(when)
        raining = self.rain_rate_mm_h(when) > 0
        dew = min(temp, temp - 0.5 if raining else d.dew_point_c)
        vapour = saturation_vapour_pressure_kpa(dew)
        humidity = min(100.0, 100 * vapour / saturation_vapour_pressure_kpa(temp))
        hour = solar_hour(self.farm.longitude, when)
        wind = max(0.0, d.wind_ms * (1 + 0.45 * math.cos(2 * math.pi * (hour - 15) / 24)))
        solar = self.solar_wm2(when)
        mid = when - timedelta(seconds=step_s / 2)
        rain = self.rain_mm(when, step_s)
        et0 = reference_et_mm_per_h(self.farm, mid, self.solar_wm2(mid), self.air_temp_c(mid), vapour, wind)
        return Weather(when, temp, humidity, solar, wind, rain, et0 * step_s / 3600)

    def rain_mm(self, when: datetime, step_s: float) -> float:
        """Rain over the ``step_s`` seconds before ``when``: the drawn rate at mid-step, plus the events' share."""
        mid = when - timedelta(seconds=step_s / 2)
        if not self.climate.events:
            return self.rain_rate_mm_h(mid) * step_s / 3600
        drawn = 0.0 if self.event(mid) is not None else self.rain_rate_mm_h(mid) * step_s / 3600
        begin = when - timedelta(seconds=step_s)
        return drawn + sum(e.rain_between(begin, when) for e in self.climate.events)
