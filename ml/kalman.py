"""A Kalman filter over the root zone's depletion and the balance's drift: ``ml.waterbalance`` corrected by
measured soil water.

Pure: no I/O, no clock. The state is x = [D, b]:

- D, the root zone's depletion (mm) as the sensors see it. It may leave the balance's 0..TAW: soil the sensors
  read above the soil's field capacity (water FAO-56 drains the same day) is a negative D, soil below its
  wilting point a D beyond TAW;
- b, the balance's systematic error (mm/day): what the balance misses day after day, an ETc that runs too high or
  too low, water in that is under-counted, drainage slower than FAO-56's same-day rule. A random walk, so it can
  change as the crop and the season do. b > 0: the soil dries faster than the balance says.

Beside x the filter keeps the balance's own depletion within 0..TAW (and its subsoil): that is what Ks, the
drainage at field capacity and the growing roots act on. Each step (a day, or an hour for the advisor):

1. Predict. The balance runs one step from its own state; D moves by the balance's change plus b x the step's
   length: D' = D + (Dr_end - Dr_start) + b dt. The covariance P goes through the same step,
   P' = F P F^T + Q, F = [[s, dt], [0, 1]], where s is the balance's sensitivity (``BalanceState.sensitivity``:
   0 where the day's water filled the root zone past field capacity or the crop dried it to the wilting point,
   so the start no longer matters; the stress slope in between; 1 outside 0..TAW, where the balance does not
   act on D) and Q holds the day's random errors (``Noise``).
2. Update with the step's measured depletion, if any: the gain K = P H^T / (H P H^T + R), H = [1, 0], moves
   D and b by the innovation; R is the sensors' variance over the root zone divided by the observation's weight,
   so weight 0 is no update. The balance's state restarts from the corrected D, within 0..TAW.

Each step sees only its own measurement, so the estimate before a measurement (the prior) uses only earlier
ones. The noise figures (``Noise``'s defaults) are chosen from the physics of the sensors and of FAO-56's
coefficients, not fitted to a season.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from ml.waterbalance import BalanceDay, BalanceState, Subsoil, clamp, step, total_available_water

ET_ERROR_SHARE = 0.10
"""The random day-to-day error of the crop's water use Kc x ET0, as a share of it. Penman-Monteith ET0 from one
station's daily weather scatters by about 10 % around lysimeter ET on single days (it ranked best against
lysimeters in the comparisons FAO-56 ch. 2 rests on), and the day's Kc adds little random error on top: its error
is systematic, which is the drift's."""
WATER_IN_ERROR_SHARE = 0.10
"""The error of the water that came in and stayed (rain less runoff, irrigation), as a share of it. A tipping
bucket under-catches rain by 5-10 % (wind, splash), and a zone's mean irrigation depth from a flow meter and the
irrigated area is good to about 10 % (the distribution uniformity of sprinklers and drippers, 0.8-0.9, moves the
depth at a probe by more, but the zone's mean by less)."""
DRIFT_MM_DAY = 1.0
"""The spread of the balance's systematic error before any measurement (mm/day, one standard deviation). FAO-56's
tabled Kc and Kcb stand for local crops within about 15 % (which is why ch. 6 and 7 adjust them for climate and
why pyfao56 fits them with updates); 15 % of a midseason ETc of 6-7 mm/day is 1 mm/day."""
DRIFT_CHANGE_MM_DAY = 0.2
"""How fast the systematic error changes (mm/day per square-root day, the random walk of b). A Kc error holds
through a growth stage, 25-50 days in FAO-56 table 11: moving by its whole 1 mm/day spread within about 25 days
is a step of 1 / sqrt(25) = 0.2 a day."""
THETA_SD = 0.01
"""The random error of the root zone's measured mean water content (m3/m3, one standard deviation) after a field
calibration: a calibrated neutron probe or capacitance sensor reads within about +-0.01-0.02 m3/m3 of gravimetric
samples, the lower end for a root-zone mean over several depths. Over Zr metres it is 1000 x 0.01 x Zr mm of
depletion: 3 mm over 0.3 m, 15 mm over 1.5 m."""


@dataclass(frozen=True, slots=True)
class Noise:
    """The filter's error variances, from the figures above; ``smartfarm balance`` takes each as an option."""

    et_share: float = ET_ERROR_SHARE
    water_in_share: float = WATER_IN_ERROR_SHARE
    drift_mm_day: float = DRIFT_MM_DAY
    drift_change_mm_day: float = DRIFT_CHANGE_MM_DAY
    theta_sd: float = THETA_SD

    def __post_init__(self) -> None:
        values = (self.et_share, self.water_in_share, self.drift_mm_day, self.drift_change_mm_day, self.theta_sd)
        if not all(math.isfinite(v) and v >= 0 for v in values) or self.theta_sd == 0:
            raise ValueError(f"noise figures must be finite and >= 0, the sensors' above 0, got {self}")

    def measurement_var(self, root_depth_m: float) -> float:
        """R (mm2) of a full-weight measurement of a root zone ``root_depth_m`` deep."""
        return (1000 * self.theta_sd * root_depth_m) ** 2

    def process_var(self, state: BalanceState, days: float) -> float:
        """The random error (mm2) a step of ``days`` adds to D: ET's grows with the step's length (independent
        from step to step), water in's comes with each event."""
        return (self.et_share * state.etc_adj_mm) ** 2 / days + (self.water_in_share * state.retained_mm) ** 2


@dataclass(frozen=True, slots=True)
class Observation:
    """A measured state for a step: the depletion from measured soil water and how far to trust it."""

    depletion_mm: float
    """Dr from measured soil water (mm); negative when the sensors read above field capacity."""
    weight: float
    """0..1 quality from the sensors' quality flags and coverage: 1 trusted, 0 ignored (R / weight)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.depletion_mm) and 0 <= self.weight <= 1):
            raise ValueError(f"observation needs a finite depletion and a weight within 0..1, got {self}")


@dataclass(frozen=True, slots=True)
class Filter:
    """The filter between steps: the estimate, its covariance, and the balance's own state."""

    depletion_mm: float
    drift_mm_day: float
    var_depletion: float
    """P[0, 0] (mm2)."""
    cov: float
    """P[0, 1] (mm2/day)."""
    var_drift: float
    """P[1, 1] ((mm/day)2)."""
    balance_mm: float
    """The balance's depletion within 0..TAW, which Ks, drainage and root growth act on."""
    root_depth_m: float | None = None
    subsoil: Subsoil = field(default_factory=Subsoil)
    taw_mm: float = math.inf
    """The TAW of the last step's root zone: the balance's upper bound."""
    gain: float = 0.0
    """The gain K[0] of the last update (0 when the step had none)."""

    @classmethod
    def start(cls, depletion_mm: float, root_depth_m: float, noise: Noise, subsoil: Subsoil | None = None) -> Filter:
        """A filter starting from a measured depletion (FAO-56 eq. 87 starts the balance from measured water):
        D as good as a measurement of the first root zone, no drift known yet."""
        return cls(
            depletion_mm=depletion_mm,
            drift_mm_day=0.0,
            var_depletion=noise.measurement_var(root_depth_m),
            cov=0.0,
            var_drift=noise.drift_mm_day**2,
            balance_mm=max(0.0, depletion_mm),
            subsoil=subsoil or Subsoil(),
        )

    @property
    def sd_mm(self) -> float:
        return math.sqrt(self.var_depletion)


def predict(state: Filter, day: BalanceDay, noise: Noise, days: float = 1.0) -> tuple[Filter, BalanceState]:
    """Step 1: the balance over ``day`` (``days`` long: 1/24 for an hour) and the prior it gives."""
    taw = total_available_water(day.field_capacity, day.wilting_point, day.root_depth_m)
    start = clamp(state.balance_mm, 0.0, taw)
    balance = step(start, state.root_depth_m, day, prev_subsoil=state.subsoil)
    acts = 0 <= state.depletion_mm <= taw  # outside 0..TAW the balance's change does not depend on D
    s = balance.sensitivity if acts else 1.0
    p00, p01, p11 = state.var_depletion, state.cov, state.var_drift
    prior = replace(
        state,
        depletion_mm=state.depletion_mm + balance.depletion_mm - start + state.drift_mm_day * days,
        var_depletion=s * s * p00 + 2 * s * days * p01 + days * days * p11 + noise.process_var(balance, days),
        cov=s * p01 + days * p11,
        var_drift=p11 + noise.drift_change_mm_day**2 * days,
        balance_mm=balance.depletion_mm,
        root_depth_m=day.root_depth_m,
        subsoil=balance.subsoil,
        taw_mm=taw,
        gain=0.0,
    )
    return prior, balance


def update(prior: Filter, observation: Observation, noise: Noise) -> Filter:
    """Step 2: the prior corrected by ``observation`` (Joseph form, which keeps P symmetric and positive)."""
    if observation.weight <= 0 or prior.root_depth_m is None:
        return prior
    r = noise.measurement_var(prior.root_depth_m) / observation.weight
    p00, p01, p11 = prior.var_depletion, prior.cov, prior.var_drift
    k0, k1 = p00 / (p00 + r), p01 / (p00 + r)
    innovation = observation.depletion_mm - prior.depletion_mm
    depletion = prior.depletion_mm + k0 * innovation
    return replace(
        prior,
        depletion_mm=depletion,
        drift_mm_day=prior.drift_mm_day + k1 * innovation,
        var_depletion=(1 - k0) ** 2 * p00 + k0 * k0 * r,
        cov=(1 - k0) * (p01 - k1 * p00) + k0 * k1 * r,
        var_drift=k1 * k1 * p00 - 2 * k1 * p01 + p11 + k1 * k1 * r,
        balance_mm=clamp(depletion, 0.0, prior.taw_mm),
        gain=k0,
    )


def filter_step(
    state: Filter, day: BalanceDay, observation: Observation | None, noise: Noise, days: float = 1.0
) -> tuple[Filter, BalanceState]:
    """One step, predicted and updated: the new filter, and the step's balance with the filter's prior and
    posterior as its ``prior_depletion_mm`` and ``depletion_mm``."""
    prior, balance = predict(state, day, noise, days)
    posterior = prior if observation is None else update(prior, observation, noise)
    return posterior, replace(
        balance,
        depletion_mm=posterior.depletion_mm,
        prior_depletion_mm=prior.depletion_mm,
        corrected=posterior is not prior,
        measured_depletion_mm=None if observation is None else observation.depletion_mm,
        drift_mm_day=posterior.drift_mm_day,
    )


def run(
    days: Sequence[BalanceDay],
    initial_depletion_mm: float,
    observations: Mapping[date, Observation],
    noise: Noise | None = None,
    *,
    initial_subsoil_depletion_mm: float = 0.0,
) -> list[BalanceState]:
    """``ml.waterbalance.run`` corrected by ``observations`` (by day): each day sees only its own, so no estimate
    sees a later measurement."""
    if not days:
        return []
    noise = noise or Noise()
    subsoil = Subsoil(initial_subsoil_depletion_mm, days[0].subsoil_taw_mm)
    state = Filter.start(initial_depletion_mm, days[0].root_depth_m, noise, subsoil)
    states = []
    for day in days:
        state, found = filter_step(state, day, observations.get(day.day), noise)
        states.append(found)
    return states
