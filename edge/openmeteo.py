"""Open-Meteo's hourly forecast as a farm's ``WeatherForecast``: the request, and the reading of its answer. Pure: the
HTTP fetch is ``edge.providers.OpenMeteoProvider``.

``query`` asks ``/v1/forecast`` for the farm's coordinates, three days of the variables in ``UNITS``, in GMT, wind
in m/s. What the answer's hours mean (Open-Meteo's documentation, "Hourly Parameter Definition"), and how each
becomes an hour of the contract, whose ``time`` is the END of the hour:

- ``time`` labels a moment, in GMT with no offset written (``2026-07-15T13:00``).
- ``precipitation`` (mm), ``et0_fao_evapotranspiration`` (mm) and ``shortwave_radiation`` (W/m2) are the
  *preceding hour's* sum or mean: the value labelled 13:00 is over 12:00-13:00, our hour ending 13:00, taken as
  it is. So is ``precipitation_probability`` (%: the chance of more than 0.1 mm in the preceding hour, from the
  ensemble runs), divided by 100.
- ``temperature_2m``, ``relative_humidity_2m`` and ``wind_speed_10m`` are *instants*: the hour's mean is taken as
  the mean of its two ends (12:00 and 13:00), or of its end alone where the answer starts. Wind is forecast at
  10 m and the contract's is at 2 m: FAO-56 eq. 47 (``smartfarm.agronomy.wind_at_2m``, x 0.748).

Reading a label as its hour's start instead would move every shower an hour late and pair an hour's rain with the
next hour's temperature (``tests/unit/edge/test_openmeteo.py`` holds a shower to its hour).

The forecast is issued when it was asked for (``issued_at``: the fetch). Open-Meteo answers from midnight of the
day; the hours that ended by the issue are dropped, so nobody takes the day's past hours for a forecast.

Missing values (JSON null: Open-Meteo writes them where its models give nothing, as past a model's horizon):

- a null probability is the deterministic forecast taken at its word: 1 when its precipitation for the hour is
  measurable (>= 0.1 mm, the probability's own threshold), else 0. It claims what the amount claims, no more and
  no less, and keeps the forecast usable where the ensemble that makes the probability does not reach;
- a null ET0 or radiation is None, which the contract allows (``WeatherForecast.et0_mm`` then knows no total);
- a null precipitation, temperature, humidity or wind ends the forecast before that hour: the contract's hours
  follow each other, and what comes after a gap is not used. An answer left with no hour is refused.

Anything else malformed (not JSON, not an object, an error answer, a variable or its unit missing or not the one
asked for, lists of different lengths, times not an hour apart, a place far from the farm's) is refused with a
``ProviderError`` naming what is wrong.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from smartfarm.agronomy import wind_at_2m
from smartfarm.errors import ProviderError
from smartfarm.forecast import HOUR, MAX_FORECAST_HOURS, ForecastHour, WeatherForecast
from smartfarm.layout import Farm

PATH = "/v1/forecast"
SOURCE = "open-meteo:best_match"
"""The forecast's ``source``: Open-Meteo's default, the models it judges best for the place, combined."""
FORECAST_DAYS = 3
"""Days asked for: today's hours (Open-Meteo starts at midnight), and 48 hours ahead from any hour of it."""
WIND_HEIGHT_M = 10.0
MEASURABLE_RAIN_MM = 0.1
"""The threshold of Open-Meteo's precipitation probability, and of the contract's."""
PLACE_TOLERANCE_DEG = 1.0
"""How far the answer's grid cell may lie from the farm's coordinates. Open-Meteo answers for the grid cell it
picks (a few km off with regional models, up to about 30 km with global ones); an answer a degree away is for
another place (a proxy's cache, a mixed-up request)."""

UNITS: dict[str, str] = {
    "temperature_2m": "°C",
    "relative_humidity_2m": "%",
    "precipitation": "mm",
    "precipitation_probability": "%",
    "wind_speed_10m": "m/s",
    "shortwave_radiation": "W/m²",
    "et0_fao_evapotranspiration": "mm",
}
"""The hourly variables asked for, each with the unit the answer must give it in."""
_REQUIRED = ("precipitation", "temperature_2m", "relative_humidity_2m", "wind_speed_10m")
"""Without one of these an hour cannot be told."""


def query(farm: Farm, api_key: str | None = None) -> dict[str, str]:
    """The parameters of the request for ``farm``'s forecast."""
    params = {
        "latitude": f"{farm.latitude:.4f}",
        "longitude": f"{farm.longitude:.4f}",
        "hourly": ",".join(UNITS),
        "timezone": "GMT",
        "wind_speed_unit": "ms",
        "forecast_days": str(FORECAST_DAYS),
    }
    if api_key:
        params["apikey"] = api_key
    return params


def refused_reason(body: bytes) -> str:
    """What an error answer says: Open-Meteo's ``{"error": true, "reason": ...}``, else the start of its text."""
    try:
        answer = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:300] or "no reason given"
    if isinstance(answer, dict) and isinstance(answer.get("reason"), str):
        return answer["reason"][:300]
    return body.decode(errors="replace").strip()[:300]


def parse(body: bytes, farm: Farm, issued_at: datetime) -> WeatherForecast:
    """``farm``'s forecast issued at ``issued_at`` from Open-Meteo's answer ``body``; ProviderError naming what is
    wrong with an answer that cannot be read as the module's docstring says."""
    answer = _object(body)
    _check_place(answer, farm)
    times, columns = _columns(answer)
    hours = _hours(times, columns, issued_at)
    if not hours:
        last = times[-1].isoformat() if times else "nothing"
        raise _malformed(f"has no hour after the issue time {issued_at.isoformat()} (its last ends {last})")
    try:
        return WeatherForecast.create(farm=farm.id, issued_at=issued_at, source=SOURCE, hours=tuple(hours))
    except ValidationError as exc:
        raise _malformed(f"is not a forecast of {farm.id!r}: {exc.errors(include_url=False)[0]['msg']}") from exc


def _malformed(what: str) -> ProviderError:
    return ProviderError(f"Open-Meteo's answer {what}", status=200)


def _object(body: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(body)
    except ValueError as exc:
        raise _malformed(f"is not JSON ({exc}): {body[:80]!r}") from exc
    if not isinstance(answer, dict):
        raise _malformed(f"is not a JSON object but {type(answer).__name__}")
    if answer.get("error"):
        raise _malformed(f"is an error: {answer.get('reason', 'no reason given')}")
    if answer.get("utc_offset_seconds", 0) != 0:
        raise _malformed(f"is in local time (utc_offset_seconds {answer['utc_offset_seconds']}); GMT was asked for")
    return answer


def _check_place(answer: Mapping[str, Any], farm: Farm) -> None:
    lat, lon = answer.get("latitude"), answer.get("longitude")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        raise _malformed(f"names no place (latitude {lat!r}, longitude {lon!r})")
    if abs(lat - farm.latitude) > PLACE_TOLERANCE_DEG or abs(lon - farm.longitude) > PLACE_TOLERANCE_DEG:
        raise _malformed(
            f"is for {lat}, {lon}, more than {PLACE_TOLERANCE_DEG} degree from farm {farm.id!r} at "
            f"{farm.latitude}, {farm.longitude}"
        )


def _columns(answer: Mapping[str, Any]) -> tuple[list[datetime], dict[str, list[float | None]]]:
    """The answer's hourly times (UTC) and each variable's values, checked against ``UNITS``."""
    hourly, units = answer.get("hourly"), answer.get("hourly_units")
    if not isinstance(hourly, dict) or not isinstance(units, dict):
        raise _malformed("has no 'hourly' and 'hourly_units' objects")
    raw_times = hourly.get("time")
    if not isinstance(raw_times, list) or not raw_times:
        raise _malformed("has no hourly 'time' list")
    columns: dict[str, list[float | None]] = {}
    for name, unit in UNITS.items():
        values = hourly.get(name)
        if not isinstance(values, list):
            raise _malformed(f"has no hourly {name!r}")
        if units.get(name) != unit:
            raise _malformed(f"gives {name!r} in {units.get(name)!r}, not {unit!r} as asked")
        if len(values) != len(raw_times):
            raise _malformed(f"has {len(values)} values of {name!r} for {len(raw_times)} times")
        if any(v is not None and (isinstance(v, bool) or not isinstance(v, int | float)) for v in values):
            raise _malformed(f"has a value of {name!r} that is not a number")
        columns[name] = values
    times = [_time(t) for t in raw_times]
    for earlier, later in itertools.pairwise(times):
        if later - earlier != HOUR:
            raise _malformed(f"has hourly times not an hour apart: {earlier.isoformat()}, then {later.isoformat()}")
    return times, columns


def _time(text: Any) -> datetime:
    """A label of ``timeformat=iso8601`` with ``timezone=GMT``: ``2026-07-15T13:00``, no offset, in UTC."""
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise _malformed(f"has a time {text!r} that is not ISO 8601") from exc
    if when.tzinfo is not None and when.utcoffset():
        raise _malformed(f"has a time {text!r} off GMT")
    return when.replace(tzinfo=UTC)


def _hours(
    times: Sequence[datetime], columns: Mapping[str, Sequence[float | None]], issued_at: datetime
) -> list[ForecastHour]:
    """The hours ending after ``issued_at``, up to the first that lacks a required value."""
    out: list[ForecastHour] = []
    for i, end in enumerate(times):
        if end <= issued_at:
            continue
        if any(columns[name][i] is None for name in _REQUIRED) or len(out) == MAX_FORECAST_HOURS:
            break
        out.append(_hour(end, i, columns))
    return out


def _hour(end: datetime, i: int, c: Mapping[str, Sequence[float | None]]) -> ForecastHour:
    """Our hour ending at label ``i``: the preceding-hour values as they are, the instants' mean over its ends."""

    def mean(name: str) -> float:
        ends = [v for v in (c[name][i - 1] if i else None, c[name][i]) if v is not None]
        return sum(ends) / len(ends)

    rain = float(c["precipitation"][i] or 0.0)
    probability = c["precipitation_probability"][i]
    try:
        return ForecastHour(
            time=end,
            rain_mm=rain,
            rain_probability=(probability / 100 if probability is not None else float(rain >= MEASURABLE_RAIN_MM)),
            air_temp_c=mean("temperature_2m"),
            humidity_pct=mean("relative_humidity_2m"),
            wind_ms=round(wind_at_2m(mean("wind_speed_10m"), WIND_HEIGHT_M), 2),
            solar_wm2=c["shortwave_radiation"][i],
            et0_mm=c["et0_fao_evapotranspiration"][i],
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))} {e['msg']}" for e in exc.errors(include_url=False))
        raise _malformed(f"has an impossible hour ending {end.isoformat()}: {problems}") from exc
