"""A season's outcome from the truth table: FAO-33 yield, stressed days, the crop's own season, water totals."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import pytest

from edge.season import TRUTH_COLUMNS
from ml.irrigation import FULL, PROCESSING_TOMATO_RDI, WINE_GRAPE_RDI
from ml.outcome import KY, WATER_SAVING, SeasonOutcome, daily_balance, judge, outcome, season_days, yield_share
from smartfarm.layout import Crop
from tests.unit.ml.builders import FARM, zone

TOMATO = zone("tomato-north")  # planted 2026-04-15: mid-season (Kc 1.15) from 2026-06-24 to 2026-08-02
PLANTED = date(2026, 4, 15)
LAST_DAY = date(2026, 8, 27)  # planting + 135 days (30 + 40 + 40 + 25) - 1: the end of the late stage
JULY = date(2026, 7, 1)
ET0 = 4.0
ETM = 1.15 * ET0  # 4.6 mm/day in mid-season


def truth(days: Iterable[tuple[date, float, float, float]], zone_id: str = "tomato-north") -> pd.DataFrame:
    """A truth table of two ticks a day (06:00 and 18:00 UTC), each carrying half the day's ``(day, eta, rain,
    irrigation)``, at the reference ET ``ET0`` a day."""
    rows = []
    for d, eta, rain, irrigation in days:
        for at in (time(6), time(18)):
            rows.append(
                {
                    "farm": FARM.id,
                    "zone": zone_id,
                    "ts": datetime.combine(d, at, tzinfo=UTC),
                    "theta_top": 0.2,
                    "theta_low": 0.2,
                    "rain_mm": rain / 2,
                    "irrigation_mm": irrigation / 2,
                    "etc_mm": eta / 2,
                    "et0_mm": ET0 / 2,
                    "air_temp_c": 25.0,
                }
            )
    frame = pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def july(*eta: float, rain: float = 0.0, irrigation: float = 0.0) -> list[tuple[date, float, float, float]]:
    return [(JULY + timedelta(days=i), e, rain, irrigation) for i, e in enumerate(eta)]


# --- the yield response ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("crop", "eta", "etm", "share"),
    [
        (Crop.TOMATO, 500.0, 500.0, 1.0),  # no deficit, no loss
        (Crop.TOMATO, 400.0, 500.0, 1 - 1.05 * 0.2),  # 20 % short: 21 % less yield
        (Crop.MAIZE, 250.0, 500.0, 1 - 1.25 * 0.5),  # maize is sensitive: 62.5 % less
        (Crop.GRAPE, 250.0, 500.0, 1 - 0.85 * 0.5),  # the vine less so
        (Crop.LETTUCE, 450.0, 500.0, 1 - 0.95 * 0.1),
        (Crop.TOMATO, 0.0, 500.0, 0.0),  # 1 - 1.05 is below nothing: clamped
        (Crop.MAIZE, 100.0, 500.0, 0.0),  # 1 - 1.25 x 0.8 = 0
        (Crop.TOMATO, 550.0, 500.0, 1.0),  # more than the crop needs is no more yield
        (Crop.TOMATO, 0.0, 0.0, 1.0),  # no demand: nothing lost
    ],
)
def test_yield_share_is_fao33_within_0_and_1(crop: Crop, eta: float, etm: float, share: float) -> None:
    assert yield_share(crop, eta, etm) == pytest.approx(share)


def test_every_crop_has_a_yield_response_factor() -> None:
    assert set(KY) == set(Crop)
    assert KY[Crop.TOMATO] == 1.05


# --- the crop's own season ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last", "season"),
    [
        (date(2026, 4, 1), date(2026, 9, 30), (PLANTED, LAST_DAY)),  # the whole season inside the simulation
        (date(2026, 6, 1), date(2026, 9, 30), (date(2026, 6, 1), LAST_DAY)),  # the simulation starts mid-season
        (date(2026, 4, 1), date(2026, 5, 10), (PLANTED, date(2026, 5, 10))),  # and stops before the harvest
        (date(2026, 6, 1), date(2026, 6, 30), (date(2026, 6, 1), date(2026, 6, 30))),
    ],
)
def test_season_days_are_planting_to_the_late_stage_s_end_within_the_simulation(
    first: date, last: date, season: tuple[date, date]
) -> None:
    assert season_days(TOMATO, first, last) == season


# --- a season's outcome ---------------------------------------------------------------------------------------


def test_daily_balance_sums_each_utc_day_and_takes_etm_from_the_day_s_kc() -> None:
    daily = daily_balance(truth(july(4.6, 2.3, rain=3.0, irrigation=10.0)), TOMATO)
    assert list(daily.index) == [JULY, JULY + timedelta(days=1)]
    assert list(daily["eta_mm"]) == pytest.approx([4.6, 2.3])
    assert list(daily["etm_mm"]) == pytest.approx([ETM, ETM])
    assert list(daily["ks"]) == pytest.approx([1.0, 0.5])
    assert list(daily["rain_mm"]) == pytest.approx([3.0, 3.0])
    assert list(daily["irrigation_mm"]) == pytest.approx([10.0, 10.0])


@pytest.mark.parametrize(
    ("eta", "stressed"),
    [
        ((ETM,) * 5, 0),
        ((ETM, ETM, ETM / 2, ETM, 0.0), 2),
        ((ETM * 0.995,) * 3, 0),  # within the rounding margin
        ((ETM * 0.985,) * 3, 3),  # just below 0.99
        ((ETM * 1.2, ETM * 0.5), 1),  # a day above ETm does not make up for one below
    ],
)
def test_stressed_days_are_those_with_eta_under_99_percent_of_etm(eta: tuple[float, ...], stressed: int) -> None:
    found = outcome(truth(july(*eta)), TOMATO, "advisor")
    assert found.stressed_days == stressed
    assert found.days == len(eta)


def test_outcome_of_a_stressed_fortnight_by_hand() -> None:
    # Ten days at ETm, four at half of it: ETa/ETm = (10 + 2) / 14, so 1 - 1.05 x 2/14 = 0.85 of the yield.
    days = july(*([ETM] * 10 + [ETM / 2] * 4), rain=1.5, irrigation=4.0)
    found = outcome(truth(days), TOMATO, "farmer")
    assert (found.zone, found.policy, found.days, found.stressed_days) == ("tomato-north", "farmer", 14, 4)
    assert (found.irrigation_mm, found.rain_mm) == (pytest.approx(56.0), pytest.approx(21.0))
    assert (found.eta_mm, found.etm_mm) == (pytest.approx(12 * ETM), pytest.approx(14 * ETM))
    assert found.yield_pct == pytest.approx(100 * (1 - 1.05 * 2 / 14))
    assert found.row() == {
        "zone": "tomato-north",
        "policy": "farmer",
        "days": 14,
        "irrigation_mm": 56.0,
        "rain_mm": 21.0,
        "eta_etm": round(12 / 14, 3),
        "stressed_days": 4,
        "planned_days": 0,
        "yield_pct": 85.0,
        "promised_yield_pct": None,
    }


def test_the_season_is_clipped_to_the_crop_s_own_days() -> None:
    """Days before planting and after the late stage's end are in the simulation but not in the crop's season:
    neither their water nor their stress counts."""
    before = [(PLANTED - timedelta(days=i), 0.0, 50.0, 50.0) for i in (1, 2)]
    inside = [
        (PLANTED, 0.6 * ET0, 2.0, 5.0),  # Kc ini 0.6
        (PLANTED + timedelta(days=1), 0.6 * ET0, 2.0, 5.0),
        (LAST_DAY, 0.0, 2.0, 5.0),  # the last day of the season, stressed
    ]
    after = [(LAST_DAY + timedelta(days=i), 0.0, 50.0, 50.0) for i in (1, 2)]
    found = outcome(truth(before + inside + after), TOMATO, "advisor")
    assert found.days == 3
    assert found.rain_mm == pytest.approx(6.0)
    assert found.irrigation_mm == pytest.approx(15.0)
    assert found.stressed_days == 1
    kc_last = 1.15 + (0.80 - 1.15) * 24 / 25  # the late stage's last day
    assert found.etm_mm == pytest.approx(2 * 0.6 * ET0 + kc_last * ET0)
    assert found.eta_mm == pytest.approx(2 * 0.6 * ET0)


def test_only_the_zone_s_own_rows_count() -> None:
    frame = pd.concat([truth(july(ETM, ETM)), truth(july(0.0, 0.0, rain=99.0), zone_id="maize-east")])
    found = outcome(frame, TOMATO, "advisor")
    assert (found.days, found.stressed_days, found.rain_mm) == (2, 0, 0.0)
    assert found.yield_pct == pytest.approx(100.0)


@pytest.mark.parametrize(
    "days",
    [
        [],  # an empty truth table
        [(date(2026, 1, 10), 0.0, 5.0, 5.0)],  # simulated days all before planting
    ],
)
def test_no_season_in_the_simulation_is_no_outcome(days: list[tuple[date, float, float, float]]) -> None:
    found = outcome(truth(days), TOMATO, "advisor")
    assert (found.days, found.irrigation_mm, found.rain_mm, found.stressed_days) == (0, 0.0, 0.0, 0)
    assert found.yield_pct == 100.0
    assert found.row()["eta_etm"] == 1.0


# --- against the crop's policy and the calendar ---------------------------------------------------------------


def test_a_deficit_policy_s_stressed_days_in_its_window_are_planned() -> None:
    """The processing tomato's deficit runs from day 93 after planting: 17 July."""
    days = [(date(2026, 7, 15) + timedelta(days=i), ETM / 2, 0.0, 5.0) for i in range(6)]
    found = outcome(truth(days), TOMATO, "advisor", PROCESSING_TOMATO_RDI)
    assert (found.stressed_days, found.planned_days, found.promised_yield_pct) == (6, 4, 85.0)
    assert found.row()["planned_days"] == 4 and found.row()["promised_yield_pct"] == 85.0
    calendar = outcome(truth(days), TOMATO, "calendar")
    assert (calendar.planned_days, calendar.promised_yield_pct) == (0, None), "only a run that followed it"
    assert outcome(truth(days), TOMATO, "advisor", FULL).planned_days == 0


def season(policy: str, irrigation: float, stressed: int, yield_pct: float, days: int = 100) -> SeasonOutcome:
    return SeasonOutcome("z", policy, days, irrigation, 100.0, 500.0, 500.0, stressed, yield_pct)


@pytest.mark.parametrize(
    ("loop", "met", "line"),
    [
        (season("advisor", 450.0, 5, 99.0), True, "25% less water than the calendar, 5 days under stress against"),
        (season("advisor", 451.0, 5, 99.0), False, "25% less water"),  # 24.9 %: short of the target
        (season("advisor", 300.0, 11, 99.0), False, "11 days under stress against the calendar's 10: NOT met"),
        (season("advisor", 700.0, 0, 100.0), False, "17% more water than the calendar"),
    ],
)
def test_full_replenishment_is_judged_on_water_and_stressed_days(loop: SeasonOutcome, met: bool, line: str) -> None:
    verdict = judge(loop, season("calendar", 600.0, 10, 95.0), FULL)
    assert verdict.met is met and line in verdict.line()
    assert verdict.line().startswith("z: full replenishment: ")


def test_a_deficit_policy_is_judged_on_water_and_its_promised_yield() -> None:
    calendar = season("calendar", 600.0, 0, 100.0)
    kept = judge(season("advisor", 400.0, 40, 90.0), calendar, WINE_GRAPE_RDI)
    assert kept.met and kept.saving == pytest.approx(1 / 3)
    assert "yield 90.0% against 85% promised: met" in kept.line(), "planned stress is not a failure"
    assert not judge(season("advisor", 400.0, 40, 84.0), calendar, WINE_GRAPE_RDI).met


def test_a_zone_without_its_season_in_the_simulation_is_not_judged() -> None:
    verdict = judge(season("advisor", 0.0, 0, 100.0, days=0), season("calendar", 0.0, 0, 100.0, days=0), FULL)
    assert not verdict.met and verdict.line() == "z: full replenishment: no day of the crop's season simulated"
    assert WATER_SAVING == 0.25
