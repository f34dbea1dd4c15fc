"""What the farm API's routes depend on: the registry, InfluxDB and model store the app was made with, the client
behind the bearer token, the farm, zone or device a path names (404 otherwise), and the time range of a query.

An API started without InfluxDB or without a model store answers the routes that need one 503, naming the setting.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations at runtime.

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import problems
from api.problems import Problem
from ml.settings import ModelSettings
from smartfarm.errors import ConfigError, RegistryError
from smartfarm.layout import Device, Farm, Zone
from storage.influx import InfluxClient
from storage.registry.store import Client, FarmRegistry, Scope

if TYPE_CHECKING:
    from ml.registry import Follower, LoadedModel
    from ml.registry import Registry as ModelRegistry

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="an API token of the farm (smartfarm api token)")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI responses for ``statuses``, each an RFC 9457 problem detail."""
    return {
        status: {"description": problems.TITLES[status], "content": {problems.PROBLEM_JSON: {}}} for status in statuses
    }


PROBLEM_RESPONSES = problem_responses(400, 401, 403, 404, 422)
"""What any route may answer: a body that is no JSON (400), the token (401, 403), the path (404), the input (422)."""

UNAVAILABLE = problem_responses(503)
"""The responses of a route that needs InfluxDB or the model store."""


def registry_of(request: Request) -> FarmRegistry:
    registry: FarmRegistry = request.app.state.registry
    return registry


Registry = Annotated[FarmRegistry, Depends(registry_of)]


def _configured(request: Request, name: str, setting: str, without: str, serves: str) -> Any:
    """The app's ``name`` (InfluxDB, the model store); 503 naming the ``setting`` that gives it when absent."""
    found = getattr(request.app.state, name)
    if found is None:
        raise Problem(503, f"this API runs without {without}: give it {setting} to serve {serves}")
    return found


def influx_of(request: Request) -> InfluxClient:
    influx: InfluxClient = _configured(request, "influx", "SMARTFARM_INFLUX_URL", "InfluxDB", "what the farm measured")
    return influx


Influx = Annotated[InfluxClient, Depends(influx_of)]


class ModelStore:
    """The app's model registry (MLflow's local store), opened on first use: importing MLflow takes seconds, and
    an API that never serves a model should not pay them."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._registry: ModelRegistry | None = None
        self._followers: dict[str, Follower] = {}

    @property
    def registry(self) -> "ModelRegistry":
        with self._lock:
            if self._registry is None:
                from ml.registry import Registry as ModelRegistry

                self._registry = ModelRegistry(self.settings)
            return self._registry

    def promoted(self, name: str) -> "LoadedModel":
        """The promoted version of model ``name``, loaded and checked as a worker loads it (``ml.registry.Follower``:
        a newly promoted one is picked up within ``poll_s``, a refused one leaves the last good one in service);
        503 saying why while none is promoted or none loads."""
        from ml.registry import Follower

        with self._lock:  # requests run on a thread pool; a follower is not thread-safe
            follower = self._followers.get(name)
            if follower is None:
                try:
                    follower = self._followers[name] = Follower(self.registry, name)
                except RegistryError as exc:
                    raise Problem(503, f"the model store did not open: {exc}") from exc
            follower.refresh()
            loaded = follower.current()
        if loaded is None:
            raise Problem(
                503,
                follower.last_error
                or f"no version of {name} is promoted: run smartfarm train, or smartfarm models --promote {name} N",
            )
        return loaded


def models_of(request: Request) -> ModelStore:
    store: ModelStore = _configured(
        request, "models", "SMARTFARM_MODELS_STORE", "a model store", "the model registry and predictions"
    )
    return store


Models = Annotated[ModelStore, Depends(models_of)]


MAX_RANGE = timedelta(days=366)
"""The longest time range one request may ask for."""
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
"""Times a request may name: InfluxDB's nanosecond timestamps end in 1677 and 2262, farms' data after 1970."""


def time_range(start: datetime | None, end: datetime | None, default: timedelta) -> tuple[datetime, datetime]:
    """The range a request asks for: ``end`` defaults to now, ``start`` to ``default`` before it; 422 unless
    start is before end, at most ``MAX_RANGE`` apart and both between 1970 and 2200."""
    until = end or datetime.now(UTC)
    since = start or until - default
    if not EARLIEST <= since < until <= LATEST or until - since > MAX_RANGE:
        raise Problem(
            422,
            f"start must be before end, at most {MAX_RANGE.days} days apart, both between "
            f"{EARLIEST.year} and {LATEST.year}",
        )
    return since, until


def in_reach(name: str, *times: datetime) -> None:
    """422 for a time outside ``EARLIEST`` and ``LATEST``, naming the field (for times that are no range)."""
    if any(not EARLIEST <= t <= LATEST for t in times):
        raise Problem(422, f"{name}: between {EARLIEST.year} and {LATEST.year}")


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
    return zone_in(farm_of(registry, farm), zone)


def zone_in(farm: Farm, zone: str) -> Zone:
    """The farm's zone ``zone``; 404 when it has none."""
    return one_of(farm.zones, zone, f"farm {farm.id!r} has no zone {zone!r}")


def device_of(registry: FarmRegistry, farm: str, device: str) -> Device:
    """The farm's active device ``device``; 404 when it has none."""
    return one_of(farm_of(registry, farm).devices, device, f"farm {farm!r} has no active device {device!r}")
