"""From a scorer's advice to recommendation events, without any I/O: ids, cooldowns, and rain cancelling a planned
irrigation.

- **Ids** come from (zone, kind, window) (and the device and sensor of a sensor fault), so scoring a window again
  (a redelivered batch, a worker that took over) gives the same id: a valve acting on ids once never waters twice.
- **Cooldown** per (zone, kind), by event time: advice of a kind is not repeated until its cooldown has passed
  (an irrigation's runs from the time the valve opens, so the water can show in the soil first).
- **Pending irrigation**: an irrigation whose valve has not opened yet. Each closed hour the zone is scored again
  as if nothing were planned; if its soil is clearly wetter than when the plan was made (``REFILL_RISE_PCT``) and
  it no longer needs water within the scorer's look-ahead (rain refilled the root zone), a cancellation supersedes
  the plan (an irrigation of 0 mm with ``supersedes`` set).

The state lives in ``ZoneClock.advice`` (JSON, in the zone's changelog-backed table entry).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ml.scoring import Advice, Scorer, ZoneContext, model_tag
from smartfarm.layout import SensorKind
from smartfarm.records import Recommendation, RecommendationKind, Severity

ID_NAMESPACE = uuid.UUID("5b0c8f0e-63c4-4c1e-9d43-8a3f0d1e7a21")
"""uuid5 namespace of recommendation ids (fixed forever: changing it would re-issue every id)."""

COOLDOWN: dict[RecommendationKind, timedelta] = {
    RecommendationKind.IRRIGATION: timedelta(hours=12),
    RecommendationKind.SENSOR_FAULT: timedelta(hours=24),
    RecommendationKind.FROST: timedelta(hours=12),
    RecommendationKind.HEAT: timedelta(hours=12),
    RecommendationKind.DISEASE_RISK: timedelta(hours=24),
    RecommendationKind.HARVEST: timedelta(days=7),
}
"""How long the same advice is not repeated for a zone (an irrigation: after its valve opens)."""


def recommendation_id(farm: str, zone: str, kind: str, window_end: datetime, *more: str) -> uuid.UUID:
    """The id of the advice of ``kind`` made at the close of ``window_end``: the same on every recomputation."""
    parts = [farm, zone, kind, window_end.astimezone(UTC).isoformat(), *more]
    return uuid.uuid5(ID_NAMESPACE, "/".join(parts))


@dataclass(frozen=True, slots=True)
class Pending:
    """An irrigation recommended whose valve has not opened yet."""

    id: str
    amount_mm: float
    start_s: float
    theta_pct: float | None

    def to_json(self) -> list[Any]:
        return [self.id, self.amount_mm, self.start_s, self.theta_pct]

    @classmethod
    def from_json(cls, data: list[Any]) -> Pending:
        return cls(str(data[0]), float(data[1]), float(data[2]), None if data[3] is None else float(data[3]))


@dataclass(slots=True)
class AdviceState:
    """A zone's cooldowns (key -> event time until which that advice is quiet) and its pending irrigation."""

    cooldown: dict[str, float]
    pending: Pending | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AdviceState:
        pending = data.get("pending")
        return cls(dict(data.get("cooldown", {})), None if pending is None else Pending.from_json(pending))

    def to_json(self) -> dict[str, Any]:
        return {"cooldown": self.cooldown, "pending": None if self.pending is None else self.pending.to_json()}


def _key(advice: Advice) -> str:
    if advice.kind is RecommendationKind.SENSOR_FAULT:
        return f"{advice.kind.value}/{advice.device}/{advice.sensor}"
    return advice.kind.value


def advise(scorer: Scorer, context: ZoneContext, state: dict[str, Any]) -> list[Recommendation]:
    """The recommendations of one zone at the close of ``context.window_end``; ``state`` is updated in place.

    ``context.pending_irrigation_mm`` is ignored: the pending irrigation comes from ``state``."""
    advice = AdviceState.from_json(state)
    end = context.window_end
    end_s = end.timestamp()
    if advice.pending is not None and advice.pending.start_s <= end_s:
        advice.pending = None  # its valve has opened: no longer ours to cancel
    out: list[Recommendation] = []
    pending = advice.pending
    if (
        pending is not None
        and _refilled(context, pending)
        and not _needs_water(scorer, replace(context, pending_irrigation_mm=0.0))
    ):
        out.append(cancellation(scorer, context, pending))
        advice.pending = None
        advice.cooldown.pop(RecommendationKind.IRRIGATION.value, None)
    planned = advice.pending.amount_mm if advice.pending is not None else 0.0
    for item in scorer.score(replace(context, pending_irrigation_mm=planned)):
        key = _key(item)
        if advice.cooldown.get(key, float("-inf")) > end_s:
            continue
        record = _record(scorer, context, item)
        out.append(record)
        quiet_from = item.start_at if item.start_at is not None else end
        advice.cooldown[key] = (quiet_from + COOLDOWN[item.kind]).timestamp()
        irrigation = item.kind is RecommendationKind.IRRIGATION and bool(item.amount_mm)
        if irrigation and item.start_at is not None and item.start_at > end and item.amount_mm:
            advice.pending = Pending(str(record.id), item.amount_mm, item.start_at.timestamp(), _theta(context))
    state.clear()
    state.update(advice.to_json())
    return out


REFILL_RISE_PCT = 1.0
"""How much wetter (volumetric percentage points) the zone's hourly soil moisture must be than when an irrigation
was planned before the plan is cancelled: water came (rain), not the few tenths a zone's mean wanders by, which
near the look-ahead's edge would otherwise flip a plan on and off."""


def _refilled(context: ZoneContext, pending: Pending) -> bool:
    theta = _theta(context)
    return theta is not None and pending.theta_pct is not None and theta - pending.theta_pct >= REFILL_RISE_PCT


def _needs_water(scorer: Scorer, context: ZoneContext) -> bool:
    return any(a.kind is RecommendationKind.IRRIGATION and a.amount_mm for a in scorer.score(context))


def _theta(context: ZoneContext) -> float | None:
    hours = context.hours.get(SensorKind.SOIL_MOISTURE, ())
    return hours[-1].mean if hours and hours[-1].window_end == context.window_end else None


def _rain_since(context: ZoneContext, since_s: float) -> float | None:
    """Rain measured in the zone over the hours kept in the context since ``since_s`` (None: no rain gauge)."""
    hours = context.hours.get(SensorKind.RAINFALL)
    if not hours:
        return None
    return sum(a.mean * a.count for a in hours if a.window_start.timestamp() >= since_s)


def cancellation(scorer: Scorer, context: ZoneContext, pending: Pending) -> Recommendation:
    """The event that cancels ``pending``: the soil has enough water without it."""
    zone = context.zone
    start = datetime.fromtimestamp(pending.start_s, UTC)
    theta, planned_at = _theta(context), start - timedelta(hours=24)
    rain = _rain_since(context, planned_at.timestamp())
    inputs: dict[str, float] = {"cancelled_mm": pending.amount_mm}
    why = "the root zone no longer needs water within a day"
    if theta is not None and pending.theta_pct is not None:
        inputs |= {"theta_then_pct": pending.theta_pct, "theta_pct": theta}
        why = f"soil moisture rose from {pending.theta_pct:.1f}% to {theta:.1f}%, so {why}"
    if rain:
        inputs["rain_mm"] = rain
        why = f"{rain:.0f} mm of rain fell and {why}"
    local = start.astimezone(ZoneInfo(context.farm.timezone))
    return Recommendation.create(
        id=uuid.uuid5(ID_NAMESPACE, f"{pending.id}/cancel"),
        farm=context.farm.id,
        zone=zone.id,
        kind=RecommendationKind.IRRIGATION,
        severity=Severity.ADVISORY,
        issued_at=context.window_end,
        valid_until=start + timedelta(hours=1),
        message=(f"Cancel the {pending.amount_mm:g} mm irrigation of {zone.name} planned for {local:%H:%M}: {why}.")[
            :500
        ],
        model=model_tag(scorer),
        confidence=0.8,
        amount_mm=0.0,
        supersedes=uuid.UUID(pending.id),
        window_end=context.window_end,
        inputs=inputs,
    )


def _record(scorer: Scorer, context: ZoneContext, item: Advice) -> Recommendation:
    extra = [item.device or "", item.sensor or ""] if item.kind is RecommendationKind.SENSOR_FAULT else []
    end = context.window_end
    return Recommendation.create(
        id=recommendation_id(context.farm.id, context.zone.id, item.kind.value, end, *extra),
        farm=context.farm.id,
        zone=context.zone.id,
        kind=item.kind,
        severity=item.severity,
        issued_at=end,
        valid_until=(item.start_at or end) + item.valid_for,
        message=item.message,
        model=model_tag(scorer),
        confidence=item.confidence,
        amount_mm=item.amount_mm,
        device=item.device,
        sensor=item.sensor,
        due=item.due,
        start_at=item.start_at,
        window_end=end,
        inputs=dict(item.inputs),
    )
