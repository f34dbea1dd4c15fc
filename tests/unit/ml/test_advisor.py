"""The irrigation advisor: a corrected hourly balance, a trigger at RAW, a look-ahead, and advice with its numbers."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ml.advisor import NOISE, WET_JUMP_MM, RainPlan, advise_irrigation, estimate
from ml.context import Advice, SensorSuspicion, ZoneContext
from ml.kalman import Noise
from ml.rainahead import RainAhead
from smartfarm.layout import SensorKind
from smartfarm.records import RecommendationKind, Severity, ZoneAggregate
from tests.unit.ml.builders import END, FARM, HOUR, context, day, hour, sensor_hour_of, series, weather_forecast

SOIL = SensorKind.SOIL_MOISTURE
RAIN = SensorKind.RAINFALL
AIR = SensorKind.AIR_TEMPERATURE

# Tomato on loam at END: FC 25 %, WP 12 %, roots 1.0 m but probes at 15 and 45 cm, so the managed root zone is
# 0.6 m: TAW 78 mm, and theta 20 % is Dr 30 mm. Kc 1.15 x ET0 4.4 is ETc 5.06 mm/day (0.21 mm an hour),
# p = 0.3976, RAW = 31.01 mm.
YESTERDAY = [day(date(2026, 7, 14), et0=4.4)]
STILL = [day(date(2026, 7, 14), et0=0.0)]
"""A day without crop water use: the balance stands still, so only the sensors move the estimate."""
ZR = 0.6
RAW = 0.3976 * 78


def dr(theta: float) -> float:
    """Dr (mm) of the managed root zone at soil moisture ``theta`` (%)."""
    return 10 * ZR * (25.0 - theta)


ETC_H = 1.15 * 4.4 / 24
FIXED_GAIN_LAG_MM = ETC_H * (1 - 0.0625) / 0.0625
"""How far the fixed hourly gain 0.0625 this filter replaced trailed a sensor that holds steady while the balance
dries at ETc: the steady state of e = (1 - K)(e + ETc_h), 3.2 mm."""


def soil(means: list[float]) -> list[ZoneAggregate]:
    """Hourly soil moisture (%) ending at END."""
    return series(SOIL, means)


def rain(mm: float, end: datetime = END) -> ZoneAggregate:
    """One hour's rain gauge total, as one reading of ``mm``."""
    return hour(RAIN, end, mm, count=1)


def only(advice: list[Advice]) -> Advice:
    [found] = advice
    assert found.kind is RecommendationKind.IRRIGATION
    return found


@dataclasses.dataclass
class FakeForecaster:
    """Soil moisture (%) by hours ahead, whatever the context; records the contexts it was shown."""

    path: Mapping[int, float]
    shown: list[ZoneContext] = dataclasses.field(default_factory=list)

    def forecast(self, context: ZoneContext) -> Mapping[int, float]:
        self.shown.append(context)
        return self.path


# --- the trigger --------------------------------------------------------------------------------------------


def drying(start: float, stop: float, n: int = 48) -> list[float]:
    return [start + (stop - start) * i / (n - 1) for i in range(n)]


@pytest.mark.parametrize(
    ("aggregates", "due"),
    [
        (soil([19.5] * 48), True),  # Dr 55 mm, past RAW 51.7
        (soil([15.0] * 48), True),  # far past it
        (soil(drying(20.5, 19.5)), True),  # drying at ETc through RAW in the last hours
        (soil([23.0] * 48), False),  # Dr 20 mm: RAW six days away
        (soil([25.0] * 48), False),  # at field capacity
        ([*soil([19.0] * 47 + [24.5]), rain(40.0)], False),  # heavy rain, and the probes felt it
        ([*soil([19.0] * 48), rain(40.0)], False),  # heavy rain the probes have not felt yet: the balance has
        ([*soil([19.0] * 40 + [24.0] * 8), rain(35.0, END - 7 * HOUR)], False),  # rain this morning
    ],
)
def test_irrigates_when_depletion_passes_the_trigger_and_not_after_heavy_rain(
    aggregates: list[ZoneAggregate], due: bool
) -> None:
    found = advise_irrigation(context(aggregates=aggregates, days=YESTERDAY), None)
    if not due:
        assert found == []
        return
    advice = only(found)
    assert advice.inputs["depletion_mm"] >= advice.inputs["raw_mm"]
    assert advice.inputs["hours_to_raw"] == 0
    assert advice.start_at == END


def test_heavy_rain_is_water_in_for_the_balance_even_before_the_probes_feel_it() -> None:
    est = estimate(context(aggregates=[*soil([19.0] * 48), rain(40.0)], days=YESTERDAY))
    assert est is not None
    assert est.measured_mm == pytest.approx(dr(19.0))
    # The balance's prior is 40 mm wetter than the hour before; the sensors pull it back only by the gain, larger
    # than in a dry hour (the rain's amount adds to the prior's variance) but well short of believing them.
    assert est.prior_mm < est.measured_mm - 35
    assert est.depletion_mm == pytest.approx(est.prior_mm + est.gain * (est.measured_mm - est.prior_mm))
    assert 0.1 < est.gain < 0.5
    assert est.depletion_mm < RAW


@pytest.mark.parametrize(
    ("theta", "severity"),
    [
        (19.5, Severity.ADVISORY),  # just past RAW
        (15.0, Severity.WARNING),  # Dr 100 mm: more than half way from RAW to wilting
    ],
)
def test_severity_rises_past_half_way_to_wilting(theta: float, severity: Severity) -> None:
    advice = only(advise_irrigation(context(aggregates=soil([theta] * 48), days=YESTERDAY), None))
    assert advice.severity is severity
    assert advice.valid_for == timedelta(hours=12)


# --- the amount ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pending", [0.0, 10.0, 20.0, 33.3])
def test_amount_refills_to_field_capacity_less_what_is_pending(pending: float) -> None:
    advice = only(advise_irrigation(context(aggregates=soil([19.5] * 48), days=YESTERDAY, pending=pending), None))
    refill = advice.inputs["depletion_mm"]
    assert advice.amount_mm == round((refill - pending) * 2) / 2
    assert advice.amount_mm is not None and advice.amount_mm * 2 == int(advice.amount_mm * 2)
    assert advice.inputs["amount_mm"] == advice.amount_mm
    assert advice.inputs["pending_mm"] == pending


@pytest.mark.parametrize("pending", [60.0, 200.0])
def test_no_advice_when_the_pending_irrigation_covers_it(pending: float) -> None:
    assert advise_irrigation(context(aggregates=soil([19.5] * 48), days=YESTERDAY, pending=pending), None) == []


def test_a_pending_amount_leaving_under_a_quarter_millimetre_rounds_to_nothing() -> None:
    est = estimate(context(aggregates=soil([19.5] * 48), days=YESTERDAY))
    assert est is not None
    ctx = context(aggregates=soil([19.5] * 48), days=YESTERDAY, pending=est.depletion_mm - 0.2)
    assert advise_irrigation(ctx, None) == []


# --- the look-ahead -----------------------------------------------------------------------------------------


def crossing(advice: Advice, path: Mapping[int, float]) -> float:
    """Where the forecast's path, offset to start at the corrected estimate, reaches RAW: by hand, linearly."""
    now, measured, raw = (advice.inputs[k] for k in ("depletion_mm", "measured_depletion_mm", "raw_mm"))
    points = [(0.0, now)] + [(float(h), now + dr(theta) - measured) for h, theta in sorted(path.items())]
    for (h0, d0), (h1, d1) in itertools.pairwise(points):
        if d0 < raw <= d1:
            return h0 + (raw - d0) / (d1 - d0) * (h1 - h0)
    raise AssertionError("the path does not reach RAW")


@pytest.mark.parametrize(
    ("path", "bracket"),
    [
        ({6: 20.5, 24: 19.0}, (6.0, 24.0)),  # Dr 48 -> 63 mm between 6 and 24 h ahead
        ({6: 19.5, 24: 18.0}, (0.0, 6.0)),  # past RAW by 6 h ahead
        ({6: 20.9, 24: 19.9}, (6.0, 24.0)),  # just reaches it by 24 h
    ],
)
def test_a_forecast_drying_past_raw_within_24_h_schedules_the_crossing(
    path: dict[int, float], bracket: tuple[float, float]
) -> None:
    forecaster = FakeForecaster(path)
    ctx = context(aggregates=soil([21.0] * 48), days=YESTERDAY)  # Dr 40 mm measured, below RAW now
    advice = only(advise_irrigation(ctx, forecaster))
    assert forecaster.shown == [ctx]
    hours = crossing(advice, path)
    assert bracket[0] < hours < bracket[1]
    assert advice.inputs["hours_to_raw"] == pytest.approx(hours)
    assert advice.start_at == END + timedelta(minutes=round(hours * 60))
    assert advice.start_at > END
    assert advice.amount_mm == round(advice.inputs["raw_mm"] * 2) / 2  # the refill as it will be then: RAW
    assert advice.severity is Severity.ADVISORY
    assert advice.inputs["forecast_sm_6h"] == path[6]
    assert advice.inputs["forecast_sm_24h"] == path[24]


@pytest.mark.parametrize(
    "path",
    [
        {6: 21.0, 24: 20.8},  # drying, not as far as RAW
        {6: 22.0, 24: 24.0},  # wetting
        {6: 21.0, 48: 10.0},  # dry only beyond the look-ahead
    ],
)
def test_a_forecast_that_stays_wet_gives_no_advice(path: dict[int, float]) -> None:
    ctx = context(aggregates=soil([21.0] * 48), days=YESTERDAY)
    assert advise_irrigation(ctx, FakeForecaster(path)) == []


def test_a_forecast_past_raw_now_still_irrigates_now() -> None:
    advice = only(advise_irrigation(context(aggregates=soil([19.5] * 48), days=YESTERDAY), FakeForecaster({24: 30})))
    assert advice.start_at == END
    assert advice.inputs["hours_to_raw"] == 0


@pytest.mark.parametrize("forecaster", [None, FakeForecaster({})])
def test_without_a_forecast_todays_crop_water_use_is_extrapolated(forecaster: FakeForecaster | None) -> None:
    advice = only(advise_irrigation(context(aggregates=soil([20.5] * 48), days=YESTERDAY), forecaster))
    hours = (advice.inputs["raw_mm"] - advice.inputs["depletion_mm"]) / (1.15 * 4.4) * 24
    assert 0 < hours < 24
    assert advice.inputs["hours_to_raw"] == pytest.approx(hours)
    assert advice.start_at == END + timedelta(minutes=round(hours * 60))
    assert advice.amount_mm == round(RAW * 2) / 2
    assert not any(k.startswith("forecast_sm_") for k in advice.inputs)
    assert "crop water use says" in advice.message


def test_crop_water_use_beyond_24_h_gives_no_advice() -> None:
    assert advise_irrigation(context(aggregates=soil([22.0] * 48), days=YESTERDAY), None) == []


# --- the correction -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("theta", [24.0, 21.0, 19.5, 16.0])
def test_steady_readings_with_a_still_balance_make_the_estimate_the_measurement(theta: float) -> None:
    est = estimate(context(aggregates=soil([theta] * 48), days=STILL))
    assert est is not None
    assert est.measured_mm == pytest.approx(dr(theta))
    assert est.depletion_mm == pytest.approx(est.measured_mm)
    assert est.water_in_mm == 0


@pytest.mark.parametrize("theta", [24.0, 21.0, 19.5, 16.0])
def test_steady_readings_under_a_drying_balance_are_a_state_update_not_water_in(theta: float) -> None:
    """The balance says 5 mm a day left, the probes say none did: the estimate settles between them, close to the
    probes (about where the fixed gain it replaced trailed, less past RAW where Ks slows the crop), the filter
    starts to learn that the balance dries too fast, and no water is invented to square the two."""
    est = estimate(context(aggregates=soil([theta] * 48), days=YESTERDAY))
    assert est is not None
    assert est.water_in_mm == 0
    assert est.measured_mm < est.depletion_mm <= est.measured_mm + 1.1 * FIXED_GAIN_LAG_MM
    assert est.drift_mm_day < -0.5


@pytest.mark.parametrize("theta", [24.0, 21.0])
def test_below_raw_the_drift_learned_in_48_hours_is_part_of_the_gap(theta: float) -> None:
    """The true drift is -5 mm/day (the probes hold, the balance dries at ETc): 48 hours of readings move the
    drift's estimate from 0 by its prior spread of 1 mm/day, and not all the way (the process noise lets the
    estimate follow a drift slowly, as a crop's Kc error changes over weeks)."""
    est = estimate(context(aggregates=soil([theta] * 48), days=YESTERDAY))
    assert est is not None
    assert -5.0 < est.drift_mm_day < -1.0
    assert est.sd_mm < 2.0


def test_a_jump_wetter_than_the_balance_is_water_in_not_smoothed() -> None:
    """A valve the balance did not know about: 30 mm in one hour, five hours ago."""
    readings = [19.5] * 43 + [24.5] * 5
    est = estimate(context(aggregates=soil(readings), days=YESTERDAY))
    assert est is not None
    # The probes' 30 mm and the hour's ETc, less the hour's share of the drift learned by then.
    assert est.water_in_mm == pytest.approx(30.0 + ETC_H, abs=0.1)
    assert est.measured_mm == pytest.approx(dr(24.5))
    assert abs(est.depletion_mm - est.measured_mm) <= FIXED_GAIN_LAG_MM  # followed; smoothing would leave ~28 mm
    advice = advise_irrigation(context(aggregates=soil([19.5] * 48), days=YESTERDAY), None)
    assert only(advice).inputs["water_in_mm"] == 0
    assert advise_irrigation(context(aggregates=soil(readings), days=YESTERDAY), None) == []


@pytest.mark.parametrize(
    ("step_pct", "water_in"),
    [
        (0.1, False),  # 1 mm: probe noise, smoothed
        ((WET_JUMP_MM - ETC_H) / (10 * ZR) - 0.01, False),  # just under the threshold with the hour's ETc
        ((WET_JUMP_MM - ETC_H) / (10 * ZR) + 0.01, True),
        (1.0, True),
    ],
)
def test_only_a_jump_beyond_probe_noise_is_water_in(step_pct: float, water_in: bool) -> None:
    readings = [21.0] * 24 + [21.0 + step_pct] * 24
    est = estimate(context(aggregates=soil(readings), days=YESTERDAY))
    assert est is not None
    assert (est.water_in_mm > 0) is water_in


@pytest.mark.parametrize(
    ("felt_after_h", "most_water_in"),
    [
        (0, 0.0),  # 40 mm wetter in the hour it rained 40 mm
        # The probes feel it hours later: counted again is only what the correction pulled the balance back
        # towards the still-dry probes meanwhile (the gain's share of the gap per hour), not the gauge's 40 mm.
        (1, 40.0 / 5),
        (2, 40.0 / 5),
    ],
)
def test_the_gauge_s_rain_is_not_counted_again_as_water_in(felt_after_h: int, most_water_in: float) -> None:
    readings = [19.0] * 40 + [23.0] * 8  # 40 mm wetter from the hour ending 7 h ago
    rained = rain(40.0, END - (7 + felt_after_h) * HOUR)
    est = estimate(context(aggregates=[*soil(readings), rained], days=YESTERDAY))
    assert est is not None
    assert est.water_in_mm <= most_water_in


def test_the_estimate_starts_from_the_first_hour_shown() -> None:
    est = estimate(context(aggregates=soil([19.0]), days=STILL))
    assert est is not None
    assert est.depletion_mm == pytest.approx(dr(19.0))
    assert est.prior_mm == pytest.approx(dr(19.0))


# --- the sensors' quality -----------------------------------------------------------------------------------


def with_last(count: int) -> list[ZoneAggregate]:
    return [*series(SOIL, [19.5] * 47, end=END - HOUR), hour(SOIL, END, 19.5, count=count)]


def flagged(n: int, readings: int = 12) -> SensorSuspicion:
    return SensorSuspicion("soil-tomato-north-1", "sm-15", SOIL, readings, {"spike": n})


@pytest.mark.parametrize(
    ("aggregates", "suspicions", "weight"),
    [
        (with_last(12), [], 1.0),
        (with_last(6), [], 0.5),  # half the zone's usual readings
        (with_last(3), [], 0.25),
        (with_last(12), [flagged(6)], 0.5),  # half of them flagged
        (with_last(12), [flagged(12)], 0.0),
        (with_last(6), [flagged(3, readings=6)], 0.25),
        (with_last(12), [SensorSuspicion("wx-tomato-north", "air-t", AIR, 12, {"stuck": 12})], 1.0),  # not soil
    ],
)
def test_a_low_quality_last_hour_lowers_the_weight_and_the_confidence(
    aggregates: list[ZoneAggregate], suspicions: list[SensorSuspicion], weight: float
) -> None:
    ctx = context(aggregates=aggregates, days=YESTERDAY, suspicions=suspicions)
    advice = only(advise_irrigation(ctx, None))
    assert advice.inputs["sensor_weight"] == pytest.approx(weight)
    assert advice.confidence == pytest.approx(max(0.5, min(0.95, 0.5 + 0.45 * weight)))
    assert 0 < advice.inputs["gain"] < 0.2 if weight > 0 else advice.inputs["gain"] == 0
    assert advice.inputs["depletion_sd_mm"] > 0


def test_confidence_falls_when_et0_is_assumed() -> None:
    advice = only(advise_irrigation(context(aggregates=soil([19.5] * 48)), None))
    assert advice.inputs["et0_assumed"] == 1.0
    assert advice.inputs["et0_mm_day"] == 5.0
    assert advice.confidence == pytest.approx(0.85)
    assert "assumed" in advice.message


# --- the message --------------------------------------------------------------------------------------------


def test_the_message_names_amount_time_depletion_and_raw_now() -> None:
    advice = only(advise_irrigation(context(aggregates=soil([19.5] * 48), days=YESTERDAY), None))
    lost = advice.inputs["depletion_mm"]
    assert advice.message.startswith(f"Irrigate {advice.amount_mm:g} mm on Tomatoes, north field now:")
    assert f"has lost {lost:.0f} mm of water, past the 31 mm the crop can use without stress" in advice.message
    assert "Sensors read 19.5% against field capacity 25% (33 mm lost)" in advice.message
    assert "root zone (0-60 cm)" in advice.message, "the depth the probes watch, not the tomato's full 1 m"
    assert "Kc 1.15 x ET0 4.4 mm" in advice.message
    assert "at 4 mm/h" in advice.message
    assert len(advice.message) <= 500


def test_the_message_names_the_local_time_of_a_scheduled_irrigation() -> None:
    path = {6: 20.5, 24: 19.0}
    ctx = context(aggregates=soil([21.0] * 48), days=YESTERDAY, pending=10.0)
    advice = only(advise_irrigation(ctx, FakeForecaster(path)))
    assert advice.start_at is not None
    local = advice.start_at.astimezone(ZoneInfo(FARM.timezone))
    hours = advice.inputs["hours_to_raw"]
    assert f"Irrigate {advice.amount_mm:g} mm on top of the 10 mm already planned" in advice.message
    assert f"at {local:%H:%M} (in {f'{hours:.1f}'.removesuffix('.0')} h)" in advice.message
    assert f"has lost {advice.inputs['depletion_mm']:.0f} mm of water and the forecast says" in advice.message
    assert "the 31 mm the crop can use without stress by then" in advice.message
    assert advice.amount_mm == round(RAW * 2) / 2 - 10.0


def test_the_message_stays_within_500_characters_for_a_long_zone_name() -> None:
    ctx = context(aggregates=soil([19.5] * 48), days=YESTERDAY)
    ctx = dataclasses.replace(ctx, zone=ctx.zone.model_copy(update={"name": "A very long zone name " * 20}))
    advice = only(advise_irrigation(ctx, None))
    assert len(advice.message) == 500
    assert advice.message.endswith("...")


# --- no soil moisture ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "aggregates",
    [
        [],
        [hour(AIR, END, 25.0)],
        series(SOIL, [15.0] * 10, end=END - HOUR),  # nothing in the hour that just closed
        [hour(SOIL, END, 15.0, width=timedelta(days=1))],  # a daily aggregate is not the hour
    ],
)
def test_no_soil_moisture_in_the_last_hour_gives_no_advice(aggregates: list[ZoneAggregate]) -> None:
    ctx = context(aggregates=aggregates, days=YESTERDAY)
    assert estimate(ctx) is None
    assert advise_irrigation(ctx, FakeForecaster({6: 10.0, 24: 10.0})) == []


# --- the filter's figures ----------------------------------------------------------------------------------


def test_the_advisor_s_filter_figures_are_ml_kalman_s() -> None:
    """One home for the noise figures: the advisor runs the field seasons' filter, hour by hour."""
    assert Noise() == NOISE


@pytest.mark.parametrize(
    ("zone_id", "end", "advised"),
    [
        ("tomato-north", END, True),  # mid-season, dry: advised
        ("tomato-north", datetime(2026, 4, 10, 20, tzinfo=UTC), False),  # planted 15 April: nothing in the field
        ("tomato-north", datetime(2026, 9, 20, 20, tzinfo=UTC), False),  # harvested after 135 days
        ("lettuce-south", datetime(2026, 8, 1, 20, tzinfo=UTC), False),  # lettuce done by late July
    ],
)
def test_no_irrigation_is_advised_without_a_crop_in_the_field(zone_id: str, end: datetime, advised: bool) -> None:
    ctx = context(zone_id, aggregates=series(SOIL, [15.0] * 12, end=end), end=end)
    assert bool(advise_irrigation(ctx, None)) is advised


# --- the crop's policy and the driest layer ---------------------------------------------------------------------


def test_a_dry_lower_layer_the_probes_show_is_irrigated_now_though_the_zone_s_mean_is_not() -> None:
    """Dr 12 mm on the zone's mean, RAW six days away; the 45 cm probes read 19.2 %: 45 % of that layer's water
    gone, past the tomato's p of 0.4 (with the probes' error)."""
    ctx = context(aggregates=soil([23.0] * 48), days=YESTERDAY)
    assert advise_irrigation(ctx, None) == []
    probes = [
        sensor_hour_of([theta] * 4, device=device, sensor=sensor, depth=depth)
        for device, sensor, depth, theta in [
            ("soil-tomato-north-1", "sm-15", 15.0, 25.0),
            ("soil-tomato-north-2", "sm-15", 15.0, 25.0),
            ("soil-tomato-north-1", "sm-45", 45.0, 19.0),
            ("soil-tomato-north-2", "sm-45", 45.0, 19.4),
        ]
    ]
    advice = only(advise_irrigation(dataclasses.replace(ctx, sensors=probes), None))
    assert advice.start_at == END and advice.amount_mm == round(advice.inputs["depletion_mm"] * 2) / 2
    lost = f"has lost {advice.inputs['depletion_mm']:.0f} mm of water, short of the 31 mm the crop can use"
    assert f"{lost} without stress on average. Its 45 cm layer reads 19.2%, 45% of its water gone" in advice.message
    assert "(50% within the probes' error): past the 40% the crop can lose." in advice.message
    assert "Policy: full replenishment until fruit set (day 93)." in advice.message
    assert len(advice.message) <= 500
    assert advice.inputs["layer_depth_cm"] == 45.0 and "hours_to_raw" not in advice.inputs


@pytest.mark.parametrize(("theta", "amount"), [(27.7, None), (26.0, 20.5)])
def test_the_vineyard_in_its_deficit_window_is_let_dry_past_raw(theta: float, amount: float | None) -> None:
    """Day 75 after budbreak, between fruit set and veraison; a still day (ET0 0): p 0.55, RAW 39.6 mm of TAW 72
    (clay, 0.6 m), the deficit's trigger at Ks 0.5 is 55.8 mm. Theta 27.7 % is Dr 49.8, 26 % is 60 mm."""
    end = datetime(2026, 5, 15, 20, tzinfo=UTC)
    ctx = context("vineyard-west", series(SOIL, [theta] * 48, end=end), [day(date(2026, 5, 14), et0=0.0)], end=end)
    found = advise_irrigation(ctx, None)
    if amount is None:
        assert found == [], "past RAW, short of the deficit's trigger"
        return
    advice = only(found)
    assert advice.amount_mm == amount, "refilled to RAW, not to field capacity"
    assert "Policy: deficit irrigation for wine grapes, fruit set to veraison (days 60-120)" in advice.message
    assert advice.inputs["deficit"] == 1.0 and advice.inputs["refill_to_mm"] == pytest.approx(39.6)


# --- forecast rain ------------------------------------------------------------------------------------------

# At 19.5 % the corrected balance says 36 mm lost (RAW 31): a 36 mm refill is due now. The farm's 13:00 plus 17 h
# is 06:00 tomorrow. Waiting 17 h at ETc 5.06 mm/day leaves room for 36.8 mm of rain: RAW + 0.2 (TAW - RAW) = 40.4
# mm less the 3.6 mm the crop uses meanwhile.
DUE = soil([19.5] * 48)
BY_6_TOMORROW = 17


def with_rain(rain: dict[int, float], chance: float = 0.7, aggregates: list[ZoneAggregate] = DUE) -> Advice:
    forecast = weather_forecast(rain, chance=chance)
    return only(advise_irrigation(context(aggregates=aggregates, days=YESTERDAY, forecast=forecast), None))


def test_enough_likely_rain_holds_the_irrigation_off_and_says_so() -> None:
    advice = with_rain({BY_6_TOMORROW: 50.0})
    assert (advice.amount_mm, advice.severity, advice.start_at) == (0.0, Severity.INFO, None)
    assert advice.message.startswith(
        "Hold off: 50 mm of rain forecast by 06:00 tomorrow (70 % chance) will refill Tomatoes, north field; "
        "about 37.5 mm of it will reach the roots, and the root zone (0-60 cm) needs 36 mm now."
    )
    assert "Should the rain not come, the crop is at Ks 0.81 by then (it cannot wait below 0.8)" in advice.message
    assert advice.inputs["forecast_rain_mm"] == 50.0 and advice.inputs["forecast_rain_chance"] == 0.7
    assert advice.inputs["rain_counted_mm"] == pytest.approx(36.8, abs=0.05), "the room the crop can wait for"
    assert advice.inputs["needed_mm"] == 36.0
    assert advice.inputs["forecast_rain_in_h"] == BY_6_TOMORROW and advice.inputs["amount_mm"] == 0.0
    assert advice.confidence == 0.7


def test_some_likely_rain_trims_the_irrigation_by_what_reaches_the_roots() -> None:
    advice = with_rain({BY_6_TOMORROW - 2: 4.0, BY_6_TOMORROW: 6.0})
    effective = advice.inputs["forecast_rain_effective_mm"]
    assert effective == pytest.approx(8.72, abs=0.01), "10 mm less 0.2 ET0, on the SCS curve"
    assert advice.amount_mm == round((36.0 - effective) * 2) / 2 == 27.5
    assert advice.severity is Severity.ADVISORY
    assert advice.message.startswith("Irrigate 27.5 mm on Tomatoes, north field now:")
    assert " Trimmed by 8.7 mm for the 10 mm of rain forecast by 06:00 tomorrow (70 % chance). " in advice.message


def test_unlikely_rain_is_named_but_not_counted() -> None:
    advice = with_rain({BY_6_TOMORROW: 50.0}, chance=0.4)
    assert advice.amount_mm == 36.0 and advice.inputs["rain_counted_mm"] == 0.0
    assert (
        " The 50 mm of rain forecast by 06:00 tomorrow (40 % chance) is too uncertain to count on. " in advice.message
    )


def test_a_crop_that_cannot_wait_for_the_rain_is_irrigated_all_but_what_it_can_wait_for() -> None:
    """Dry past the stress limit: no holding off; the irrigation leaves only the room the crop can do without."""
    advice = with_rain({BY_6_TOMORROW: 50.0}, aggregates=soil([17.0] * 48))
    assert advice.amount_mm == 13.5 and advice.inputs["needed_mm"] == 50.0
    assert (
        advice.inputs["rain_counted_mm"] == advice.inputs["rain_room_mm"] < advice.inputs["forecast_rain_effective_mm"]
    )
    assert "Trimmed by 36.8 mm (what the crop can wait for) for the 50 mm of rain" in advice.message


def test_rain_is_not_waited_for_when_the_crop_has_no_room_to_wait() -> None:
    rain = RainAhead(rain_mm=50.0, effective_mm=37.5, chance=0.7, by=END + 17 * HOUR, hours=17.0)
    plan = RainPlan(rain, room_mm=0.0, wait_h=17.0)
    assert plan.counted_mm == 0.0
    note = plan.note(context())
    assert note == " The 50 mm of rain forecast by 06:00 tomorrow (70 % chance) is not waited for: the crop is too dry."


@pytest.mark.parametrize(
    ("hours", "words"),
    [(3, "by 16:00 ("), (17, "by 06:00 tomorrow ("), (36, "by 01:00 on Friday (")],
)
def test_the_rain_s_time_is_local_and_named_by_its_day(hours: int, words: str) -> None:
    rain = RainAhead(rain_mm=5.0, effective_mm=4.0, chance=0.7, by=END + hours * HOUR, hours=float(hours))
    assert words in RainPlan(rain, room_mm=10.0, wait_h=12.0).forecast_words(context())


@pytest.mark.parametrize(
    "forecast",
    [None, weather_forecast(), weather_forecast({30: 50.0})],
    ids=["no forecast", "dry", "rain beyond the look-ahead"],
)
def test_without_rain_ahead_the_advice_is_as_before(forecast) -> None:  # type: ignore[no-untyped-def]
    advice = only(advise_irrigation(context(aggregates=DUE, days=YESTERDAY, forecast=forecast), None))
    assert advice.amount_mm == 36.0 and "rain" not in advice.message
    assert "forecast_rain_mm" not in advice.inputs


def test_rain_does_not_make_advice_where_none_was_due() -> None:
    ctx = context(aggregates=soil([23.0] * 48), days=YESTERDAY, forecast=weather_forecast({5: 50.0}))
    assert advise_irrigation(ctx, None) == []


def test_the_look_ahead_follows_the_soil_s_own_course_and_the_rain_is_weighed_after() -> None:
    """The forecaster is shown the hour without the weather forecast, so rain is counted once, by rule, in words."""
    forecaster = FakeForecaster({6: 20.5, 24: 19.0})
    ctx = context(aggregates=soil([21.0] * 48), days=YESTERDAY, forecast=weather_forecast({20: 50.0}))
    advice = only(advise_irrigation(ctx, forecaster))
    assert forecaster.shown and all(shown.forecast is None for shown in forecaster.shown)
    assert advice.message.startswith("Hold off: 50 mm of rain forecast by 09:00 tomorrow (70 % chance)")
    assert "and the forecast says it reaches the 31 mm the crop can use without stress by then" in advice.message


def test_rain_a_day_past_a_later_valve_opening_counts_though_beyond_a_day_from_now() -> None:
    forecaster = FakeForecaster({6: 20.5, 24: 19.0})
    ctx = context(aggregates=soil([21.0] * 48), days=YESTERDAY, forecast=weather_forecast({30: 50.0}))
    advice = only(advise_irrigation(ctx, forecaster))
    assert advice.inputs["hours_to_raw"] == pytest.approx(7.5, abs=0.1), "the valve would open at 20:30"
    assert advice.inputs["forecast_rain_in_h"] == 30 and advice.amount_mm == 0.0
    now = only(advise_irrigation(context(aggregates=DUE, days=YESTERDAY, forecast=weather_forecast({30: 50.0})), None))
    assert now.inputs["hours_to_raw"] == 0 and "forecast_rain_mm" not in now.inputs, "due now: a day ahead only"
