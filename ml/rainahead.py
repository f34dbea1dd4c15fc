"""Rain the weather forecast says is coming, and how much of it the root zone will get.

The irrigation advisor (``ml.advisor``) holds off or trims an irrigation on it, and the forecaster's physics
baseline (``ml.forecast.physics_forecast``) runs the FAO-56 balance forward with it; both count rain by the one
rule here:

- Effective rain (``effective_rain_mm``): not all rain reaches the roots. The first 0.2 ET0 of a day's rain wets
  leaves and the soil's surface and evaporates (FAO-56 ch. 8, eq. 85's notes); of the rest, a heavy shower loses
  a growing share to runoff and to drainage below the roots (the USDA SCS effective-rainfall curve).
- Whether rain counts (``RAIN_CHANCE_MIN``): only when the forecast gives it a fair chance.
- How long the crop can wait (``WAIT_KS_MIN``, ``rain_room_mm``): an irrigation leaves no more room for rain than
  the crop can do without, should the rain not come, before it is stressed past a level that costs yield.

Pure: a forecast and numbers in, numbers out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from smartfarm.forecast import WeatherForecast

EVAPORATED_ET0_SHARE = 0.2
"""FAO-56 ch. 8 (notes to eq. 85): daily rain of less than about 0.2 ET0 is normally entirely evaporated from the
surface and can be ignored in the root zone's balance. So much of any day's rain is taken off first."""
SCS_LIMIT_MM = 250 / 3
"""Where the USDA SCS curve turns straight (``effective_rain_mm``)."""
RAIN_CHANCE_MIN = 0.6
"""The least chance of rain (the forecast's highest hourly probability over the look-ahead) for which it counts.

Both mistakes cost: water given just before rain is lost to drainage (with the nitrate it carries), and rain that
does not come leaves the crop waiting, which ``WAIT_KS_MIN`` bounds. With the wait bounded, holding off is the
cheaper mistake, so rain counts once it is more likely than not, with a margin for a provider's over-confidence
(published verification puts day-1 false-alarm ratios at 0.2-0.4: ``edge.forecast``)."""
WAIT_KS_MIN = 0.8
"""The lowest water-stress coefficient Ks (FAO-56 eq. 84) the crop may reach while it waits for forecast rain.

Ks is the crop's share of its full transpiration, and FAO-33 yield loss is Ky (1 - ETa/ETm): a day at Ks 0.8 costs
a crop of Ky 1.1 (tomato, maize) about a fifth of one day's yield formation, a few tenths of a percent of a
season's, less than the water wasted by irrigating before a good rain. Past it the stress is no longer a wait's
worth: the crop is irrigated whatever the forecast says."""
MEASURABLE_MM = 0.1
"""An hour with at least this much rain is a rainy hour (the usual measurable-rain threshold, as the provider's
probability means)."""


def effective_rain_mm(rain_mm: Any, et0_mm_day: Any) -> Any:
    """Of ``rain_mm`` falling within a day of ``et0_mm_day`` reference ET, the millimetres that enter the root zone.

    The first ``EVAPORATED_ET0_SHARE`` x ET0 evaporates (FAO-56); the rest P goes in as the USDA Soil Conservation
    Service curve says, in the form FAO's CROPWAT applies to 10-day totals: P (125 - 0.6 P) / 125 up to 83.3 mm,
    41.7 + 0.1 P beyond (14 mm of it give 13, 40 mm give 32, 80 mm give 49). A single shower is denser than ten
    days' rain, so this is the generous side of its share. Element-wise on arrays and series (the forecaster's
    baseline judges whole tables with it)."""
    wet = np.maximum(np.asarray(rain_mm, dtype=float) - EVAPORATED_ET0_SHARE * np.asarray(et0_mm_day), 0.0)
    return np.where(wet <= SCS_LIMIT_MM, wet * (125 - 0.6 * wet) / 125, 125 / 3 + 0.1 * wet)


@dataclass(frozen=True, slots=True)
class RainAhead:
    """The forecast's rain over the hours ahead of a zone's hour."""

    rain_mm: float
    """Forecast rain over the span."""
    effective_mm: float
    """What of it enters the root zone (``effective_rain_mm``)."""
    chance: float
    """The highest hourly probability of rain in the span (``WeatherForecast.rain_chance``)."""
    by: datetime
    """The end of the span's last rainy hour: the rain has fallen by then."""
    hours: float
    """Hours from the zone's hour to ``by``."""

    @property
    def counts(self) -> bool:
        """Whether the rain is likely enough to plan on (``RAIN_CHANCE_MIN``)."""
        return self.chance >= RAIN_CHANCE_MIN and self.effective_mm > 0


def rain_ahead(forecast: WeatherForecast | None, start: datetime, hours: int, et0_mm_day: float) -> RainAhead | None:
    """The forecast's rain over the ``hours`` after ``start``; None without a forecast reaching that far or
    without a rainy hour in the span.

    Args:
        et0_mm_day: the day's reference ET, for the share of the rain that evaporates (the forecast's own over
            the span when it gives one, by the caller's choice).
    """
    if forecast is None or not forecast.covers(start, hours):
        return None
    rainy = [h for h in forecast.ahead(start, hours) if h.rain_mm >= MEASURABLE_MM]
    if not rainy:
        return None
    rain = forecast.rain_mm(start, hours)
    return RainAhead(
        rain_mm=rain,
        effective_mm=float(effective_rain_mm(rain, et0_mm_day)),
        chance=forecast.rain_chance(start, hours),
        by=rainy[-1].time,
        hours=(rainy[-1].time - start).total_seconds() / 3600,
    )


def rain_room_mm(etc_mm_day: float, hours: float, taw_mm: float, raw_mm: float) -> float:
    """The most forecast rain an irrigation may leave room for (mm short of field capacity): should the rain not
    come, the root zone left that short and drying at ``etc_mm_day`` for ``hours`` still holds Ks at
    ``WAIT_KS_MIN`` (FAO-56 eq. 84: its depletion at most RAW + (1 - WAIT_KS_MIN)(TAW - RAW)); 0 when even a full
    refill would not last."""
    limit = raw_mm + (1 - WAIT_KS_MIN) * (taw_mm - raw_mm)
    return max(0.0, limit - etc_mm_day * hours / 24)
