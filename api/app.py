"""``create_app``: the farm API over a farm registry.

Every farm route needs a bearer token of that farm (``storage.registry``): none or an unknown one is 401, a token
of another farm gets 404 for everything of this one (it cannot even learn the farm exists), a token without the
route's scope gets 403. Errors are RFC 9457 problem details (``api.problems``); the OpenAPI is at ``/openapi.json``
and its pages at ``/docs``.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations at runtime.

import threading
import time
from datetime import datetime

import swagger_ui_bundle
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from api import problems
from api.advice import advice
from api.changes import Changes, changes
from api.deps import (
    PROBLEM_RESPONSES,
    Influx,
    ModelStore,
    Registry,
    allowed,
    device_of,
    farm_of,
    instant,
    zone_of,
)
from api.health import farm_health
from api.ingest import ingest
from api.predictions import predictions
from api.readings import readings
from api.web.pages import pages
from ml.settings import ModelSettings
from smartfarm import __version__
from smartfarm.errors import ServiceError
from smartfarm.layout import Device, Farm, Zone
from storage.influx import InfluxClient
from storage.registry.store import FarmRegistry, Scope
from storage.zones import latest_forecasts, latest_state


class RootZone(BaseModel):
    """The zone's root zone at the close of its newest scored hour, by the rule that advises its irrigation."""

    at: datetime = Field(description="the end of the hour it describes")
    moisture_pct: float = Field(description="soil moisture measured over the managed depth, % vol")
    trigger_pct: float = Field(description="below this moisture irrigation is advised: field capacity less RAW")
    field_capacity_pct: float
    depletion_mm: float
    raw_mm: float = Field(description="readily available water")
    taw_mm: float = Field(description="total available water")
    model: str


class Outlook(BaseModel):
    """Soil moisture the zone's forecaster predicts for a time ahead."""

    horizon: str
    at: datetime = Field(description="the time the prediction is for")
    moisture_pct: float
    model: str


class ZoneNow(BaseModel):
    """What the zone is now: its root zone against the irrigation trigger, and where its soil moisture is going."""

    farm: str
    zone: str
    state: RootZone | None = Field(description="None before the zone's first scored hour")
    forecast: list[Outlook]


service = APIRouter(tags=["service"])
farms = APIRouter(prefix="/farms/{farm}", tags=["farm"], dependencies=[Depends(allowed(Scope.READ))])


@service.get("/health")
def health(registry: Registry) -> dict[str, str]:
    """Whether the API runs and reaches its registry (no token needed)."""
    registry.ping()
    return {"status": "ok"}


@farms.get("", response_model=Farm)
def get_farm(registry: Registry, farm: str) -> Farm:
    """The farm: where it is, its zones and its active devices with their sensors."""
    return farm_of(registry, farm)


@farms.get("/zones", response_model=list[Zone])
def list_zones(registry: Registry, farm: str) -> list[Zone]:
    """The farm's zones (areas): crop, soil, planting date, irrigation rate, area."""
    return list(farm_of(registry, farm).zones)


@farms.get("/zones/{zone}", response_model=Zone)
def get_zone(registry: Registry, farm: str, zone: str) -> Zone:
    return zone_of(registry, farm, zone)


@farms.get("/zones/{zone}/now", response_model=ZoneNow)
def zone_now(registry: Registry, influx: Influx, farm: str, zone: str) -> ZoneNow:
    """The zone's soil moisture against its irrigation trigger at its newest scored hour, and its forecast."""
    get_zone(registry, farm, zone)
    state = latest_state(influx, farm, zone)
    return ZoneNow(
        farm=farm,
        zone=zone,
        state=RootZone(at=instant(state["time"]), **{k: state[k] for k in RootZone.model_fields if k != "at"})
        if state
        else None,
        forecast=[
            Outlook(horizon=r["horizon"], at=instant(r["time"]), moisture_pct=r["moisture_pct"], model=r["model"])
            for r in latest_forecasts(influx, farm, zone)
        ],
    )


@farms.get("/devices", response_model=list[Device])
def list_devices(registry: Registry, farm: str) -> list[Device]:
    """The farm's active devices and their sensors (retired ones are not listed)."""
    return list(farm_of(registry, farm).devices)


@farms.get("/devices/{device}", response_model=Device)
def get_device(registry: Registry, farm: str, device: str) -> Device:
    return device_of(registry, farm, device)


MAX_BODY_BYTES = 1024 * 1024
"""The largest request body the API reads: a day of a zone's raw readings posted for a prediction fits many times
over; anything larger is a 413 before it is held in memory."""

SWAGGER = "/static/swagger-ui"
"""Where the API serves Swagger UI's own files (from swagger-ui-bundle): the docs page loads nothing from the
internet, as FastAPI's default page would (its scripts come from a CDN)."""


def docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=str(request.app.openapi_url),
        title=f"{request.app.title}: docs",
        swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
    )


def create_app(
    registry: FarmRegistry,
    influx: InfluxClient | None = None,
    changing: Changes | None = None,
    models: ModelSettings | None = None,
) -> FastAPI:
    """The API over ``registry``; ``influx`` serves what the farm measured, ``changing`` lets write tokens add
    zones and register or retire devices, ``models`` serves the model registry and predictions (each route answers
    503 naming the setting without the one it needs)."""
    app = FastAPI(
        title="SmartFarm farm API",
        version=__version__,
        description="Farms, zones and devices of the farm registry, for people and other systems.",
        responses=PROBLEM_RESPONSES,
        docs_url=None,
        redoc_url=None,
    )
    app.state.registry = registry
    app.state.influx = influx
    app.state.changes = changing
    app.state.models = ModelStore(models) if models is not None else None
    problems.install(app)
    app.add_middleware(problems.BodyLimit, limit_bytes=MAX_BODY_BYTES)
    app.mount(SWAGGER, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui")
    app.add_api_route("/docs", docs, include_in_schema=False, response_class=HTMLResponse)
    app.include_router(service)
    app.include_router(readings)
    app.include_router(farm_health)  # before ``farms``: its /devices/health must not be taken for a device's id
    app.include_router(predictions)
    app.include_router(farms)
    app.include_router(advice)
    app.include_router(changes)
    app.include_router(ingest)
    app.include_router(pages)
    return app


def serve_in_thread(
    app: FastAPI, host: str, port: int, timeout_s: float = 30.0
) -> tuple[uvicorn.Server, threading.Thread]:
    """``app`` on uvicorn in a daemon thread of this process, once it listens; set ``should_exit`` on the server
    and join the thread to stop it. ServiceError if it does not start within ``timeout_s``."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="farm-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ServiceError(f"the farm API did not start on http://{host}:{port}")
        time.sleep(0.05)
    return server, thread
