"""Features the baselines and later models share: growing degree days, a zone's day of weather, reference ET.

Pure: plain functions of records and the layout, no clock and no I/O, so a table-driven test can call each one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from pyfao56.refet import ascedaily

from smartfarm.layout import Crop, Farm, SensorKind
from smartfarm.records import ZoneAggregate

# Base temperatures below which the crop does not develop (degC):
# tomato 10 (UC IPM processing-tomato degree-day model, 50 degF); maize 10 and wheat 0 (McMaster & Wilhelm 1997,
# "Growing degree-days: one equation, two interpretations", Agric. For. Meteorol. 87); potato 7 (Sands, Hackett &
# Nix 1979, Field Crops Res. 2); lettuce 4 (4.4 degC / 40 degF, Wurr et al. 1988 and UC Cooperative Extension);
# grape 10 (Amerine & Winkler 1944, the Winkler index).
GDD_BASE_C: dict[Crop, float] = {
    Crop.TOMATO: 10.0,
    Crop.MAIZE: 10.0,
    Crop.WHEAT: 0.0,
    Crop.POTATO: 7.0,
    Crop.LETTUCE: 4.0,
    Crop.GRAPE: 10.0,
}

GDD_TO_HARVEST: dict[Crop, float] = {
    Crop.TOMATO: 1400.0,
    Crop.MAIZE: 1500.0,
    Crop.WHEAT: 1700.0,
    Crop.POTATO: 1300.0,
    Crop.LETTUCE: 900.0,
    Crop.GRAPE: 1600.0,
}
"""Degree days (above ``GDD_BASE_C``) from planting, or budbreak for the vine, to harvest.

Typical published figures for mid-season varieties (extension-service degree-day guides); a variety can differ by
a fifth either way. They are the baseline's assumption: the harvest-prediction ML issue replaces them with values
learnt from the farm's own seasons."""

GDD_UPPER_C = 30.0
"""Above this air temperature (86 degF) development no longer speeds up (the 86/50 cut-off)."""

_CAPPED = frozenset({Crop.TOMATO, Crop.MAIZE, Crop.GRAPE})
"""Warm-season crops whose degree days are counted with the upper cut-off."""


def growing_degree_days(tmin: float, tmax: float, crop: Crop) -> float:
    """Degree days of one day by the averaging method, above the crop's base temperature; never negative.

    Tomato, maize and grape cap temperatures at 30 degC, because development stops speeding up there. Maize uses
    the "modified" (86/50) method of McMaster & Wilhelm 1997: tmin is also floored at the base, so a cold night
    does not cancel a warm afternoon's heat units.
    """
    base = GDD_BASE_C[crop]
    if crop in _CAPPED:
        # A day hotter than the cap all round (tmin above it) adds no more than a day at the cap.
        tmax, tmin = min(tmax, GDD_UPPER_C), min(tmin, GDD_UPPER_C)
    if crop is Crop.MAIZE:
        tmax, tmin = max(tmax, base), max(tmin, base)
    return max(0.0, (tmax + tmin) / 2 - base)


@dataclass(frozen=True)
class DayWeather:
    """One zone's weather of one day, from its hourly aggregates; None where the zone had no such sensor."""

    day: date
    tmin: float
    """degC"""
    tmax: float
    """degC"""
    rh_mean: float | None
    """Mean relative humidity, percent."""
    solar_mj_m2: float | None
    """Global solar radiation, MJ/m2/day."""
    wind_ms: float | None
    """Mean wind speed at 2 m, m/s."""
    rain_mm: float | None
    """Rain of the day, mm."""
    hours: int
    """Hours of the day with air temperature."""


HOUR_S = 3600
W_M2_DAY_TO_MJ = 0.0864
"""A mean of 1 W/m2 over a day is 86,400 J/m2 = 0.0864 MJ/m2."""
MIN_SOLAR_HOURS = 20
"""Hours of solar readings a day needs before its mean is trusted: with fewer, a missing midday would bias it."""


def daily_weather(day: date, hours: Sequence[ZoneAggregate]) -> DayWeather | None:
    """The day's weather from one zone's 1-hour aggregates whose windows start in ``day`` (the caller filters).

    Other window widths are ignored, and of two revisions of one window the higher counts. None when no hour has
    air temperature, because without it there is neither reference ET nor degree days.
    """
    by_kind = _latest_hourly(hours)
    air = by_kind.get(SensorKind.AIR_TEMPERATURE, [])
    if not air:
        return None
    solar = by_kind.get(SensorKind.SOLAR_RADIATION, [])
    solar_w_m2 = _mean_of_means(solar) if len(solar) >= MIN_SOLAR_HOURS else None
    rain = by_kind.get(SensorKind.RAINFALL, [])
    return DayWeather(
        day=day,
        tmin=min(a.min for a in air),
        tmax=max(a.max for a in air),
        rh_mean=_mean_of_means(by_kind.get(SensorKind.AIR_HUMIDITY, [])),
        solar_mj_m2=None if solar_w_m2 is None else solar_w_m2 * W_M2_DAY_TO_MJ,
        wind_ms=_mean_of_means(by_kind.get(SensorKind.WIND_SPEED, [])),
        # Each rain reading is the rain since the device's previous message, so the day's rain is their sum.
        rain_mm=sum(a.mean * a.count for a in rain) if rain else None,
        hours=len(air),
    )


def _latest_hourly(hours: Sequence[ZoneAggregate]) -> dict[SensorKind, list[ZoneAggregate]]:
    latest: dict[tuple[SensorKind, object], ZoneAggregate] = {}
    for a in hours:
        if a.width_s != HOUR_S:
            continue
        key = (a.kind, a.window_start)
        if key not in latest or latest[key].revision < a.revision:
            latest[key] = a
    out: dict[SensorKind, list[ZoneAggregate]] = {}
    for (kind, _), a in latest.items():
        out.setdefault(kind, []).append(a)
    return out


def _mean_of_means(hours: Sequence[ZoneAggregate]) -> float | None:
    return sum(a.mean for a in hours) / len(hours) if hours else None


SOLAR_CONSTANT_MJ_MIN = 0.0820
"""Gsc, MJ/m2/min (FAO-56 eq. 21)."""
HARGREAVES_KRS = 0.16
"""FAO-56 eq. 50 adjustment for interior locations; coastal ones use 0.19. Interior is the cautious choice: it
gives the lower radiation, hence the lower reference ET, where a zone has no pyranometer."""
DEFAULT_WIND_MS = 2.0
"""FAO-56 p. 63: 2 m/s, the global average over 2,000 stations, where wind is not measured."""
MIN_WIND_MS = 0.5
"""FAO-56 ch. 3 keeps u2 at or above 0.5 m/s in the ET0 equation: in a calm, buoyancy still moves vapour away,
which the wind term alone would miss."""


def extraterrestrial_radiation(latitude: float, doy: int) -> float:
    """Daily extraterrestrial radiation Ra (MJ/m2/day), FAO-56 eqs. 21-25.

    The sunset hour angle is clamped so that polar day and polar night give their limits instead of a domain error.
    """
    phi = math.radians(latitude)
    dr = 1 + 0.033 * math.cos(2 * math.pi * doy / 365)
    delta = 0.409 * math.sin(2 * math.pi * doy / 365 - 1.39)
    ws = math.acos(max(-1.0, min(1.0, -math.tan(phi) * math.tan(delta))))
    return (
        24
        * 60
        / math.pi
        * SOLAR_CONSTANT_MJ_MIN
        * dr
        * (ws * math.sin(phi) * math.sin(delta) + math.cos(phi) * math.cos(delta) * math.sin(ws))
    )


def hargreaves_radiation(tmin: float, tmax: float, latitude: float, doy: int) -> float:
    """Solar radiation (MJ/m2/day) from the daily temperature range, FAO-56 eq. 50 with kRs 0.16."""
    return HARGREAVES_KRS * math.sqrt(max(0.0, tmax - tmin)) * extraterrestrial_radiation(latitude, doy)


def saturation_vapour_pressure(temp_c: float) -> float:
    """e0(T) in kPa, FAO-56 eq. 11."""
    return 0.6108 * math.exp(17.27 * temp_c / (temp_c + 237.3))


def actual_vapour_pressure(weather: DayWeather) -> float:
    """ea in kPa: from mean humidity (FAO-56 eq. 19) or, without it, with the dew point at tmin (eq. 48)."""
    if weather.rh_mean is None:
        return saturation_vapour_pressure(weather.tmin)
    es = (saturation_vapour_pressure(weather.tmax) + saturation_vapour_pressure(weather.tmin)) / 2
    return weather.rh_mean / 100 * es


def reference_et_daily(weather: DayWeather, farm: Farm) -> tuple[float, tuple[str, ...]]:
    """The day's ASCE standardized short-crop reference ET (mm/day, = FAO-56 grass) and what had to be estimated.

    Missing sensors get the FAO-56 fallbacks: solar radiation from the temperature range (eq. 50), vapour pressure
    from tmin (eq. 48), wind 2 m/s. The second element names what was filled in, by sensor kind. Farms beyond
    the polar circles are out of reach: pyfao56 raises ValueError on days of midnight sun or polar night.
    """
    doy = weather.day.timetuple().tm_yday
    estimated = []
    rs = weather.solar_mj_m2
    if rs is None:
        rs = hargreaves_radiation(weather.tmin, weather.tmax, farm.latitude, doy)
        estimated.append(SensorKind.SOLAR_RADIATION.value)
    if weather.rh_mean is None:
        estimated.append(SensorKind.AIR_HUMIDITY.value)
    wind = weather.wind_ms
    if wind is None:
        wind = DEFAULT_WIND_MS
        estimated.append(SensorKind.WIND_SPEED.value)
    et0 = ascedaily(
        "S",
        farm.elevation_m,
        farm.latitude,
        doy,
        rs,
        weather.tmax,
        weather.tmin,
        vapr=actual_vapour_pressure(weather),
        wndsp=max(wind, MIN_WIND_MS),
    )
    return max(0.0, float(et0)), tuple(estimated)
