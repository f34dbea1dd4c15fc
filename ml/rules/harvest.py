"""Harvest timing: growing degree days to the crop's harvest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ml.context import Advice, ZoneContext, fit_message, num
from ml.features import GDD_BASE_C, GDD_TO_HARVEST
from ml.rules.common import local_time
from ml.waterbalance import (
    clamp,
)
from smartfarm.layout import Zone
from smartfarm.records import RecommendationKind, Severity, ZoneDay

HARVEST_NOTICE_DAYS = 14.0
HARVEST_SOON_DAYS = 7.0
RATE_DAYS = 7


@dataclass(frozen=True, slots=True)
class HarvestOutlook:
    """Degree days since planting against the crop's need, at the last week's rate."""

    total: float
    """Degree days accumulated over the closed days since planting."""
    target: float
    """Degree days the crop needs to harvest (``ml.features.GDD_TO_HARVEST``)."""
    base_c: float
    rate: float
    """Degree days a day over the last ``rate_days`` closed days."""
    rate_days: int
    days: int
    """Closed days counted since planting."""
    days_left: float | None
    """Days to harvest at ``rate`` (0: ready); None when the rate is nil and the crop not ready."""


def harvest_outlook(zone: Zone, days: Sequence[ZoneDay]) -> HarvestOutlook | None:
    """The zone's degree days since planting from its closed ``days``, and the days left at the last week's rate;
    None before its first closed day since planting."""
    counted = [d for d in days if d.day >= zone.planting_date]
    if not counted:
        return None
    total = sum(d.gdd for d in counted)
    target = GDD_TO_HARVEST[zone.crop]
    recent = counted[-RATE_DAYS:]
    rate = sum(d.gdd for d in recent) / len(recent)
    remaining = max(0.0, target - total)
    days_left = 0.0 if remaining == 0 else remaining / rate if rate > 0 else None
    return HarvestOutlook(total, target, GDD_BASE_C[zone.crop], rate, len(recent), len(counted), days_left)


def harvest(context: ZoneContext) -> list[Advice]:
    """The crop's predicted harvest from degree days since planting and the last week's rate, once within 14 days."""
    zone = context.zone
    outlook = harvest_outlook(zone, context.days)
    if outlook is None or outlook.days_left is None or outlook.days_left > HARVEST_NOTICE_DAYS:
        return []
    total, target, rate, recent = outlook.total, outlook.target, outlook.rate, outlook.rate_days
    days_left = outlook.days_left
    due = context.window_end + timedelta(days=days_left)
    return [
        Advice(
            kind=RecommendationKind.HARVEST,
            severity=Severity.INFO if days_left > HARVEST_SOON_DAYS else Severity.ADVISORY,
            message=fit_message(_harvest_message(context, (total, target, rate, recent), days_left, due)),
            # A degree-day forecast is good to a few days; it blurs with every day of weather still to come.
            confidence=clamp(0.9 - 0.03 * days_left, 0.4, 0.9),
            inputs={
                "gdd_total": total,
                "gdd_target": target,
                "gdd_base_c": GDD_BASE_C[zone.crop],
                "gdd_rate_per_day": rate,
                "days_left": days_left,
                "rate_days": float(recent),
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
        f"{local_time(context, due):%d %b}): {summary}. Plan labour and transport, and check ripeness in the field."
    )
