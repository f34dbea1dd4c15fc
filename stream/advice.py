"""From a scorer's advice to recommendation events, without any I/O: ids, cooldowns, and rain cancelling a planned
irrigation.

- **Ids** come from (zone, kind, window) (and the device and sensor of a sensor fault), so scoring a window again
  (a redelivered batch, a worker that took over) gives the same id: a valve acting on ids once never waters twice.
- **Cooldown** per (zone, kind), by event time: advice of a kind is not repeated until its cooldown has passed
  (an irrigation's runs from the time its valve closes, its start plus the amount at the zone's rate, so the
  water is in the soil first: a slow valve runs longer than the cooldown, 37 mm at 2 mm/h for 18.5 h, and advice
  scored while it still runs sees the soil short of the water yet to come).
- **Pending irrigation** (``PlannedIrrigation``): an irrigation whose valve has not opened yet. Each closed hour the
  zone is scored again as if nothing were planned; if its soil is clearly wetter than when the plan was made
  (``REFILL_RISE_PCT``) and it no longer needs water within the scorer's look-ahead (rain refilled the root zone), a
  cancellation supersedes the plan (an irrigation of 0 mm with ``supersedes`` set).
- **Revised window** (``readvise``): a window that closed without a lagging device's readings (another partition's
  worker had not caught up) is revised when they arrive, and scored again. What was published at its close is kept
  per window (``issued``); advice that is the same is not published again; advice that changed is published anew,
  superseding the old (``revision``); an irrigation no longer needed is cancelled exactly as rain cancels it
  (``cancellation``); new advice is published as at a first close. An irrigation whose valve has opened (its start at
  or before the zone's latest event time) is acted on and left alone; an alert no longer raised is left to expire
  (``valid_until``).

The state lives in ``ZoneClock.advice`` (JSON, in the zone's changelog-backed table entry).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
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
"""How long the same advice is not repeated for a zone (an irrigation: after its valve closes, ``quiet_from``)."""


def quiet_from(item: Advice, context: ZoneContext) -> datetime:
    """When ``item``'s cooldown starts: at its start (the close of the hour without one); an irrigation's when its
    valve closes, the amount at the zone's irrigation rate later."""
    start = item.start_at if item.start_at is not None else context.window_end
    if item.kind is RecommendationKind.IRRIGATION and item.amount_mm:
        start += timedelta(hours=item.amount_mm / context.zone.irrigation_rate_mm_h)
    return start


def recommendation_id(farm: str, zone: str, kind: str, window_end: datetime, *more: str) -> uuid.UUID:
    """The id of the advice of ``kind`` made at the close of ``window_end``: the same on every recomputation."""
    parts = [farm, zone, kind, window_end.astimezone(UTC).isoformat(), *more]
    return uuid.uuid5(ID_NAMESPACE, "/".join(parts))


@dataclass(frozen=True, slots=True)
class PlannedIrrigation:
    """An irrigation recommended whose valve has not opened yet."""

    id: str
    amount_mm: float
    start_s: float
    theta_pct: float | None

    def to_json(self) -> list[Any]:
        return [self.id, self.amount_mm, self.start_s, self.theta_pct]

    @classmethod
    def from_json(cls, data: list[Any]) -> PlannedIrrigation:
        return cls(str(data[0]), float(data[1]), float(data[2]), None if data[3] is None else float(data[3]))


@dataclass(slots=True)
class AdviceState:
    """A zone's cooldowns (key -> event time until which that advice is quiet) and its pending irrigation."""

    cooldown: dict[str, float]
    pending: PlannedIrrigation | None
    issued: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    """What each recently scored window published: window end (epoch seconds, text) -> key -> ``Issued`` JSON."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AdviceState:
        pending = data.get("pending")
        return cls(
            dict(data.get("cooldown", {})),
            None if pending is None else PlannedIrrigation.from_json(pending),
            {w: dict(items) for w, items in data.get("issued", {}).items()},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "cooldown": self.cooldown,
            "pending": None if self.pending is None else self.pending.to_json(),
            "issued": self.issued,
        }

    def scored(self, end_s: float) -> None:
        """Note the window ending at ``end_s`` as scored; windows older than ``ISSUED_FOR_S`` are forgotten."""
        self.issued.setdefault(str(int(end_s)), {})
        newest = max(float(w) for w in self.issued)
        for w in [w for w in self.issued if float(w) < newest - ISSUED_FOR_S]:
            del self.issued[w]

    def remember(self, end_s: float, key: str, record: Recommendation) -> None:
        """Note ``record`` as the advice of ``key`` the window ending at ``end_s`` published."""
        self.issued.setdefault(str(int(end_s)), {})[key] = Issued.of(record).to_json()


ISSUED_FOR_S = 48 * 3600
"""How long a window's published advice is remembered for a revision: a window revised later than this (a device
back from a two-day outage) is not scored again; its hours still reach later windows' context."""


@dataclass(frozen=True, slots=True)
class Issued:
    """What a window published of one key: enough to tell whether a rescoring changed it."""

    id: str
    amount_mm: float | None
    severity: str
    start_s: float | None

    @classmethod
    def of(cls, record: Recommendation) -> Issued:
        start = None if record.start_at is None else record.start_at.timestamp()
        return cls(str(record.id), record.amount_mm, record.severity.value, start)

    def to_json(self) -> list[Any]:
        return [self.id, self.amount_mm, self.severity, self.start_s]

    @classmethod
    def from_json(cls, data: list[Any]) -> Issued:
        return cls(str(data[0]), data[1], str(data[2]), data[3])

    def acted_on(self, now_s: float) -> bool:
        """An irrigation with water whose valve has opened by event time ``now_s`` (at once: when published)."""
        return bool(self.amount_mm) and (self.start_s is None or self.start_s <= now_s)


REVISED_MM = 0.5
"""The least change of an irrigation's amount that makes a revised window's advice new: a late reading moving a
zone's mean by a few hundredths must not re-issue a plan."""


def changed(was: Issued, now: Advice) -> bool:
    """Whether a rescoring's advice differs from what the window published: severity, or the amount of water."""
    if was.severity != now.severity.value:
        return True
    return abs((was.amount_mm or 0.0) - (now.amount_mm or 0.0)) >= REVISED_MM


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
    advice.scored(end_s)
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
        advice.remember(end_s, key, record)
        advice.cooldown[key] = (quiet_from(item, context) + COOLDOWN[item.kind]).timestamp()
        irrigation = item.kind is RecommendationKind.IRRIGATION and bool(item.amount_mm)
        if irrigation and item.start_at is not None and item.start_at > end and item.amount_mm:
            advice.pending = PlannedIrrigation(
                str(record.id), item.amount_mm, item.start_at.timestamp(), _theta(context)
            )
    state.clear()
    state.update(advice.to_json())
    return out


def forget_declined(state: dict[str, Any], declined: set[str]) -> bool:
    """Drop the zone's pending irrigation from ``state`` (in place) if a person declined it: its water is no longer
    coming, so the balance stops counting it and no cancellation is sent for it. Its quiet time stands: the
    advisor advises again after it if the zone still needs water. True when one was dropped."""
    pending = state.get("pending")
    if pending is None or str(pending[0]) not in declined:
        return False
    state["pending"] = None
    return True


REFILL_RISE_PCT = 1.0
"""How much wetter (volumetric percentage points) the zone's hourly soil moisture must be than when an irrigation
was planned before the plan is cancelled: water came (rain), not the few tenths a zone's mean wanders by, which
near the look-ahead's edge would otherwise flip a plan on and off."""


def _refilled(context: ZoneContext, pending: PlannedIrrigation) -> bool:
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
    return sum(a.total for a in hours if a.window_start.timestamp() >= since_s)


def readvise(scorer: Scorer, context: ZoneContext, state: dict[str, Any], now_s: float) -> list[Recommendation]:
    """The recommendations of a window scored again after a revision (late readings); ``state`` updated in place.

    ``now_s`` is the zone's latest event time: an irrigation starting at or before it has been acted on. Nothing
    comes out of a window that was never scored here or is too old (``ISSUED_FOR_S``), nor of unchanged advice."""
    advice = AdviceState.from_json(state)
    end = context.window_end
    end_s = end.timestamp()
    window = str(int(end_s))
    if window not in advice.issued:
        return []
    old = {key: Issued.from_json(v) for key, v in advice.issued[window].items()}
    pending = advice.pending
    ours = pending is not None and pending.id in {i.id for i in old.values()}
    planned = pending.amount_mm if pending is not None and not ours else 0.0
    new = {_key(a): a for a in scorer.score(replace(context, pending_irrigation_mm=planned))}
    out: list[Recommendation] = []
    for key, item in new.items():
        was = old.get(key)
        if was is not None and (not changed(was, item) or was.acted_on(now_s)):
            continue
        if was is None and advice.cooldown.get(key, float("-inf")) > end_s:
            continue
        record = _record(scorer, context, item, was)
        out.append(record)
        advice.remember(end_s, key, record)
        advice.cooldown[key] = (quiet_from(item, context) + COOLDOWN[item.kind]).timestamp()
        if was is not None and pending is not None and pending.id == was.id:
            advice.pending = None
        if item.kind is RecommendationKind.IRRIGATION and item.amount_mm and item.start_at and item.start_at > end:
            advice.pending = PlannedIrrigation(
                str(record.id), item.amount_mm, item.start_at.timestamp(), _theta(context)
            )
    for key, was in old.items():
        if key in new or not was.amount_mm or was.acted_on(now_s) or was.start_s is None:
            continue  # an alert no longer raised expires by its valid_until
        gone = PlannedIrrigation(was.id, was.amount_mm, was.start_s, _theta(context))
        local = end.astimezone(ZoneInfo(context.farm.timezone))
        why = f"the hour to {local:%H:%M} was revised with late readings and no longer calls for water"
        out.append(cancellation(scorer, context, gone, why))
        del advice.issued[window][key]
        advice.cooldown.pop(key, None)
        if advice.pending is not None and advice.pending.id == was.id:
            advice.pending = None
    state.clear()
    state.update(advice.to_json())
    return out


def cancellation(
    scorer: Scorer, context: ZoneContext, pending: PlannedIrrigation, why: str | None = None
) -> Recommendation:
    """The event that cancels ``pending``: the soil has enough water without it (``why``: as the soil shows)."""
    zone = context.zone
    start = datetime.fromtimestamp(pending.start_s, UTC)
    theta, planned_at = _theta(context), start - timedelta(hours=24)
    rain = _rain_since(context, planned_at.timestamp())
    inputs: dict[str, float] = {"cancelled_mm": pending.amount_mm}
    if theta is not None and pending.theta_pct is not None:
        inputs |= {"theta_then_pct": pending.theta_pct, "theta_pct": theta}
    if rain:
        inputs["rain_mm"] = rain
    if why is None:
        why = "the root zone no longer needs water within a day"
        if theta is not None and pending.theta_pct is not None:
            why = f"soil moisture rose from {pending.theta_pct:.1f}% to {theta:.1f}%, so {why}"
        if rain:
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


def revision_id(was: Issued, item: Advice) -> uuid.UUID:
    """The id of the advice replacing ``was`` after a revision: the same for the same new advice (a redelivered
    revision publishes no duplicate), another for another (a second revision supersedes the first)."""
    return uuid.uuid5(ID_NAMESPACE, f"{was.id}/revised/{item.severity.value}/{item.amount_mm or 0:.1f}")


def _record(scorer: Scorer, context: ZoneContext, item: Advice, was: Issued | None = None) -> Recommendation:
    """The event of ``item``; with ``was``, the one superseding what a revised window published before."""
    extra = [item.device or "", item.sensor or ""] if item.kind is RecommendationKind.SENSOR_FAULT else []
    end = context.window_end
    rid = recommendation_id(context.farm.id, context.zone.id, item.kind.value, end, *extra)
    return Recommendation.create(
        id=rid if was is None else revision_id(was, item),
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
        supersedes=None if was is None else uuid.UUID(was.id),
        window_end=end,
        inputs=dict(item.inputs),
    )
