"""The one irrigation decision: how much, when, how urgent and how sure, from a depletion estimate.

The FAO-56 baseline (``ml.rules.rootzone.irrigation``: the balance of the hour's measured soil moisture) and the
advisor (``ml.advisor.advise_irrigation``: a balance corrected by the sensors and looked ahead with the
forecaster) differ only in the depletion they estimate and in the words and numbers they explain it with. What
they then decide is here, once: refill to field capacity in 0.5 mm steps less what is already planned, open the
valve when the depletion reaches RAW (now or within the look-ahead), a warning when the crop is past halfway from
RAW to TAW (stressed now), and a confidence that grows with how much of the zone the sensors cover.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ml.context import Advice, ZoneContext
from ml.waterbalance import clamp
from smartfarm.records import RecommendationKind, Severity

VALID_FOR = timedelta(hours=12)
"""How long irrigation advice stands: half a day, the cooldown of the next advice (``stream.advice``)."""
STEP_MM = 0.5
"""Amounts are rounded to this: finer than a valve meters, and the nearest half millimetre reads plainly."""


@dataclass(frozen=True, slots=True)
class Depletion:
    """A root zone's depletion as one estimator sees it at the close of an hour (all in mm of water)."""

    now_mm: float
    """Depletion now."""
    due_mm: float
    """Depletion when the valve should open: now's when RAW is reached already, RAW when it comes within hours."""
    hours: float
    """Hours until the depletion reaches RAW; 0 when it has."""
    raw_mm: float
    taw_mm: float
    coverage: float
    """How much the estimate rests on the zone's sensors, 0 to 1."""
    et0_assumed: bool
    """No measured ET0 was at hand; a typical one stood in."""


@dataclass(frozen=True, slots=True)
class Irrigation:
    """What to do about a ``Depletion``: an amount, a start, a severity and a confidence."""

    amount_mm: float
    hours: float
    severity: Severity
    confidence: float

    def advice(self, context: ZoneContext, message: str, inputs: dict[str, Any]) -> Advice:
        """The advice to publish, with the estimator's own words and numbers."""
        return Advice(
            kind=RecommendationKind.IRRIGATION,
            severity=self.severity,
            message=message,
            confidence=self.confidence,
            inputs=inputs,
            valid_for=VALID_FOR,
            amount_mm=self.amount_mm,
            start_at=self.start_at(context),
        )

    def start_at(self, context: ZoneContext) -> datetime:
        """When the valve should open: the close of the hour plus the hours to RAW, to the minute."""
        return context.window_end + timedelta(minutes=round(self.hours * 60))


def decide(depletion: Depletion, pending_mm: float) -> Irrigation | None:
    """The irrigation ``depletion`` calls for once ``pending_mm`` already planned is counted; None when nothing
    is left to add."""
    amount = round((depletion.due_mm - pending_mm) / STEP_MM) * STEP_MM
    if amount <= 0:
        return None
    stressed = depletion.hours == 0 and depletion.now_mm > (depletion.raw_mm + depletion.taw_mm) / 2
    return Irrigation(
        amount_mm=amount,
        hours=depletion.hours,
        severity=Severity.WARNING if stressed else Severity.ADVISORY,
        confidence=clamp(0.5 + 0.45 * depletion.coverage - (0.1 if depletion.et0_assumed else 0.0), 0.5, 0.95),
    )
