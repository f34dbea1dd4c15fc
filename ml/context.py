"""What a scorer is given and what it answers: a zone's recent data in, advice out.

These live apart from ``ml.scoring`` so that the rules in ``ml.baselines`` and the ``Scorer`` that combines them
can both import them without an import cycle; ``ml.scoring`` re-exports them, and callers import from there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from smartfarm.layout import Farm, SensorKind, Zone
from smartfarm.records import RecommendationKind, Severity, ZoneAggregate, ZoneDay


@dataclass(frozen=True, slots=True)
class SensorSuspicion:
    """How often one sensor's readings were flagged over the window that just closed."""

    device: str
    sensor: str
    kind: SensorKind
    readings: int
    """Readings of this sensor in the window."""
    flags: Mapping[str, int]
    """Flag name (``smartfarm.records.Flag`` value) -> readings so flagged; one reading may carry several flags."""


@dataclass(frozen=True, slots=True)
class ZoneContext:
    """One zone's data at the close of a 1-hour window: everything a scorer may use, so scoring stays pure."""

    farm: Farm
    zone: Zone
    window_end: datetime
    """End of the 1-hour window that just closed (event time, aware)."""
    hours: Mapping[SensorKind, Sequence[ZoneAggregate]]
    """The zone's 1-hour aggregates of the last 48 h up to ``window_end``, oldest first, latest revision only."""
    days: Sequence[ZoneDay]
    """The zone's closed days since planting, oldest first."""
    suspicions: Sequence[SensorSuspicion]
    """Per sensor, over the window that just closed."""
    pending_irrigation_mm: float = 0.0
    """Irrigation recommended and not yet due or applied, so it is not recommended twice."""


@dataclass(frozen=True, slots=True)
class Advice:
    """One piece of advice for the zone; the stream turns it into a ``Recommendation``."""

    kind: RecommendationKind
    severity: Severity
    message: str
    """Plain words for the farmer, at most 500 characters, with the numbers behind it."""
    confidence: float
    """0..1"""
    inputs: Mapping[str, float]
    """Every number the decision used, named."""
    valid_for: timedelta
    amount_mm: float | None = None
    start_at: datetime | None = None
    """Irrigation: when to open the valve."""
    device: str | None = None
    """Sensor fault: the device."""
    sensor: str | None = None
    """Sensor fault: the sensor."""
    due: datetime | None = None
    """Harvest: when the crop is predicted ready."""
