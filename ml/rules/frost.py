"""Frost: the hour's low against the crop's critical temperature at its growth stage, and the trend towards it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from ml.context import Advice, ZoneContext, fit_message, num
from ml.rules.common import farm_day, hourly, last_hour
from smartfarm.agronomy import CropStage, growth_stage
from smartfarm.layout import Crop, SensorKind
from smartfarm.records import RecommendationKind, Severity, ZoneAggregate

FROST_MARGIN_C = 2.0
"""On a clear night the leaves radiate heat to the sky and run up to about 2 degC colder than the air at the 2 m
sensor, so an hour whose low is within this margin above the crop's critical temperature is frost on the crop."""
FROST_HORIZON_H = 6.0
TREND_HOURS = 6
MIN_TREND_POINTS = 4


def dew_point_c(temp_c: float, humidity_pct: float) -> float:
    """The dew point by the Magnus formula with Alduchov & Eskridge's (1996) constants, good to 0.1 degC from
    -40 to 50 degC."""
    a, b = 17.625, 243.04
    gamma = math.log(max(humidity_pct, 1.0) / 100) + a * temp_c / (b + temp_c)
    return b * gamma / (a - gamma)


def _dew_point_floor(context: ZoneContext, last_air: ZoneAggregate) -> float | None:
    """The last hour's dew point, from its mean air temperature and humidity; None without a humidity hour.

    Air cooling at night slows sharply at its dew point, where condensing water gives back heat: a forecaster's
    old rule puts the night's low near the evening dew point. So a cooling trend is not projected past it."""
    humidity = last_hour(context, SensorKind.AIR_HUMIDITY)
    return None if humidity is None else dew_point_c(last_air.mean, humidity.mean)


@dataclass(frozen=True, slots=True)
class FrostLimit:
    """The air temperature at which a crop at one stage is injured, what freezes, and who measured it."""

    critical_c: float
    tissue: str
    source: str
    """In plain words, for the farmer's message."""


_WSU_MSU = "Washington State and Michigan State grape bud charts"
_KSU = 'Kansas State, "Spring freeze injury to Kansas wheat"'
_MAIZE = "Purdue and Iowa State University extension on frost in corn"
_UC_ANR = "University of California vegetable guides"
_POTATO = "Chen & Li 1980, Plant Physiology; potato extension guides"

FROST_LIMITS: dict[Crop, dict[CropStage, FrostLimit]] = {
    Crop.TOMATO: {  # a warm-season crop: any frost on the leaf kills leaves and fruit (UC ANR)
        CropStage.INITIAL: FrostLimit(0.0, "transplants are killed by any frost", _UC_ANR),
        CropStage.DEVELOPMENT: FrostLimit(0.0, "leaves and stems are killed by any frost", _UC_ANR),
        CropStage.MID_SEASON: FrostLimit(0.0, "leaves, flowers and fruit are killed by any frost", _UC_ANR),
        CropStage.LATE_SEASON: FrostLimit(0.0, "fruit and leaves are killed by any frost", _UC_ANR),
    },
    Crop.LETTUCE: {  # hardier, but at about -1 degC the leaf skin blisters and peels (UC ANR lettuce guide)
        CropStage.INITIAL: FrostLimit(-1.0, "seedling leaves blister", _UC_ANR),
        CropStage.DEVELOPMENT: FrostLimit(-1.0, "leaf skin blisters and peels", _UC_ANR),
        CropStage.MID_SEASON: FrostLimit(-1.0, "heads blister and peel, then rot", _UC_ANR),
        CropStage.LATE_SEASON: FrostLimit(-1.0, "heads blister and peel, then rot", _UC_ANR),
    },
    Crop.MAIZE: {
        # The growing point stays below ground until about V5 (FAO-56's initial stage stands in for it): frozen
        # leaves regrow, and only about -2 degC (28 degF) for hours kills the plant (Nielsen, Purdue; Iowa State).
        CropStage.INITIAL: FrostLimit(-2.0, "the growing point is still below ground", _MAIZE),
        # From V5 the growing point is above ground: leaves die at 0 degC; late, kernels stop filling at 0 degC.
        CropStage.DEVELOPMENT: FrostLimit(0.0, "leaves and the exposed growing point die", _MAIZE),
        CropStage.MID_SEASON: FrostLimit(0.0, "leaves, silks and tassels die", _MAIZE),
        CropStage.LATE_SEASON: FrostLimit(0.0, "leaves die and kernels stop filling", _MAIZE),
    },
    Crop.WHEAT: {  # Kansas State C-646's two-hour critical temperatures, converted from degF
        CropStage.INITIAL: FrostLimit(-11.1, "tillering wheat is hardy to about 12 °F", _KSU),  # 12 degF
        CropStage.DEVELOPMENT: FrostLimit(-4.4, "the head in the jointing stem dies", _KSU),  # jointing, 24 degF
        CropStage.MID_SEASON: FrostLimit(-1.1, "heading and flowering wheat turns sterile", _KSU),  # 30 degF
        CropStage.LATE_SEASON: FrostLimit(-2.2, "milk and dough kernels shrivel", _KSU),  # 28 degF
    },
    Crop.POTATO: {  # common potato (S. tuberosum) foliage is killed near -2 to -3 degC and barely acclimates
        CropStage.INITIAL: FrostLimit(-2.0, "emerged sprouts are killed", _POTATO),
        CropStage.DEVELOPMENT: FrostLimit(-2.0, "foliage is killed", _POTATO),
        CropStage.MID_SEASON: FrostLimit(-2.0, "foliage is killed and tubers stop growing", _POTATO),
        CropStage.LATE_SEASON: FrostLimit(-2.0, "foliage is killed", _POTATO),
    },
    Crop.GRAPE: {  # 10 % bud kill in the WSU / MSU critical temperature charts; the planting date is budbreak
        CropStage.INITIAL: FrostLimit(-2.0, "bursting buds and first leaves die", _WSU_MSU),  # budbreak, ~28 degF
        CropStage.DEVELOPMENT: FrostLimit(-1.0, "green shoots and flower clusters die", _WSU_MSU),  # ~30 degF
        CropStage.MID_SEASON: FrostLimit(-1.0, "shoots, flowers and young berries die", _WSU_MSU),
        CropStage.LATE_SEASON: FrostLimit(-2.0, "leaves die and ripening stops", _WSU_MSU),  # autumn frost
    },
}
"""The critical temperature by crop and FAO-56 growth stage: the temperature on the plant at which the named
tissue is injured. The number beside each is the baseline's assumption from the source it names."""

PERENNIALS: dict[Crop, FrostLimit] = {
    # Dormant vinifera buds survive about -15 degC by midwinter (WSU bud cold-hardiness monitoring, Mills,
    # Ferguson & Keller 2006); they harden through autumn, so an early-autumn freeze could hurt above that.
    Crop.GRAPE: FrostLimit(-15.0, "dormant buds die below it in midwinter", "Washington State University"),
}
"""Crops that stay in the field out of season, and their winter (dormant) limit: a vineyard before budbreak or
after harvest is not alerted at 1 degC. An annual is simply not in the field then, so it gets no frost advice."""


@dataclass(frozen=True, slots=True)
class CropFrost:
    """A zone's crop on a day, as frost sees it: its stage in words, its age, and its limit."""

    stage: str
    age_days: int
    limit: FrostLimit


def frost_limit(crop: Crop, planting: date, day: date) -> CropFrost | None:
    """The crop's frost limit on ``day``; None for an annual not yet planted or already harvested."""
    age = (day - planting).days
    stage = growth_stage(crop, planting, day)
    if age >= 0 and stage is not CropStage.HARVESTED:
        return CropFrost(f"{stage.value.replace('_', '-')} stage", age, FROST_LIMITS[crop][stage])
    dormant = PERENNIALS.get(crop)
    if dormant is None:
        return None
    return CropFrost("dormant season (before budbreak)" if age < 0 else "dormant season (after harvest)", age, dormant)


@dataclass(frozen=True, slots=True)
class Trend:
    """A least-squares line through hourly means: degC per hour, and its value at the window's end."""

    slope: float
    now: float
    points: int


def temperature_trend(context: ZoneContext) -> Trend | None:
    """The trend of the last six hourly mean air temperatures; None with fewer than four of them."""
    hours = hourly(context, SensorKind.AIR_TEMPERATURE, timedelta(hours=TREND_HOURS))
    if len(hours) < MIN_TREND_POINTS:
        return None
    # Each mean stands for the middle of its hour; x is hours before the window's end.
    xs = [(a.window_end - context.window_end).total_seconds() / 3600 - 0.5 for a in hours]
    ys = [a.mean for a in hours]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return Trend(slope=slope, now=my - slope * mx, points=len(hours))


def _hours_to(trend: Trend | None, critical_c: float) -> float | None:
    """Hours until the trend reaches ``critical_c``, when it does within the horizon."""
    if trend is None or trend.slope >= 0:
        return None
    hours = max(0.0, trend.now - critical_c) / -trend.slope
    return hours if hours <= FROST_HORIZON_H else None


def _frost_course(trend: Trend | None, to_critical: float | None, critical_c: float) -> str:
    if trend is None:
        return "no trend yet (too few hours)"
    if to_critical is None:
        return f"changing {trend.slope:+.1f} °C per hour"
    return f"falling {-trend.slope:.1f} °C per hour, on course for {num(critical_c)} °C in about {num(to_critical)} h"


def _frost_message(context: ZoneContext, last: ZoneAggregate, crop: CropFrost, course: str) -> str:
    limit = crop.limit
    return fit_message(
        f"Frost risk on {context.zone.name}: the last hour's low was {last.min:.1f} °C "
        f"(mean {last.mean:.1f} °C), {course}. {context.zone.crop.value.capitalize()} in its {crop.stage} is "
        f"injured at {num(limit.critical_c)} °C ({limit.tissue}; {limit.source}); plants run up to "
        f"{num(FROST_MARGIN_C)} °C colder than the air on clear nights. Start frost protection (sprinklers or "
        "wind machines) and cover sensitive plants before the coldest hour, just before dawn."
    )


def _frost_inputs(
    last: ZoneAggregate, crop: CropFrost, trend: Trend | None, to_critical: float | None
) -> dict[str, float]:
    critical = crop.limit.critical_c
    inputs = {
        "tmin_c": last.min,
        "tmean_c": last.mean,
        "critical_c": critical,
        "frost_margin_c": FROST_MARGIN_C,
        "frost_alert_c": critical + FROST_MARGIN_C,
        "crop_age_days": float(crop.age_days),
    }
    if trend is not None:
        inputs |= {"slope_c_per_h": trend.slope, "trend_now_c": trend.now, "trend_hours": float(trend.points)}
    if to_critical is not None:
        inputs["hours_to_critical"] = to_critical
    return inputs


def frost(context: ZoneContext) -> list[Advice]:
    """Frost when the last hour's low is within 2 degC above the crop's critical temperature for its stage
    (``FROST_LIMITS``), or the 6-hour trend reaches that temperature within 6 h; critical at or below it."""
    last = last_hour(context, SensorKind.AIR_TEMPERATURE)
    zone = context.zone
    crop = frost_limit(zone.crop, zone.planting_date, farm_day(context))
    if last is None or crop is None:
        return []
    critical = crop.limit.critical_c
    trend = temperature_trend(context)
    to_critical = _hours_to(trend, critical)
    dew = _dew_point_floor(context, last)
    if dew is not None and dew > critical + FROST_MARGIN_C:
        to_critical = None  # the trend would cross the dew point first, where cooling stalls
    observed = last.min <= critical + FROST_MARGIN_C
    if not observed and to_critical is None:
        return []
    frozen = last.min <= critical
    return [
        Advice(
            kind=RecommendationKind.FROST,
            severity=Severity.CRITICAL if frozen else Severity.WARNING,
            message=_frost_message(context, last, crop, _frost_course(trend, to_critical, critical)),
            # A reading at the threshold is evidence; a straight line through cooling air only a projection.
            confidence=0.95 if frozen else 0.85 if observed else 0.6,
            inputs=_frost_inputs(last, crop, trend, to_critical) | ({} if dew is None else {"dew_point_c": dew}),
            valid_for=timedelta(hours=12),
        )
    ]
