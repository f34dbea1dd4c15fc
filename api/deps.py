"""What the farm API's routes depend on: the registry and InfluxDB the app was made with, the client behind the
bearer token, and the farm, zone or device a path names (404 otherwise)."""

# No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations at runtime.

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import problems
from api.problems import Problem
from smartfarm.errors import ConfigError
from smartfarm.layout import Farm, Zone
from storage.influx import InfluxClient
from storage.registry.store import Client, FarmRegistry, Scope

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="an API token of the farm (smartfarm api token)")

PROBLEM_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"description": problems.TITLES[status], "content": {problems.PROBLEM_JSON: {}}}
    for status in (401, 403, 404, 422)
}


def registry_of(request: Request) -> FarmRegistry:
    registry: FarmRegistry = request.app.state.registry
    return registry


Registry = Annotated[FarmRegistry, Depends(registry_of)]


def influx_of(request: Request) -> InfluxClient:
    influx: InfluxClient | None = request.app.state.influx
    if influx is None:
        raise Problem(
            503, "this API runs without InfluxDB: give it SMARTFARM_INFLUX_URL to serve what the farm measured"
        )
    return influx


Influx = Annotated[InfluxClient, Depends(influx_of)]


MAX_RANGE = timedelta(days=366)
"""The longest time range one request may ask for."""


def instant(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


def client(registry: Registry, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Client:
    """The client behind the request's bearer token; 401 without one or for one unknown or revoked."""
    if credentials is None:
        raise Problem(401, "an API token is needed: Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"})
    found = registry.client(credentials.credentials)
    if found is None:
        raise Problem(401, "this API token is unknown or revoked", {"WWW-Authenticate": "Bearer"})
    return found


def allowed(scope: Scope) -> Callable[[str, Client], Client]:
    """A dependency: the request's client, if it is of the path's farm (404 otherwise) and has ``scope`` (403)."""

    def check(farm: str, who: Annotated[Client, Depends(client)]) -> Client:
        if who.farm != farm:
            raise Problem(404, f"no farm {farm!r}")  # the same answer as for a farm that does not exist
        if scope not in who.scopes:
            raise Problem(403, f"this token may not {scope.value}; issue one with the {scope.value!r} scope")
        return who

    return check


def farm_of(registry: FarmRegistry, farm: str) -> Farm:
    try:
        return registry.layout([farm]).farms[0]
    except ConfigError as exc:
        raise Problem(404, f"no farm {farm!r}") from exc


def one_of(items: Iterable[T], wanted: str, missing: str) -> T:
    """The item whose ``id`` is ``wanted``; 404 saying ``missing`` when there is none."""
    found = next((item for item in items if getattr(item, "id", None) == wanted), None)
    if found is None:
        raise Problem(404, missing)
    return found


def zone_of(registry: FarmRegistry, farm: str, zone: str) -> Zone:
    return one_of(farm_of(registry, farm).zones, zone, f"farm {farm!r} has no zone {zone!r}")
