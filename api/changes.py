"""Changing a farm through the API: a zone added, a device registered with its sensors, a device retired.

Each change is written to the farm registry and the farm, as the change leaves it, published to the layout topic
(``stream.layouts``) before the registry commits; the API answers once Kafka has it. The workers and the broker's
credentials follow that topic, so the change takes effect without a restart: a registered device can log in and
its readings are cleaned and stored, a retired one is refused. A device's MQTT password is derived from the fleet
secret (``smartfarm.credentials``) and shown once, in the answer to its registration.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations at runtime.

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, SecretStr

from api.deps import Registry, allowed, problem_responses
from api.problems import Problem
from smartfarm.credentials import device_password
from smartfarm.errors import ConfigError, ServiceError
from smartfarm.layout import Device, Farm, Zone
from smartfarm.records import IrrigationCommand
from smartfarm.topics import MqttTopics
from storage.registry.store import Conflict, FarmRegistry, Missing, Publish, Scope


class Publisher(Protocol):
    """What writes the API's records to Kafka (``stream.publisher.FarmPublisher``): each call returns once Kafka
    has the record, and raises ServiceError when it could not."""

    def publish(self, farm: Farm) -> None:
        """A farm's layout."""

    def command(self, command: IrrigationCommand) -> None:
        """An accepted irrigation, for the zone's valve."""

    def telemetry(self, mqtt_topic: str, device: str, payload: bytes, received_at: datetime) -> None:
        """A device's telemetry message, as the bridge would write it had it come over ``mqtt_topic``."""


@dataclass(frozen=True)
class Changes:
    """What the write routes need: where farms are published, the fleet secret device passwords derive from, and
    the broker's topic root and address as devices see them."""

    publisher: Publisher
    device_secret: SecretStr
    topics: MqttTopics
    broker: str
    """``mqtts://host:port`` of the broker (``mqtt://`` without TLS), for the device's configuration."""
    ca_pem: str | None = None
    """The CA that signed the broker's certificate (PEM), which a device verifies the broker with; None without
    TLS, or when the system's CAs vouch for the broker."""


def publish_farms(registry: FarmRegistry, publisher: Publisher) -> int:
    """Publish every farm of the registry as it is now (when the API starts: the followers then agree with the
    registry even if it was changed while no API ran); how many."""
    if not registry.has_farms():
        return 0
    farms = registry.layout().farms
    for farm in farms:
        publisher.publish(farm)
    return len(farms)


def needing_kafka(without: str) -> Callable[[Request], Changes]:
    """A dependency: the app's ``Changes``; without Kafka, 503 saying what could not happen (``without``) and the
    setting that fixes it."""

    def changes_of(request: Request) -> Changes:
        found: Changes | None = request.app.state.changes
        if found is None:
            raise Problem(
                503,
                f"this API runs without Kafka, so {without}: give it SMARTFARM_KAFKA_BOOTSTRAP_SERVERS "
                "(smartfarm up does)",
            )
        return found

    return changes_of


Changing = Annotated[Changes, Depends(needing_kafka("a change could not reach the pipeline"))]


class MqttLogin(BaseModel):
    """How a device logs in to the broker and where it publishes. The password is shown only here, once."""

    broker: str = Field(description="mqtts://host:port over TLS (verify the broker with ca_pem); mqtt:// without")
    ca_pem: str | None = Field(
        None, description="PEM of the CA the broker's certificate is signed by; null without TLS or a public CA"
    )
    username: str
    password: str = Field(description="shown once: keep it on the device")
    telemetry_topic: str
    status_topic: str


class RegisteredDevice(BaseModel):
    device: Device
    mqtt: MqttLogin


changes = APIRouter(prefix="/farms/{farm}", tags=["changes"], dependencies=[Depends(allowed(Scope.WRITE))])

CHANGE_RESPONSES = problem_responses(409, 503)


def _apply(change: Callable[[Publish], Farm], changing: Changes) -> Farm:
    """Make ``change`` with the app's publisher: 409 for what is taken, 404 for what is missing, 503 when Kafka
    did not take the farm (nothing changed then), 422 for a change that would leave no valid farm."""
    try:
        return change(changing.publisher.publish)
    except Conflict as exc:
        raise Problem(409, str(exc)) from exc
    except Missing as exc:
        raise Problem(404, str(exc)) from exc
    except ServiceError as exc:
        raise Problem(503, f"nothing was changed: {exc}", {"Retry-After": "10"}) from exc
    except ConfigError as exc:
        raise Problem(422, str(exc)) from exc


@changes.post("/zones", status_code=201, response_model=Zone, responses=CHANGE_RESPONSES)
def add_zone(registry: Registry, changing: Changing, farm: str, zone: Zone) -> Zone:
    """Add a zone (an area: crop, soil, planting date, irrigation rate). Its devices can be registered next."""
    _apply(partial(registry.add_zone, farm, zone), changing)
    return zone


@changes.post("/devices", status_code=201, response_model=RegisteredDevice, responses=CHANGE_RESPONSES)
def register_device(registry: Registry, changing: Changing, farm: str, device: Device) -> RegisteredDevice:
    """Register a device in one of the farm's zones, with its sensors. The answer holds its MQTT password, once."""
    _apply(partial(registry.register_device, farm, device), changing)
    topics = changing.topics
    return RegisteredDevice(
        device=device,
        mqtt=MqttLogin(
            broker=changing.broker,
            ca_pem=changing.ca_pem,
            username=device.id,
            password=device_password(changing.device_secret, device.id),
            telemetry_topic=topics.telemetry(farm, device.id),
            status_topic=topics.status(farm, device.id),
        ),
    )


@changes.delete("/devices/{device}", status_code=204, responses=CHANGE_RESPONSES)
def retire_device(registry: Registry, changing: Changing, farm: str, device: str) -> Response:
    """Retire a device: the broker refuses it from now on; its readings stay, and its id is never reused."""
    _apply(partial(registry.retire_device, farm, device), changing)
    return Response(status_code=204)
