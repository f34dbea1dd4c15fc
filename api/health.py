"""How a farm's devices and its pipeline are doing: each device's last reading, battery, connection and clock, and
whether the farm's data still flows through to scored hours and the services behind the API answer.

Every number is read from what the stream stored (``reading``, ``device_status``, ``device_clock``, ``zone_state``);
dead letters are not stored in InfluxDB (they go to their Kafka topic and the workers' metrics), so they are not here.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations at runtime.

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from api.deps import UNAVAILABLE, Influx, ModelStore, Registry, allowed, device_of, farm_of
from smartfarm.errors import SmartFarmError
from smartfarm.layout import Device, SensorKind
from storage.influx import InfluxClient
from storage.registry.store import Scope
from storage.zones import (
    clock_refusals,
    device_statuses,
    last_by_device,
    last_by_zone,
    suspect_counts,
)

farm_health = APIRouter(prefix="/farms/{farm}", tags=["health"], dependencies=[Depends(allowed(Scope.READ))])

SEEN_WITHIN = timedelta(days=7)
"""How far back a device's last reading is looked for: older is "not seen lately" (null)."""
CLOCK_WITHIN = timedelta(hours=24)
"""A device with a message refused for its timestamp in this span has a suspect clock."""
SUSPECT_WITHIN = timedelta(hours=1)
"""The span whose suspect readings are counted per sensor: recent, and cheap to count for a whole farm."""


def _at(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class SuspectSensor(BaseModel):
    """A sensor whose readings were flagged suspect in the last hour."""

    sensor: str
    kind: SensorKind
    readings: int = Field(description="suspect readings in the last hour")


class DeviceHealth(BaseModel):
    """One device: when it last reported, its battery, its connection and its clock."""

    device: str
    zone: str
    last_seen: datetime | None = Field(description="its newest stored reading (null: none in the last 7 days)")
    battery_v: float | None = Field(description="its newest battery reading, volts (null: none in the last 7 days)")
    battery_at: datetime | None
    online: bool | None = Field(description="its connection as the broker last reported it (null: never reported)")
    status_at: datetime | None = Field(description="when its connection last changed")
    dropped: bool | None = Field(description="it went offline without saying goodbye (the broker's last will)")
    clock_suspect: bool = Field(description="a message of it was refused for its timestamp in the last 24 h")
    clock_refusals: int = Field(description="messages refused for their timestamp in the last 24 h")
    clock_skew_s: float | None = Field(description="the newest refused stamp less its receipt (negative: behind), s")
    suspect_sensors: list[SuspectSensor] = Field(description="its sensors with suspect readings in the last hour")


class DeviceHealthPage(BaseModel):
    """One page of the farm's active devices' health, by device id; ``next_offset`` asks for the next page."""

    items: list[DeviceHealth]
    limit: int
    offset: int
    next_offset: int | None


def devices_health(influx: InfluxClient, farm: str, devices: list[Device]) -> list[DeviceHealth]:
    now = datetime.now(UTC)
    seen = last_by_device(influx, farm, (now - SEEN_WITHIN).timestamp())
    status = device_statuses(influx, farm)
    clocks = clock_refusals(influx, farm, (now - CLOCK_WITHIN).timestamp())
    suspect = suspect_counts(influx, farm, (now - SUSPECT_WITHIN).timestamp())
    out = []
    for device in devices:
        kinds = seen.get(device.id, {})
        battery = kinds.get(SensorKind.BATTERY)
        state = status.get(device.id)
        clock = clocks.get(device.id)
        out.append(
            DeviceHealth(
                device=device.id,
                zone=device.zone,
                last_seen=_at(max((t for t, _ in kinds.values()), default=None)),
                battery_v=battery[1] if battery else None,
                battery_at=_at(battery[0]) if battery else None,
                online=state[1] if state else None,
                status_at=_at(state[0]) if state else None,
                dropped=(not state[1] and state[2]) if state else None,
                clock_suspect=clock is not None,
                clock_refusals=clock[0] if clock else 0,
                clock_skew_s=clock[1] if clock else None,
                suspect_sensors=[
                    SuspectSensor(sensor=sensor, kind=kind, readings=n)
                    for (who, sensor), (kind, n) in sorted(suspect.items())
                    if who == device.id
                ],
            )
        )
    return out


@farm_health.get("/devices/health", response_model=DeviceHealthPage, responses=UNAVAILABLE)
def list_devices_health(
    registry: Registry,
    influx: Influx,
    farm: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> DeviceHealthPage:
    """The health of the farm's active devices, by device id: last seen, battery, online, clock suspect, and
    sensors with suspect readings in the last hour."""
    devices = sorted(farm_of(registry, farm).devices, key=lambda d: d.id)
    page = devices[offset : offset + limit]
    return DeviceHealthPage(
        items=devices_health(influx, farm, page) if page else [],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if len(devices) > offset + limit else None,
    )


@farm_health.get("/devices/{device}/health", response_model=DeviceHealth, responses=UNAVAILABLE)
def device_health(registry: Registry, influx: Influx, farm: str, device: str) -> DeviceHealth:
    """One active device's health."""
    found = device_of(registry, farm, device)
    return devices_health(influx, farm, [found])[0]


class ServiceCheck(BaseModel):
    """Whether a service behind the API answered."""

    configured: bool = Field(description="the API was given it")
    ok: bool = Field(description="it answered")
    detail: str = Field(description="its version, or why not")


class ZoneFlow(BaseModel):
    """How fresh a zone's data is."""

    zone: str
    newest_reading: datetime | None = Field(description="its newest stored reading (null: none in the last 7 days)")
    newest_scored_hour: datetime | None = Field(description="the end of its newest scored hour (zone_state)")


class PipelineHealth(BaseModel):
    """Whether the farm's data flows: the newest reading and scored hour per zone, and the services' answers."""

    farm: str
    checked_at: datetime
    newest_reading_age_s: float | None = Field(description="seconds since the farm's newest stored reading")
    zones: list[ZoneFlow]
    influxdb: ServiceCheck
    models: ServiceCheck
    promoted: dict[str, int | None] = Field(description="the promoted version of each model (null: none)")


@farm_health.get("/pipeline", response_model=PipelineHealth)
def pipeline_health(request: Request, registry: Registry, farm: str) -> PipelineHealth:
    """The farm's pipeline now: how old its newest data is, per zone, and whether InfluxDB and the model store
    answer (a service the API runs without is reported, not refused)."""
    zones = farm_of(registry, farm).zones
    now = datetime.now(UTC)
    influx: InfluxClient | None = request.app.state.influx
    readings: dict[str, float] = {}
    scored: dict[str, float] = {}
    if influx is None:
        db = ServiceCheck(configured=False, ok=False, detail="not configured: SMARTFARM_INFLUX_URL")
    else:
        try:
            version = influx.ping()
            since = (now - SEEN_WITHIN).timestamp()
            readings = last_by_zone(influx, "reading", farm, since)
            scored = last_by_zone(influx, "zone_state", farm, since)
            db = ServiceCheck(configured=True, ok=True, detail=f"InfluxDB {version}")
        except SmartFarmError as exc:
            db = ServiceCheck(configured=True, ok=False, detail=str(exc)[:500])
    store: ModelStore | None = request.app.state.models
    promoted: dict[str, int | None] = {}
    if store is None:
        check = ServiceCheck(configured=False, ok=False, detail="not configured: SMARTFARM_MODELS_STORE")
    else:
        from ml.models import MODEL_NAMES  # scikit-learn and XGBoost: only when a store is asked (api.predictions)

        try:
            for name in MODEL_NAMES:
                champion = store.registry.champion(name)
                promoted[name] = champion.version if champion else None
            check = ServiceCheck(configured=True, ok=True, detail=f"MLflow store {store.settings.store}")
        except SmartFarmError as exc:
            check = ServiceCheck(configured=True, ok=False, detail=str(exc)[:500])
    newest = max(readings.values(), default=None)
    return PipelineHealth(
        farm=farm,
        checked_at=now,
        newest_reading_age_s=now.timestamp() - newest if newest is not None else None,
        zones=[
            ZoneFlow(zone=z.id, newest_reading=_at(readings.get(z.id)), newest_scored_hour=_at(scored.get(z.id)))
            for z in zones
        ],
        influxdb=db,
        models=check,
        promoted=promoted,
    )
