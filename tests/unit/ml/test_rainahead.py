"""Forecast rain and how much of it the root zone gets: the FAO-56 evaporation cut, the USDA SCS curve, the chance
threshold and the wait the crop can afford."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.rainahead import RAIN_CHANCE_MIN, SCS_LIMIT_MM, WAIT_KS_MIN, effective_rain_mm, rain_ahead, rain_room_mm
from tests.unit.ml.builders import END, HOUR, weather_forecast


@pytest.mark.parametrize(
    ("rain", "et0", "effective"),
    [
        (0.0, 5.0, 0.0),
        (0.8, 5.0, 0.0),  # under 0.2 ET0: it evaporates
        (14.0, 5.0, 13.0 * (125 - 0.6 * 13.0) / 125),  # 12.2 mm of 14
        (40.0, 0.0, 40.0 * (125 - 24.0) / 125),  # 32.3 mm of 40: a heavy shower loses a fifth
        (100.0, 0.0, 125 / 3 + 10.0),  # beyond the curve's bend: a tenth of the rest
    ],
)
def test_effective_rain_takes_off_what_evaporates_and_what_a_heavy_shower_loses(
    rain: float, et0: float, effective: float
) -> None:
    assert float(effective_rain_mm(rain, et0)) == pytest.approx(effective)


def test_the_scs_curve_is_continuous_and_rising_and_works_on_columns() -> None:
    below, above = effective_rain_mm(SCS_LIMIT_MM - 1e-9, 0.0), effective_rain_mm(SCS_LIMIT_MM + 1e-9, 0.0)
    assert float(below) == pytest.approx(float(above))
    column = pd.Series(np.linspace(0, 200, 201))
    out = effective_rain_mm(column, pd.Series(4.0, index=column.index))
    assert out.shape == (201,) and np.all(np.diff(out) >= 0) and np.all(out <= column)


def test_rain_ahead_sums_the_span_takes_its_highest_chance_and_the_last_rainy_hour() -> None:
    forecast = weather_forecast({3: 2.0, 5: 6.0, 30: 9.0}, chance=0.8)
    found = rain_ahead(forecast, END, 24, et0_mm_day=5.0)
    assert found is not None
    assert (found.rain_mm, found.chance, found.by, found.hours) == (8.0, 0.8, END + 5 * HOUR, 5.0)
    assert found.effective_mm == pytest.approx(float(effective_rain_mm(8.0, 5.0)))
    assert found.counts


@pytest.mark.parametrize(
    ("forecast", "why"),
    [
        (None, "no forecast"),
        (weather_forecast(), "a dry forecast"),
        (weather_forecast({3: 5.0}, hours=12), "a forecast that does not reach across the look-ahead"),
        (weather_forecast({30: 20.0}), "rain beyond the look-ahead"),
        (weather_forecast({3: 0.05}), "less than measurable rain"),
    ],
)
def test_no_rain_ahead(forecast, why: str) -> None:  # type: ignore[no-untyped-def]
    assert rain_ahead(forecast, END, 24, et0_mm_day=5.0) is None, why


def test_rain_counts_from_the_chance_threshold_on() -> None:
    below = rain_ahead(weather_forecast({4: 10.0}, chance=RAIN_CHANCE_MIN - 0.01), END, 24, 5.0)
    at = rain_ahead(weather_forecast({4: 10.0}, chance=RAIN_CHANCE_MIN), END, 24, 5.0)
    assert below is not None and not below.counts
    assert at is not None and at.counts


def test_the_room_for_rain_is_what_the_crop_can_do_without_until_it_comes() -> None:
    # TAW 100, RAW 40: Ks reaches 0.8 at a depletion of 52 mm.
    assert WAIT_KS_MIN == 0.8
    assert rain_room_mm(6.0, 12, 100.0, 40.0) == pytest.approx(52 - 3), "left 49 mm short, 3 mm more by then"
    assert rain_room_mm(6.0, 24, 100.0, 40.0) == pytest.approx(46)
    assert rain_room_mm(60.0, 24, 100.0, 40.0) == 0.0, "a crop using more than its allowance cannot wait at all"
