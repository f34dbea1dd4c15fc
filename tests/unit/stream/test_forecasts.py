"""The worker's forecast book: each farm's recent issues, the newest out by an hour's end handed to the zone stage
(never one issued later), and a record that is not a forecast of its key's farm refused with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.forecast import SimulatedForecasts
from edge.weather import FarmWeather
from smartfarm.errors import ContractError, RejectReason
from smartfarm.layout import load_layout
from stream.forecasts import KEPT_FOR, ForecastBook, read_forecast

FARM = load_layout().farms[0]
PROVIDER = SimulatedForecasts(FarmWeather(FARM, 5), 5)
NOON = datetime(2026, 7, 15, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_the_newest_forecast_out_by_an_hours_end_is_the_one_handed_on() -> None:
    book = ForecastBook()
    six, noon = PROVIDER.issue(NOON - 6 * HOUR), PROVIDER.issue(NOON)
    assert book.take(noon) and book.take(six), "out of order: the book sorts by issue time"
    assert book.newest(FARM.id, NOON - 7 * HOUR) is None, "nothing was out yet"
    assert book.newest(FARM.id, NOON - HOUR) == six, "the noon issue was not out an hour before noon"
    assert book.newest(FARM.id, NOON) == noon
    assert book.newest("hill-farm", NOON) is None
    assert not book.take(noon), "the same record again changes nothing"


def test_a_reissue_replaces_its_time_and_issues_two_days_older_than_the_newest_go() -> None:
    book = ForecastBook()
    first = PROVIDER.issue(NOON)
    again = first.model_copy(update={"source": "simulated-rerun"})
    book.take(first)
    assert book.take(again) and book.issues(FARM.id) == (again,)
    for h in range(6, 60, 6):
        book.take(PROVIDER.issue(NOON + h * HOUR))
    kept = [f.issued_at for f in book.issues(FARM.id)]
    newest = NOON + 54 * HOUR
    assert kept == [newest - h * HOUR for h in range(48, -1, -6)], "two days of issues, the oldest dropped"
    assert min(kept) == newest - KEPT_FOR
    assert not book.take(PROVIDER.issue(NOON)), "an issue older than what is kept is not kept"


def test_a_record_must_be_a_forecast_of_the_farm_it_is_keyed_by() -> None:
    forecast = PROVIDER.issue(NOON)
    assert read_forecast(FARM.id.encode(), forecast.encode()) == forecast
    with pytest.raises(ContractError) as wrong_key:
        read_forecast(b"hill-farm", forecast.encode())
    assert wrong_key.value.reason is RejectReason.INVALID_PAYLOAD and "under the key b'hill-farm'" in str(
        wrong_key.value
    )
    with pytest.raises(ContractError) as no_key:
        read_forecast(None, forecast.encode())
    assert no_key.value.reason is RejectReason.INVALID_PAYLOAD
    with pytest.raises(ContractError) as not_json:
        read_forecast(FARM.id.encode(), b"{rain tomorrow")
    assert not_json.value.reason is RejectReason.INVALID_JSON
    with pytest.raises(ContractError) as empty:
        read_forecast(FARM.id.encode(), None)
    assert empty.value.reason is RejectReason.EMPTY_PAYLOAD
