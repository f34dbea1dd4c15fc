"""The daily root-zone water balance of FAO-56 chapter 8 (Allen et al., 1998): the model a sensor correction runs.

Pure: no I/O, no clock. One ``BalanceDay`` of inputs and yesterday's depletion give one ``BalanceState``:

- TAW = 1000 (theta_FC - theta_WP) Zr (eq. 82) over the day's root depth, so growing roots add TAW;
- RAW = p TAW (eq. 83), p adjusted for the day's ETc by the table-22 footnote (``depletion_fraction``);
- Ks = (TAW - Dr) / (TAW - RAW) within 0..1 (eq. 84), from the depletion at the start of the day;
- ETc,adj = (Ks Kcb + Ke) ET0 (eq. 80); with ``ke = 0`` this is the single-coefficient Ks Kc ET0 (eq. 81);
- Dr,i = Dr,i-1 - (P - RO) - I - CR + ETc,adj + DP (eq. 85), kept within 0..TAW (eq. 86), and the water that
  would take Dr below 0 leaves the root zone as deep percolation DP (eq. 88).

Crop coefficient. Our farm uses the single coefficient (``smartfarm.agronomy.crop_coefficient``): ``kc`` is Kc
and ``ke`` stays 0. For the dual method (eq. 69, Kc = Kcb + Ke), as pyfao56 runs its seasons, ``kc`` is the day's
Kcb + Ke and ``ke`` its soil-evaporation part, which eq. 80 leaves unreduced by water stress; ``ml.field`` builds
both from a season's own inputs (its evaporation layer does not depend on Dr), so the engine is held against
pyfao56 on the same physics instead of on numbers copied from pyfao56's output.

Below the roots. FAO-56 assumes roots grow into soil at field capacity and that DP is lost. Where the soil down
to the deepest roots is known (``BalanceDay.subsoil_taw_mm`` > 0, pyfao56's layered-soil method), the soil between
the roots and that depth is a second store: roots growing into it take on its depletion (``root_growth_mm``),
and DP refills it before any water leaves. With ``subsoil_taw_mm = 0`` this is the plain FAO-56 bucket.

Sensor correction lives in ``ml.kalman``: a Kalman filter that runs this balance (``step``) day by day or hour
by hour and corrects it with measured soil water, learning the balance's drift. ``sensitivity`` on each state is
what it needs to carry its uncertainty through the day: how much of a change in the day's starting depletion is
left at its end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from smartfarm.agronomy import CROPS
from smartfarm.layout import Crop

P_MIN = 0.1
P_MAX = 0.8
"""FAO-56 table 22 footnote: the adjusted p stays within 0.1-0.8."""

ROOT_DEPTH_MIN_M = 0.15
"""FAO-56 ch. 8: the effective root depth at sowing or transplanting is 0.15-0.20 m; the lower end is cautious,
it gives smaller, more frequent irrigations while roots are shallow."""
PERENNIAL = frozenset({Crop.GRAPE})
"""Established vines keep their full root system all year; their planting date marks budbreak, not sowing."""


def root_depth_m(crop: Crop, planting: date, day: date) -> float:
    """Effective root depth on ``day``: linear from 0.15 m at planting to the crop's maximum at the end of the
    development stage (effective full cover), FAO-56 ch. 8's growing-root approach; perennials at full depth."""
    params = CROPS[crop]
    if crop in PERENNIAL:
        return params.root_depth_m
    full_cover_days = params.stage_days[0] + params.stage_days[1]
    share = clamp((day - planting).days / full_cover_days, 0.0, 1.0)
    return ROOT_DEPTH_MIN_M + (params.root_depth_m - ROOT_DEPTH_MIN_M) * share


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def depletion_fraction(p_table: float, etc_mm_day: float) -> float:
    """p adjusted for the day's crop water use, FAO-56 table 22 footnote: p + 0.04 (5 - ETc), within 0.1-0.8.

    A crop transpiring fast feels stress sooner, so p falls when ETc is above 5 mm/day."""
    return clamp(p_table + 0.04 * (5 - etc_mm_day), P_MIN, P_MAX)


def total_available_water(field_capacity: float, wilting_point: float, root_depth_m: float) -> float:
    """TAW (mm) of a root zone ``root_depth_m`` deep, FAO-56 eq. 82; water contents in m3/m3."""
    return 1000 * (field_capacity - wilting_point) * root_depth_m


def water_stress(depletion_mm: float, taw_mm: float, raw_mm: float) -> float:
    """Ks, FAO-56 eq. 84: 1 until the depletion reaches RAW, then linear to 0 at TAW."""
    if depletion_mm <= raw_mm:
        return 1.0
    if taw_mm <= raw_mm:
        return 0.0
    return clamp((taw_mm - depletion_mm) / (taw_mm - raw_mm), 0.0, 1.0)


def depletion_from_theta(theta: float, field_capacity: float, root_depth_m: float) -> float:
    """Dr (mm, >= 0) of a root zone at a measured mean water content ``theta`` (m3/m3), as FAO-56 eq. 87
    starts the balance: 1000 (theta_FC - theta) Zr. Water above field capacity drains within a day or two,
    so it counts as no depletion rather than a negative one."""
    return max(0.0, 1000 * (field_capacity - theta) * root_depth_m)


def theta_at_depletion(depletion_mm: float, field_capacity: float, root_depth_m: float) -> float:
    """The mean water content (m3/m3) of a root zone ``root_depth_m`` deep that has lost ``depletion_mm``: the
    inverse of ``depletion_from_theta`` below field capacity. At RAW it is the irrigation trigger."""
    return field_capacity - depletion_mm / (1000 * root_depth_m)


def dry_theta_pct(
    theta_pct: Any, fc_pct: Any, kc: Any, ks: Any, et0_mm_day: Any, root_depth_m: Any, hours: float
) -> Any:
    """Soil moisture (%) ``hours`` on by the balance alone, dry: min(now, FC) less Kc x Ks x ET0 x h/24 spread
    over the root depth (water above field capacity drains within the day, FAO-56 ch. 8). Element-wise on
    arrays and series, so ``ml.forecast.physics`` judges the forecaster with the rule the baseline serves."""
    etc_mm = kc * ks * et0_mm_day * hours / 24
    return np.minimum(theta_pct, fc_pct) - etc_mm / (10 * root_depth_m)


@dataclass(frozen=True, slots=True)
class BalanceDay:
    """One day's inputs to the balance (water in mm over the field, water contents in m3/m3).

    ``kc`` is the crop coefficient of the day (single Kc, or Kcb + Ke of the dual method), ``ke`` the part of it
    that is soil evaporation. ``irrigation_mm`` is the net depth that reaches the soil (after application
    losses). ``adjust_p`` False holds p at ``p_table`` (pyfao56's ``cons_p``)."""

    day: date
    et0_mm: float
    rain_mm: float
    irrigation_mm: float
    kc: float
    root_depth_m: float
    p_table: float
    field_capacity: float
    wilting_point: float
    ke: float = 0.0
    runoff_mm: float = 0.0
    capillary_rise_mm: float = 0.0
    subsoil_taw_mm: float = 0.0
    adjust_p: bool = True

    def __post_init__(self) -> None:
        problems = [
            what
            for what, bad in (
                ("root depth must be above 0 m", not self.root_depth_m > 0),
                ("field capacity must be above the wilting point", not self.field_capacity > self.wilting_point),
                ("ET0, rain, irrigation, runoff and capillary rise must be >= 0", min(self._water()) < 0),
                ("ke must be within 0..kc", not 0 <= self.ke <= max(self.kc, 0.0)),
                ("runoff cannot exceed the rain", self.runoff_mm > self.rain_mm),
                ("every input must be a finite number", not all(math.isfinite(v) for v in self._numbers())),
            )
            if bad
        ]
        if problems:
            raise ValueError(f"balance day {self.day}: {'; '.join(problems)}")

    def _water(self) -> tuple[float, ...]:
        return self.et0_mm, self.rain_mm, self.irrigation_mm, self.runoff_mm, self.capillary_rise_mm

    def _numbers(self) -> tuple[float, ...]:
        return (*self._water(), self.kc, self.ke, self.root_depth_m, self.p_table, self.subsoil_taw_mm)


@dataclass(frozen=True, slots=True)
class Subsoil:
    """The soil between the roots and the deepest they will reach: its TAW and depletion (mm)."""

    depletion_mm: float = 0.0
    taw_mm: float = 0.0


@dataclass(frozen=True, slots=True)
class BalanceState:
    """The balance at the end of one day (mm unless named otherwise)."""

    day: date
    depletion_mm: float
    """Dr at the end of the day: the balance's (eqs. 85-86), or ``ml.kalman``'s estimate after the day's
    measurement, which may lie outside 0..TAW where the sensors see water the soil's limits have no room for."""
    prior_depletion_mm: float
    """Dr before the day's measurement: the one-step-ahead estimate (the balance's own Dr when uncorrected)."""
    taw_mm: float
    raw_mm: float
    p: float
    ks: float
    etc_mm: float
    etc_adj_mm: float
    effective_rain_mm: float
    runoff_mm: float
    deep_percolation_mm: float
    irrigation_mm: float
    corrected: bool = False
    root_depth_m: float = 0.0
    root_growth_mm: float = 0.0
    """Depletion the roots took on from the subsoil they grew into today."""
    subsoil: Subsoil = Subsoil()
    measured_depletion_mm: float | None = None
    retained_mm: float = 0.0
    """Water in (rain less runoff, irrigation, capillary rise) that stayed in the root zone: not drained."""
    sensitivity: float = 1.0
    """d Dr(end) / d Dr(start): how much of an error in the day's starting depletion is left at its end. 0 when
    the day's water filled the root zone past field capacity or the crop dried it to the wilting point (the end
    is the same whatever the start), 1 - (Kc - Ke) ET0 / (TAW - RAW) under water stress (a drier start
    transpires less), else 1."""
    drift_mm_day: float = 0.0
    """The balance's systematic error that ``ml.kalman`` learned by the end of the day (mm/day; 0 uncorrected)."""


@dataclass(frozen=True, slots=True)
class _Flows:
    depletion_mm: float
    etc_adj_mm: float
    deep_percolation_mm: float
    subsoil: Subsoil
    drained_mm: float = 0.0
    """Water beyond field capacity: it left the root zone (to the subsoil or as deep percolation)."""
    dried: bool = False
    """The crop took the root zone to the wilting point."""


def _root_growth(prev_root_depth_m: float | None, day: BalanceDay, prev: Subsoil) -> tuple[float, float]:
    """(depletion brought in by growing roots, subsoil depletion left): the new root zone takes its share of the
    subsoil at the subsoil's fractional depletion, as pyfao56's layered method does."""
    grew = prev_root_depth_m is not None and day.root_depth_m > prev_root_depth_m
    if not grew or prev.taw_mm <= 0 or day.subsoil_taw_mm >= prev.taw_mm:
        return 0.0, clamp(prev.depletion_mm, 0.0, day.subsoil_taw_mm)
    growth = prev.depletion_mm * (1 - day.subsoil_taw_mm / prev.taw_mm)
    return growth, clamp(prev.depletion_mm - growth, 0.0, day.subsoil_taw_mm)


def _flows(start_mm: float, water_in_mm: float, etc_adj_mm: float, taw_mm: float, subsoil: Subsoil) -> _Flows:
    """Eqs. 85, 86 and 88: the depletion after the day's water in and out, within 0..TAW; water beyond field
    capacity refills the subsoil first and leaves as deep percolation."""
    depletion = start_mm - water_in_mm + etc_adj_mm
    if depletion < 0:
        excess = -depletion
        refill = min(excess, subsoil.depletion_mm)
        below = Subsoil(subsoil.depletion_mm - refill, subsoil.taw_mm)
        return _Flows(0.0, etc_adj_mm, excess - refill, below, drained_mm=excess)
    if depletion > taw_mm:
        # Water that is not there cannot transpire: Ks at the day's start overshot by less than a day's ETc.
        return _Flows(taw_mm, etc_adj_mm - (depletion - taw_mm), 0.0, subsoil, dried=True)
    return _Flows(depletion, etc_adj_mm, 0.0, subsoil)


def _sensitivity(flows: _Flows, day: BalanceDay, start_mm: float, taw_mm: float, raw_mm: float) -> float:
    """``BalanceState.sensitivity``: the balance's derivative of the day's end by its start."""
    if flows.drained_mm > 0 or flows.dried:
        return 0.0
    if start_mm > raw_mm and taw_mm > raw_mm:
        return max(0.0, 1 - (day.kc - day.ke) * day.et0_mm / (taw_mm - raw_mm))
    return 1.0


def step(
    prev_depletion_mm: float,
    prev_root_depth_m: float | None,
    day: BalanceDay,
    *,
    prev_subsoil: Subsoil | None = None,
) -> BalanceState:
    """One day of the balance from yesterday's depletion and root depth (None on the first day).

    Args:
        prev_subsoil: yesterday's subsoil store; None for the FAO-56 bucket (a subsoil at field capacity).
    """
    taw = total_available_water(day.field_capacity, day.wilting_point, day.root_depth_m)
    etc = day.kc * day.et0_mm
    p = depletion_fraction(day.p_table, etc) if day.adjust_p else day.p_table
    raw = p * taw
    subsoil_before = prev_subsoil or Subsoil(0.0, day.subsoil_taw_mm)
    growth, subsoil_depletion = _root_growth(prev_root_depth_m, day, subsoil_before)
    start = clamp(prev_depletion_mm, 0.0, taw)
    ks = water_stress(start, taw, raw)
    etc_adj = (ks * (day.kc - day.ke) + day.ke) * day.et0_mm
    effective_rain = day.rain_mm - day.runoff_mm
    water_in = effective_rain + day.irrigation_mm + day.capillary_rise_mm
    flows = _flows(start + growth, water_in, etc_adj, taw, Subsoil(subsoil_depletion, day.subsoil_taw_mm))
    return BalanceState(
        day=day.day,
        depletion_mm=flows.depletion_mm,
        prior_depletion_mm=flows.depletion_mm,
        taw_mm=taw,
        raw_mm=raw,
        p=p,
        ks=ks,
        etc_mm=etc,
        etc_adj_mm=flows.etc_adj_mm,
        effective_rain_mm=effective_rain,
        runoff_mm=day.runoff_mm,
        deep_percolation_mm=flows.deep_percolation_mm,
        irrigation_mm=day.irrigation_mm,
        root_depth_m=day.root_depth_m,
        root_growth_mm=growth,
        subsoil=flows.subsoil,
        retained_mm=water_in - flows.drained_mm,
        sensitivity=_sensitivity(flows, day, start, taw, raw),
    )


def run(
    days: Sequence[BalanceDay], initial_depletion_mm: float, *, initial_subsoil_depletion_mm: float = 0.0
) -> list[BalanceState]:
    """The balance alone (open loop) over consecutive ``days`` from ``initial_depletion_mm`` (Dr at the start of
    the first day); ``initial_subsoil_depletion_mm`` is the subsoil's depletion where ``subsoil_taw_mm`` is given.
    ``ml.kalman.run`` is the same balance corrected by measurements."""
    states: list[BalanceState] = []
    depletion, root_depth = initial_depletion_mm, None
    subsoil = Subsoil(initial_subsoil_depletion_mm, days[0].subsoil_taw_mm) if days else Subsoil()
    for day in days:
        state = step(depletion, root_depth, day, prev_subsoil=subsoil)
        states.append(state)
        depletion, root_depth, subsoil = state.depletion_mm, day.root_depth_m, state.subsoil
    return states
