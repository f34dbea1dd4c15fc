"""The farm's advice inbox: recommendations as issued, where each stands (open, accepted, declined, applied,
cancelled), a person's answer to one, and water logged by hand (an irrigation, a rain gauge reading).

Accepting an irrigation sends its command to the zone's valve: an ``IrrigationCommand`` on Kafka's ``commands``
topic, confirmed before the API answers, which the bridge publishes on the zone's MQTT commands topic. Every
decision is stored in InfluxDB (``advice_decision``), where the inbox reads it and the advisor learns of declines:
a declined irrigation's water is no longer counted as coming (``stream.advice``).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations at runtime.

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field

from api.changes import Changing
from api.deps import Influx, Registry, allowed, client, farm_of, instant, problem_responses, time_range, zone_of
from api.problems import Problem
from smartfarm.errors import ServiceError, StorageError
from smartfarm.records import AdviceStatus, IrrigationCommand, RecommendationKind, Severity
from storage.registry.store import Client, Scope
from storage.schema import DecisionPoint, FieldLogPoint
from storage.zones import decision_on, decisions, is_superseded, recommendation, recommendations, superseded

LOGGABLE_FOR = timedelta(days=30)
"""How far back water can be logged by hand."""


class IssuedAdvice(BaseModel):
    """A recommendation as it was issued (``supersedes``: an earlier one it replaced or cancelled), and where it
    stands now."""

    id: UUID
    zone: str
    kind: RecommendationKind
    severity: Severity
    issued_at: datetime
    valid_until: datetime | None = Field(None, description="after this the advice no longer stands")
    message: str
    model: str
    confidence: float
    amount_mm: float | None = None
    start_at: datetime | None = None
    device: str | None = None
    sensor: str | None = None
    supersedes: UUID | None = None
    status: AdviceStatus = AdviceStatus.OPEN
    decided_at: datetime | None = Field(None, description="when a person accepted, declined or applied it")
    decided_by: str | None = None


class AdvicePage(BaseModel):
    """One page of recommendations, newest first; ``next_offset`` asks for the next page (None on the last)."""

    items: list[IssuedAdvice]
    limit: int
    offset: int
    next_offset: int | None


class Acceptance(BaseModel):
    """An acceptance, optionally with another amount or start than advised (irrigation only)."""

    amount_mm: float | None = Field(None, gt=0, le=500, description="water to apply; default: the advised amount")
    start_at: AwareDatetime | None = Field(None, description="when the valve opens; default: as advised, or now")
    note: str | None = Field(None, max_length=500)


class Declination(BaseModel):
    note: str | None = Field(None, max_length=500, description="why, for the record (the advisor keeps it)")


class WaterKind(StrEnum):
    IRRIGATION = "irrigation"
    RAIN = "rain"


class WaterLog(BaseModel):
    """Water a person logs for a zone: an irrigation applied by hand, or a manual rain gauge reading."""

    kind: WaterKind
    amount_mm: float = Field(ge=0, le=500)
    at: AwareDatetime | None = Field(None, description="when it happened; default now")
    recommendation: UUID | None = Field(None, description="the irrigation recommendation this applied, if any")
    note: str | None = Field(None, max_length=500)


class Logged(BaseModel):
    zone: str
    kind: WaterKind
    amount_mm: float
    at: datetime
    logged_by: str
    recommendation: IssuedAdvice | None = Field(None, description="the recommendation it applied, now applied")


class Decided(BaseModel):
    """The recommendation as it stands after the answer, and the command sent to the valve (accepted irrigation)."""

    recommendation: IssuedAdvice
    command: IrrigationCommand | None = None


advice = APIRouter(prefix="/farms/{farm}", tags=["advice"])
reading = [Depends(allowed(Scope.READ))]
writing = [Depends(allowed(Scope.WRITE))]
DECISION_RESPONSES = problem_responses(409, 503)


def as_issued(row: dict[str, Any], decided: dict[str, dict[str, Any]], replaced: set[str]) -> IssuedAdvice:
    """A stored recommendation (``storage.zones.recommendations``) as issued and where it stands: its newest
    decision (``decided``, by id), else cancelled if a later one replaced it (``replaced``), else open. The JSON
    inbox and the web app's both."""
    fields = {k: row[k] for k in IssuedAdvice.model_fields if k != "issued_at" and row.get(k) is not None}
    decision = decided.get(str(row["id"]))
    if decision is not None:
        fields |= {
            "status": decision["status"],
            "decided_at": instant(decision["time"]),
            "decided_by": decision["decided_by"],
        }
    elif str(row["id"]) in replaced:
        fields["status"] = AdviceStatus.CANCELLED
    return IssuedAdvice(issued_at=instant(row["time"]), **fields)


@advice.get("/recommendations", response_model=AdvicePage, dependencies=reading)
def list_recommendations(
    registry: Registry,
    influx: Influx,
    farm: str,
    zone: str | None = None,
    kind: RecommendationKind | None = None,
    start: Annotated[AwareDatetime | None, Query(description="from (ISO 8601 with offset); default a week ago")] = None,
    end: Annotated[AwareDatetime | None, Query(description="until (exclusive); default now")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> AdvicePage:
    """The farm's recommendations issued in a time range, newest first, by zone and kind if asked, each with
    where it stands."""
    if zone is not None:
        zone_of(registry, farm, zone)
    else:
        farm_of(registry, farm)
    since, until = time_range(start, end, timedelta(days=7))
    rows = recommendations(
        influx, farm, since.timestamp(), until.timestamp(), zone=zone, kind=kind, limit=limit + 1, offset=offset
    )
    decided = decisions(influx, farm, since.timestamp(), zone)
    replaced = superseded(influx, farm, since.timestamp())
    items = [as_issued(r, decided, replaced) for r in rows[:limit]]
    return AdvicePage(
        items=items, limit=limit, offset=offset, next_offset=offset + limit if len(rows) > limit else None
    )


def _open(influx: Influx, farm: str, rid: UUID) -> dict[str, Any]:
    """The stored recommendation ``rid`` if it can still be answered: 404 if the farm has none of that id, 409 if
    it was answered already or replaced."""
    row = recommendation(influx, farm, str(rid))
    if row is None:
        raise Problem(404, f"farm {farm!r} has no recommendation {rid}")
    decision = decision_on(influx, farm, str(rid))
    if decision is not None:
        raise Problem(409, f"recommendation {rid} was {decision['status']} already, by {decision['decided_by']}")
    if is_superseded(influx, farm, str(rid)):
        raise Problem(409, f"recommendation {rid} was replaced by a later one: answer that instead")
    return row


def _decide(
    influx: Influx,
    row: dict[str, Any],
    status: AdviceStatus,
    who: Client,
    now: datetime,
    note: str | None,
    command: IrrigationCommand | None = None,
) -> IssuedAdvice:
    """Store a person's answer to the recommendation ``row``; the recommendation as it stands after it."""
    point = DecisionPoint(
        time=now,
        farm=who.farm,
        zone=row["zone"],
        recommendation=str(row["id"]),
        status=status.value,
        decided_by=who.name,
        amount_mm=command.amount_mm if command else None,
        start_at=command.start_at.isoformat() if command else None,
        command=str(command.id) if command else None,
        note=note,
    )
    try:
        influx.write([point])
    except StorageError as exc:
        raise Problem(503, f"the decision could not be stored: {exc}", {"Retry-After": "10"}) from exc
    decided = {"status": status.value, "time": int(now.timestamp() * 1e9), "decided_by": who.name}
    return as_issued(row, {str(row["id"]): decided}, set())


@advice.post(
    "/recommendations/{rid}/accept", response_model=Decided, dependencies=writing, responses=DECISION_RESPONSES
)
def accept(
    influx: Influx,
    changing: Changing,
    farm: str,
    rid: UUID,
    who: Annotated[Client, Depends(client)],
    body: Acceptance | None = None,
) -> Decided:
    """Accept a recommendation. An irrigation's command goes to the zone's valve (once Kafka has it, this
    answers); an irrigation past its ``valid_until`` can no longer be accepted (the advisor advises again if the
    zone still needs water)."""
    body = body or Acceptance()
    now = datetime.now(UTC)
    row = _open(influx, farm, rid)
    command = None
    if row["kind"] == RecommendationKind.IRRIGATION.value and (body.amount_mm or row.get("amount_mm")):
        valid_until = datetime.fromisoformat(row["valid_until"]) if row.get("valid_until") else None
        if valid_until is not None and valid_until < now:
            raise Problem(409, f"recommendation {rid} expired at {valid_until.isoformat()}: wait for new advice")
        advised = datetime.fromisoformat(row["start_at"]) if row.get("start_at") else now
        start = body.start_at or max(advised, now)
        command = IrrigationCommand.create(
            id=uuid.uuid4(),
            recommendation=rid,
            farm=farm,
            zone=row["zone"],
            amount_mm=body.amount_mm or float(row["amount_mm"]),
            start_at=start,
            valid_until=max(valid_until or start, start) + timedelta(hours=1),
            accepted_at=now,
            accepted_by=who.name,
        )
        try:
            changing.publisher.command(command)
        except ServiceError as exc:
            raise Problem(503, f"the valve's command was not sent: {exc}", {"Retry-After": "10"}) from exc
    elif body.amount_mm is not None or body.start_at is not None:
        raise Problem(422, "only an irrigation takes an amount or a start")
    decided = _decide(influx, row, AdviceStatus.ACCEPTED, who, now, body.note, command)
    return Decided(recommendation=decided, command=command)


@advice.post(
    "/recommendations/{rid}/decline", response_model=Decided, dependencies=writing, responses=DECISION_RESPONSES
)
def decline(
    influx: Influx, farm: str, rid: UUID, who: Annotated[Client, Depends(client)], body: Declination | None = None
) -> Decided:
    """Decline a recommendation: recorded, and for an irrigation the advisor stops counting its water as coming
    (it advises again, after its quiet time, if the zone still needs water)."""
    now = datetime.now(UTC)
    row = _open(influx, farm, rid)
    decided = _decide(influx, row, AdviceStatus.DECLINED, who, now, body.note if body else None)
    return Decided(recommendation=decided)


@advice.post(
    "/zones/{zone}/water", status_code=201, response_model=Logged, dependencies=writing, responses=DECISION_RESPONSES
)
def log_water(
    registry: Registry, influx: Influx, farm: str, zone: str, body: WaterLog, who: Annotated[Client, Depends(client)]
) -> Logged:
    """Log water the zone got that no sensor of the farm measured: an irrigation applied by hand (naming the
    recommendation it applied closes that one as applied) or a manual rain gauge reading. Kept for the record
    and the zone's charts; the advisor sees the water in the soil moisture it brings."""
    zone_of(registry, farm, zone)
    now = datetime.now(UTC)
    at = body.at or now
    if not now - LOGGABLE_FOR <= at <= now + timedelta(minutes=5):
        raise Problem(422, f"at must be within the last {LOGGABLE_FOR.days} days, not in the future")
    answered = None
    if body.recommendation is not None:
        if body.kind is not WaterKind.IRRIGATION:
            raise Problem(422, "only an irrigation applies a recommendation")
        row = _open(influx, farm, body.recommendation)
        if row["zone"] != zone or row["kind"] != RecommendationKind.IRRIGATION.value:
            raise Problem(422, f"recommendation {body.recommendation} is no irrigation of zone {zone!r}")
        answered = _decide(influx, row, AdviceStatus.APPLIED, who, now, body.note)
    point = FieldLogPoint(
        time=at,
        farm=farm,
        zone=zone,
        kind=body.kind.value,
        amount_mm=body.amount_mm,
        logged_by=who.name,
        recommendation=str(body.recommendation) if body.recommendation else None,
        note=body.note,
    )
    try:
        influx.write([point])
    except StorageError as exc:
        raise Problem(503, f"the log could not be stored: {exc}", {"Retry-After": "10"}) from exc
    return Logged(
        zone=zone, kind=body.kind, amount_mm=body.amount_mm, at=at, logged_by=who.name, recommendation=answered
    )
