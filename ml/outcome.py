"""What a season's irrigation did for a zone: water applied, days under water stress, and the yield it cost.

From a zone's true state through the season (``edge.season``'s ``truth`` table: per tick the crop's actual
evapotranspiration ETa, the reference ET0, rain and irrigation), over the crop's own season (planting to the end of
its late stage, FAO-56 table 11 lengths) within the simulated days:

- water stress: a day's Ks is its ETa / ETm, with ETm = Kc x ET0 the unstressed crop's use (FAO-56 eq. 58 and 80);
  a day is stressed when it falls below 1 (``STRESSED_BELOW``, which keeps rounding noise out);
- yield: the FAO-33 yield response, 1 - Ya/Ym = Ky (1 - ETa/ETm) over the season (Doorenbos & Kassam 1979, FAO
  Irrigation and Drainage Paper 33, table 24; the same Ky in FAO-66, Steduto et al. 2012).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

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

    def row(self) -> dict[str, object]:
        return {
            "zone": self.zone,
            "policy": self.policy,
            "days": self.days,
            "irrigation_mm": round(self.irrigation_mm, 1),
            "rain_mm": round(self.rain_mm, 1),
            "eta_etm": round(self.eta_mm / self.etm_mm, 3) if self.etm_mm > 0 else 1.0,
            "stressed_days": self.stressed_days,
            "yield_pct": round(self.yield_pct, 1),
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


def outcome(truth: pd.DataFrame, zone: Zone, policy: str) -> SeasonOutcome:
    """The zone's season under ``policy`` from its truth table."""
    daily = daily_balance(truth, zone)
    if daily.empty:
        return SeasonOutcome(zone.id, policy, 0, 0.0, 0.0, 0.0, 0.0, 0, 100.0)
    start, end = season_days(zone, min(daily.index), max(daily.index))
    season = daily[(daily.index >= start) & (daily.index <= end)]
    eta, etm = float(season["eta_mm"].sum()), float(season["etm_mm"].sum())
    return SeasonOutcome(
        zone=zone.id,
        policy=policy,
        days=len(season),
        irrigation_mm=float(season["irrigation_mm"].sum()),
        rain_mm=float(season["rain_mm"].sum()),
        eta_mm=eta,
        etm_mm=etm,
        stressed_days=int((season["ks"] < STRESSED_BELOW).sum()),
        yield_pct=100 * yield_share(zone.crop, eta, etm),
    )
