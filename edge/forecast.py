"""A simulated weather-forecast provider: the simulator's own weather, forecast with errors that grow with lead time.

A real forecast is right about tomorrow's rain most of the time, wrong sometimes, and worse the further ahead it
looks. ``SimulatedForecasts`` forecasts a ``FarmWeather`` that way, so the forecaster and the advisor can be trained
and judged on seasons whose forecasts are as imperfect as a real provider's, and the local stack has a provider
without the internet.

The error model (``ForecastErrors``, each figure linear in lead time from 0 to 48 h):

- Rain comes in events (the day's drawn spell, or a scenario event). A true event is forecast with the hit rate
  (0.90 at once, 0.65 at 48 h); its amount is off by a log-normal factor (sigma 0.3 to 0.7) and its start by a
  normal shift (sd 1 to 4 h). A dry day gets a false event with the false-alarm rate (0.04 to 0.12 per day).
- An event's probability is what a calibrated provider would say: the share of forecast events that are real at
  that lead, from the climate's wet-day frequency and the two rates above (0.83 at once, 0.55 at 48 h for the
  default climate), so "70 %" comes true about 70 % of the time.
- Temperature is off by an error that wanders from hour to hour (AR(1), sd 0.8 to 2.2 degC), wind by a
  log-normal factor (0.15 to 0.35), humidity by 5 to 15 points, radiation by the cloud's error (sd 10 % to 25 %);
  reference ET is computed from the forecast values by the same ASCE hourly equation the simulator uses.

These resemble published verification of global models (2 m temperature RMSE about 1.5 degC at day 1 and 2 degC
at day 2; rain occurrence hit rates of 0.7-0.9 with false-alarm ratios of 0.2-0.4 in the first two days). ``verify``
measures the model on forecasts against the weather that came, by lead time, so the figures are shown, not assumed.

Pure and deterministic: the same (seed, farm, issue time) gives the same forecast.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from edge.weather import Day, FarmWeather, WeatherEvent, reference_et_mm_per_h, saturation_vapour_pressure_kpa
from smartfarm.forecast import FORECAST_HOURS, HOUR, ForecastHour, WeatherForecast

ISSUE_EVERY = timedelta(hours=6)
"""Global models run four times a day (00, 06, 12, 18 UTC); a provider publishes each run."""
SOURCE = "simulated"
BLOCK_H = 24
"""Forecasts are verified over 24-hour blocks: a spell forecast an hour or two early is still a hit, as a farmer
holding off an irrigation would judge it."""
WET_BLOCK_MM = 1.0
"""A block with at least this much rain counts as wet when forecasts are verified."""
LEAD_BUCKETS_H: tuple[tuple[int, int], ...] = ((0, 24), (24, 48))


def _lerp(at_0: float, at_48: float, lead_h: float) -> float:
    share = min(1.0, max(0.0, lead_h / FORECAST_HOURS))
    return at_0 + (at_48 - at_0) * share


@dataclass(frozen=True, slots=True)
class ForecastErrors:
    """How wrong the simulated provider is, at lead 0 h and at 48 h (linear between, held beyond)."""

    hit_rate: tuple[float, float] = (0.90, 0.65)
    false_alarm_per_day: tuple[float, float] = (0.04, 0.12)
    amount_sigma: tuple[float, float] = (0.3, 0.7)
    timing_sd_h: tuple[float, float] = (1.0, 4.0)
    temp_sd_c: tuple[float, float] = (0.8, 2.2)
    humidity_sd_pct: tuple[float, float] = (5.0, 15.0)
    wind_sigma: tuple[float, float] = (0.15, 0.35)
    solar_sd: tuple[float, float] = (0.10, 0.25)

    @classmethod
    def perfect(cls) -> ForecastErrors:
        """A provider without the errors above: every rain event forecast, at its start and amount, and the air
        as it comes. (A spell's length is still drawn 0.7-1.4 times its true one, so a few per cent of an event's
        rain can fall outside a window that holds all of the true event.) Runs with it tell how much of a model's
        error is its forecast's fault."""
        return cls(**{name: (1.0, 1.0) if name == "hit_rate" else (0.0, 0.0) for name in cls.__dataclass_fields__})

    def at(self, name: str, lead_h: float) -> float:
        at_0, at_48 = getattr(self, name)
        return _lerp(at_0, at_48, lead_h)

    def event_probability(self, lead_h: float, wet_day_share: float) -> float:
        """P(a forecast event is real) at ``lead_h``: hits over hits and false alarms, for a climate whose days
        are wet with ``wet_day_share``."""
        hits = wet_day_share * self.at("hit_rate", lead_h)
        false = (1 - wet_day_share) * self.at("false_alarm_per_day", lead_h)
        return hits / (hits + false) if hits + false > 0 else 0.0

    def missed_probability(self, lead_h: float, wet_day_share: float) -> float:
        """P(rain on a day with no forecast event): the missed events over every day without one."""
        missed = wet_day_share * (1 - self.at("hit_rate", lead_h))
        quiet = missed + (1 - wet_day_share) * (1 - self.at("false_alarm_per_day", lead_h))
        return missed / quiet if quiet > 0 else 0.0


ERROR_MODELS: dict[str, ForecastErrors] = {"simulated": ForecastErrors(), "perfect": ForecastErrors.perfect()}
"""The provider's error models by the name a command takes (``smartfarm train --forecasts``, ``smartfarm season``):
a real provider's errors, or none (what the forecast's own errors cost a model)."""


@dataclass(frozen=True, slots=True)
class _Spell:
    """A forecast rain event: its UTC span, rain and probability."""

    start: datetime
    end: datetime
    rain_mm: float
    probability: float

    def rain_in(self, begin: datetime, end: datetime) -> float:
        overlap_s = (min(end, self.end) - max(begin, self.start)).total_seconds()
        span_s = (self.end - self.start).total_seconds()
        return self.rain_mm * overlap_s / span_s if overlap_s > 0 and span_s > 0 else 0.0


class SimulatedForecasts:
    """Forecasts of one farm's simulated weather, issued at any time."""

    def __init__(self, weather: FarmWeather, seed: int, errors: ForecastErrors | None = None) -> None:
        self.weather = weather
        self.seed = seed
        self.errors = errors or ForecastErrors()
        c = weather.climate
        self.wet_day_share = c.p_wet_after_dry / (1 - c.p_wet_after_wet + c.p_wet_after_dry)

    @property
    def farm_id(self) -> str:
        return self.weather.farm.id

    def _rng(self, issued: datetime, what: str) -> random.Random:
        return random.Random(f"{self.seed}:{self.farm_id}:forecast:{issued.isoformat()}:{what}")

    def _solar_midnight(self, day: date) -> datetime:
        """The UTC time of local solar midnight starting ``day`` (the simulator's days run on solar time)."""
        return datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=self.weather.farm.longitude / 15)

    def _true_events(self, day: date) -> list[tuple[datetime, datetime, float]]:
        """The rain events that truly fall on solar ``day``: the drawn spell unless a scenario event covers it,
        and the scenario's rain events that start in it."""
        midnight = self._solar_midnight(day)
        events = self.weather.climate.events
        drawn: Day = self.weather.day(midnight + timedelta(hours=12))
        out = []
        if drawn.rain_mm > 0:
            start = midnight + timedelta(hours=drawn.rain_start_h)
            end = min(start + timedelta(hours=drawn.rain_hours), midnight + timedelta(days=1))
            if not any(e.start < end and start < e.end for e in events):
                out.append((start, end, drawn.rain_mm * (end - start) / timedelta(hours=drawn.rain_hours)))
        out.extend(
            (e.start, e.end, e.rain_mm) for e in events if _is_rain(e) and self.weather.solar_date(e.start) == day
        )
        return out

    def _spells(self, issued: datetime, day: date) -> list[_Spell]:
        """The forecast events of solar ``day`` as issued at ``issued``."""
        rng, errors = self._rng(issued, f"rain:{day.isoformat()}"), self.errors
        spells = []
        truth = self._true_events(day)
        for start, end, rain in truth:
            lead = max(0.0, (start - issued).total_seconds() / 3600)
            if rng.random() >= errors.at("hit_rate", lead):
                continue
            shift = timedelta(hours=rng.gauss(0, errors.at("timing_sd_h", lead)))
            span = (end - start) * rng.uniform(0.7, 1.4)
            amount = rain * rng.lognormvariate(0, errors.at("amount_sigma", lead))
            spells.append(_Spell(start + shift, start + shift + span, amount, self._probability(rng, lead)))
        if not truth:
            start = self._solar_midnight(day) + timedelta(hours=rng.uniform(0, 20))
            lead = max(0.0, (start - issued).total_seconds() / 3600)
            if rng.random() < errors.at("false_alarm_per_day", lead):
                amount = rng.expovariate(1 / self.weather.climate.mean_rain_mm)
                span = timedelta(hours=rng.uniform(1.5, 6.0))
                spells.append(_Spell(start, start + span, amount, self._probability(rng, lead)))
        return spells

    def _probability(self, rng: random.Random, lead_h: float) -> float:
        calibrated = self.errors.event_probability(lead_h, self.wet_day_share)
        return min(0.99, max(0.05, calibrated + rng.gauss(0, 0.05)))

    def issue(self, issued: datetime, hours: int = FORECAST_HOURS) -> WeatherForecast:
        """The forecast issued at ``issued`` (made on the hour) for the ``hours`` after it."""
        issued = issued.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        errors = self.errors
        ends = [issued + (i + 1) * HOUR for i in range(hours)]
        days = sorted(
            {self.weather.solar_date(t - HOUR / 2) for t in ends}
            | {self.weather.solar_date(issued) - timedelta(days=1)}
        )
        spells = [s for d in days for s in self._spells(issued, d)]
        rng = self._rng(issued, "air")
        temp_z, rows = rng.gauss(0, 1), []
        for end in ends:
            lead = (end - issued).total_seconds() / 3600
            temp_z = 0.95 * temp_z + rng.gauss(0, math.sqrt(1 - 0.95**2))
            rows.append(self._hour(end, lead, spells, temp_z, rng, errors))
        return WeatherForecast.create(farm=self.farm_id, issued_at=issued, source=SOURCE, hours=tuple(rows))

    def _hour(
        self, end: datetime, lead: float, spells: Sequence[_Spell], temp_z: float, rng: random.Random, e: ForecastErrors
    ) -> ForecastHour:
        begin, mid = end - HOUR, end - HOUR / 2
        truth = self.weather.at(end, 3600)
        rain = sum(s.rain_in(begin, end) for s in spells)
        raining = [s.probability for s in spells if s.start < end and begin < s.end]
        background = self.errors.missed_probability(lead, self.wet_day_share) / 6  # a day's chance over its hours
        probability = max(raining, default=background)
        temp = truth.air_temp_c + e.at("temp_sd_c", lead) * temp_z
        humidity = min(100.0, max(5.0, truth.humidity_pct + rng.gauss(0, e.at("humidity_sd_pct", lead))))
        wind = truth.wind_ms * rng.lognormvariate(0, e.at("wind_sigma", lead))
        solar = max(0.0, self.weather.solar_wm2(mid) * (1 + rng.gauss(0, e.at("solar_sd", lead))))
        if raining and truth.rain_mm <= 0:
            solar *= 0.4  # the provider's sky is as overcast as its rain
        vapour = humidity / 100 * saturation_vapour_pressure_kpa(temp)
        et0 = reference_et_mm_per_h(self.weather.farm, mid, solar, temp, vapour, wind)
        return ForecastHour(
            time=end,
            rain_mm=round(rain, 2),
            rain_probability=round(probability, 3),
            air_temp_c=round(temp, 2),
            humidity_pct=round(humidity, 1),
            wind_ms=round(wind, 2),
            solar_wm2=round(min(solar, 1500.0), 1),
            et0_mm=round(min(et0, 5.0), 3),
        )

    def issues(self, start: datetime, end: datetime) -> list[WeatherForecast]:
        """Every forecast issued on the provider's schedule (each ``ISSUE_EVERY``) from ``start`` to ``end``."""
        return [self.issue(when) for when in issue_times(start, end)]


def issue_times(start: datetime, end: datetime) -> list[datetime]:
    """The provider's issue times (00, 06, 12 and 18 UTC: each ``ISSUE_EVERY`` from midnight) from ``start`` to
    ``end``, both included."""
    first = start.astimezone(UTC)
    if first != first.replace(minute=0, second=0, microsecond=0):
        first = first.replace(minute=0, second=0, microsecond=0) + HOUR
    first += timedelta(hours=-first.hour % (ISSUE_EVERY // HOUR))
    out, when = [], first
    while when <= end:
        out.append(when)
        when += ISSUE_EVERY
    return out


def _is_rain(event: WeatherEvent) -> bool:
    return event.kind == "rain"


@dataclass(frozen=True, slots=True)
class LeadSkill:
    """How forecasts fared against the weather that came, over one band of lead times."""

    lead_h: tuple[int, int]
    blocks: int
    """Blocks of ``BLOCK_H`` hours verified."""
    hit_rate: float
    """Wet blocks (>= ``WET_BLOCK_MM``) that were forecast wet."""
    false_alarm_ratio: float
    """Blocks forecast wet that stayed dry."""
    rain_rmse_mm: float
    """Of the block's rain, over blocks wet in the forecast or in fact."""
    brier: float
    """Of the block's rain probability against whether it rained."""
    temp_rmse_c: float
    et0_bias_mm_day: float
    """Forecast less true reference ET, per day."""


def verify(forecasts: Iterable[WeatherForecast], weather: FarmWeather) -> list[LeadSkill]:
    """The forecasts' skill by lead band: every 6-hour block of each forecast against the true weather."""
    by_band: dict[tuple[int, int], list[tuple[float, float, float, float, float, float]]] = {
        b: [] for b in LEAD_BUCKETS_H
    }
    for forecast in forecasts:
        hours = forecast.hours
        for i in range(0, len(hours) - BLOCK_H + 1, BLOCK_H):
            block = hours[i : i + BLOCK_H]
            lead = (block[-1].time - forecast.issued_at).total_seconds() / 3600
            band = next((b for b in LEAD_BUCKETS_H if b[0] < lead <= b[1]), None)
            if band is None:
                continue
            truth = [weather.at(h.time, 3600) for h in block]
            rain_true = sum(t.rain_mm for t in truth)
            rain_forecast = sum(h.rain_mm for h in block)
            temp_sq = sum((h.air_temp_c - t.air_temp_c) ** 2 for h, t in zip(block, truth, strict=True)) / BLOCK_H
            et0_error = sum((h.et0_mm or 0.0) - t.et0_mm for h, t in zip(block, truth, strict=True)) * 24 / BLOCK_H
            chance = max(h.rain_probability for h in block)
            by_band[band].append((rain_true, rain_forecast, chance, temp_sq, et0_error, 1.0))
    return [_skill(band, rows) for band, rows in by_band.items() if rows]


def _skill(band: tuple[int, int], rows: Sequence[tuple[float, float, float, float, float, float]]) -> LeadSkill:
    wet = [r for r in rows if r[0] >= WET_BLOCK_MM]
    said_wet = [r for r in rows if r[1] >= WET_BLOCK_MM]
    either = [r for r in rows if r[0] >= WET_BLOCK_MM or r[1] >= WET_BLOCK_MM]
    n = len(rows)
    return LeadSkill(
        lead_h=band,
        blocks=n,
        hit_rate=sum(r[1] >= WET_BLOCK_MM for r in wet) / len(wet) if wet else math.nan,
        false_alarm_ratio=sum(r[0] < WET_BLOCK_MM for r in said_wet) / len(said_wet) if said_wet else math.nan,
        rain_rmse_mm=math.sqrt(sum((r[1] - r[0]) ** 2 for r in either) / len(either)) if either else math.nan,
        brier=sum((r[2] - (r[0] > 0.1)) ** 2 for r in rows) / n,
        temp_rmse_c=math.sqrt(sum(r[3] for r in rows) / n),
        et0_bias_mm_day=sum(r[4] for r in rows) / n,
    )
