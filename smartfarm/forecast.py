"""The weather forecast contract: what a forecast provider tells the farm about the next hours.

A ``WeatherForecast`` is one farm's forecast as issued at one time: hourly rain (the amount and its probability),
air temperature, humidity, wind, solar radiation and reference ET for the hours ahead (48 h, or as many as the
provider gives). It travels on the Kafka topic ``weather.forecast`` keyed by farm id (compacted: the newest issue
per farm is what a worker starts from). Whoever makes it (the simulated provider in ``edge.forecast``, the
Open-Meteo adapter) speaks this model, and the forecaster and the advisor read only this model.

Hours follow the convention of the zone aggregates and of Open-Meteo's hourly API: ``time`` is the END of the hour
[time - 1 h, time); rain and ET0 are totals over that hour, temperature, humidity, wind and radiation are its mean.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import ClassVar, Self

from pydantic import Field, model_validator

from smartfarm.contract import Contract, Strict, Timestamp
from smartfarm.identifiers import Identifier

HOUR = timedelta(hours=1)
FORECAST_HOURS = 48
"""How far ahead a forecast is read: two days, the horizon irrigation schedulers plan over."""
MAX_FORECAST_HOURS = 16 * 24
"""The longest forecast accepted: Open-Meteo's 16 days of hourly values."""


class ForecastHour(Strict):
    """One forecast hour ending at ``time``."""

    time: Timestamp
    rain_mm: float = Field(ge=0, le=500, description="rain over the hour, mm")
    rain_probability: float = Field(ge=0, le=1, description="probability of measurable rain (>= 0.1 mm) in the hour")
    air_temp_c: float = Field(ge=-80, le=70)
    humidity_pct: float = Field(ge=0, le=100)
    wind_ms: float = Field(ge=0, le=100, description="mean wind speed at 2 m, m/s")
    solar_wm2: float | None = Field(None, ge=0, le=1500, description="mean global radiation, W/m2")
    et0_mm: float | None = Field(None, ge=0, le=5, description="FAO-56 short reference ET over the hour, mm")


class WeatherForecast(Contract):
    """One farm's hourly forecast as issued at ``issued_at`` by ``source``."""

    MAX_BYTES: ClassVar[int] = 256 * 1024

    farm: Identifier
    issued_at: Timestamp
    source: str = Field(min_length=1, max_length=100, description="provider and model, e.g. open-meteo:best_match")
    hours: tuple[ForecastHour, ...] = Field(min_length=1, max_length=MAX_FORECAST_HOURS)

    @model_validator(mode="after")
    def _hourly(self) -> Self:
        for earlier, later in zip(self.hours, self.hours[1:], strict=False):
            if later.time - earlier.time != HOUR:
                raise ValueError(
                    f"forecast hours must follow each other one hour apart; {earlier.time} is followed by {later.time}"
                )
        if self.hours[-1].time <= self.issued_at:
            raise ValueError(f"a forecast issued at {self.issued_at} must reach past it; its last hour ends earlier")
        return self

    def ahead(self, start: datetime, hours: int = FORECAST_HOURS) -> tuple[ForecastHour, ...]:
        """The forecast hours ending within (start, start + hours]."""
        end = start + hours * HOUR
        return tuple(h for h in self.hours if start < h.time <= end)

    def rain_mm(self, start: datetime, hours: int) -> float:
        """Forecast rain over the ``hours`` after ``start``, mm."""
        return sum(h.rain_mm for h in self.ahead(start, hours))

    def rain_chance(self, start: datetime, hours: int) -> float:
        """The probability of rain within the ``hours`` after ``start``, taken as the highest hourly probability
        (hours of one weather system are not independent, so their probabilities do not multiply)."""
        return max((h.rain_probability for h in self.ahead(start, hours)), default=0.0)

    def et0_mm(self, start: datetime, hours: int) -> float | None:
        """Forecast reference ET over the ``hours`` after ``start``; None when the forecast does not give it for
        every one of those hours."""
        found = self.ahead(start, hours)
        if len(found) < hours or any(h.et0_mm is None for h in found):
            return None
        return sum(h.et0_mm or 0.0 for h in found)

    def covers(self, start: datetime, hours: int) -> bool:
        """Whether every one of the ``hours`` after ``start`` is forecast."""
        return len(self.ahead(start, hours)) == hours


def newest(forecasts: Iterable[WeatherForecast], at: datetime) -> WeatherForecast | None:
    """The most recently issued of ``forecasts`` that was out by ``at`` (no forecast is seen before its issue)."""
    issued = [f for f in forecasts if f.issued_at <= at]
    return max(issued, key=lambda f: f.issued_at, default=None)
