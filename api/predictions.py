"""The model registry's versions, and the promoted forecaster's prediction for a zone's posted readings (the MLOps
seed's API): the same aggregates, days, context and features the stream serves it (``ml.timeline.readings_context``,
``ml.models.ModelScorer.soil_outlook``), so a prediction here is the one a worker would make of the same readings.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations at runtime.

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import UNAVAILABLE, Models, Registry, allowed, farm_of, in_reach, zone_in
from api.problems import Problem
from ml.features import CONTEXT_H
from ml.timeline import HOUR_S, readings_context
from smartfarm.errors import RegistryError
from smartfarm.layout import SensorKind
from storage.registry.store import Scope

if TYPE_CHECKING:
    from ml.models import Loaded

# ``ml.models`` is imported where it is used: it brings scikit-learn and XGBoost (a second of the API's start), which
# only the model routes need, and a model's unpickling imports them anyway.

predictions = APIRouter(prefix="/farms/{farm}", tags=["models"], dependencies=[Depends(allowed(Scope.READ))])


class ModelVersion(BaseModel):
    """One registered version of a model, as the registry (MLflow) records it."""

    name: str = Field(description="the registered model: soil-moisture-forecaster or sensor-fault-detector")
    version: int
    promoted: bool = Field(description="the registry's alias points at it: the version the workers and API serve")
    beats_baseline: bool = Field(description="it beat its baselines on held-out seasons when it was trained")
    created: datetime
    run_id: str = Field(description="the MLflow training run that made it")
    metrics: dict[str, float] = Field(description="what its training measured on held-out seasons, by name")


class ModelPage(BaseModel):
    """One page of model versions, by name and version; ``next_offset`` asks for the next page (None on the last)."""

    items: list[ModelVersion]
    limit: int
    offset: int
    next_offset: int | None


@predictions.get("/models", response_model=ModelPage, responses=UNAVAILABLE)
def list_models(
    registry: Registry,
    models: Models,
    farm: str,
    name: Annotated[str | None, Query(description="only this model", max_length=100)] = None,
    promoted: Annotated[bool | None, Query(description="only promoted (true) or other (false) versions")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> ModelPage:
    """The registered versions of the forecaster and the fault detector, and which one of each is promoted."""
    from ml.models import MODEL_NAMES

    farm_of(registry, farm)
    if name is not None and name not in MODEL_NAMES:
        raise Problem(422, f"name: one of {', '.join(MODEL_NAMES)}")
    try:
        found = [v for each in ([name] if name else MODEL_NAMES) for v in models.registry.versions(each)]
    except RegistryError as exc:
        raise Problem(503, f"the model registry did not answer: {exc}") from exc
    found = [v for v in found if promoted is None or v.promoted is promoted]
    items = [
        ModelVersion(
            name=v.name,
            version=v.version,
            promoted=v.promoted,
            beats_baseline=v.beats_baseline,
            created=v.created,
            run_id=v.run_id,
            metrics={k: m for k, m in v.metrics.items() if math.isfinite(m)},
        )
        for v in found[offset : offset + limit]
    ]
    return ModelPage(
        items=items, limit=limit, offset=offset, next_offset=offset + limit if len(found) > offset + limit else None
    )


MIN_SOIL_HOURS = 24
"""Hours with soil moisture a prediction needs in the ``CONTEXT_H`` before it, the last hour among them: the
forecaster's features look back 24 h (``ml.features.SOIL_LAGS_H``); fewer leave them to guesswork."""
MAX_SPAN = timedelta(days=7)
"""How far before ``at`` posted readings may reach: the context's 48 h and the three closed days of reference ET."""
MAX_READINGS = 50_000
"""A week of a zone's sensors every few minutes."""


class Reading(BaseModel):
    """One good reading of the zone: when, what, and its value in the kind's unit (``SensorKind``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    at: AwareDatetime = Field(description="when it was measured, ISO 8601 with offset")
    kind: SensorKind
    value: float = Field(description="in the kind's unit; rainfall is the rain since the sensor's previous reading")


class PredictionRequest(BaseModel):
    """A zone's recent good readings, raw or one a sensor an hour (an hour's rain as one reading of its total)."""

    readings: list[Reading] = Field(max_length=MAX_READINGS)
    at: AwareDatetime | None = Field(
        None,
        description="the close of the hour to predict from (readings before it count); default: the end of the "
        "hour of the newest reading",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "readings": [
                    {"at": "2026-07-02T13:55:00Z", "kind": "soil_moisture", "value": 21.4},
                    {"at": "2026-07-02T13:55:00Z", "kind": "air_temperature", "value": 29.5},
                ],
                "at": "2026-07-02T14:00:00Z",
            }
        },
    )


class Predicted(BaseModel):
    """Soil moisture predicted for a time ahead."""

    horizon: str = Field(description="hours ahead of `at`: 6h or 24h")
    at: datetime = Field(description="the time the prediction is for")
    moisture_pct: float = Field(description="the zone's mean soil moisture then, % vol")


class Prediction(BaseModel):
    """The promoted forecaster's prediction of the zone's soil moisture, if the valves stay shut."""

    farm: str
    zone: str
    at: datetime = Field(description="the close of the hour predicted from")
    model: str = Field(description="model@version that predicted it")
    moisture_pct: float = Field(description="the zone's mean soil moisture in the hour that closed at `at`, % vol")
    soil_hours: int = Field(description=f"hours with soil moisture in the {CONTEXT_H} h before `at`")
    forecast: list[Predicted]


def _end_of_hour(newest: datetime) -> datetime:
    ts = newest.timestamp()
    return datetime.fromtimestamp(math.floor(ts / HOUR_S) * HOUR_S + HOUR_S, UTC)


@predictions.post("/zones/{zone}/predictions", response_model=Prediction, responses=UNAVAILABLE)
def predict(registry: Registry, models: Models, farm: str, zone: str, body: PredictionRequest) -> Prediction:
    """The promoted forecaster's 6 h and 24 h soil moisture for the zone from the readings posted: 422 naming the
    hours needed when they are too few."""
    from ml.models import FORECASTER, ModelScorer

    where = farm_of(registry, farm)
    found = zone_in(where, zone)
    if not body.readings:
        raise Problem(422, f"readings: soil moisture in at least {MIN_SOIL_HOURS} hours is needed, got none")
    in_reach("at and readings", *(r.at for r in body.readings), *([body.at] if body.at else []))
    for r in body.readings:
        low, high = r.kind.physical_range
        if not low <= r.value <= high:
            raise Problem(422, f"readings: a {r.kind.value} of {r.value} is outside its range, {low} to {high}")
    end = body.at.astimezone(UTC) if body.at else _end_of_hour(max(r.at for r in body.readings))
    if end.timestamp() % HOUR_S:
        raise Problem(422, "at: the close of an hour (minutes and seconds 0)")
    if any(r.at >= end for r in body.readings) or any(r.at < end - MAX_SPAN for r in body.readings):
        raise Problem(422, f"readings: each before at ({end.isoformat()}) and at most {MAX_SPAN.days} days before it")
    context = readings_context(where, found, [(r.at.timestamp(), r.kind, r.value) for r in body.readings], end)
    soil = list(context.hours.get(SensorKind.SOIL_MOISTURE, ()))
    closing = any(a.window_end == end for a in soil)
    if len(soil) < MIN_SOIL_HOURS or not closing:
        raise Problem(
            422,
            f"readings: the forecaster needs soil moisture in at least {MIN_SOIL_HOURS} of the {CONTEXT_H} hours "
            f"before at ({end.isoformat()}), the last hour among them; these have {len(soil)}"
            + ("" if closing else ", and none in the last hour"),
        )
    loaded = models.promoted(FORECASTER)
    outlook = ModelScorer([_Fixed(FORECASTER, loaded)]).soil_outlook(context)
    if outlook is None:  # the forecaster says nothing without the last hour's soil moisture, checked above
        raise Problem(422, "readings: no soil moisture in the last hour before at")
    return Prediction(
        farm=farm,
        zone=zone,
        at=end,
        model=outlook.model,
        moisture_pct=next(a.mean for a in soil if a.window_end == end),
        soil_hours=len(soil),
        forecast=[
            Predicted(horizon=f"{h}h", at=end + timedelta(hours=h), moisture_pct=theta)
            for h, theta in sorted(outlook.moisture_pct.items())
        ],
    )


class _Fixed:
    """A model source that serves one loaded version (``ml.models.Source``): the store's follower already chose it."""

    def __init__(self, name: str, loaded: "Loaded") -> None:
        self.name = name
        self._loaded = loaded

    def current(self) -> "Loaded | None":
        return self._loaded

    def refresh(self, force: bool = False) -> bool:
        return False
