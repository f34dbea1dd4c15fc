"""The one irrigation decision: how much, when, how urgent and how sure, from a depletion estimate and the crop's
irrigation policy.

The FAO-56 baseline (``ml.rules.rootzone.irrigation``: the balance of the hour's measured soil moisture) and the
advisor (``ml.advisor.advise_irrigation``: a balance corrected by the sensors and looked ahead with the
forecaster) differ only in the depletion they estimate and in the words and numbers they explain it with. What
they then decide is here, once, as the crop's policy (``POLICIES``) says:

- full replenishment (every crop, outside a deficit window): open the valve when the depletion reaches RAW (now or
  within the look-ahead) and refill the root zone to field capacity; also now when the driest layer the probes
  watch has lost more of its own water than the crop can, though the zone's mean has not (``driest_layer``);
- regulated deficit irrigation (wine grapes from fruit set to veraison, processing tomatoes from fruit set to
  harvest): let the depletion go past RAW until the crop's Ks is down to the policy's, then refill only to RAW;
- amounts in 0.5 mm steps less what is already planned, and near harvest no more than the crop will still use;
  a warning when the crop is past halfway from RAW to TAW (stressed now), and a confidence that grows with how
  much of the zone the sensors cover;
- the advice says which policy applies and why, with its numbers (``compose``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ml.context import MAX_MESSAGE, Advice, ZoneContext, fit_message, num
from ml.waterbalance import clamp
from smartfarm.agronomy import CROPS, SOILS
from smartfarm.layout import Crop, SensorKind, Zone
from smartfarm.records import RecommendationKind, Severity

VALID_FOR = timedelta(hours=12)
"""How long irrigation advice stands: half a day, the cooldown of the next advice (``stream.advice``)."""
STEP_MM = 0.5
"""Amounts are rounded to this: finer than a valve meters, and the nearest half millimetre reads plainly."""


@dataclass(frozen=True, slots=True)
class IrrigationPolicy:
    """How a crop is irrigated and the yield that costs: full replenishment, or a regulated deficit in a window of
    its season (``ml.outcome`` holds a season to ``promised_yield_pct``)."""

    name: str
    """What the advice calls it."""
    why: str
    """The reason, in a farmer's words."""
    source: str
    deficit_days: tuple[int, int] = (0, 0)
    """Days after planting (for the vine: budbreak) in which the deficit applies, from the first to before the
    second; none when they are equal."""
    window: tuple[str, str] = ("", "")
    """The deficit window's first and last day in the crop's own terms ("fruit set", "veraison")."""
    deficit_ks: float = 1.0
    """In the deficit window the valve opens when the crop's Ks (FAO-56 eq. 84) is down to this, and refills only
    to RAW (Ks back at 1): the crop spends the window between this share of its water use and all of it."""
    promised_yield_pct: float = 100.0
    """The yield the policy promises against the unstressed crop's (FAO-33): what it accepts losing."""

    def __post_init__(self) -> None:
        first, last = self.deficit_days
        if not (0 <= first <= last and 0 <= self.deficit_ks <= 1 and 0 < self.promised_yield_pct <= 100):
            raise ValueError(f"irrigation policy {self.name!r}: deficit days, Ks or promised yield out of range")

    @property
    def is_deficit(self) -> bool:
        return self.deficit_days[1] > self.deficit_days[0]

    def deficit_on(self, planting: date, day: date) -> bool:
        """Whether ``day`` is in the deficit window of a crop planted on ``planting``."""
        return self.deficit_days[0] <= (day - planting).days < self.deficit_days[1]


@dataclass(frozen=True, slots=True)
class Regime:
    """A crop's policy on one day: in its deficit window or not, and what the crop's own numbers add to it."""

    policy: IrrigationPolicy
    deficit: bool
    p_table: float = 1.0
    """The crop's p of FAO-56 table 22: a layer's trigger never waits past it (``decide``)."""
    days_left: int | None = None
    """Days until the crop's season ends, today included; None when not known."""
    age_days: int = 0
    """Days since planting (for the vine: budbreak)."""

    def trigger_mm(self, raw_mm: float, taw_mm: float) -> float:
        """The depletion at which the valve opens: RAW, or in the deficit window the depletion at which
        Ks = (TAW - Dr) / (TAW - RAW) is down to the policy's."""
        return raw_mm + (1 - self.policy.deficit_ks) * (taw_mm - raw_mm) if self.deficit else raw_mm

    def refill_to_mm(self, raw_mm: float) -> float:
        """The depletion an irrigation leaves: none (field capacity), or RAW in the deficit window."""
        return raw_mm if self.deficit else 0.0

    def words(self, raw_mm: float, taw_mm: float) -> str:
        """The policy in the advice, with its numbers."""
        policy = self.policy
        (first, last), (start, end) = policy.deficit_days, policy.window
        if not policy.is_deficit:
            return f"Policy: {policy.name}, {policy.why}."
        if not self.deficit:
            until = f"until {start} (day {first})" if self.age_days < first else f"since {end} (day {last})"
            return f"Policy: {FULL.name} {until}."
        return (
            f"Policy: {policy.name}, {start} to {end} (days {first}-{last}): dry to "
            f"{num(self.trigger_mm(raw_mm, taw_mm), 0)} mm (Ks {num(policy.deficit_ks, 2)}), refill to "
            f"{num(raw_mm, 0)} mm; {policy.why}; {num(policy.promised_yield_pct, 0)}% of full yield promised."
        )


FULL = IrrigationPolicy(
    name="full replenishment",
    why="every mm short costs yield",
    source="FAO-56 (Allen et al. 1998) ch. 8: irrigate at RAW, refill to field capacity. These crops' yield falls "
    "about as fast as their water use or faster (seasonal Ky 0.95-1.25, FAO-33 table 24; FAO-66, Steduto et al. "
    "2012): water a deficit saves is yield lost, with no gain in quality to pay for it",
)
DEFICIT_KS = 0.5
"""Both deficits open the valve at Ks 0.5 and refill to RAW: the crop gets about 75 % of its water use over the
window, the mildest deficit the trials below tested (75 % of ETc for wine grapes in Cabral et al. 2021,
Agriculture 11: 774; 70 % of ET0 for processing tomatoes in Johnstone et al. 2005, late-season Kc near 1)."""
WINE_GRAPE_RDI = IrrigationPolicy(
    name="deficit irrigation for wine grapes",
    why="smaller berries, better wine",
    source="FAO-66 (Steduto et al. 2012), grapevine: wine-grape yield falls more slowly than its water use (fig. "
    "15, from Intrigliolo & Castel 2008 and others; seasonal Ky 0.85 in FAO-33), and the grape's value per hectare "
    "peaks short of the water that maximises its yield, for the quality a deficit brings; McCarthy, Loveys, Dry & "
    "Stoll 2002 (FAO Water Reports 22, pp. 79-87): the deficit in the post-set period of berry growth, none while "
    "the berries ripen. Fruit set at the end of FAO-56's development stage (table 11: day 20 + 40 after budbreak), "
    "veraison about 60 days later",
    deficit_days=(60, 120),
    window=("fruit set", "veraison"),
    deficit_ks=DEFICIT_KS,
    promised_yield_pct=85.0,
)
"""The window is about half the water a vine uses from April to August (the simulated season): FAO-33 gives
1 - 0.85 x 0.25 x 0.5 = 89 % of full yield; 85 % is promised, room for weeks hotter than the plan."""
PROCESSING_TOMATO_RDI = IrrigationPolicy(
    name="deficit irrigation for processing tomatoes",
    why="more soluble solids, as much paste",
    source="Hartz (UC Davis, in Western Farm Press, 'Deficit irrigation strategies for growing processing "
    "tomatoes'): a deficit during fruit set costs fruit, but once set is complete, five to six weeks before "
    "harvest, fields take 40-60 % of ET0 with little loss; Johnstone, Hartz et al. 2005 (HortScience 40: "
    "1857-1861): a cutback 4-7 weeks before harvest to 30-70 % of ET0 cost fruit weight, not soluble-solids yield. "
    "Harvest at the end of FAO-56's late stage (table 11: 30 + 40 + 40 + 25 = 135 days after planting)",
    deficit_days=(93, 135),
    window=("fruit set", "harvest"),
    deficit_ks=DEFICIT_KS,
    promised_yield_pct=85.0,
)
"""The last six weeks hold about 40 % of the season's water use: FAO-33's seasonal Ky gives 1 - 1.05 x 0.25 x 0.4
= 90 % of full fresh yield (the trials lost less: the late weeks weigh less than the season's Ky); 85 % promised.
The Central Valley's field tomatoes are grown for processing; fresh-market tomatoes would take full replenishment."""

POLICIES: dict[Crop, IrrigationPolicy] = {crop: FULL for crop in Crop} | {
    Crop.GRAPE: WINE_GRAPE_RDI,
    Crop.TOMATO: PROCESSING_TOMATO_RDI,
}
"""Each crop's irrigation policy: a regulated deficit where the crop gains from it, full replenishment elsewhere."""


def regime(zone: Zone, day: date) -> Regime:
    """The policy of the zone's crop as it stands on the farm's ``day``."""
    crop, policy = CROPS[zone.crop], POLICIES[zone.crop]
    age = (day - zone.planting_date).days
    return Regime(policy, policy.deficit_on(zone.planting_date, day), crop.p, crop.season_days - age, age)


PROBE_ERROR_PCT = 1.0
"""How far a soil-moisture probe's reading may be off, % vol: a capacitance probe's calibration, the ±0.01 m3/m3
behind ``ml.kalman``'s measurement noise. The probes of one depth together are off by this over the root of their
number."""


@dataclass(frozen=True, slots=True)
class Layer:
    """One depth the zone's soil-moisture probes watch, over the hour that just closed."""

    depth_cm: float
    theta_pct: float
    """The mean of the depth's probes."""
    lost: float
    """The share of the layer's available water gone: (FC - theta) / (FC - WP); the crop is stressed past p."""
    margin: float = 0.0
    """How much more it may have lost, its probes reading wet by their error (``PROBE_ERROR_PCT``)."""


def driest_layer(context: ZoneContext, root_depth_m: float, reach_cm: float) -> Layer | None:
    """The driest depth the zone's probes watch within the root zone, from each sensor's hour (``context.sensors``;
    a sensor with a flagged reading in the hour left out); None when fewer than two depths are watched (one is
    the zone's mean already) or the sensors' hours are not at hand.

    The balance keeps the root zone as one bucket, its depletion from the mean of every probe. Water does not
    spread that evenly: irrigation wets the top, and in a slow-draining soil the roots there drink much of it
    before it reaches the deeper roots. The mean can then be short of RAW while the lower layer is past its own
    limit, and the crop is stressed there. A probe stands for the soil ``reach_cm`` above and below it; it watches
    the root zone when its reach starts above the roots' depth."""
    soil = SOILS[context.zone.soil]
    flagged = {(s.device, s.sensor) for s in context.suspicions if any(s.flags.values())}
    by_depth: dict[float, list[float]] = {}
    for s in context.sensors:
        if (
            s.kind is SensorKind.SOIL_MOISTURE
            and s.depth_cm is not None
            and s.depth_cm - reach_cm < 100 * root_depth_m
            and (s.device, s.sensor) not in flagged
        ):
            by_depth.setdefault(s.depth_cm, []).append(s.mean)
    if len(by_depth) < 2:
        return None
    available_pct = 100 * (soil.field_capacity - soil.wilting_point)
    layers = [
        Layer(
            depth_cm=depth,
            theta_pct=theta,
            lost=(100 * soil.field_capacity - theta) / available_pct,
            margin=PROBE_ERROR_PCT / math.sqrt(len(means)) / available_pct,
        )
        for depth, means in by_depth.items()
        for theta in [math.fsum(means) / len(means)]
    ]
    return max(layers, key=lambda layer: layer.lost + layer.margin)


@dataclass(frozen=True, slots=True)
class Depletion:
    """A root zone's depletion as one estimator sees it at the close of an hour (all in mm of water)."""

    now_mm: float
    """Depletion now."""
    due_mm: float
    """Depletion when the valve should open: now's when RAW is reached already, RAW when it comes within hours."""
    hours: float | None
    """Hours until the depletion reaches RAW; 0 when it has; None when not within the look-ahead."""
    raw_mm: float
    taw_mm: float
    coverage: float
    """How much the estimate rests on the zone's sensors, 0 to 1."""
    et0_assumed: bool
    """No measured ET0 was at hand; a typical one stood in."""
    driest: Layer | None = None
    """The driest layer the probes watch, when the estimator has the sensors' hours (``driest_layer``)."""
    etc_mm_day: float = 0.0
    """The crop's water use today: near harvest, what it will still use caps the refill."""


@dataclass(frozen=True, slots=True)
class Irrigation:
    """What to do about a ``Depletion``: an amount, a start, a severity, a confidence, and the decision's words."""

    amount_mm: float
    hours: float
    severity: Severity
    confidence: float
    words: str = ""
    """What decided beyond the estimator's own words (the driest layer, the harvest near) and the policy."""
    numbers: Mapping[str, float] = field(default_factory=dict)
    """The numbers behind ``words``, for ``Advice.inputs``."""

    def advice(self, context: ZoneContext, message: str, inputs: dict[str, Any]) -> Advice:
        """The advice to publish: the estimator's words and numbers with the decision's (``compose``)."""
        return Advice(
            kind=RecommendationKind.IRRIGATION,
            severity=self.severity,
            message=compose(message, self.words),
            confidence=self.confidence,
            inputs=inputs | dict(self.numbers),
            valid_for=VALID_FOR,
            amount_mm=self.amount_mm,
            start_at=self.start_at(context),
        )

    def start_at(self, context: ZoneContext) -> datetime:
        """When the valve should open: the close of the hour plus the hours to RAW, to the minute."""
        return context.window_end + timedelta(minutes=round(self.hours * 60))


SENTENCE_END = re.compile(r"(?<=\.)\s+(?=[A-Z])")


def compose(message: str, words: str) -> str:
    """The estimator's first sentence (what, when, how much, the root zone's state), the decision's ``words``, the
    estimator's middle sentences as far as they fit the message's limit (``MAX_MESSAGE``), whole, and its last (how
    long the valve runs): the policy and what decided are never the part cut off."""
    if not words:
        return fit_message(message)
    first, *rest = SENTENCE_END.split(message)
    text = f"{first} {words}"
    last = rest.pop() if rest and len(text) + len(rest[-1]) + 1 <= MAX_MESSAGE else ""
    room = MAX_MESSAGE - len(last) - (1 if last else 0)
    for sentence in rest:
        if len(text) + 1 + len(sentence) > room:
            break
        text = f"{text} {sentence}"
    return fit_message(f"{text} {last}" if last else text)


FULL_REGIME = Regime(FULL, deficit=False)


def decide(depletion: Depletion, pending_mm: float, today: Regime = FULL_REGIME) -> Irrigation | None:
    """The irrigation ``depletion`` calls for under ``today``'s regime once ``pending_mm`` already planned is
    counted; None when none is due or nothing is left to add.

    - Due: full replenishment at RAW, now or at the estimator's hours within its look-ahead, and now when the
      driest watched layer has lost more than p of its own water, within its probes' error, and with p held to
      the crop's table-22 value: a layer past it is stressed already, even on a cool day that raises p. The
      deficit at its own trigger, now, on the zone as a whole: a drier layer is part of the plan.
    - How much: the zone's mean depletion back to the regime's (field capacity, or RAW in the deficit window), so
      no water passes the root zone: what a dry lower layer lacks comes down from the top. Near harvest, no more
      than the crop will use before the season ends beyond what the soil still holds above the trigger.
    """
    d = depletion
    trigger, refill_to = today.trigger_mm(d.raw_mm, d.taw_mm), today.refill_to_mm(d.raw_mm)
    layer_share = min(d.raw_mm, today.p_table * d.taw_mm) / d.taw_mm if d.taw_mm > 0 else 1.0
    driest = d.driest
    layer = driest if driest is not None and not today.deficit and driest.lost + driest.margin >= layer_share else None
    numbers: dict[str, float] = {"trigger_mm": trigger, "refill_to_mm": refill_to, "deficit": float(today.deficit)}
    numbers["promised_yield_pct"] = today.policy.promised_yield_pct
    words = [today.words(d.raw_mm, d.taw_mm)]
    if (today.deficit and d.now_mm >= trigger) or layer is not None:
        hours, refill = 0.0, d.now_mm - refill_to
    elif today.deficit or d.hours is None:
        return None  # the deficit waits for its own trigger, full replenishment for RAW within the look-ahead
    else:
        hours, refill = d.hours, d.due_mm - refill_to
    if layer is not None and d.now_mm < d.raw_mm:
        numbers |= {"layer_depth_cm": layer.depth_cm, "layer_theta_pct": layer.theta_pct, "layer_lost": layer.lost}
        words.insert(
            0,
            f"Its {num(layer.depth_cm, 0)} cm layer reads {layer.theta_pct:.1f}%, {num(100 * layer.lost, 0)}% of "
            f"its water gone ({num(100 * (layer.lost + layer.margin), 0)}% within the probes' error): past the "
            f"{num(100 * layer_share, 0)}% the crop can lose.",
        )
    if today.days_left is not None and today.days_left > 0 and d.etc_mm_day > 0:
        # Water still in the root zone at harvest is water the crop never used (rain left out: never too little).
        # Past harvest there is no crop to plan for: the advisor advises nothing then (``ml.advisor.in_field``).
        use = d.etc_mm_day * today.days_left
        if d.now_mm + use - trigger < refill:
            refill = d.now_mm + use - trigger
            numbers["use_to_harvest_mm"] = use
            words.insert(
                -1,
                f"Harvest in {today.days_left} days: the crop uses about {num(use, 0)} mm until then, "
                f"{num(max(trigger - d.now_mm, 0.0), 0)} mm of it from the soil.",
            )
    amount = round((refill - pending_mm) / STEP_MM) * STEP_MM
    if amount <= 0:
        return None
    stressed = hours == 0 and d.now_mm > (d.raw_mm + d.taw_mm) / 2
    return Irrigation(
        amount_mm=amount,
        hours=hours,
        severity=Severity.WARNING if stressed else Severity.ADVISORY,
        confidence=clamp(0.5 + 0.45 * d.coverage - (0.1 if d.et0_assumed else 0.0), 0.5, 0.95),
        words=" ".join(words),
        numbers=numbers,
    )
