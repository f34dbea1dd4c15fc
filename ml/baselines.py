"""The transparent baselines: one pure rule per recommendation kind, from FAO-56 and published thresholds.

Each rule takes a ``ZoneContext`` and returns a list of ``Advice`` (empty when it has nothing to say), with the
numbers it used in ``inputs`` and in its message, so a farmer can check the advice and a later model can be
measured against it. ``RULES`` is the order ``Baselines.score`` runs them in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ml.context import Advice, SensorSuspicion, ZoneContext, fit_message, num
from ml.features import ASSUMED_ET0_MM, GDD_BASE_C, GDD_TO_HARVEST
from ml.irrigation import Depletion, decide
from ml.waterbalance import (
    clamp,
    depletion_fraction,
    depletion_from_theta,
    root_depth_m,
    theta_at_depletion,
    total_available_water,
)
from smartfarm.agronomy import CROPS, SOILS, CropStage, crop_coefficient, growth_stage
from smartfarm.layout import Crop, SensorKind
from smartfarm.records import Flag, RecommendationKind, Severity, ZoneAggregate

HOUR = timedelta(hours=1)


def _hourly(context: ZoneContext, kind: SensorKind, span: timedelta) -> list[ZoneAggregate]:
    """The kind's 1-hour aggregates whose windows end within ``span`` before ``window_end``, oldest first."""
    since = context.window_end - span
    return [a for a in context.hours.get(kind, ()) if a.width_s == 3600 and since < a.window_end <= context.window_end]


def _last_hour(context: ZoneContext, kind: SensorKind) -> ZoneAggregate | None:
    """The aggregate of the window that just closed; an older one is not "now", so none then."""
    found = _hourly(context, kind, HOUR)
    return found[-1] if found else None


def _local(context: ZoneContext, when: datetime) -> datetime:
    return when.astimezone(ZoneInfo(context.farm.timezone))


def _today(context: ZoneContext) -> date:
    """The farm's local date of the hour that just closed (planting dates are local)."""
    return _local(context, context.window_end - HOUR).date()


# --- 1. Irrigation: the FAO-56 chapter 8 root-zone water balance ---------------------------------------------


@dataclass(frozen=True, slots=True)
class RootZone:
    """The root zone's water balance at the close of the window (mm of water over the root depth)."""

    theta_pct: float
    fc_pct: float
    wp_pct: float
    root_depth_m: float
    kc: float
    et0_mm_day: float
    et0_assumed: bool
    etc_mm_day: float
    p: float
    taw_mm: float
    raw_mm: float
    depletion_mm: float

    @property
    def trigger_pct(self) -> float:
        """The soil moisture (%) at which the depletion reaches RAW: below it, irrigation is due."""
        return 100 * theta_at_depletion(self.raw_mm, self.fc_pct / 100, self.root_depth_m)

    def inputs(self) -> dict[str, float]:
        return {
            "theta_pct": self.theta_pct,
            "fc_pct": self.fc_pct,
            "wp_pct": self.wp_pct,
            "root_depth_m": self.root_depth_m,
            "kc": self.kc,
            "et0_mm_day": self.et0_mm_day,
            "et0_assumed": float(self.et0_assumed),
            "etc_mm_day": self.etc_mm_day,
            "p": self.p,
            "taw_mm": self.taw_mm,
            "raw_mm": self.raw_mm,
            "depletion_mm": self.depletion_mm,
        }


def root_zone(context: ZoneContext, theta_pct: float) -> RootZone:
    """The water balance for soil moisture ``theta_pct``: TAW (FAO-56 eq. 82), RAW (eq. 83), depletion Dr."""
    zone = context.zone
    soil = SOILS[zone.soil]
    today = _today(context)
    zr = root_depth_m(zone.crop, zone.planting_date, today)
    kc = crop_coefficient(zone.crop, zone.planting_date, today)
    et0 = context.days[-1].et0_mm if context.days else ASSUMED_ET0_MM
    etc = kc * et0
    p = depletion_fraction(CROPS[zone.crop].p, etc)
    taw = total_available_water(soil.field_capacity, soil.wilting_point, zr)
    return RootZone(
        theta_pct=theta_pct,
        fc_pct=soil.field_capacity * 100,
        wp_pct=soil.wilting_point * 100,
        root_depth_m=zr,
        kc=kc,
        et0_mm_day=et0,
        et0_assumed=not context.days,
        etc_mm_day=etc,
        p=p,
        taw_mm=taw,
        raw_mm=p * taw,
        depletion_mm=depletion_from_theta(theta_pct / 100, soil.field_capacity, zr),
    )


LOOKAHEAD_H = 24.0
"""Irrigation due within this many hours is scheduled now, so the valve opens as the crop reaches RAW."""


def hours_to_raw(rz: RootZone) -> float | None:
    """Hours until the depletion reaches RAW at today's ETc: 0 when it has, None when beyond the look-ahead."""
    if rz.depletion_mm >= rz.raw_mm:
        return 0.0
    if rz.etc_mm_day <= 0:
        return None
    hours = (rz.raw_mm - rz.depletion_mm) / rz.etc_mm_day * 24
    return hours if hours <= LOOKAHEAD_H else None


def _irrigation_message(context: ZoneContext, rz: RootZone, amount: float, hours: float) -> str:
    zone = context.zone
    start = context.window_end + timedelta(minutes=round(hours * 60))  # as start_at is
    when = "now" if hours == 0 else f"at {_local(context, start):%H:%M} (in {num(hours)} h)"
    pending = context.pending_irrigation_mm
    extra = f" on top of the {num(pending)} mm already planned" if pending > 0 else ""
    lost = f"has lost {num(rz.depletion_mm, 0)} mm of water"
    limit = f"the {num(rz.raw_mm, 0)} mm the crop can use without stress (readily available water)"
    state = f"{lost}, at or past {limit}" if hours == 0 else f"{lost} and will reach {limit} by then"
    assumed = " (assumed, no day closed yet)" if rz.et0_assumed else ""
    return fit_message(
        f"Irrigate {num(amount)} mm{extra} on {zone.name} {when}: the root zone (0-{rz.root_depth_m * 100:.0f} cm) "
        f"{state}. "
        f"Soil moisture {rz.theta_pct:.1f}% against field capacity {num(rz.fc_pct)}%; crop water use "
        f"{rz.etc_mm_day:.1f} mm/day (Kc {rz.kc:.2f} x ET0 {rz.et0_mm_day:.1f} mm{assumed}). "
        f"That is about {num(amount / zone.irrigation_rate_mm_h)} h at {num(zone.irrigation_rate_mm_h)} mm/h."
    )


def _soil_coverage(context: ZoneContext, last: ZoneAggregate) -> float:
    """This hour's soil readings against the most seen in any hour of the last 48 h: the zone's own normal,
    since how often devices report is edge configuration the scorer does not see."""
    most = max(a.count for a in context.hours.get(SensorKind.SOIL_MOISTURE, (last,)))
    return last.count / max(most, last.count)


def measured_root_zone(context: ZoneContext) -> RootZone | None:
    """The water balance of the soil moisture measured in the hour that just closed; None without one."""
    last = _last_hour(context, SensorKind.SOIL_MOISTURE)
    return root_zone(context, last.mean) if last is not None else None


def irrigation(context: ZoneContext) -> list[Advice]:
    """Refill the root zone to field capacity when the depletion reaches RAW, now or within the next 24 h."""
    last = _last_hour(context, SensorKind.SOIL_MOISTURE)
    if last is None:
        return []
    rz = root_zone(context, last.mean)
    hours = hours_to_raw(rz)
    if hours is None:
        return []
    coverage = _soil_coverage(context, last)
    depletion = Depletion(
        now_mm=rz.depletion_mm,
        due_mm=rz.depletion_mm if hours == 0 else rz.raw_mm,
        hours=hours,
        raw_mm=rz.raw_mm,
        taw_mm=rz.taw_mm,
        coverage=coverage,
        et0_assumed=rz.et0_assumed,
    )
    decided = decide(depletion, context.pending_irrigation_mm)
    if decided is None:
        return []
    inputs = {
        **rz.inputs(),
        "pending_mm": context.pending_irrigation_mm,
        "hours_to_raw": hours,
        "amount_mm": decided.amount_mm,
        "soil_readings": float(last.count),
        "coverage": coverage,
        "irrigation_rate_mm_h": context.zone.irrigation_rate_mm_h,
    }
    return [decided.advice(context, _irrigation_message(context, rz, decided.amount_mm, hours), inputs)]


# --- 2. Frost ------------------------------------------------------------------------------------------------

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
    humidity = _last_hour(context, SensorKind.AIR_HUMIDITY)
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
    hours = _hourly(context, SensorKind.AIR_TEMPERATURE, timedelta(hours=TREND_HOURS))
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
    last = _last_hour(context, SensorKind.AIR_TEMPERATURE)
    zone = context.zone
    crop = frost_limit(zone.crop, zone.planting_date, _today(context))
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


# --- 3. Heat stress ------------------------------------------------------------------------------------------

HEAT_THRESHOLD_C: dict[Crop, float] = {
    Crop.TOMATO: 35.0,  # fruit set fails above ~35 degC day temperature (Sato et al. 2000, Plant Cell Environ.)
    Crop.MAIZE: 38.0,  # pollen viability collapses near 38 degC at silking (Schoper et al. 1987, Crop Sci.)
    Crop.WHEAT: 32.0,  # grain set and filling suffer above ~31-32 degC at anthesis (Porter & Gawith 1999)
    Crop.POTATO: 30.0,  # tuber growth stops above ~29-30 degC (Levy & Veilleux 2007, Am. J. Potato Res.)
    Crop.LETTUCE: 29.0,  # bolting, tipburn and bitterness above ~28-30 degC (UC ANR lettuce production guide)
    Crop.GRAPE: 40.0,  # photosynthesis shuts down and berries sunburn near 40 degC (Greer & Weedon 2013)
}
"""Air temperature (degC) at which each crop starts to suffer: the baseline's assumption from the literature."""
HEAT_CRITICAL_ABOVE_C = 5.0

_HEAT_EFFECT: dict[Crop, str] = {
    Crop.TOMATO: "flowers drop and fruit fails to set",
    Crop.MAIZE: "pollen dries out and kernels fail to set",
    Crop.WHEAT: "grain filling is cut short",
    Crop.POTATO: "tubers stop growing",
    Crop.LETTUCE: "it bolts, turns bitter and gets tipburn",
    Crop.GRAPE: "leaves stop working and berries sunburn",
}


def heat(context: ZoneContext) -> list[Advice]:
    """Heat stress when the last hour's maximum reaches the crop's threshold; critical 5 degC above it."""
    last = _last_hour(context, SensorKind.AIR_TEMPERATURE)
    crop = context.zone.crop
    threshold = HEAT_THRESHOLD_C[crop]
    if last is None or last.max < threshold:
        return []
    message = (
        f"Heat stress on {context.zone.name}: air temperature reached {last.max:.1f} °C in the last hour, above the "
        f"{num(threshold)} °C at which {crop.value} suffers ({_HEAT_EFFECT[crop]}). Irrigate early in the morning so "
        "the crop can keep cool by transpiring, shade sensitive plants, and leave field work to the cool hours."
    )
    return [
        Advice(
            kind=RecommendationKind.HEAT,
            severity=Severity.CRITICAL if last.max >= threshold + HEAT_CRITICAL_ABOVE_C else Severity.WARNING,
            message=fit_message(message),
            confidence=0.9,
            inputs={"tmax_c": last.max, "threshold_c": threshold},
            valid_for=timedelta(hours=12),
        )
    ]


# --- 4. Disease risk -----------------------------------------------------------------------------------------

DISEASE_DAY = timedelta(hours=24)
WET_LEAF_PCT = 50.0
"""An hour counts as wet when at least half of the leaf-wetness sensor's surface was wet on average."""
MIN_WET_HOURS = 6

DSV_TABLE: tuple[tuple[float, float, tuple[int, ...]], ...] = (
    (13.0, 18.0, (7, 16, 21)),
    (18.0, 21.0, (4, 9, 16, 23)),
    (21.0, 26.0, (3, 6, 13, 21)),
    (26.0, 30.0, (4, 9, 16, 23)),
)
"""The TOMCAST disease severity value chart (Madden, Pennypacker & MacNab 1978, FAST; Pitblado 1992, TOMCAST).

Each row: mean temperature of the wet hours from (inclusive) and to (exclusive), degC; then the leaf-wet hours at
which the DSV becomes 1, 2, 3 and 4. Below 13 degC and from 30 degC the value is 0: the fungi (Alternaria,
Septoria) hardly infect there. The chart was made for tomato; it stands here for leaf disease of every crop,
until a crop-specific model replaces it (grape has one beside it: ``downy_mildew``)."""
DSV_ADVISORY = 3
DSV_WARNING = 4


def disease_severity_value(wet_hours: int, mean_temp_c: float) -> int:
    """The TOMCAST DSV (0-4) of a day with ``wet_hours`` leaf-wet hours at ``mean_temp_c``."""
    for low, high, steps in DSV_TABLE:
        if low <= mean_temp_c < high:
            return sum(wet_hours >= s for s in steps)
    return 0


@dataclass(frozen=True, slots=True)
class Tomcast:
    """The last 24 h by TOMCAST: leaf-wet hours, the mean temperature of those hours, and their DSV."""

    wet_hours: int
    mean_temp_c: float
    dsv: int

    def inputs(self) -> dict[str, float]:
        return {
            "wet_hours": float(self.wet_hours),
            "wet_mean_temp_c": self.mean_temp_c,
            "dsv": float(self.dsv),
            "wet_leaf_pct": WET_LEAF_PCT,
        }


def tomcast(context: ZoneContext) -> Tomcast | None:
    """The TOMCAST verdict of the last 24 h of leaf wetness, when its DSV reaches the advisory 3."""
    wet = [a for a in _hourly(context, SensorKind.LEAF_WETNESS, DISEASE_DAY) if a.mean >= WET_LEAF_PCT]
    temps = {a.window_start: a.mean for a in _hourly(context, SensorKind.AIR_TEMPERATURE, DISEASE_DAY)}
    wet_temps = [temps[a.window_start] for a in wet if a.window_start in temps]
    if len(wet) < MIN_WET_HOURS or not wet_temps:
        return None
    mean_temp = sum(wet_temps) / len(wet_temps)
    dsv = disease_severity_value(len(wet), mean_temp)
    return Tomcast(len(wet), mean_temp, dsv) if dsv >= DSV_ADVISORY else None


DM_MIN_TEMP_C = 10.0
DM_MIN_RAIN_MM = 10.0
DM_SHOOT_STAGES = (CropStage.DEVELOPMENT, CropStage.MID_SEASON, CropStage.LATE_SEASON)
"""Shoots are taken to be past 10 cm once the vine is past FAO-56's initial stage (20 days after budbreak, the
zone's planting date): shoots reach 10 cm two to three weeks after budbreak, and no sensor measures them."""


@dataclass(frozen=True, slots=True)
class DownyMildew:
    """A primary infection of grape downy mildew (Plasmopara viticola) by the 10-10-24 rule."""

    rain_mm: float
    """Rain over the last 24 hours."""
    tmin_c: float
    """The air's lowest temperature over the last 24 hours."""
    days_since_budbreak: int

    def inputs(self) -> dict[str, float]:
        return {
            "rain_24h_mm": self.rain_mm,
            "tmin_24h_c": self.tmin_c,
            "days_since_budbreak": float(self.days_since_budbreak),
            "dm_min_rain_mm": DM_MIN_RAIN_MM,
            "dm_min_temp_c": DM_MIN_TEMP_C,
        }


def _rain_mm(hours: Sequence[ZoneAggregate]) -> float:
    # Each reading is the rain since the device's previous one, so an hour's rain is mean x count (as in
    # ml.features.daily_weather); rounded to 0.01 mm, far below a gauge's 0.2 mm, so ten 1 mm hours make 10 mm.
    return round(sum(a.mean * a.count for a in hours), 2)


def downy_mildew(context: ZoneContext) -> DownyMildew | None:
    """Grape downy mildew's primary infection by the 10-10-24 rule, when all three of its conditions are met.

    Baldacci's "three tens" (1947; Gessler, Pertot & Perazzolli 2011, Phytopathologia Mediterranea; the 10-10-24
    form in University of Minnesota and Cornell grape extension): the air at least 10 degC throughout (the lowest
    hourly minimum of the last 24 h), at least 10 mm of rain within 24 hours (the literature allows 24-48 h; the
    last 24 h are used here), and shoots at least 10 cm long, which no sensor measures: the vine past its initial
    stage stands in for them (``DM_SHOOT_STAGES``). None for every crop but grape, and for a zone without a rain
    gauge (no rainfall hours in the last 24 h, as in the default layout's vineyard): no gauge, no verdict.
    """
    zone = context.zone
    today = _today(context)
    if zone.crop is not Crop.GRAPE or growth_stage(zone.crop, zone.planting_date, today) not in DM_SHOOT_STAGES:
        return None
    days = (today - zone.planting_date).days
    rain = _hourly(context, SensorKind.RAINFALL, DISEASE_DAY)
    air = _hourly(context, SensorKind.AIR_TEMPERATURE, DISEASE_DAY)
    if not rain or not air:
        return None
    found = DownyMildew(rain_mm=_rain_mm(rain), tmin_c=min(a.min for a in air), days_since_budbreak=days)
    return found if found.rain_mm >= DM_MIN_RAIN_MM and found.tmin_c >= DM_MIN_TEMP_C else None


def _disease_message(context: ZoneContext, tc: Tomcast | None, dm: DownyMildew | None) -> str:
    found = []
    if tc is not None:
        found.append(
            f"leaves were wet for {tc.wet_hours} of the last 24 hours at a mean {tc.mean_temp_c:.1f} °C, a disease "
            f"severity value of {tc.dsv} of 4 (TOMCAST)"
        )
    if dm is not None:
        found.append(
            f"{num(dm.rain_mm)} mm of rain in 24 h with the air at {num(DM_MIN_TEMP_C)} °C or more (low "
            f"{dm.tmin_c:.1f} °C) and shoots taken as past 10 cm (day {dm.days_since_budbreak} since budbreak) meet "
            "the 10-10-24 rule for downy mildew (Baldacci's three tens; Gessler et al. 2011)"
        )
    todo = (
        "Spray a protective fungicide before the next rain and scout for oil spots on the leaves in 5-17 days."
        if dm is not None
        else "Scout for leaf spots, consider a protective fungicide spray, and water at the roots rather than overhead."
    )
    return fit_message(f"Fungal disease risk on {context.zone.name}: {'; and '.join(found)}. {todo}")


def disease_risk(context: ZoneContext) -> list[Advice]:
    """Fungal disease risk from the last 24 h: TOMCAST's leaf wetness and temperature for every crop, and for
    grape the 10-10-24 rule of downy mildew (``downy_mildew``), as one advice naming the model(s) that fired.

    One advice, not one per model: the stream keys a zone's cooldown and recommendation id by advice kind
    (``stream.advice``), so a second disease advice in the same hour would be dropped or collide.
    """
    tc = tomcast(context)
    dm = downy_mildew(context)
    if tc is None and dm is None:
        return []
    # An infection the rule of thumb allows is a spray decision within hours; TOMCAST warns only at DSV 4.
    warning = dm is not None or (tc is not None and tc.dsv >= DSV_WARNING)
    inputs = (tc.inputs() if tc is not None else {}) | (dm.inputs() if dm is not None else {})
    return [
        Advice(
            kind=RecommendationKind.DISEASE_RISK,
            severity=Severity.WARNING if warning else Severity.ADVISORY,
            message=_disease_message(context, tc, dm),
            confidence=0.8 if warning else 0.7,
            inputs=inputs,
            valid_for=timedelta(hours=24),
        )
    ]


# --- 5. Harvest ----------------------------------------------------------------------------------------------

HARVEST_NOTICE_DAYS = 14.0
HARVEST_SOON_DAYS = 7.0
RATE_DAYS = 7


def harvest(context: ZoneContext) -> list[Advice]:
    """The crop's predicted harvest from degree days since planting and the last week's rate, once within 14 days."""
    zone = context.zone
    days = [d for d in context.days if d.day >= zone.planting_date]
    if not days:
        return []
    total = sum(d.gdd for d in days)
    target = GDD_TO_HARVEST[zone.crop]
    recent = days[-RATE_DAYS:]
    rate = sum(d.gdd for d in recent) / len(recent)
    remaining = max(0.0, target - total)
    if remaining > 0 and (rate <= 0 or remaining / rate > HARVEST_NOTICE_DAYS):
        return []
    days_left = remaining / rate if remaining > 0 else 0.0
    due = context.window_end + timedelta(days=days_left)
    return [
        Advice(
            kind=RecommendationKind.HARVEST,
            severity=Severity.INFO if days_left > HARVEST_SOON_DAYS else Severity.ADVISORY,
            message=fit_message(_harvest_message(context, (total, target, rate, len(recent)), days_left, due)),
            # A degree-day forecast is good to a few days; it blurs with every day of weather still to come.
            confidence=clamp(0.9 - 0.03 * days_left, 0.4, 0.9),
            inputs={
                "gdd_total": total,
                "gdd_target": target,
                "gdd_base_c": GDD_BASE_C[zone.crop],
                "gdd_rate_per_day": rate,
                "days_left": days_left,
                "rate_days": float(len(recent)),
            },
            valid_for=timedelta(hours=24),
            due=due,
        )
    ]


def _harvest_message(
    context: ZoneContext, gdd: tuple[float, float, float, int], days_left: float, due: datetime
) -> str:
    total, target, rate, rate_days = gdd
    crop = context.zone.crop
    summary = (
        f"{total:,.0f} of the {target:,.0f} degree days (base {num(GDD_BASE_C[crop])} °C) {crop.value} needs "
        f"since planting have accumulated, at {rate:.1f} a day over the last {rate_days} days"
    )
    if days_left == 0:
        return f"{context.zone.name} is ready to harvest: {summary}. Check ripeness in the field and plan the harvest."
    return (
        f"{context.zone.name} should be ready to harvest in about {days_left:.0f} days (around "
        f"{_local(context, due):%d %b}): {summary}. Plan labour and transport, and check ripeness in the field."
    )


# --- 6. Sensor fault -----------------------------------------------------------------------------------------

MIN_READINGS = 3
"""Fewer readings than this in an hour are too few to call a sensor broken, except for out-of-range values."""
_FLAG_ORDER = (Flag.OUT_OF_RANGE, Flag.STUCK, Flag.SPIKE, Flag.RATE_OF_CHANGE)
"""On a tie, the flag named in the message: the most certain sign of a fault first."""


def _dominant_flag(flags: Mapping[str, int]) -> tuple[str, int]:
    rank = {f.value: i for i, f in enumerate(_FLAG_ORDER)}
    name = min(flags, key=lambda f: (-flags[f], rank.get(f, len(rank)), f))
    return name, flags[name]


def _fault_description(s: SensorSuspicion, flag: str, n: int) -> str:
    low, high = s.kind.physical_range
    what = {
        Flag.STUCK.value: f"it repeated the very same value in {n} of {s.readings} readings, as if stuck",
        Flag.OUT_OF_RANGE.value: (
            f"{n} of {s.readings} readings were outside what a working sensor can report "
            f"({num(low)} to {num(high)} {s.kind.unit})"
        ),
        Flag.SPIKE.value: f"{n} of {s.readings} readings jumped further than {s.kind.value} can between two readings",
        Flag.RATE_OF_CHANGE.value: f"{n} of {s.readings} readings changed faster than {s.kind.value} does in nature",
    }
    return what.get(flag, f"{n} of {s.readings} readings were flagged {flag}")


def _is_faulty(s: SensorSuspicion, flagged: int) -> bool:
    out_of_range = s.flags.get(Flag.OUT_OF_RANGE.value, 0)
    return (s.readings >= MIN_READINGS and 2 * flagged >= s.readings) or 2 * out_of_range > s.readings


def _sensor_fault(s: SensorSuspicion) -> Advice | None:
    if not s.flags or s.readings <= 0:
        return None
    flag, flagged = _dominant_flag(s.flags)
    if not _is_faulty(s, flagged):
        return None
    message = (
        f"Check sensor {s.sensor} ({s.kind.value}) on device {s.device}: {_fault_description(s, flag, flagged)} "
        "in the last hour. Clean, re-seat or replace it; until then its flagged readings stay out of the zone's "
        "figures."
    )
    return Advice(
        kind=RecommendationKind.SENSOR_FAULT,
        severity=Severity.WARNING if flagged >= s.readings else Severity.ADVISORY,
        message=fit_message(message),
        confidence=clamp(flagged / s.readings, 0.5, 0.95),
        inputs={"readings": float(s.readings), "flagged": float(flagged)}
        | {f"flag_{name}": float(count) for name, count in s.flags.items()},
        valid_for=timedelta(hours=24),
        device=s.device,
        sensor=s.sensor,
    )


def sensor_fault(context: ZoneContext) -> list[Advice]:
    """A fault for each sensor whose readings of the last hour were mostly flagged (any majority out of range)."""
    found = (_sensor_fault(s) for s in context.suspicions)
    return [a for a in found if a is not None]


RULES: Sequence[Callable[[ZoneContext], list[Advice]]] = (
    irrigation,
    frost,
    heat,
    disease_risk,
    harvest,
    sensor_fault,
)
"""Every baseline rule, in the order their advice is returned."""
