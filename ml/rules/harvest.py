"""Harvest timing: growing degree days to the crop's harvest."""

from __future__ import annotations

from datetime import datetime, timedelta

from ml.context import Advice, ZoneContext, fit_message, num
from ml.features import GDD_BASE_C, GDD_TO_HARVEST
from ml.rules.common import local_time
from ml.waterbalance import (
    clamp,
)
from smartfarm.records import RecommendationKind, Severity

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
        f"{local_time(context, due):%d %b}): {summary}. Plan labour and transport, and check ripeness in the field."
    )
