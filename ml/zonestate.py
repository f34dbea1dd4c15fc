"""What a zone's soil is doing at the close of each hour, as the scorer in service sees it: the state of its root
zone against the irrigation trigger, and where its soil moisture is heading. The stream stores both beside the
recommendations (``zone_state``, ``soil_forecast``) so a dashboard draws the numbers the advice was made from.

Pure: each function takes a ``ZoneContext``. The trigger is the advice's own: field capacity less RAW at the
depth the advice manages (``ml.advisor.Estimate.trigger_pct``, ``ml.rules.rootzone.RootZone.trigger_pct``), so the
line a farmer sees on the dashboard is the one below which irrigation is advised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ml.advisor import SoilForecast, estimate
from ml.context import ZoneContext
from ml.dataset import HORIZONS_H
from ml.features import ASSUMED_ET0_MM, zone_features
from ml.rules.rootzone import measured_root_zone
from ml.waterbalance import dry_theta_pct

PHYSICS = "fao56-physics@1"
"""The ``SoilOutlook.model`` of the dry FAO-56 balance run forward (``ml.forecast.physics``'s rule)."""


@dataclass(frozen=True, slots=True)
class ZoneState:
    """A zone's root zone at the close of an hour, by the rule that advises its irrigation."""

    moisture_pct: float
    """The soil moisture measured in the hour (the zone's probes, % vol)."""
    trigger_pct: float
    """Field capacity less RAW over the managed depth: below it, irrigation is advised."""
    field_capacity_pct: float
    depletion_mm: float
    """The depletion the advice compares with RAW (the advisor's is corrected by the water balance)."""
    raw_mm: float
    taw_mm: float
    model: str
    """The scorer's ``model_tag``, as on its recommendations."""


@dataclass(frozen=True, slots=True)
class SoilOutlook:
    """Predicted soil moisture (%) by hours ahead of the hour's close, and the model that predicted it."""

    moisture_pct: Mapping[int, float]
    model: str


def baseline_state(context: ZoneContext, model: str) -> ZoneState | None:
    """The state by ``ml.rules``' rule (the measured soil moisture over the crop's root depth); None without
    soil moisture in the hour that just closed."""
    rz = measured_root_zone(context)
    if rz is None:
        return None
    return ZoneState(rz.theta_pct, rz.trigger_pct, rz.fc_pct, rz.depletion_mm, rz.raw_mm, rz.taw_mm, model)


def advisor_state(context: ZoneContext, model: str) -> ZoneState | None:
    """The state by ``ml.advisor``'s estimate (the corrected balance over the managed depth); None without soil
    moisture in the hour that just closed."""
    est = estimate(context)
    if est is None:
        return None
    return ZoneState(est.theta_pct, est.trigger_pct, est.fc_pct, est.depletion_mm, est.raw_mm, est.taw_mm, model)


def physics_outlook(context: ZoneContext) -> SoilOutlook | None:
    """The dry FAO-56 balance run forward to each forecast horizon, as ``ml.forecast.physics`` judges the
    forecaster against; None without soil moisture in the hour that just closed."""
    row = zone_features(context)
    if math.isnan(row["sm"]):
        return None
    et0 = ASSUMED_ET0_MM if math.isnan(row["et0_last_day"]) else row["et0_last_day"]
    ks = 1.0 if math.isnan(row["ks"]) else row["ks"]
    args = (row["sm"], row["field_capacity_pct"], row["kc"], ks, et0, row["root_depth_m"])
    return SoilOutlook({h: float(dry_theta_pct(*args, h)) for h in HORIZONS_H}, PHYSICS)


def model_outlook(context: ZoneContext, forecaster: SoilForecast, model: str) -> SoilOutlook | None:
    """A forecaster's prediction; None when it cannot say (no soil moisture in the hour)."""
    found = forecaster.forecast(context)
    return SoilOutlook(dict(found), model) if found else None
