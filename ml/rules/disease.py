"""Disease risk: TOMCAST disease severity values and the downy-mildew primary infection rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from ml.context import Advice, ZoneContext, fit_message, num
from ml.rules.common import farm_day, hourly
from smartfarm.agronomy import CropStage, growth_stage
from smartfarm.layout import Crop, SensorKind
from smartfarm.records import RecommendationKind, Severity, ZoneAggregate

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
    wet = [a for a in hourly(context, SensorKind.LEAF_WETNESS, DISEASE_DAY) if a.mean >= WET_LEAF_PCT]
    temps = {a.window_start: a.mean for a in hourly(context, SensorKind.AIR_TEMPERATURE, DISEASE_DAY)}
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
    # Rounded to 0.01 mm, far below a gauge's 0.2 mm, so ten 1 mm hours make 10 mm.
    return round(sum(a.total for a in hours), 2)


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
    today = farm_day(context)
    if zone.crop is not Crop.GRAPE or growth_stage(zone.crop, zone.planting_date, today) not in DM_SHOOT_STAGES:
        return None
    days = (today - zone.planting_date).days
    rain = hourly(context, SensorKind.RAINFALL, DISEASE_DAY)
    air = hourly(context, SensorKind.AIR_TEMPERATURE, DISEASE_DAY)
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
