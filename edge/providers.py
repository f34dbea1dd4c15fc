"""Weather forecast providers: a Protocol, two implementations and a factory.

- ``SimulatedProvider``: the simulated farm's weather forecast with its stated errors (``edge.forecast``); no
  network, so the local stack and the tests have a provider of their own.
- ``OpenMeteoProvider``: Open-Meteo's hourly forecast API over HTTP (urllib3, the project's HTTP pool already);
  the request and the reading of the answer are ``edge.openmeteo``, pure.

The fetch's policy, as the InfluxDB writer's (``storage.writer``): a transient failure (unreachable, a timeout, a
5xx answer) is tried again after a pause that doubles (``ForecastSettings.attempts`` tries in all); a refusal
(4xx) is the request's or the settings' fault, the same at every try, so it is not tried again but raised at once
with what Open-Meteo said and the fix; an answer that cannot be read is refused (``edge.openmeteo.parse``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol
from urllib.parse import urlencode

import urllib3

from edge.forecast import SimulatedForecasts
from edge.openmeteo import PATH, parse, query, refused_reason
from edge.settings import EdgeSettings, ForecastSettings, ForecastSource
from edge.weather import FarmWeather
from smartfarm.errors import ProviderError
from smartfarm.forecast import WeatherForecast
from smartfarm.layout import Farm
from smartfarm.settings import env_name
from smartfarm.stop import Stop, StopFlag

RETRY_MAX_S = 60.0
"""The longest pause between two tries."""


class ForecastProvider(Protocol):
    """Issues a farm's weather forecast."""

    @property
    def name(self) -> str:
        """What the provider is, for people: ``simulated (seed 42)``, ``open-meteo at https://...``."""

    def forecast(self, farm: Farm, at: datetime) -> WeatherForecast:
        """``farm``'s forecast as issued at ``at``; ProviderError when it cannot be had."""

    def close(self) -> None:
        """Let go of what it holds (connections)."""


class SimulatedProvider:
    """The simulated farm's weather (its seed and scenarios), forecast as ``edge.forecast.SimulatedForecasts`` does."""

    def __init__(self, farms: Iterable[Farm], edge: EdgeSettings) -> None:
        self.seed = edge.seed
        self._by_farm = {f.id: SimulatedForecasts(FarmWeather(f, edge.seed, edge.climate), edge.seed) for f in farms}

    @property
    def name(self) -> str:
        return f"simulated (seed {self.seed})"

    def simulation(self, farm: Farm) -> SimulatedForecasts:
        found = self._by_farm.get(farm.id)
        if found is None:
            raise ProviderError(f"farm {farm.id!r} is not one the simulated provider was made for")
        return found

    def forecast(self, farm: Farm, at: datetime) -> WeatherForecast:
        return self.simulation(farm).issue(at)

    def close(self) -> None:
        """Nothing held."""


class OpenMeteoProvider:
    """Open-Meteo's forecast at each farm's coordinates, fetched at ``settings.openmeteo_url``.

    Args:
        stop: cuts a pause between tries short (the fetch then fails with the last error).
    """

    def __init__(self, settings: ForecastSettings, stop: Stop | None = None) -> None:
        self.settings = settings
        self.url = settings.openmeteo_url.rstrip("/") + PATH
        self.stop = stop or StopFlag()
        timeout = urllib3.Timeout(connect=settings.timeout_s, read=settings.timeout_s)
        self._http = urllib3.PoolManager(maxsize=1, timeout=timeout, retries=False)

    @property
    def name(self) -> str:
        return f"open-meteo at {self.settings.openmeteo_url}"

    def close(self) -> None:
        self._http.clear()

    def forecast(self, farm: Farm, at: datetime) -> WeatherForecast:
        """``farm``'s forecast as Open-Meteo gives it now, issued at ``at`` (the time of the fetch)."""
        return parse(self.fetch(farm), farm, at)

    def fetch(self, farm: Farm) -> bytes:
        """The body of Open-Meteo's answer for ``farm``, tried again while the failure is transient."""
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else None
        url = f"{self.url}?{urlencode(query(farm, key), safe=',')}"
        pause = self.settings.backoff_s
        for attempt in range(1, self.settings.attempts + 1):
            try:
                return self._get(url, farm)
            except ProviderError as exc:
                if not exc.transient or attempt == self.settings.attempts:
                    raise
                if self.stop.wait(pause):
                    raise
                pause = min(RETRY_MAX_S, pause * 2)
        raise AssertionError("not reached: the last attempt returns or raises")

    def _get(self, url: str, farm: Farm) -> bytes:
        where = f"Open-Meteo at {self.settings.openmeteo_url} for farm {farm.id!r}"
        try:
            response = self._http.request("GET", url)
        except urllib3.exceptions.NewConnectionError as exc:  # a subclass of the connect timeout, so first
            raise ProviderError(f"{where} is unreachable: {exc}", transient=True) from exc
        except urllib3.exceptions.TimeoutError as exc:
            raise ProviderError(f"{where} did not answer within {self.settings.timeout_s:g} s", transient=True) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ProviderError(f"{where} is unreachable: {exc}", transient=True) from exc
        status, body = response.status, response.data
        if status >= 500:
            raise ProviderError(f"{where} failed ({status}): {refused_reason(body)}", status, transient=True)
        if status >= 400:
            raise ProviderError(f"{where} refused ({status}): {refused_reason(body)}; {self._fix(status)}", status)
        if status != 200:
            raise ProviderError(f"{where} answered {status}, not 200 with a forecast", status)
        return body

    def _fix(self, status: int) -> str:
        cls = ForecastSettings
        url, key = env_name(cls, "openmeteo_url"), env_name(cls, "api_key")
        if status in (401, 403):
            return f"its commercial servers want an API key: set {key} (and {url} to your customer- server)"
        if status == 404:
            return f"set {url} to the root of an Open-Meteo server (its API is {PATH} under it)"
        if status == 429:
            return (
                "its rate limit is reached: publish less often (SMARTFARM_FORECAST_EVERY), or use a server of your own"
            )
        return f"the request is built by edge.openmeteo.query; check the farm's coordinates and {url}"


def provider(
    settings: ForecastSettings, farms: Iterable[Farm], edge: EdgeSettings, stop: Stop | None = None
) -> ForecastProvider:
    """The provider ``settings`` name, for ``farms``."""
    if settings.provider is ForecastSource.OPEN_METEO:
        return OpenMeteoProvider(settings, stop)
    return SimulatedProvider(farms, edge)
