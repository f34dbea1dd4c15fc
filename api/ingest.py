"""The ingest door: telemetry over HTTP and LoRaWAN network servers' uplink webhooks, into the MQTT door's path.

- ``POST /farms/{farm}/ingest``: a device that speaks HTTP posts the very ``Telemetry`` it would publish over MQTT.
- ``POST /farms/{farm}/ingest/chirpstack?event=up``: ChirpStack v4's HTTP integration (JSON marshaler); every
  other event (join, status, ack, txack, log, location, integration) is answered 204 and ignored.
- ``POST /farms/{farm}/ingest/tts``: The Things Stack v3's webhook for uplink messages.
- ``PUT|GET /farms/{farm}/devices/{device}/lorawan``: how a LoRaWAN device is named and decoded
  (``smartfarm.lorawan.LorawanBinding``, kept in the farm registry).

The farm is the path's, as on every farm route: the token must be of that farm (404 otherwise) with the ``ingest``
scope, and the network server's integration carries it as ``Authorization: Bearer``. One rule for what is refused
here and what is forwarded: the door checks the telemetry contract, since an HTTP client is there to hear the
answer (422, nothing forwarded), and checks the device is the farm's (404); the worker judges the rest exactly as
for MQTT (sensors against the layout, clocks, duplicates by device and ``seq``) and dead-letters with its reason.
The records go through the app's one Kafka publisher (``api.changes.Publisher``, ``stream.publisher``): 202 comes
only after Kafka confirmed the record; when it does not, 503 with ``Retry-After`` and nothing accepted; an API
without Kafka answers 503 on every ingest route.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations at runtime.

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel, Field, ValidationError

from api.changes import Changes, needing_kafka
from api.deps import Registry, allowed, device_of, problem_responses
from api.problems import Problem
from smartfarm import lorawan
from smartfarm.contract import describe
from smartfarm.errors import ContractError, ServiceError
from smartfarm.lorawan import ChirpstackUplink, LorawanBinding, TtsUplink, Uplink
from smartfarm.telemetry import Telemetry
from storage.registry.store import Conflict, FarmRegistry, Scope

RETRY_AFTER_S = 5
"""What a 503 asks a client to wait before sending again."""
UP = "up"
"""ChirpStack's ``event`` of an uplink; the only event read."""


Kafka = Annotated[Changes, Depends(needing_kafka("telemetry cannot reach the pipeline"))]
"""The app's way to Kafka (the publisher of ``api.changes``) and the MQTT topic scheme; 503 without Kafka."""


class Accepted(BaseModel):
    """Kafka has the message: from here it takes the MQTT path (cleaning, dead letters, dedup by device and seq)."""

    device: str = Field(description="our device id")
    seq: int = Field(description="the message's sequence number (a LoRaWAN uplink's frame counter)")
    ts: datetime = Field(description="when the readings were taken (a LoRaWAN uplink: when its network server got it)")
    readings: int = Field(description="how many readings the message holds")


UNAVAILABLE = problem_responses(503)
INGEST = [Depends(allowed(Scope.INGEST))]

ingest = APIRouter(prefix="/farms/{farm}", tags=["ingest"])


def forward(kafka: Changes, farm: str, message: Telemetry, received: datetime) -> Accepted:
    """Hand ``message`` to Kafka as the bridge would have, had it come over MQTT, and wait until Kafka has it; 503
    with Retry-After when Kafka does not confirm it."""
    received = received.replace(microsecond=received.microsecond // 1000 * 1000)  # the bridge's millisecond
    try:
        kafka.publisher.telemetry(
            kafka.topics.telemetry(farm, message.device), message.device, message.encode(), received
        )
    except ServiceError as exc:
        raise Problem(503, f"{exc}; nothing was accepted, send it again", {"Retry-After": str(RETRY_AFTER_S)}) from exc
    return Accepted(device=message.device, seq=message.seq, ts=message.ts, readings=len(message.readings))


@ingest.post("/ingest", status_code=202, dependencies=INGEST, responses=UNAVAILABLE)
def ingest_telemetry(registry: Registry, kafka: Kafka, farm: str, message: Telemetry) -> Accepted:
    """A device's telemetry message, as it would publish it over MQTT; 202 once Kafka has it."""
    device_of(registry, farm, message.device)
    return forward(kafka, farm, message, datetime.now(UTC))


def uplink_into(registry: FarmRegistry, kafka: Changes, farm: str, read: Callable[[], Uplink]) -> Accepted:
    """The telemetry of the uplink ``read()`` gives, forwarded: 422 when it cannot be read or decoded, 404 when
    no device of the farm is bound to it."""
    received = datetime.now(UTC)
    try:
        uplink = read()
    except ValidationError as exc:
        raise Problem(422, describe("uplink", exc)) from exc
    except ContractError as exc:
        raise Problem(422, f"{exc.reason.value}: {exc.detail}") from exc
    bound = registry.lorawan_device(farm, uplink.dev_eui, uplink.tts_device_id)
    if bound is None:
        named = " or ".join(
            f"{what} {value}"
            for what, value in (("DevEUI", uplink.dev_eui), ("device id", uplink.tts_device_id))
            if value is not None
        )
        raise Problem(404, f"farm {farm!r} has no LoRaWAN device {named}: bind one (PUT .../devices/{{id}}/lorawan)")
    device, binding = bound
    sensors = {s.id: s.kind for s in device_of(registry, farm, device).sensors}
    try:
        message = lorawan.telemetry(device, uplink, binding, sensors, received)
    except ContractError as exc:
        raise Problem(422, f"{exc.reason.value}: {exc.detail}") from exc
    return forward(kafka, farm, message, received)


@ingest.post(
    "/ingest/chirpstack",
    status_code=202,
    response_model=Accepted,
    dependencies=INGEST,
    responses={204: {"description": "an event other than up: ignored"}, **UNAVAILABLE},
)
def chirpstack_event(
    registry: Registry,
    kafka: Kafka,
    farm: str,
    event: Annotated[str, Query(max_length=64, description="ChirpStack's event type; only up is read")],
    body: Annotated[dict[str, Any], Body(description="the event, JSON marshaler (an up event: UplinkEvent)")],
) -> Accepted | Response:
    """A ChirpStack v4 HTTP integration event: an uplink (``event=up``) becomes the device's telemetry."""
    if event != UP:
        return Response(status_code=204)
    return uplink_into(registry, kafka, farm, lambda: ChirpstackUplink.model_validate(body).uplink())


@ingest.post("/ingest/tts", status_code=202, dependencies=INGEST, responses=UNAVAILABLE)
def tts_uplink(registry: Registry, kafka: Kafka, farm: str, message: TtsUplink) -> Accepted:
    """An uplink message of The Things Stack v3 (its webhook's uplink message path) becomes telemetry."""
    return uplink_into(registry, kafka, farm, message.uplink)


@ingest.put(
    "/devices/{device}/lorawan",
    dependencies=[Depends(allowed(Scope.WRITE))],
    responses=problem_responses(409),
)
def bind_lorawan(registry: Registry, farm: str, device: str, binding: LorawanBinding) -> LorawanBinding:
    """Make the device a LoRaWAN device: how its network server names it and how its uplinks decode."""
    found = device_of(registry, farm, device)
    unknown = binding.unknown_sensors({s.id: s.kind for s in found.sensors})
    if unknown:
        raise Problem(422, f"device {device!r} has no sensor {', '.join(unknown)}")
    try:
        registry.bind_lorawan(farm, device, binding)
    except Conflict as exc:
        raise Problem(409, str(exc)) from exc
    return binding


@ingest.get("/devices/{device}/lorawan", dependencies=[Depends(allowed(Scope.READ))])
def get_lorawan(registry: Registry, farm: str, device: str) -> LorawanBinding:
    """How the device is named by its network server and decoded; 404 if it is no LoRaWAN device."""
    device_of(registry, farm, device)
    binding = registry.lorawan(farm, device)
    if binding is None:
        raise Problem(404, f"device {device!r} is not bound as a LoRaWAN device")
    return binding
