"""The irrigation baseline: the FAO-56 chapter 8 root-zone water balance of the soil moisture measured in the hour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ml.context import Advice, ZoneContext, fit_message, num
from ml.features import ASSUMED_ET0_MM
from ml.irrigation import Depletion, decide, regime
from ml.rules.common import farm_day, last_hour, local_time
from ml.waterbalance import (
    depletion_fraction,
    depletion_from_theta,
    root_depth_m,
    theta_at_depletion,
    total_available_water,
)
from smartfarm.agronomy import CROPS, SOILS, crop_coefficient
from smartfarm.layout import SensorKind
from smartfarm.records import ZoneAggregate


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
    today = farm_day(context)
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
    when = "now" if hours == 0 else f"at {local_time(context, start):%H:%M} (in {num(hours)} h)"
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
    last = last_hour(context, SensorKind.SOIL_MOISTURE)
    return root_zone(context, last.mean) if last is not None else None


def irrigation(context: ZoneContext) -> list[Advice]:
    """Refill the root zone to field capacity when the depletion reaches RAW, now or within the next 24 h."""
    last = last_hour(context, SensorKind.SOIL_MOISTURE)
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
        etc_mm_day=rz.etc_mm_day,
    )
    decided = decide(depletion, context.pending_irrigation_mm, regime(context.zone, farm_day(context)))
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
