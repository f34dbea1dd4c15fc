"""Each baseline rule fires on the inputs that call for it, stays quiet otherwise, and says why with numbers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from ml.context import SensorSuspicion
from ml.rules.disease import disease_risk, disease_severity_value, downy_mildew
from ml.rules.frost import FROST_LIMITS, PERENNIALS, dew_point_c, frost, frost_limit
from ml.rules.harvest import harvest
from ml.rules.heat import heat
from ml.rules.rootzone import RootZone, depletion_fraction, hours_to_raw, irrigation, root_depth_m, root_zone
from ml.rules.sensorfault import sensor_fault
from ml.scoring import Baselines
from smartfarm.agronomy import CropStage
from smartfarm.layout import Crop, SensorKind
from smartfarm.records import RecommendationKind, Severity
from tests.unit.ml.builders import END, FARM, HOUR, context, day, hour, rain, series

SOIL = SensorKind.SOIL_MOISTURE
AIR = SensorKind.AIR_TEMPERATURE
LEAF = SensorKind.LEAF_WETNESS
PLANTED = date(2026, 4, 15)  # tomato-north in the default layout

# --- irrigation ---------------------------------------------------------------------------------------------

# Tomato on loam at END: FC 25 %, WP 12 %, Zr 1.0 m, so TAW = 130 mm; Kc 1.15 x ET0 4.4 = ETc 5.06 mm/day,
# p = 0.40 + 0.04 (5 - 5.06) = 0.3976, RAW = 51.7 mm; (RAW + TAW) / 2 = 90.8 mm.
YESTERDAY = [day(date(2026, 7, 14), et0=4.4)]


@pytest.mark.parametrize(
    ("crop", "age_days", "expected"),
    [
        (Crop.TOMATO, -3, 0.15),
        (Crop.TOMATO, 0, 0.15),
        (Crop.TOMATO, 35, 0.575),  # half way through initial + development (70 days)
        (Crop.TOMATO, 70, 1.0),
        (Crop.TOMATO, 200, 1.0),
        (Crop.LETTUCE, 25, 0.15 + 0.25 * 0.5),
        (Crop.GRAPE, 0, 1.5),  # perennial: full depth from budbreak
    ],
)
def test_root_depth_grows_to_full_cover(crop: Crop, age_days: int, expected: float) -> None:
    assert root_depth_m(crop, PLANTED, PLANTED + timedelta(days=age_days)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("p_table", "etc", "expected"),
    [(0.40, 5.0, 0.40), (0.40, 10.0, 0.20), (0.40, 0.0, 0.60), (0.30, 30.0, 0.10), (0.70, 0.0, 0.80)],
)
def test_depletion_fraction_follows_crop_water_use(p_table: float, etc: float, expected: float) -> None:
    assert depletion_fraction(p_table, etc) == pytest.approx(expected)


def test_root_zone_water_balance() -> None:
    rz = root_zone(context(days=YESTERDAY), 20.0)
    assert (rz.fc_pct, rz.wp_pct, rz.root_depth_m, rz.kc) == pytest.approx((25.0, 12.0, 1.0, 1.15))
    assert rz.etc_mm_day == pytest.approx(5.06)
    assert rz.taw_mm == pytest.approx(130.0)
    assert rz.raw_mm == pytest.approx(0.3976 * 130)
    assert rz.depletion_mm == pytest.approx(50.0)
    assert not rz.et0_assumed


def _rz(depletion: float, raw: float = 50.0, etc: float = 6.0) -> RootZone:
    return RootZone(20, 25, 12, 1, 1, etc, False, etc, 0.4, 125, raw, depletion)


@pytest.mark.parametrize(
    ("depletion", "etc", "expected"),
    [
        (50.0, 6.0, 0.0),  # at RAW: now
        (60.0, 6.0, 0.0),
        (44.0, 6.0, 24.0),  # 6 mm to go at 6 mm/day: exactly the 24 h look-ahead
        (43.9, 6.0, None),
        (47.0, 6.0, 12.0),
        (49.0, 0.0, None),  # no water use: never
    ],
)
def test_hours_to_raw(depletion: float, etc: float, expected: float | None) -> None:
    found = hours_to_raw(_rz(depletion, etc=etc))
    assert found == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("theta", "pending", "severity", "amount", "in_hours"),
    [
        (19.5, 0.0, Severity.ADVISORY, 55.0, 0.0),  # Dr 55 >= RAW 51.7: refill to FC now
        (15.0, 0.0, Severity.WARNING, 100.0, 0.0),  # Dr 100 > 90.8: half way from RAW to wilting
        (16.0, 0.0, Severity.ADVISORY, 90.0, 0.0),  # Dr 90 just under it
        (19.5, 20.0, Severity.ADVISORY, 35.0, 0.0),  # 20 mm already planned
        (20.0, 0.0, Severity.ADVISORY, 51.5, (51.688 - 50.0) / 5.06 * 24),  # RAW in 8 h: schedule it then
    ],
)
def test_irrigation_fires(theta: float, pending: float, severity: Severity, amount: float, in_hours: float) -> None:
    [advice] = irrigation(context(aggregates=[hour(SOIL, END, theta)], days=YESTERDAY, pending=pending))
    assert advice.kind is RecommendationKind.IRRIGATION
    assert advice.severity is severity
    assert advice.amount_mm == amount
    assert advice.start_at is not None
    assert (advice.start_at - END).total_seconds() / 3600 == pytest.approx(in_hours, abs=1 / 60)
    assert advice.valid_for == timedelta(hours=12)
    assert advice.inputs["taw_mm"] == pytest.approx(130.0)
    assert advice.inputs["theta_pct"] == theta


@pytest.mark.parametrize(
    ("aggregates", "pending"),
    [
        ([hour(SOIL, END, 23.0)], 0.0),  # Dr 20 mm, RAW in six days
        ([hour(SOIL, END, 25.0)], 0.0),  # at field capacity
        ([hour(SOIL, END, 30.0)], 0.0),  # wetter than field capacity after rain
        ([hour(SOIL, END, 19.5)], 60.0),  # the planned 60 mm already covers the 55 mm
        ([hour(SOIL, END, 19.5)], 54.8),  # 0.2 mm left rounds to nothing
        ([hour(SOIL, END - 2 * HOUR, 15.0)], 0.0),  # no soil reading in the hour that closed
        ([hour(AIR, END, 25.0)], 0.0),  # no soil sensor at all
    ],
)
def test_irrigation_stays_quiet(aggregates: list, pending: float) -> None:
    assert irrigation(context(aggregates=aggregates, days=YESTERDAY, pending=pending)) == []


def test_irrigation_message_has_what_when_how_much_and_why() -> None:
    [advice] = irrigation(context(aggregates=[hour(SOIL, END, 19.5)], days=YESTERDAY))
    for part in (
        "Irrigate 55 mm",
        "Tomatoes, north field now",
        "0-100 cm",
        "lost 55 mm",
        "at or past the 52 mm the crop can use without stress (readily available water)",
        "19.5%",
        "field capacity 25%",
        "5.1 mm/day",
        "Kc 1.15",
        "ET0 4.4",
        "13.8 h at 4 mm/h",
    ):
        assert part in advice.message
    assert len(advice.message) <= 500


def test_scheduled_irrigation_names_the_local_time() -> None:
    [advice] = irrigation(context(aggregates=[hour(SOIL, END, 20.0)], days=YESTERDAY))
    assert "at 21:00 (in 8 h)" in advice.message  # 13:00 PDT + 8.0 h
    assert (
        "and will reach the 52 mm the crop can use without stress (readily available water) by then" in advice.message
    )


def test_irrigation_without_a_closed_day_assumes_5_mm_and_says_so() -> None:
    [advice] = irrigation(context(aggregates=[hour(SOIL, END, 19.5)]))
    assert advice.inputs["et0_mm_day"] == 5.0
    assert advice.inputs["et0_assumed"] == 1.0
    assert "assumed" in advice.message
    assert advice.confidence == pytest.approx(0.85)


@pytest.mark.parametrize(("count", "confidence"), [(24, 0.95), (12, 0.725), (2, 0.5375)])
def test_irrigation_confidence_follows_soil_coverage(count: int, confidence: float) -> None:
    earlier = hour(SOIL, END - 3 * HOUR, 19.5, count=24)
    [advice] = irrigation(context(aggregates=[earlier, hour(SOIL, END, 19.5, count=count)], days=YESTERDAY))
    assert advice.confidence == pytest.approx(confidence)


# --- frost --------------------------------------------------------------------------------------------------


def air(means: list[float], low: float, end: datetime = END) -> list:
    """Hourly air temperatures ending at ``end``, the last hour's minimum ``low``."""
    out = series(AIR, means, end=end)
    out[-1] = hour(AIR, end, means[-1], low=low, high=means[-1] + 1)
    return out


@pytest.mark.parametrize(
    ("means", "low", "severity"),
    [
        ([3.0] * 6, 2.0, Severity.WARNING),  # tomato's critical 0 degC + the 2 degC margin
        ([3.0] * 6, 0.5, Severity.WARNING),
        ([3.0] * 6, 0.0, Severity.CRITICAL),  # at 0 degC
        ([1.0] * 6, -2.5, Severity.CRITICAL),
        ([10.0, 9.0, 8.0, 7.0, 6.0, 5.0], 4.6, Severity.WARNING),  # 1 degC/h down: 0 degC in 4.5 h
        ([8.0, 7.0, 6.0, 5.0], 4.6, Severity.WARNING),  # four hours are enough for a trend
        ([11.5, 10.5, 9.5, 8.5, 7.5, 6.5], 6.0, Severity.WARNING),  # 0 degC in exactly 6 h
    ],
)
def test_frost_fires(means: list[float], low: float, severity: Severity) -> None:
    [advice] = frost(context(aggregates=air(means, low)))
    assert advice.kind is RecommendationKind.FROST
    assert advice.severity is severity
    assert advice.inputs["tmin_c"] == low
    assert f"{low:.1f} °C" in advice.message


@pytest.mark.parametrize(
    ("means", "low"),
    [
        ([3.0] * 6, 2.1),  # just above the alert, steady
        ([11.6, 10.6, 9.6, 8.6, 7.6, 6.6], 6.0),  # 0 degC in 6.1 h
        ([14.0, 13.0, 12.0, 11.0, 10.0, 9.0], 8.6),  # 8.5 h away
        ([7.0, 6.0, 5.0], 4.6),  # three hours: too few for a trend
        ([2.5, 3.0, 3.5, 4.0, 4.5, 5.0], 4.5),  # warming
    ],
)
def test_frost_stays_quiet(means: list[float], low: float) -> None:
    assert frost(context(aggregates=air(means, low))) == []


@pytest.mark.parametrize(
    ("humidity", "fires"),
    [
        (40.0, True),  # the last hour's 5 degC at 40 %: dew point -7.7 degC, below tomato's 2 degC alert
        (70.0, True),  # dew point -0.1 degC
        (90.0, False),  # dew point 3.5 degC: the air stalls there, above the alert
        (100.0, False),  # dew point 5 degC
    ],
)
def test_a_cooling_trend_is_not_projected_past_the_dew_point(humidity: float, fires: bool) -> None:
    cooling = air([10.0, 9.0, 8.0, 7.0, 6.0, 5.0], 4.6)  # 1 degC/h down: 0 degC in 4.5 h by the trend alone
    assert frost(context(aggregates=cooling)), "without a humidity hour the trend alone warns"
    moist = series(SensorKind.AIR_HUMIDITY, [humidity] * 6)
    found = frost(context(aggregates=cooling + moist))
    assert bool(found) is fires


def test_dry_air_keeps_the_trend_warning_and_names_its_dew_point() -> None:
    cooling = air([10.0, 9.0, 8.0, 7.0, 6.0, 5.0], 4.6)
    [advice] = frost(context(aggregates=cooling + series(SensorKind.AIR_HUMIDITY, [25.0] * 6)))
    assert advice.inputs["dew_point_c"] == pytest.approx(dew_point_c(5.0, 25.0))
    assert advice.inputs["dew_point_c"] < 0


@pytest.mark.parametrize(("temp", "rh", "dew"), [(20.0, 50.0, 9.3), (10.0, 100.0, 10.0), (30.0, 30.0, 10.5)])
def test_dew_point_matches_published_values(temp: float, rh: float, dew: float) -> None:
    assert dew_point_c(temp, rh) == pytest.approx(dew, abs=0.15)


def test_frost_is_quiet_without_the_last_hour() -> None:
    assert frost(context(aggregates=series(AIR, [1.0] * 6, end=END - HOUR))) == []


def test_frost_message_gives_the_trend_and_what_to_do() -> None:
    [advice] = frost(context(aggregates=air([10.0, 9.0, 8.0, 7.0, 6.0, 5.0], 4.6)))
    assert "4.6 °C" in advice.message
    assert "falling 1.0 °C per hour" in advice.message
    assert "on course for 0 °C in about 4.5 h" in advice.message  # tomato's critical temperature is 0 degC
    assert "frost protection" in advice.message
    assert advice.inputs["slope_c_per_h"] == pytest.approx(-1.0)
    assert advice.inputs["hours_to_critical"] == pytest.approx(4.5)
    assert advice.valid_for == timedelta(hours=12)


@pytest.mark.parametrize(
    ("crop", "age_days", "critical", "stage"),
    [
        (Crop.TOMATO, 0, 0.0, "initial stage"),
        (Crop.TOMATO, 91, 0.0, "mid-season stage"),
        (Crop.LETTUCE, 10, -1.0, "initial stage"),
        (Crop.LETTUCE, 70, -1.0, "late-season stage"),
        (Crop.MAIZE, 19, -2.0, "initial stage"),  # growing point below ground until about V5
        (Crop.MAIZE, 20, 0.0, "development stage"),  # above ground from then on
        (Crop.MAIZE, 100, 0.0, "late-season stage"),
        (Crop.WHEAT, 10, -11.1, "initial stage"),  # tillering, 12 degF
        (Crop.WHEAT, 30, -4.4, "development stage"),  # jointing, 24 degF
        (Crop.WHEAT, 60, -1.1, "mid-season stage"),  # heading and flowering, 30 degF
        (Crop.WHEAT, 110, -2.2, "late-season stage"),  # milk and dough, 28 degF
        (Crop.POTATO, 50, -2.0, "development stage"),
        (Crop.GRAPE, -30, -15.0, "dormant season (before budbreak)"),
        (Crop.GRAPE, 0, -2.0, "initial stage"),  # budbreak
        (Crop.GRAPE, 30, -1.0, "development stage"),  # shoots and flower clusters
        (Crop.GRAPE, 136, -1.0, "mid-season stage"),
        (Crop.GRAPE, 200, -2.0, "late-season stage"),
        (Crop.GRAPE, 240, -15.0, "dormant season (after harvest)"),
    ],
)
def test_frost_limit_by_crop_and_stage(crop: Crop, age_days: int, critical: float, stage: str) -> None:
    found = frost_limit(crop, PLANTED, PLANTED + timedelta(days=age_days))
    assert found is not None
    assert (found.limit.critical_c, found.stage, found.age_days) == (critical, stage, age_days)


@pytest.mark.parametrize(("crop", "age_days"), [(Crop.TOMATO, -1), (Crop.TOMATO, 135), (Crop.WHEAT, 200)])
def test_an_annual_out_of_the_field_has_no_frost_limit(crop: Crop, age_days: int) -> None:
    assert frost_limit(crop, PLANTED, PLANTED + timedelta(days=age_days)) is None


def test_every_crop_and_stage_has_a_sourced_limit() -> None:
    growing = [s for s in CropStage if s is not CropStage.HARVESTED]
    for crop in Crop:
        assert sorted(FROST_LIMITS[crop]) == sorted(growing), crop
        for limit in [*FROST_LIMITS[crop].values(), *([PERENNIALS[crop]] if crop in PERENNIALS else [])]:
            assert limit.source and limit.tissue and -20.0 < limit.critical_c <= 0.0


@pytest.mark.parametrize(
    ("zone_id", "low", "severity"),
    [
        ("tomato-north", 1.5, Severity.WARNING),  # critical 0 degC: within the 2 degC margin
        ("lettuce-south", 1.5, None),  # late season, critical -1 degC: alert from 1 degC
        ("lettuce-south", 1.0, Severity.WARNING),
        ("lettuce-south", -0.5, Severity.WARNING),
        ("lettuce-south", -1.0, Severity.CRITICAL),
        ("maize-east", 0.0, Severity.CRITICAL),  # late season: leaves die at 0 degC
        ("vineyard-west", 1.1, None),  # mid-season, critical -1 degC
        ("vineyard-west", 1.0, Severity.WARNING),
        ("vineyard-west", -1.0, Severity.CRITICAL),
    ],
)
def test_frost_threshold_follows_the_crop(zone_id: str, low: float, severity: Severity | None) -> None:
    found = frost(context(zone_id, aggregates=air([3.0] * 6, low)))
    if severity is None:
        assert found == []
        return
    [advice] = found
    assert advice.severity is severity
    assert advice.inputs["frost_alert_c"] == pytest.approx(advice.inputs["critical_c"] + 2.0)


WINTER = datetime(2026, 2, 1, 20, tzinfo=UTC)
"""12:00 at the farm, four weeks before the vineyard's budbreak (1 March)."""


@pytest.mark.parametrize(
    ("means", "low", "severity"),
    [
        ([2.0] * 6, 1.0, None),  # a frost for green shoots, nothing for dormant buds
        ([2.0] * 6, -3.0, None),
        ([6.0, 5.0, 4.0, 3.0, 2.0, 1.0], 0.6, None),  # falling 1 degC/h: -15 degC is 16 h away
        ([-12.0] * 6, -13.0, Severity.WARNING),
        ([-14.0] * 6, -15.5, Severity.CRITICAL),
    ],
)
def test_dormant_vineyard_is_judged_by_its_buds(means: list[float], low: float, severity: Severity | None) -> None:
    found = frost(context("vineyard-west", aggregates=air(means, low, end=WINTER), end=WINTER))
    if severity is None:
        assert found == []
        return
    [advice] = found
    assert advice.severity is severity
    assert advice.inputs["critical_c"] == -15.0
    assert "dormant season (before budbreak)" in advice.message


def test_harvested_annual_gets_no_frost_advice() -> None:
    after = END + timedelta(days=60)  # tomato day 151 of a 135-day season
    assert frost(context(aggregates=air([-1.0] * 6, -3.0, end=after), end=after)) == []


def test_frost_message_names_crop_stage_critical_temperature_and_source() -> None:
    [advice] = frost(context("vineyard-west", aggregates=air([9.0, 8.0, 7.0, 6.0, 5.0, 4.0], 3.6)))
    assert advice.severity is Severity.WARNING
    assert advice.confidence == 0.6  # a projection: the low of 3.6 degC is above the alert
    for part in (
        "Grape in its mid-season stage is injured at -1 °C",
        "shoots, flowers and young berries die",
        "Washington State and Michigan State grape bud charts",
        "on course for -1 °C in about 4.5 h",
        "plants run up to 2 °C colder than the air on clear nights",
    ):
        assert part in advice.message
    assert advice.inputs["critical_c"] == -1.0
    assert advice.inputs["hours_to_critical"] == pytest.approx(4.5)


@pytest.mark.parametrize("crop", list(Crop))
@pytest.mark.parametrize("age_days", [0, 40, 100, 125, -30])
def test_frost_message_fits_without_cutting(crop: Crop, age_days: int) -> None:
    """Every crop at every stage (the longest zone name of the default farm), trend and all, in 500 characters."""
    longest = max(FARM.zones, key=lambda z: len(z.name))
    planted = date(2026, 7, 15) - timedelta(days=age_days)
    ctx = context(longest.id, aggregates=air([10.0, 9.0, 8.0, 7.0, 6.0, 5.0], -16.0))
    ctx = replace(ctx, zone=ctx.zone.model_copy(update={"crop": crop, "planting_date": planted}))
    found = frost(ctx)
    if frost_limit(crop, planted, date(2026, 7, 15)) is None:  # an annual not yet planted or harvested
        assert found == []
        return
    [advice] = found
    assert len(advice.message) <= 500 and not advice.message.endswith("...")
    assert f"{advice.inputs['critical_c']:g} °C" in advice.message


# --- heat ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone_id", "high", "severity"),
    [
        ("tomato-north", 35.0, Severity.WARNING),  # at the tomato threshold
        ("tomato-north", 39.9, Severity.WARNING),
        ("tomato-north", 40.0, Severity.CRITICAL),  # threshold + 5
        ("lettuce-south", 29.0, Severity.WARNING),
        ("maize-east", 43.0, Severity.CRITICAL),
        ("vineyard-west", 40.0, Severity.WARNING),
        ("tomato-north", 34.9, None),
        ("maize-east", 37.9, None),
        ("vineyard-west", 39.0, None),
    ],
)
def test_heat(zone_id: str, high: float, severity: Severity | None) -> None:
    found = heat(context(zone_id, aggregates=[hour(AIR, END, high - 3, high=high)]))
    if severity is None:
        assert found == []
        return
    [advice] = found
    assert (advice.kind, advice.severity) == (RecommendationKind.HEAT, severity)
    assert f"{high:.1f} °C" in advice.message
    assert f"{advice.inputs['threshold_c']:.0f} °C" in advice.message


def test_heat_message_says_what_to_do() -> None:
    [advice] = heat(context(aggregates=[hour(AIR, END, 34.0, high=37.2)]))
    assert "reached 37.2 °C" in advice.message
    assert "above the 35 °C at which tomato suffers" in advice.message
    assert "Irrigate early" in advice.message and "shade" in advice.message


# --- disease risk -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wet_hours", "temp", "dsv"),
    [
        (0, 25.0, 0),
        (6, 16.9, 0),
        (7, 13.0, 1),
        (21, 17.9, 3),  # the coolest band stops at 3
        (40, 15.0, 3),
        (4, 18.0, 1),
        (22, 20.9, 3),
        (23, 20.0, 4),
        (3, 21.0, 1),
        (6, 25.9, 2),
        (13, 22.0, 3),
        (21, 25.0, 4),
        (16, 26.0, 3),
        (23, 29.9, 4),
        (24, 30.0, 0),  # too hot
        (24, 12.9, 0),  # too cold
    ],
)
def test_disease_severity_value_chart(wet_hours: int, temp: float, dsv: int) -> None:
    assert disease_severity_value(wet_hours, temp) == dsv


def leaf_day(wet_hours: int, temp: float, wet_pct: float = 80.0) -> list:
    """24 hours ending at END, the last ``wet_hours`` of them wet, at ``temp`` when wet and 30 degC when dry."""
    dry = 24 - wet_hours
    leaf = series(LEAF, [5.0] * dry + [wet_pct] * wet_hours)
    temps = series(AIR, [30.0] * dry + [temp] * wet_hours)
    return leaf + temps


@pytest.mark.parametrize(
    ("wet_hours", "temp", "wet_pct", "severity"),
    [
        (13, 22.0, 80.0, Severity.ADVISORY),  # DSV 3
        (21, 22.0, 80.0, Severity.WARNING),  # DSV 4
        (21, 16.0, 50.0, Severity.ADVISORY),  # 50 % leaf wetness counts as wet
        (12, 22.0, 80.0, None),  # DSV 2
        (20, 16.0, 80.0, None),  # DSV 2
        (24, 31.0, 80.0, None),  # too hot for the fungi
        (24, 11.0, 80.0, None),  # too cold
        (21, 22.0, 49.9, None),  # damp, not wet
    ],
)
def test_disease_risk(wet_hours: int, temp: float, wet_pct: float, severity: Severity | None) -> None:
    found = disease_risk(context(aggregates=leaf_day(wet_hours, temp, wet_pct)))
    if severity is None:
        assert found == []
        return
    [advice] = found
    assert (advice.kind, advice.severity) == (RecommendationKind.DISEASE_RISK, severity)
    assert f"wet for {wet_hours} of the last 24 hours" in advice.message
    assert f"{temp:.1f} °C" in advice.message
    assert advice.inputs["wet_hours"] == wet_hours


def test_disease_risk_counts_only_the_last_24_hours() -> None:
    old = series(LEAF, [90.0] * 20, end=END - 24 * HOUR) + series(AIR, [22.0] * 20, end=END - 24 * HOUR)
    assert disease_risk(context(aggregates=old + leaf_day(0, 22.0))) == []


def wet_weather(rain_mm: list[float], temps: list[float], end: datetime = END) -> list:
    """``rain_mm`` of rain in the hours ending at ``end`` and ``temps`` as the hourly air temperatures."""
    return rain(rain_mm, end=end) + series(AIR, temps, end=end)


def at(day_of_season: int) -> datetime:
    """13:00 at the farm ``day_of_season`` days after the vineyard's budbreak (1 March 2026)."""
    return datetime(2026, 3, 1, 20, tzinfo=UTC) + timedelta(days=day_of_season)


@pytest.mark.parametrize(
    ("rain_mm", "temps", "end", "fires"),
    [
        ([10.0], [10.0] * 24, END, True),  # the three tens, exactly
        ([2.5] * 4 + [0.0] * 20, [14.0] * 24, END, True),
        ([1.0] * 10, [12.0] * 24, END, True),  # ten hours of 1 mm add up to 10 mm
        ([9.0], [15.0] * 24, END, False),  # 9 mm
        ([4.5, 4.5], [15.0] * 24, END, False),
        ([10.0], [9.0] * 24, END, False),  # 9 degC
        ([10.0], [15.0] * 23 + [9.9], END, False),  # one cold hour in the day
        ([10.0], [15.0] * 24, at(19), False),  # initial stage: shoots not yet 10 cm
        ([10.0], [15.0] * 24, at(20), True),  # past the initial stage
        ([10.0], [15.0] * 24, at(-10), False),  # dormant
        ([10.0], [15.0] * 24, at(245), False),  # harvested
    ],
)
def test_downy_mildew_10_10_24(rain_mm: list[float], temps: list[float], end: datetime, fires: bool) -> None:
    ctx = context("vineyard-west", aggregates=wet_weather(rain_mm, temps, end), end=end)
    assert (downy_mildew(ctx) is not None) is fires
    found = disease_risk(ctx)
    if not fires:
        assert found == []
        return
    [advice] = found
    assert (advice.kind, advice.severity) == (RecommendationKind.DISEASE_RISK, Severity.WARNING)
    assert advice.inputs["rain_24h_mm"] == sum(rain_mm)
    assert advice.inputs["tmin_24h_c"] == min(temps)


def test_downy_mildew_counts_only_the_last_24_hours_of_rain() -> None:
    old = rain([10.0], end=END - 24 * HOUR) + rain([0.0] * 24)
    assert downy_mildew(context("vineyard-west", aggregates=old + series(AIR, [15.0] * 24))) is None


def test_downy_mildew_is_for_grape_only() -> None:
    assert disease_risk(context("tomato-north", aggregates=wet_weather([20.0], [15.0] * 24))) == []


def test_no_rain_gauge_no_downy_mildew_verdict() -> None:
    """The default vineyard has no rain gauge: only TOMCAST speaks there."""
    [advice] = disease_risk(context("vineyard-west", aggregates=leaf_day(13, 22.0)))
    assert "TOMCAST" in advice.message and "10-10-24" not in advice.message
    assert "rain_24h_mm" not in advice.inputs


def test_downy_mildew_message_names_the_rule_its_source_and_numbers() -> None:
    [advice] = disease_risk(context("vineyard-west", aggregates=wet_weather([6.0, 6.5], [11.2] * 24)))
    for part in (
        "Fungal disease risk on Vineyard, west slope",
        "12.5 mm of rain in 24 h",
        "10 °C or more (low 11.2 °C)",
        "shoots taken as past 10 cm (day 136 since budbreak)",
        "10-10-24 rule for downy mildew",
        "Baldacci's three tens",
        "Gessler et al. 2011",
        "protective fungicide before the next rain",
    ):
        assert part in advice.message
    assert "TOMCAST" not in advice.message


def test_vineyard_gets_one_disease_advice_naming_both_models() -> None:
    """Both models firing make one advice: the stream keys a zone's cooldown and ids by kind."""
    ctx = context("vineyard-west", aggregates=leaf_day(21, 22.0) + rain([12.0]))
    [advice] = disease_risk(ctx)
    assert "TOMCAST" in advice.message and "10-10-24" in advice.message
    assert len(advice.message) <= 500 and not advice.message.endswith("...")
    assert advice.inputs["dsv"] == 4 and advice.inputs["rain_24h_mm"] == 12.0
    kinds = [a.kind for a in Baselines().score(ctx)]
    assert kinds.count(RecommendationKind.DISEASE_RISK) == 1


# --- harvest ------------------------------------------------------------------------------------------------


def season(n: int, gdd: float = 10.0, last_week: float | None = None) -> list:
    days = [day(PLANTED + timedelta(days=i), gdd=gdd) for i in range(n)]
    if last_week is not None:
        days[-7:] = [day(d.day, gdd=last_week) for d in days[-7:]]
    return days


@pytest.mark.parametrize(
    ("days", "severity", "days_left"),
    [
        (season(130), Severity.INFO, 10.0),  # 1300 of 1400 at 10 a day
        (season(126), Severity.INFO, 14.0),  # exactly 14 days out
        (season(133), Severity.ADVISORY, 7.0),
        (season(135), Severity.ADVISORY, 5.0),
        (season(140), Severity.ADVISORY, 0.0),  # 1400: due now
        (season(150), Severity.ADVISORY, 0.0),
        (season(120, last_week=20.0), Severity.ADVISORY, 6.5),  # 1270: 130 to go at last week's 20 a day
    ],
)
def test_harvest_fires(days: list, severity: Severity, days_left: float) -> None:
    [advice] = harvest(context(days=days))
    assert (advice.kind, advice.severity) == (RecommendationKind.HARVEST, severity)
    assert advice.due == END + timedelta(days=days_left)
    assert advice.inputs["days_left"] == pytest.approx(days_left)
    assert f"{advice.inputs['gdd_total']:,.0f} of the 1,400 degree days" in advice.message


@pytest.mark.parametrize(
    "days",
    [
        [],
        season(125),  # 14.5 days out
        season(60),
        season(130, gdd=0.0),  # no warmth: no forecast
    ],
)
def test_harvest_stays_quiet(days: list) -> None:
    assert harvest(context(days=days)) == []


def test_harvest_ignores_days_before_planting_and_loses_confidence_with_distance() -> None:
    before = [day(PLANTED - timedelta(days=1), gdd=500.0)]
    assert harvest(context(days=before + season(120))) == []
    [near] = harvest(context(days=season(138)))
    [far] = harvest(context(days=season(127)))
    assert near.confidence > far.confidence
    assert "in about 2 days" in near.message and "10.0 a day over the last 7 days" in near.message


# --- sensor fault -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("readings", "flags", "severity", "phrase"),
    [
        (12, {"stuck": 12}, Severity.WARNING, "very same value in 12 of 12 readings"),
        (12, {"spike": 6}, Severity.ADVISORY, "6 of 12 readings jumped"),
        (12, {"rate_of_change": 9, "spike": 3}, Severity.ADVISORY, "9 of 12 readings changed faster"),
        (3, {"stuck": 2}, Severity.ADVISORY, "2 of 3"),
        (4, {"out_of_range": 2}, Severity.ADVISORY, "outside what a working sensor can report (0 to 60 %)"),
        (2, {"out_of_range": 2}, Severity.WARNING, "2 of 2"),  # too few readings, but out of range
        (1, {"out_of_range": 1}, Severity.WARNING, "1 of 1"),
        (6, {"spike": 6, "out_of_range": 6}, Severity.WARNING, "outside"),  # the surer sign is named
    ],
)
def test_sensor_fault_fires(readings: int, flags: dict[str, int], severity: Severity, phrase: str) -> None:
    suspicion = SensorSuspicion("soil-tomato-north-1", "sm-15", SOIL, readings, flags)
    [advice] = sensor_fault(context(suspicions=[suspicion]))
    assert (advice.kind, advice.severity) == (RecommendationKind.SENSOR_FAULT, severity)
    assert (advice.device, advice.sensor) == ("soil-tomato-north-1", "sm-15")
    assert phrase in advice.message
    assert "sm-15" in advice.message and "soil-tomato-north-1" in advice.message
    assert advice.valid_for == timedelta(hours=24)


@pytest.mark.parametrize(
    ("readings", "flags"),
    [
        (12, {"spike": 5}),  # under half
        (12, {}),
        (2, {"stuck": 2}),  # too few to call it stuck
        (4, {"out_of_range": 1, "spike": 1}),
        (0, {"stuck": 0}),
    ],
)
def test_sensor_fault_stays_quiet(readings: int, flags: dict[str, int]) -> None:
    suspicion = SensorSuspicion("wx-tomato-north", "air-t", AIR, readings, flags)
    assert sensor_fault(context(suspicions=[suspicion])) == []


def test_one_fault_per_faulty_sensor() -> None:
    suspicions = [
        SensorSuspicion("wx-tomato-north", "air-t", AIR, 12, {"stuck": 12}),
        SensorSuspicion("wx-tomato-north", "leaf", LEAF, 12, {"spike": 1}),
        SensorSuspicion("soil-tomato-north-2", "sm-45", SOIL, 12, {"out_of_range": 12}),
    ]
    found = sensor_fault(context(suspicions=suspicions))
    assert [(a.device, a.sensor) for a in found] == [("wx-tomato-north", "air-t"), ("soil-tomato-north-2", "sm-45")]
