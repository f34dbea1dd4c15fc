"""Open-Meteo's answer read as the farm's forecast: its hours mapped to ours (which END at ``time``), nulls handled
as documented, malformed answers refused by what is wrong. The samples in ``data/`` follow the documented schema
(``/v1/forecast`` with this adapter's query, ``timezone=GMT``, ``wind_speed_unit=ms``, ``forecast_days=3``)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.openmeteo import FORECAST_DAYS, SOURCE, UNITS, parse, query, refused_reason
from smartfarm.agronomy import wind_at_2m
from smartfarm.errors import ProviderError
from smartfarm.forecast import HOUR
from smartfarm.layout import load_layout

DATA = Path(__file__).parent / "data"
SAMPLE = json.loads((DATA / "openmeteo-valley-farm.json").read_text())
FARM = load_layout().farms[0]
MIDNIGHT = datetime(2026, 7, 15, tzinfo=UTC)
ISSUED = datetime(2026, 7, 15, 18, 20, tzinfo=UTC)


def body(change: Callable[[dict[str, Any]], object] | None = None) -> bytes:
    doc = copy.deepcopy(SAMPLE)
    if change is not None:
        change(doc)
    return json.dumps(doc).encode()


def label(when: datetime) -> int:
    """The index of the sample's label at ``when``."""
    return SAMPLE["hourly"]["time"].index(when.strftime("%Y-%m-%dT%H:%M"))


def test_the_query_asks_for_the_farms_place_three_days_of_the_variables_in_gmt_and_m_per_s() -> None:
    assert query(FARM) == {
        "latitude": "38.5400",
        "longitude": "-121.7400",
        "hourly": "temperature_2m,relative_humidity_2m,precipitation,precipitation_probability,wind_speed_10m,"
        "shortwave_radiation,et0_fao_evapotranspiration",
        "timezone": "GMT",
        "wind_speed_unit": "ms",
        "forecast_days": "3",
    }
    assert query(FARM, FARM.id)["apikey"] == FARM.id, "any key given goes along"
    assert len(SAMPLE["hourly"]["time"]) == FORECAST_DAYS * 24


def test_the_hours_after_the_issue_are_kept_each_ending_at_its_label() -> None:
    forecast = parse(body(), FARM, ISSUED)
    assert (forecast.farm, forecast.issued_at, forecast.source) == (FARM.id, ISSUED, SOURCE)
    assert forecast.hours[0].time == datetime(2026, 7, 15, 19, tzinfo=UTC), "the hour 18:00-19:00 is under way"
    assert forecast.hours[-1].time == MIDNIGHT + 71 * HOUR
    assert len(forecast.hours) == 72 - 19
    assert forecast.covers(ISSUED, 48)


def test_a_shower_stays_in_its_hour_the_preceding_hour_sums_taken_as_they_are() -> None:
    forecast = parse(body(), FARM, ISSUED)
    shower = datetime(2026, 7, 15, 21, tzinfo=UTC)  # Open-Meteo's 21:00: 2.4 mm over 20:00-21:00
    hour = next(h for h in forecast.hours if h.time == shower)
    i = label(shower)
    assert hour.rain_mm == SAMPLE["hourly"]["precipitation"][i] == 2.4
    assert hour.rain_probability == pytest.approx(SAMPLE["hourly"]["precipitation_probability"][i] / 100)
    assert hour.et0_mm == SAMPLE["hourly"]["et0_fao_evapotranspiration"][i]
    assert hour.solar_wm2 == SAMPLE["hourly"]["shortwave_radiation"][i]
    assert forecast.rain_mm(shower - HOUR, 1) == 2.4 and forecast.rain_mm(shower, 1) == 0.6
    assert forecast.rain_chance(ISSUED, 6) == 0.7


def test_an_instant_is_averaged_over_its_hours_two_ends_and_the_wind_brought_to_2_m() -> None:
    forecast = parse(body(), FARM, ISSUED)
    end = forecast.hours[0].time
    i = label(end)
    hourly = SAMPLE["hourly"]
    assert forecast.hours[0].air_temp_c == pytest.approx(
        (hourly["temperature_2m"][i - 1] + hourly["temperature_2m"][i]) / 2
    )
    assert forecast.hours[0].humidity_pct == pytest.approx(
        (hourly["relative_humidity_2m"][i - 1] + hourly["relative_humidity_2m"][i]) / 2
    )
    wind_10m = (hourly["wind_speed_10m"][i - 1] + hourly["wind_speed_10m"][i]) / 2
    assert forecast.hours[0].wind_ms == pytest.approx(wind_10m * 0.748, abs=0.01)


def test_the_first_label_of_an_answer_is_its_own_hours_mean() -> None:
    forecast = parse(body(), FARM, MIDNIGHT - timedelta(minutes=30))
    assert forecast.hours[0].time == MIDNIGHT
    assert forecast.hours[0].air_temp_c == SAMPLE["hourly"]["temperature_2m"][0]


def test_fao56_eq_47_brings_10_m_wind_to_2_m() -> None:
    assert wind_at_2m(3.2, 10) == pytest.approx(2.4, abs=0.01)  # FAO-56 example 14
    assert wind_at_2m(2.0, 2) == pytest.approx(2.0, abs=0.01)
    with pytest.raises(ValueError, match="below the profile"):
        wind_at_2m(2.0, 0.05)


def test_a_null_probability_is_the_deterministic_forecast_at_its_word() -> None:
    def no_probability(doc: dict[str, Any]) -> None:
        doc["hourly"]["precipitation_probability"] = [None] * len(doc["hourly"]["time"])

    forecast = parse(body(no_probability), FARM, ISSUED)
    by_time = {h.time: h for h in forecast.hours}
    assert by_time[datetime(2026, 7, 15, 21, tzinfo=UTC)].rain_probability == 1.0  # 2.4 mm forecast
    assert by_time[datetime(2026, 7, 16, 15, tzinfo=UTC)].rain_probability == 1.0  # 0.1 mm: measurable
    assert by_time[datetime(2026, 7, 15, 19, tzinfo=UTC)].rain_probability == 0.0  # dry
    tail = forecast.hours[-6:]  # the sample's ensemble stops six hours short
    assert all(h.rain_probability == float(h.rain_mm >= 0.1) for h in tail)


def test_a_null_et0_or_radiation_is_unknown_and_so_is_a_total_over_it() -> None:
    forecast = parse(body(), FARM, ISSUED)
    assert forecast.hours[-1].et0_mm is None and forecast.hours[-3].et0_mm is not None  # the sample's last two
    last = forecast.hours[-1].time
    assert forecast.et0_mm(last - 3 * HOUR, 1) is not None
    assert forecast.et0_mm(last - 3 * HOUR, 3) is None

    def no_sun(doc: dict[str, Any]) -> None:
        doc["hourly"]["shortwave_radiation"][label(datetime(2026, 7, 15, 20, tzinfo=UTC))] = None

    assert parse(body(no_sun), FARM, ISSUED).hours[1].solar_wm2 is None


@pytest.mark.parametrize("variable", ["precipitation", "temperature_2m", "relative_humidity_2m", "wind_speed_10m"])
def test_a_null_required_value_ends_the_forecast_before_its_hour(variable: str) -> None:
    gap = datetime(2026, 7, 16, 12, tzinfo=UTC)

    def null(doc: dict[str, Any]) -> None:
        doc["hourly"][variable][label(gap)] = None

    forecast = parse(body(null), FARM, ISSUED)
    assert forecast.hours[-1].time == gap - HOUR
    with pytest.raises(ProviderError, match="no hour after the issue time"):
        parse(body(null), FARM, gap - HOUR)


def test_an_answer_that_ended_before_the_issue_is_refused() -> None:
    with pytest.raises(ProviderError, match=r"no hour after the issue time 2026-07-18T00:00:00\+00:00"):
        parse(body(), FARM, MIDNIGHT + 72 * HOUR)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for part in parents:
            doc = doc[part]
        if value is KeyError:
            del doc[last]
        else:
            doc[last] = value

    return change


def _at(variable: str, i: int, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["hourly"][variable][i] = value

    return change


MALFORMED: list[tuple[str, bytes, str]] = [
    ("not json", b"<html>Bad Gateway</html>", "is not JSON"),
    ("a list", b"[]", "not a JSON object but list"),
    ("an error answer", body(_set("error", True)), "is an error"),
    ("local time", body(_set("utc_offset_seconds", -25200)), "utc_offset_seconds -25200"),
    ("another place", body(_set("latitude", 52.52)), "more than 1.0 degree from farm 'valley-farm'"),
    ("no place", body(_set("longitude", KeyError)), "names no place"),
    ("no hourly", body(_set("hourly", KeyError)), "no 'hourly' and 'hourly_units'"),
    ("no times", body(_set("hourly.time", [])), "no hourly 'time' list"),
    ("a variable missing", body(_set("hourly.et0_fao_evapotranspiration", KeyError)), "no hourly 'et0_fao"),
    ("wind in km/h", body(_set("hourly_units.wind_speed_10m", "km/h")), "'wind_speed_10m' in 'km/h', not 'm/s'"),
    ("a unit missing", body(_set("hourly_units.precipitation", KeyError)), "'precipitation' in None"),
    ("lists of two lengths", body(_set("hourly.precipitation", [0.0] * 71)), "71 values of 'precipitation' for 72"),
    ("a text value", body(_at("temperature_2m", 30, "31.2")), "'temperature_2m' that is not a number"),
    ("a time that is not one", body(_at("time", 30, "noon")), "time 'noon' that is not ISO 8601"),
    ("an hour missing", body(_at("time", 30, "2026-07-16T07:00")), "not an hour apart: 2026-07-16T05:00"),
    ("a time off GMT", body(_at("time", 0, "2026-07-15T00:00+02:00")), "off GMT"),
    ("humidity over 100", body(_at("relative_humidity_2m", 40, 180)), "humidity_pct Input should be less"),
    ("a probability over 100", body(_at("precipitation_probability", 40, 130)), "rain_probability"),
    ("negative rain", body(_at("precipitation", 40, -3.0)), "rain_mm Input should be greater"),
]


@pytest.mark.parametrize(("answer", "expected"), [(m[1], m[2]) for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_malformed_answer_is_refused_naming_what_is_wrong(answer: bytes, expected: str) -> None:
    with pytest.raises(ProviderError) as refused:
        parse(answer, FARM, ISSUED)
    assert expected in str(refused.value)
    assert str(refused.value).startswith("Open-Meteo's answer ")
    assert not refused.value.transient, "the same answer would come again"


def test_the_units_asked_for_are_the_samples() -> None:
    assert {k: v for k, v in SAMPLE["hourly_units"].items() if k != "time"} == UNITS


def test_a_refusal_says_open_meteos_reason() -> None:
    refused = (DATA / "openmeteo-refused.json").read_bytes()
    assert refused_reason(refused) == "Latitude must be in range of -90 to 90°. Given: 138.54."
    assert refused_reason(b"<html>502 Bad Gateway</html>") == "<html>502 Bad Gateway</html>"
    assert refused_reason(b"") == "no reason given"
