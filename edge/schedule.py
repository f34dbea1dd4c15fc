"""The valves' irrigation schedule: which recommendations to accept, hold, cancel and apply, and when.

Pure: no clock, no network. ``edge.valve`` feeds it the recommendations paho decoded and asks it, on the fleet's
loop, which irrigation is due at the fleet's simulated time. Table-driven tests call it directly.

The rules:

- only irrigation counts; each recommendation id is taken once, because MQTT re-delivers retained messages on
  every (re)subscription; that holds for ids already cancelled or applied too;
- an irrigation with ``amount_mm`` > 0 is held until simulated time reaches its ``start_at`` (none: at once);
- ``supersedes`` = X removes X if X is still held (cancelled); if X was applied already it is too late, which is
  logged and counted; if X has not arrived yet, X is refused when it does (a cancel can overtake its target);
- a superseding recommendation with ``amount_mm`` > 0 is held itself, whatever became of X: it is the newest
  advice for the zone, made knowing what was recommended before;
- an irrigation whose ``valid_until`` has passed in simulated time when it comes due is dropped (counted as
  expired), never applied: advice for a window days behind the farm (a catch-up delivering past windows' advice
  in a burst) was made for a soil that no longer exists, and applying each would water the zone many times over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from smartfarm.records import IrrigationCommand, Recommendation, RecommendationKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Irrigation:
    """An accepted irrigation recommendation."""

    farm: str
    zone: str
    amount_mm: float
    recommendation: str
    start_at: datetime | None = None
    """When the valve opens, simulated time; None: at once."""
    valid_until: datetime | None = None
    """After this simulated time the advice is stale and is dropped, not applied; None: never stale."""


class Outcome(StrEnum):
    """What the schedule did with one recommendation."""

    SCHEDULED = "scheduled"
    """An irrigation is held until its start (and nothing earlier was superseded)."""
    REPLACED = "replaced"
    """It superseded a held irrigation, which is cancelled, and is held itself."""
    CANCELLED = "cancelled"
    """It cancelled a held irrigation (or one that has not arrived yet); nothing new is held."""
    TOO_LATE = "too_late"
    """It superseded an irrigation that was already applied; if it has an amount, it is held itself."""
    REFUSED = "refused"
    """A cancel had overtaken it: it arrived after the recommendation that superseded it."""
    REPEATED = "repeated"
    """Its id was taken before (a retained re-delivery): ignored."""
    IGNORED = "ignored"
    """Not an irrigation, or one with no water and nothing to supersede."""


@dataclass(slots=True)
class IrrigationSchedule:
    """The held irrigations of every zone a valve client plays, and what became of each recommendation."""

    pending: dict[str, Irrigation] = field(default_factory=dict)
    """Held irrigations by recommendation id, in arrival order."""
    cancelled: int = 0
    """Irrigations a later recommendation superseded before they were applied: taken out while held, or refused
    on arrival after their cancel."""
    too_late: int = 0
    """Supersedes that came after their target was applied."""
    expired: int = 0
    """Irrigations dropped because simulated time had passed their ``valid_until`` when they came due."""
    _seen: set[str] = field(default_factory=set)
    _applied: set[str] = field(default_factory=set)
    _cancelled_ahead: set[str] = field(default_factory=set)

    def offer(self, rec: Recommendation) -> Outcome:
        """Take one decoded recommendation into the schedule."""
        if rec.kind is not RecommendationKind.IRRIGATION:
            return Outcome.IGNORED
        rid = str(rec.id)
        if rid in self._seen:
            return Outcome.REPEATED
        self._seen.add(rid)
        if rid in self._cancelled_ahead:
            self._cancelled_ahead.discard(rid)
            self.cancelled += 1
            return Outcome.REFUSED
        outcome = self._supersede(rec) if rec.supersedes is not None else None
        if rec.amount_mm:
            self.pending[rid] = Irrigation(rec.farm, rec.zone, rec.amount_mm, rid, rec.start_at, rec.valid_until)
        return outcome or (Outcome.SCHEDULED if rec.amount_mm else Outcome.IGNORED)

    def accept(self, command: IrrigationCommand) -> Outcome:
        """Take an irrigation a person accepted: held until its start like a recommendation, with the amount and
        start they accepted. The recommendation it answers counts as taken: heard of before (this valve follows
        recommendations too, or the command came twice), it is not held a second time; cancelled before, it is
        not revived."""
        rid = str(command.recommendation)
        accepted = Irrigation(command.farm, command.zone, command.amount_mm, rid, command.start_at, command.valid_until)
        if rid in self._seen:
            if rid not in self.pending:
                return Outcome.REPEATED
            self.pending[rid] = accepted  # held already from the recommendation: the person's amount and start stand
            return Outcome.SCHEDULED
        self._seen.add(rid)
        if rid in self._cancelled_ahead:
            self._cancelled_ahead.discard(rid)
            self.cancelled += 1
            return Outcome.REFUSED
        self.pending[rid] = accepted
        return Outcome.SCHEDULED

    def _supersede(self, rec: Recommendation) -> Outcome | None:
        """Cancel what ``rec`` supersedes; None when there was nothing left to cancel (cancelled or ignored)."""
        target = str(rec.supersedes)
        if target in self._applied:
            log.warning("valve: %s came too late to cancel %s, applied already", rec.id, target)
            self.too_late += 1
            return Outcome.TOO_LATE
        if self.pending.pop(target, None) is not None:
            self.cancelled += 1
        elif target in self._seen:
            return None
        else:
            # The cancel overtook its target: refuse the target when it comes (counted then).
            self._cancelled_ahead.add(target)
        return Outcome.REPLACED if rec.amount_mm else Outcome.CANCELLED

    def due(self, now: datetime) -> list[Irrigation]:
        """Take out and return the held irrigations whose start is at or before ``now``: at-once ones, then by start."""
        ready = [i for i in self.pending.values() if i.start_at is None or i.start_at <= now]
        ready.sort(key=lambda i: (i.start_at is not None, i.start_at or now))
        for irrigation in ready:
            del self.pending[irrigation.recommendation]
            self._applied.add(irrigation.recommendation)
        stale = [i for i in ready if i.valid_until is not None and i.valid_until < now]
        if stale:
            log.warning("valve: %d irrigation(s) expired before they came due, dropped", len(stale))
            self.expired += len(stale)
        return [i for i in ready if i not in stale]
