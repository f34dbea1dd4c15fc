"""Features the baselines and later models share: growing degree days, a zone's day of weather, reference ET.

Pure: plain functions of records and the layout, no clock and no I/O, so a table-driven test can call each one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from pyfao56.refet import ascedaily

from ml.context import ZoneContext
from ml.waterbalance import (
    depletion_fraction,
    depletion_from_theta,
    root_depth_m,
    total_available_water,
    water_stress,
)
from smartfarm.agronomy import CROPS, SOILS, CropStage, crop_coefficient, growth_stage
from smartfarm.layout import Crop, Farm, SensorKind, Zone
from smartfarm.records import ZoneAggregate, ZoneDay

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


ASSUMED_ET0_MM = 5.0
"""Reference ET assumed before the zone's first closed day: a mid-range summer value (FAO-56 table 2)."""
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
        rain_mm=sum(a.total for a in rain) if rain else None,
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


def zone_day(farm: Farm, zone: Zone, day: date, hours: Sequence[ZoneAggregate]) -> ZoneDay | None:
    """The zone's ``day`` (revision 1) from its 1-hour aggregates that start in it: reference ET, degree days and
    what fed them; None without air temperature. The stream's zone stage and the dataset builder both make days
    here, so a model is trained on the days it is later shown."""
    weather = daily_weather(day, hours)
    if weather is None:
        return None
    et0, estimated = reference_et_daily(weather, farm)
    return ZoneDay.create(
        farm=farm.id,
        zone=zone.id,
        day=day,
        tmin=weather.tmin,
        tmax=weather.tmax,
        et0_mm=et0,
        gdd=growing_degree_days(weather.tmin, weather.tmax, zone.crop),
        rain_mm=weather.rain_mm,
        hours=weather.hours,
        estimated=estimated,
        revision=1,
    )


# --- Model features: one row per zone and closed hour, from exactly what a scorer is shown ----------------------

CONTEXT_H = 48
"""Hours of aggregates a feature row may look back; the stream shows a scorer 48 h (``stream.zones``)."""
SOIL_LAGS_H = (1, 3, 6, 12, 24)
RAIN_SPANS_H = (1, 6, 24, 48)
FORECAST_SPANS_H = (6, 24)
"""Hours ahead the weather forecast is read: the soil-moisture forecaster's horizons (``ml.dataset.HORIZONS_H``)."""
NAN = float("nan")
WEATHER_FORECAST_FEATURES: tuple[str, ...] = tuple(
    f"forecast_{what}_{h}h" for h in FORECAST_SPANS_H for what in ("rain", "rain_chance", "et0")
)
"""The features read from the weather forecast (``ZoneContext.forecast``); NaN without one."""

FEATURES: tuple[str, ...] = (
    "sm",
    *(f"sm_change_{h}h" for h in SOIL_LAGS_H),
    "sm_min_24h",
    "sm_max_24h",
    "sm_std_24h",
    "air_temp",
    "air_temp_mean_24h",
    "air_temp_max_24h",
    "air_humidity_mean_24h",
    "solar_mean_24h",
    "wind_mean_24h",
    *(f"rain_{h}h" for h in RAIN_SPANS_H),
    "hour_sin",
    "hour_cos",
    "et0_last_day",
    "et0_mean_3d",
    "kc",
    "crop_stage",
    "days_since_planting",
    "root_depth_m",
    "field_capacity_pct",
    "wilting_point_pct",
    "taw_mm",
    "raw_mm",
    "depletion_mm",
    "depletion_share",
    "ks",
    *WEATHER_FORECAST_FEATURES,
)
"""The forecaster's and the fault detector's inputs, in column order. Missing data is NaN (XGBoost routes it)."""


def _hourly_means(context: ZoneContext, kind: SensorKind) -> dict[int, ZoneAggregate]:
    """The kind's 1-hour aggregates of the context by hours before its end (0 = the hour that just closed)."""
    end = context.window_end
    out: dict[int, ZoneAggregate] = {}
    for a in context.hours.get(kind, ()):
        if a.width_s != HOUR_S:
            continue
        back = round((end - a.window_end).total_seconds() / HOUR_S)
        if 0 <= back < CONTEXT_H and (back not in out or out[back].revision < a.revision):
            out[back] = a
    return out


def _mean_over(hours: dict[int, ZoneAggregate], span: int) -> float:
    values = [a.mean for back, a in hours.items() if back < span]
    return sum(values) / len(values) if values else NAN


def _soil_features(soil: dict[int, ZoneAggregate]) -> dict[str, float]:
    now = soil.get(0)
    sm = now.mean if now is not None else NAN
    day = [a.mean for back, a in soil.items() if back < 24]
    out = {"sm": sm}
    for h in SOIL_LAGS_H:
        before = soil.get(h)
        out[f"sm_change_{h}h"] = sm - before.mean if before is not None else NAN
    out["sm_min_24h"] = min(day) if day else NAN
    out["sm_max_24h"] = max(day) if day else NAN
    mean = sum(day) / len(day) if day else NAN
    out["sm_std_24h"] = math.sqrt(sum((v - mean) ** 2 for v in day) / len(day)) if len(day) > 1 else NAN
    return out


def _weather_features(context: ZoneContext) -> dict[str, float]:
    air = _hourly_means(context, SensorKind.AIR_TEMPERATURE)
    rain = _hourly_means(context, SensorKind.RAINFALL)
    out = {
        "air_temp": air[0].mean if 0 in air else NAN,
        "air_temp_mean_24h": _mean_over(air, 24),
        "air_temp_max_24h": max((a.max for back, a in air.items() if back < 24), default=NAN),
        "air_humidity_mean_24h": _mean_over(_hourly_means(context, SensorKind.AIR_HUMIDITY), 24),
        "solar_mean_24h": _mean_over(_hourly_means(context, SensorKind.SOLAR_RADIATION), 24),
        "wind_mean_24h": _mean_over(_hourly_means(context, SensorKind.WIND_SPEED), 24),
    }
    for h in RAIN_SPANS_H:
        out[f"rain_{h}h"] = sum(a.total for back, a in rain.items() if back < h) if rain else NAN
    local = context.window_end.astimezone(ZoneInfo(context.farm.timezone))
    angle = 2 * math.pi * (local.hour + local.minute / 60) / 24
    out["hour_sin"], out["hour_cos"] = math.sin(angle), math.cos(angle)
    return out


def _forecast_features(context: ZoneContext) -> dict[str, float]:
    """The weather forecast's rain (mm), its chance (0-1) and reference ET (mm) over each span after the hour; NaN
    where the context has no forecast or its forecast does not reach that far (a stale forecast is not a dry one)."""
    forecast, start = context.forecast, context.window_end
    out: dict[str, float] = {}
    for h in FORECAST_SPANS_H:
        if forecast is None or not forecast.covers(start, h):
            out |= {f"forecast_rain_{h}h": NAN, f"forecast_rain_chance_{h}h": NAN, f"forecast_et0_{h}h": NAN}
            continue
        et0 = forecast.et0_mm(start, h)
        out[f"forecast_rain_{h}h"] = forecast.rain_mm(start, h)
        out[f"forecast_rain_chance_{h}h"] = forecast.rain_chance(start, h)
        out[f"forecast_et0_{h}h"] = NAN if et0 is None else et0
    return out


def zone_features(context: ZoneContext) -> dict[str, float]:
    """The feature row of a zone at ``context.window_end``: lags and rolling statistics of soil moisture, rain,
    temperature, daily reference ET, crop stage, the root zone's water balance (TAW, RAW, depletion and Ks from
    the measured soil moisture) and the weather forecast's rain and reference ET ahead (from ``context.forecast``
    only). Used as is by training (``ml.dataset``) and by the stream's scoring, so the two cannot drift apart."""
    zone = context.zone
    soil_params = SOILS[zone.soil]
    today = (context.window_end - timedelta(hours=1)).astimezone(ZoneInfo(context.farm.timezone)).date()
    row = _soil_features(_hourly_means(context, SensorKind.SOIL_MOISTURE)) | _weather_features(context)
    row |= _forecast_features(context)
    et0 = [d.et0_mm for d in context.days[-3:]]
    zr = root_depth_m(zone.crop, zone.planting_date, today)
    kc = crop_coefficient(zone.crop, zone.planting_date, today)
    taw = total_available_water(soil_params.field_capacity, soil_params.wilting_point, zr)
    et0_last = et0[-1] if et0 else NAN
    p = depletion_fraction(CROPS[zone.crop].p, kc * (et0_last if et0 else ASSUMED_ET0_MM))
    sm = row["sm"]
    depletion = NAN if math.isnan(sm) else depletion_from_theta(sm / 100, soil_params.field_capacity, zr)
    row |= {
        "et0_last_day": et0_last,
        "et0_mean_3d": sum(et0) / len(et0) if et0 else NAN,
        "kc": kc,
        "crop_stage": float(list(CropStage).index(growth_stage(zone.crop, zone.planting_date, today))),
        "days_since_planting": float((today - zone.planting_date).days),
        "root_depth_m": zr,
        "field_capacity_pct": soil_params.field_capacity * 100,
        "wilting_point_pct": soil_params.wilting_point * 100,
        "taw_mm": taw,
        "raw_mm": p * taw,
        "depletion_mm": depletion,
        "depletion_share": depletion / taw if taw > 0 else NAN,
        "ks": NAN if math.isnan(depletion) else water_stress(depletion, taw, p * taw),
    }
    return {name: row[name] for name in FEATURES}
