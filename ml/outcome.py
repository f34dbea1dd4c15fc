"""What a season's irrigation did for a zone: water applied, days under water stress, and the yield it cost.

From a zone's true state through the season (``edge.season``'s ``truth`` table: per tick the crop's actual
evapotranspiration ETa, the reference ET0, rain and irrigation), over the crop's own season (planting to the end of
its late stage, FAO-56 table 11 lengths) within the simulated days:

- water stress: a day's Ks is its ETa / ETm, with ETm = Kc x ET0 the unstressed crop's use (FAO-56 eq. 58 and 80);
  a day is stressed when it falls below 1 (``STRESSED_BELOW``, which keeps rounding noise out);
- yield: the FAO-33 yield response, 1 - Ya/Ym = Ky (1 - ETa/ETm) over the season (Doorenbos & Kassam 1979, FAO
  Irrigation and Drainage Paper 33, table 24; the same Ky in FAO-66, Steduto et al. 2012);
- against the crop's irrigation policy (``ml.irrigation.POLICIES``) when the run followed it: a stressed day in the
  policy's deficit window is planned, not a failure, and the yield is held to the one the policy promises;
- against the calendar (``judge``): the closed loop should use ``WATER_SAVING`` less water, and have no more
  stressed days (full replenishment) or at least the promised yield (a deficit policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from ml.irrigation import IrrigationPolicy
from smartfarm.agronomy import CROPS, crop_coefficient
from smartfarm.layout import Crop, Zone

KY: dict[Crop, float] = {
    Crop.TOMATO: 1.05,
    Crop.MAIZE: 1.25,
    Crop.WHEAT: 1.15,  # spring wheat; winter wheat 1.05
    Crop.POTATO: 1.10,
    Crop.LETTUCE: 0.95,  # not in FAO-33's table: cabbage's, the nearest leafy vegetable there
    Crop.GRAPE: 0.85,
}
"""Seasonal yield response factors Ky, FAO-33 table 24."""
STRESSED_BELOW = 0.99


@dataclass(frozen=True, slots=True)
class SeasonOutcome:
    """One zone's season under one irrigation policy."""

    zone: str
    policy: str
    days: int
    """Days of the crop's season inside the simulation."""
    irrigation_mm: float
    rain_mm: float
    eta_mm: float
    etm_mm: float
    stressed_days: int
    """Days with Ks (ETa / ETm) below 1."""
    yield_pct: float
    """Estimated yield against the unstressed crop's (FAO-33), percent."""
    planned_days: int = 0
    """Of the stressed days, those in the deficit window of the crop's policy, when the run followed it."""
    promised_yield_pct: float | None = None
    """The yield the crop's policy promises, when the run followed it."""

    def row(self) -> dict[str, object]:
        return {
            "zone": self.zone,
            "policy": self.policy,
            "days": self.days,
            "irrigation_mm": round(self.irrigation_mm, 1),
            "rain_mm": round(self.rain_mm, 1),
            "eta_etm": round(self.eta_mm / self.etm_mm, 3) if self.etm_mm > 0 else 1.0,
            "stressed_days": self.stressed_days,
            "planned_days": self.planned_days,
            "yield_pct": round(self.yield_pct, 1),
            "promised_yield_pct": self.promised_yield_pct,
        }


def yield_share(crop: Crop, eta_mm: float, etm_mm: float) -> float:
    """Ya / Ym by FAO-33, within 0..1: 1 - Ky (1 - ETa/ETm)."""
    if etm_mm <= 0:
        return 1.0
    return max(0.0, min(1.0, 1 - KY[crop] * (1 - eta_mm / etm_mm)))


def season_days(zone: Zone, first: date, last: date) -> tuple[date, date]:
    """The crop's season (planting to the end of the late stage) clipped to the simulated ``first``..``last``."""
    end = zone.planting_date + timedelta(days=CROPS[zone.crop].season_days - 1)
    return max(first, zone.planting_date), min(last, end)


def daily_balance(truth: pd.DataFrame, zone: Zone) -> pd.DataFrame:
    """One zone's truth summed per UTC day: ETa, ETm (Kc of the day x ET0), rain and irrigation, and Ks."""
    mine = truth[truth["zone"] == zone.id]
    day = mine["ts"].dt.date
    daily = mine.groupby(day)[["etc_mm", "et0_mm", "rain_mm", "irrigation_mm"]].sum()
    kc = pd.Series([crop_coefficient(zone.crop, zone.planting_date, d) for d in daily.index], index=daily.index)
    daily["etm_mm"] = kc * daily["et0_mm"]
    daily["ks"] = (daily["etc_mm"] / daily["etm_mm"]).where(daily["etm_mm"] > 0, 1.0).clip(upper=1.0)
    return daily.rename(columns={"etc_mm": "eta_mm"})


def outcome(truth: pd.DataFrame, zone: Zone, policy: str, plan: IrrigationPolicy | None = None) -> SeasonOutcome:
    """The zone's season under ``policy`` from its truth table; ``plan``: the crop's irrigation policy, when the
    run followed it (its planned stress and promised yield are then reported)."""
    promised = plan.promised_yield_pct if plan is not None else None
    daily = daily_balance(truth, zone)
    if daily.empty:
        return SeasonOutcome(zone.id, policy, 0, 0.0, 0.0, 0.0, 0.0, 0, 100.0, 0, promised)
    start, end = season_days(zone, min(daily.index), max(daily.index))
    season = daily[(daily.index >= start) & (daily.index <= end)]
    eta, etm = float(season["eta_mm"].sum()), float(season["etm_mm"].sum())
    stressed = season.index[season["ks"] < STRESSED_BELOW]
    return SeasonOutcome(
        zone=zone.id,
        policy=policy,
        days=len(season),
        irrigation_mm=float(season["irrigation_mm"].sum()),
        rain_mm=float(season["rain_mm"].sum()),
        eta_mm=eta,
        etm_mm=etm,
        stressed_days=len(stressed),
        yield_pct=100 * yield_share(zone.crop, eta, etm),
        planned_days=0 if plan is None else sum(plan.deficit_on(zone.planting_date, day) for day in stressed),
        promised_yield_pct=promised,
    )


WATER_SAVING = 0.25
"""The closed loop's target (issue 26): at least a quarter less water than the calendar in every zone."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One zone's closed loop against its calendar: the water saved and whether the crop fared as it should."""

    zone: str
    plan: str
    """The crop's policy's name."""
    saving: float
    """Share of the calendar's water the closed loop did not use (negative: it used more)."""
    crop_ok: bool
    """Full replenishment: no more stressed days than the calendar; a deficit policy: at least its promised yield."""
    because: str

    judged: bool = True
    """False when the simulated days hold none of the crop's season."""

    @property
    def met(self) -> bool:
        return self.judged and self.saving >= WATER_SAVING and self.crop_ok

    def line(self) -> str:
        if not self.judged:
            return f"{self.zone}: {self.plan}: no day of the crop's season simulated"
        less = "less" if self.saving >= 0 else "more"
        saved = f"{abs(100 * self.saving):.0f}% {less} water than the calendar"
        return f"{self.zone}: {self.plan}: {saved}, {self.because}: {'met' if self.met else 'NOT met'}"


def judge(loop: SeasonOutcome, calendar: SeasonOutcome, plan: IrrigationPolicy) -> Verdict:
    """The closed loop's season ``loop`` against the calendar's ``calendar`` for a crop irrigated by ``plan``."""
    saving = 1 - loop.irrigation_mm / calendar.irrigation_mm if calendar.irrigation_mm > 0 else 0.0
    if plan.is_deficit:
        crop_ok = loop.yield_pct >= plan.promised_yield_pct
        because = f"yield {loop.yield_pct:.1f}% against {plan.promised_yield_pct:g}% promised"
    else:
        crop_ok = loop.stressed_days <= calendar.stressed_days
        because = f"{loop.stressed_days} days under stress against the calendar's {calendar.stressed_days}"
    return Verdict(loop.zone, plan.name, saving, crop_ok, because, judged=loop.days > 0)
