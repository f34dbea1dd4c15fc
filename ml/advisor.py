"""The irrigation advisor: the FAO-56 root-zone balance, corrected by the measured soil moisture, looking ahead.

At the close of each hour, over the 48 hours a scorer is shown:

1. The balance (``ml.waterbalance.step``) runs hour by hour from the depletion measured 48 hours ago: the crop
   takes Kc x Ks x ET0 (the day's reference ET spread evenly over its hours), rain puts water back.
2. Each hour the measured depletion corrects it through ``ml.kalman``'s filter, a state update weighted by the
   sensors' quality, not a replacement: the gain comes from the balance's and the sensors' error variances (the
   sensors' divided by the weight), and the filter learns the balance's drift (a crop drying the soil faster or
   slower than Kc x ET0), so a steady gap closes instead of trailing. The weight is the hour's share of the
   zone's usual soil readings, less the share the stream flagged in the hour that just closed. Water the balance
   cannot know about (a valve's irrigation, rain a gauge missed) shows as the soil getting much wetter than the
   balance says; that jump is taken as water in, not as sensor noise.
3. The trigger is the management allowed depletion, RAW = p x TAW (FAO-56 eq. 83): due now when the corrected
   depletion has reached it, or later today when the soil-moisture forecast (``ml.forecast``) says it will
   within 24 hours; without a forecaster, today's ETc is extrapolated. The amount refills the root zone to field
   capacity as it will be then.
4. Rain the weather forecast (``ZoneContext.forecast``) gives a fair chance, from now to a day past the valve's
   opening, counts as water coming (``ml.rainahead``: its effective part, when its chance reaches
   ``RAIN_CHANCE_MIN``): the irrigation is trimmed by it, or held off when it covers the whole refill ("Hold off: 14
   mm of rain forecast by 06:00 tomorrow ..."), leaving no more room for it than the crop can do without, should it
   not come, before it is stressed past ``WAIT_KS_MIN``. The look-ahead of step 3 is the soil's own course (the
   forecaster is shown the hour without the weather forecast), so rain is counted once, here, where the advice can
   say so.

Advice says what, when, how much and why, with the numbers (``Advice.inputs`` holds every one).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from ml.context import Advice, ZoneContext, fit_message, num
from ml.features import ASSUMED_ET0_MM
from ml.irrigation import VALID_FOR, Depletion, decide, driest_layer, regime
from ml.kalman import Filter, Noise, Observation, predict, update
from ml.rainahead import RAIN_CHANCE_MIN, WAIT_KS_MIN, RainAhead, rain_ahead, rain_room_mm
from ml.rules.common import farm_day
from ml.waterbalance import (
    BalanceDay,
    clamp,
    depletion_fraction,
    depletion_from_theta,
    root_depth_m,
    theta_at_depletion,
    total_available_water,
    water_stress,
)
from smartfarm.agronomy import CROPS, SOILS, CropStage, crop_coefficient, growth_stage
from smartfarm.layout import SensorKind
from smartfarm.records import RecommendationKind, Severity, ZoneAggregate, ZoneDay

HOUR = timedelta(hours=1)
HOURS = 48
LOOKAHEAD_H = 24
WET_JUMP_MM = 2.0
"""A measured depletion this much below the balance's prior, and fallen this much more than the balance's in one
hour, is water that came in (valves, unmeasured rain): a soil probe's noise is a few tenths of a millimetre over the
root zone, a valve's irrigation tens."""
HOUR_DAYS = 1 / 24
"""An hour, as the filter's step length in days."""
NOISE = Noise()
"""``ml.kalman``'s noise figures: the same sensors and the same balance as a field season's, hour by hour."""


class SoilForecast(Protocol):
    """What the advisor needs of a forecaster: soil moisture (%) by hours ahead, empty when it cannot say."""

    def forecast(self, context: ZoneContext) -> Mapping[int, float]: ...


@dataclass(frozen=True, slots=True)
class Estimate:
    """The zone's root zone at the close of the hour: what the sensors say, what the corrected balance says."""

    depletion_mm: float
    measured_mm: float
    prior_mm: float
    taw_mm: float
    raw_mm: float
    p: float
    kc: float
    et0_mm: float
    et0_assumed: bool
    root_depth_m: float
    theta_pct: float
    fc_pct: float
    weight: float
    water_in_mm: float
    """Water the balance took in from jumps in the measurement over the 48 hours."""
    drift_mm_day: float = 0.0
    """The balance's systematic error the filter learned over the 48 hours (mm/day; > 0: drying faster)."""
    sd_mm: float = 0.0
    """The estimate's standard deviation (mm)."""
    gain: float = 0.0
    """The filter's gain in the last hour: the share of the gap to the measurement it closed."""

    @property
    def etc_mm_day(self) -> float:
        return self.kc * self.et0_mm

    @property
    def trigger_pct(self) -> float:
        """The soil moisture (%) at which the managed root zone's depletion reaches RAW: below it, irrigation
        is due."""
        return 100 * theta_at_depletion(self.raw_mm, self.fc_pct / 100, self.root_depth_m)


def _soil_hours(context: ZoneContext) -> dict[datetime, ZoneAggregate]:
    found: dict[datetime, ZoneAggregate] = {}
    for a in context.hours.get(SensorKind.SOIL_MOISTURE, ()):
        if a.width_s == 3600 and (a.window_end not in found or found[a.window_end].revision < a.revision):
            found[a.window_end] = a
    return found


def _rain_hours(context: ZoneContext) -> dict[datetime, float]:
    return {
        a.window_end: a.total
        for a in context.hours.get(SensorKind.RAINFALL, ())
        if a.width_s == 3600  # each reading is the rain since the device's previous one: the hour's is the sum
    }


def _quality(context: ZoneContext, hour: ZoneAggregate, most: int) -> float:
    """The hour's weight: its readings against the most in any hour shown, less the flagged share of the soil
    sensors' readings in the hour that just closed (only that hour's flags reach a scorer)."""
    weight = hour.count / most if most else 0.0
    if hour.window_end == context.window_end:
        soil = [s for s in context.suspicions if s.kind is SensorKind.SOIL_MOISTURE]
        readings = sum(s.readings for s in soil)
        flagged = sum(max(s.flags.values(), default=0) for s in soil)
        if readings:
            weight *= max(0.0, 1 - flagged / readings)
    return max(0.0, min(1.0, weight))


PROBE_REACH_CM = 15.0
"""A soil-moisture probe stands for the soil about 15 cm above and below it (probes are set 30 cm apart)."""


def managed_depth_m(context: ZoneContext, root_depth: float) -> float:
    """The root zone the advisor balances: the crop's roots, but no deeper than the zone's probes watch (the
    deepest soil-moisture probe plus ``PROBE_REACH_CM``). Below the probes the water is unmeasured, and refilling
    a depth nobody watches over-irrigates; irrigators manage the watched root zone (FAO-56 ch. 8 allows the
    effective rooting depth to be the depth of active water uptake)."""
    depths = [
        s.depth_cm
        for d in context.farm.devices
        if d.zone == context.zone.id
        for s in d.sensors
        if s.kind is SensorKind.SOIL_MOISTURE and s.depth_cm is not None
    ]
    return min(root_depth, (max(depths) + PROBE_REACH_CM) / 100) if depths else root_depth


def _et0_of(by_day: Mapping[date, float], days: Sequence[ZoneDay], day: date) -> tuple[float, bool]:
    """The reference ET of ``day`` if closed (``by_day``: the closed days' ET0), else of the last closed day, else
    the assumed summer value."""
    if day in by_day:
        return by_day[day], False
    return (days[-1].et0_mm, False) if days else (ASSUMED_ET0_MM, True)


def estimate(context: ZoneContext) -> Estimate | None:
    """The corrected root-zone depletion at ``context.window_end``; None without soil moisture in the last hour."""
    soil_hours = _soil_hours(context)
    now = soil_hours.get(context.window_end)
    if now is None:
        return None
    zone, tz = context.zone, ZoneInfo(context.farm.timezone)
    soil, crop = SOILS[zone.soil], CROPS[zone.crop]
    today = (context.window_end - HOUR).astimezone(tz).date()
    zr = managed_depth_m(context, root_depth_m(zone.crop, zone.planting_date, today))
    kc = crop_coefficient(zone.crop, zone.planting_date, today)
    et0_by_day = {d.day: d.et0_mm for d in context.days}
    et0, assumed = _et0_of(et0_by_day, context.days, today)
    p = depletion_fraction(crop.p, kc * et0)
    rain = _rain_hours(context)
    most = max(a.count for a in soil_hours.values())
    ordered = sorted(t for t in soil_hours if t > context.window_end - timedelta(hours=HOURS))
    depletion = depletion_from_theta(soil_hours[ordered[0]].mean / 100, soil.field_capacity, zr)
    state = Filter.start(depletion, zr, NOISE)
    prior, water_in, weight, previous = depletion, 0.0, 0.0, depletion
    for end in ordered[1:]:
        hour = soil_hours[end]
        measured = depletion_from_theta(hour.mean / 100, soil.field_capacity, zr)
        inputs = BalanceDay(
            day=(end - HOUR).astimezone(tz).date(),
            et0_mm=_et0_of(et0_by_day, context.days, (end - HOUR).astimezone(tz).date())[0] / 24,
            rain_mm=rain.get(end, 0.0),
            irrigation_mm=0.0,
            kc=kc,
            root_depth_m=zr,
            p_table=p,
            field_capacity=soil.field_capacity,
            wilting_point=soil.wilting_point,
            adjust_p=False,
        )
        guess, _ = predict(state, inputs, NOISE, HOUR_DAYS)
        # Water in shows twice: the soil is wetter than the filter's prior, and got that much wetter within this
        # hour. The level alone mistakes for water the few mm the estimate trails a probe drying slower than
        # Kc x ET0 before the drift is learned; the hour's change alone counts again rain the gauge gave the
        # balance before the probes felt it.
        jump = min(guess.depletion_mm - measured, (guess.depletion_mm - state.depletion_mm) - (measured - previous))
        previous = measured
        if jump > WET_JUMP_MM:
            water_in += jump
            guess, _ = predict(state, replace(inputs, irrigation_mm=jump), NOISE, HOUR_DAYS)
        weight = _quality(context, hour, most)
        state = update(guess, Observation(measured, weight), NOISE)
        prior = guess.depletion_mm
    taw = total_available_water(soil.field_capacity, soil.wilting_point, zr)
    return Estimate(
        depletion_mm=state.depletion_mm,
        measured_mm=depletion_from_theta(now.mean / 100, soil.field_capacity, zr),
        prior_mm=prior,
        taw_mm=taw,
        raw_mm=p * taw,
        p=p,
        kc=kc,
        et0_mm=et0,
        et0_assumed=assumed,
        root_depth_m=zr,
        theta_pct=now.mean,
        fc_pct=soil.field_capacity * 100,
        weight=weight if len(ordered) > 1 else _quality(context, now, most),
        water_in_mm=water_in,
        drift_mm_day=state.drift_mm_day,
        sd_mm=state.sd_mm,
        gain=state.gain,
    )


@dataclass(frozen=True, slots=True)
class Outlook:
    """When the depletion reaches RAW, and how much it will be then."""

    hours: float
    """0 when it has; within the look-ahead otherwise."""
    depletion_mm: float
    source: str
    """"forecast" (the soil-moisture model) or "crop water use" (today's ETc extrapolated)."""


def outlook(est: Estimate, forecast: Mapping[int, float]) -> Outlook | None:
    """When ``est`` reaches RAW within the look-ahead: now, by the forecast's path (linear between its horizons,
    offset so it starts at the corrected estimate), or by today's ETc; None when not within 24 hours."""
    if est.depletion_mm >= est.raw_mm:
        return Outlook(0.0, est.depletion_mm, "sensors and water balance")
    if forecast:
        path = [(0.0, est.depletion_mm)] + [
            (
                float(h),
                est.depletion_mm
                + depletion_from_theta(theta / 100, est.fc_pct / 100, est.root_depth_m)
                - est.measured_mm,
            )
            for h, theta in sorted(forecast.items())
            if h <= LOOKAHEAD_H
        ]
        for (h0, d0), (h1, d1) in itertools.pairwise(path):
            if d1 >= est.raw_mm > d0:
                hours = h0 + (est.raw_mm - d0) / (d1 - d0) * (h1 - h0)
                return Outlook(hours, est.raw_mm, "forecast")
        return None
    if est.etc_mm_day <= 0:
        return None
    hours = (est.raw_mm - est.depletion_mm) / est.etc_mm_day * 24
    return Outlook(hours, est.raw_mm, "crop water use") if hours <= LOOKAHEAD_H else None


def _message(
    context: ZoneContext,
    est: Estimate,
    ahead: Outlook | None,
    hours: float,
    amount: float,
    start: datetime,
    rain_note: str = "",
) -> str:
    zone = context.zone
    local = start.astimezone(ZoneInfo(context.farm.timezone))
    when = "now" if hours == 0 else f"at {local:%H:%M} (in {num(hours)} h)"
    pending = context.pending_irrigation_mm
    extra = f" on top of the {num(pending)} mm already planned" if pending > 0 else ""
    lost, raw = num(est.depletion_mm, 0), num(est.raw_mm, 0)
    limit = f"the {raw} mm the crop can use without stress"
    if est.depletion_mm >= est.raw_mm:
        state = f"has lost {lost} mm of water, past {limit} (readily available water)"
    elif hours > 0 and ahead is not None:
        state = f"has lost {lost} mm of water and the {ahead.source} says it reaches {limit} by then"
    else:  # its driest layer decided: ``ml.irrigation.decide``'s words say which
        state = f"has lost {lost} mm of water, short of {limit} on average"
    assumed = " (assumed, no day closed yet)" if est.et0_assumed else ""
    text = (
        f"Irrigate {num(amount)} mm{extra} on {zone.name} {when}: the root zone (0-{est.root_depth_m * 100:.0f} cm) "
        f"{state}.{rain_note} Sensors read {est.theta_pct:.1f}% against field capacity {num(est.fc_pct)}% "
        f"({num(est.measured_mm, 0)} mm lost); the water balance corrected by them says {num(est.depletion_mm, 0)} "
        f"mm. Crop water use {est.etc_mm_day:.1f} mm/day (Kc {est.kc:.2f} x ET0 {est.et0_mm:.1f} mm{assumed}). "
        f"That is about {num(amount / zone.irrigation_rate_mm_h)} h at {num(zone.irrigation_rate_mm_h)} mm/h."
    )
    return text  # ``ml.irrigation.compose`` fits it to the limit, whole sentences, the rain's words kept first


@dataclass(frozen=True, slots=True)
class RainPlan:
    """How the weather forecast's rain bears on an irrigation that is due (``ml.rainahead`` has the rules)."""

    rain: RainAhead
    room_mm: float
    """The most rain the irrigation may leave room for: what the crop can do without for ``wait_h``."""
    wait_h: float
    """Hours the crop waits: until the rain has fallen, and at least ``VALID_FOR`` (advice to hold off quiets the
    zone's irrigation advice that long, ``stream.advice``)."""

    @property
    def counted_mm(self) -> float:
        """The effective rain taken off the irrigation: as much as there is room for, when its chance counts."""
        return min(self.rain.effective_mm, self.room_mm) if self.rain.counts else 0.0

    def forecast_words(self, context: ZoneContext) -> str:
        """The rain in words: "14 mm of rain forecast by 06:00 tomorrow (70 % chance)", in the farm's time."""
        tz = ZoneInfo(context.farm.timezone)
        local, today = self.rain.by.astimezone(tz), (context.window_end - HOUR).astimezone(tz).date()
        if local.date() == today:
            when = f"{local:%H:%M}"
        elif local.date() == today + timedelta(days=1):
            when = f"{local:%H:%M} tomorrow"
        else:
            when = f"{local:%H:%M} on {local:%A}"
        return f"{num(self.rain.rain_mm)} mm of rain forecast by {when} ({self.rain.chance * 100:.0f} % chance)"

    def note(self, context: ZoneContext) -> str:
        """The irrigation message's words on the rain: trimmed for it, or why it is not counted (short: the
        message they end has at most 500 characters)."""
        forecast, counted = self.forecast_words(context), self.counted_mm
        if not self.rain.counts:
            return f" The {forecast} is too uncertain to count on." if self.rain.effective_mm > 0 else ""
        if counted <= 0:
            return f" The {forecast} is not waited for: the crop is too dry."
        if counted < self.rain.effective_mm:
            return f" Trimmed by {num(counted)} mm (what the crop can wait for) for the {forecast}."
        return f" Trimmed by {num(counted)} mm for the {forecast}."

    def inputs(self, needed_mm: float) -> dict[str, float]:
        return {
            "forecast_rain_mm": self.rain.rain_mm,
            "forecast_rain_effective_mm": self.rain.effective_mm,
            "forecast_rain_chance": self.rain.chance,
            "forecast_rain_in_h": self.rain.hours,
            "rain_chance_min": RAIN_CHANCE_MIN,
            "wait_h": self.wait_h,
            "wait_ks_min": WAIT_KS_MIN,
            "rain_room_mm": self.room_mm,
            "rain_counted_mm": self.counted_mm,
            "needed_mm": needed_mm,
        }


def rain_plan(context: ZoneContext, est: Estimate, ahead: Outlook) -> RainPlan | None:
    """The forecast rain that bears on an irrigation due in ``ahead.hours``, and the room it may leave for it
    (``rain_room_mm``); None without a forecast or without rain in it.

    The rain counts from now to a look-ahead past the valve's opening: rain before it refills the root zone
    instead, rain after it would find the root zone full. (An irrigation advised 23 h ahead is planned then; rain
    due a day after the valve opens would only enter the look-ahead once the plan is made.) As far as the forecast
    reaches, and at least the look-ahead."""
    window = math.ceil(ahead.hours) + LOOKAHEAD_H
    if context.forecast is not None:
        window = max(LOOKAHEAD_H, min(window, len(context.forecast.ahead(context.window_end, window))))
    rain = rain_ahead(context.forecast, context.window_end, window, est.et0_mm)
    if rain is None:
        return None
    wait_h = max(rain.hours, VALID_FOR / HOUR)
    return RainPlan(rain, rain_room_mm(est.etc_mm_day, wait_h, est.taw_mm, est.raw_mm), wait_h)


def hold_off(
    context: ZoneContext, est: Estimate, ahead: Outlook, needed_mm: float, rain: RainPlan, inputs: dict[str, float]
) -> Advice:
    """Advice not to irrigate: the forecast rain will give the root zone what it needs. An irrigation of 0 mm, so
    valves ignore it and the stream's cooldown keeps the zone's irrigation advice quiet for ``VALID_FOR``."""
    zone, tz = context.zone, ZoneInfo(context.farm.timezone)
    due = "now" if ahead.hours == 0 else f"by {(context.window_end + ahead.hours * HOUR).astimezone(tz):%H:%M}"
    state = (
        f"past the {num(est.raw_mm, 0)} mm the crop can use without stress"
        if ahead.hours == 0
        else f"and the {ahead.source} says it reaches the {num(est.raw_mm, 0)} mm the crop can use without "
        "stress by then"
    )
    waited = est.depletion_mm + est.etc_mm_day * rain.wait_h / 24
    ks = water_stress(waited, est.taw_mm, est.raw_mm)
    text = (
        f"Hold off: {rain.forecast_words(context)} will refill {zone.name}; about "
        f"{num(rain.rain.effective_mm)} mm of it will reach the roots, and the root zone (0-"
        f"{est.root_depth_m * 100:.0f} cm) needs {num(needed_mm)} mm {due}. It has lost {num(est.depletion_mm, 0)} "
        f"mm of water, {state}. Sensors read {est.theta_pct:.1f}% against field capacity {num(est.fc_pct)}%. "
        f"Should the rain not come, the crop is at Ks {ks:.2f} by then (it cannot wait below {num(WAIT_KS_MIN)}); "
        f"irrigation is checked again in {num(VALID_FOR / HOUR)} h."
    )
    return Advice(
        kind=RecommendationKind.IRRIGATION,
        severity=Severity.INFO,
        message=fit_message(text),
        confidence=clamp(rain.rain.chance, 0.5, 0.95),
        inputs=inputs | {"wait_ks": ks},
        valid_for=VALID_FOR,
        amount_mm=0.0,
    )


def in_field(context: ZoneContext) -> bool:
    """Whether the zone has a crop using water: planted (or, for the vine, past budbreak) and not yet harvested
    (or dormant). Before and after, the balance has no crop to keep out of stress, so nothing is advised."""
    zone = context.zone
    today = (context.window_end - HOUR).astimezone(ZoneInfo(context.farm.timezone)).date()
    return today >= zone.planting_date and growth_stage(zone.crop, zone.planting_date, today) is not CropStage.HARVESTED


def advise_irrigation(context: ZoneContext, forecaster: SoilForecast | None) -> list[Advice]:
    """Irrigation advice for the zone at the close of the hour: when, how much and why; empty when not due
    within 24 hours or already planned."""
    if not in_field(context):
        return []
    est = estimate(context)
    if est is None:
        return []
    # The look-ahead follows the soil's own course, the forecaster shown no weather forecast: the rain that one
    # brings is weighed after, by rule and in words (``rain_plan``), not hidden in the path and counted twice.
    forecast = forecaster.forecast(replace(context, forecast=None)) if forecaster is not None else {}
    ahead = outlook(est, forecast)
    depletion = Depletion(
        now_mm=est.depletion_mm,
        due_mm=ahead.depletion_mm if ahead is not None else est.depletion_mm,
        hours=ahead.hours if ahead is not None else None,
        raw_mm=est.raw_mm,
        taw_mm=est.taw_mm,
        coverage=est.weight,
        et0_assumed=est.et0_assumed,
        driest=driest_layer(context, est.root_depth_m, PROBE_REACH_CM),
        etc_mm_day=est.etc_mm_day,
    )
    policy = regime(context.zone, farm_day(context))
    decided = decide(depletion, context.pending_irrigation_mm, policy)
    if decided is None:
        return []
    needed = decided.amount_mm
    # A driest layer past its limit with the zone's mean short of RAW (no outlook) cannot wait for rain.
    rain = rain_plan(context, est, ahead) if ahead is not None else None
    if rain is not None and rain.counted_mm > 0:
        decided = decide(depletion, context.pending_irrigation_mm + rain.counted_mm, policy)
    amount, start = (decided.amount_mm, decided.start_at(context)) if decided is not None else (0.0, None)
    inputs = {
        "depletion_mm": est.depletion_mm,
        "measured_depletion_mm": est.measured_mm,
        "prior_depletion_mm": est.prior_mm,
        "taw_mm": est.taw_mm,
        "raw_mm": est.raw_mm,
        "p": est.p,
        "kc": est.kc,
        "et0_mm_day": est.et0_mm,
        "et0_assumed": float(est.et0_assumed),
        "root_depth_m": est.root_depth_m,
        "theta_pct": est.theta_pct,
        "fc_pct": est.fc_pct,
        "sensor_weight": est.weight,
        "gain": est.gain,
        "drift_mm_day": est.drift_mm_day,
        "depletion_sd_mm": est.sd_mm,
        "water_in_mm": est.water_in_mm,
        "amount_mm": amount,
        "pending_mm": context.pending_irrigation_mm,
        "irrigation_rate_mm_h": context.zone.irrigation_rate_mm_h,
    } | {f"forecast_sm_{h}h": v for h, v in forecast.items()}
    if ahead is not None:
        inputs["hours_to_raw"] = ahead.hours
    if rain is not None:
        inputs |= rain.inputs(needed)
    if decided is None or start is None:
        return [hold_off(context, est, ahead, needed, rain, inputs)] if rain is not None and ahead is not None else []
    note = rain.note(context) if rain is not None else ""
    return [decided.advice(context, _message(context, est, ahead, decided.hours, amount, start, note), inputs)]
