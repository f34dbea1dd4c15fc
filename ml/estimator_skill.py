"""How well the root-zone estimators know the soil of a simulated season, against its true soil water.

The simulator (``edge.season``) records each zone's true water content of its two layers (0-30 and 30-60 cm)
beside the readings its probes deliver. Over the root zone the advisor manages (``ml.advisor.managed_depth_m``),
the true depletion is 1000 x sum((theta_FC - theta_layer) x the layer's share of Zr), at least 0 (the simulator
drains water above field capacity within hours, the estimators count it as none). Judged per zone:

- the advisor's hourly estimate (``ml.advisor.estimate``: the Kalman filter over the 48 h shown), every
  ``every_h`` hours, and the sensors alone (the measured depletion of the same hour);
- the daily balance over the season, each day's inputs summed from the truth (ET0, rain, irrigation) and each
  day corrected by the probes' last hour of the day: open loop, the fixed gain 0.3 the filter replaced
  (``FIXED_GAIN``, kept here only as the baseline it is judged against) and the Kalman filter (``ml.kalman``).

Pure: the season's tables in, a table of RMSE and bias (mm) per zone and estimator out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ml import kalman
from ml.advisor import HOURS, estimate, in_field, managed_depth_m
from ml.dataset import hourly_aggregates, zone_aggregates
from ml.timeline import HOUR, ZoneTimeline, zone_days
from ml.waterbalance import BalanceDay, BalanceState, depletion_from_theta, root_depth_m, run
from smartfarm.agronomy import CROPS, SOILS, crop_coefficient
from smartfarm.layout import Layout, SensorKind, Zone
from smartfarm.records import ZoneAggregate

LAYER_M = (0.30, 0.30)
"""The simulator's two soil layers (``edge.soil``): 0-30 and 30-60 cm."""
FIXED_GAIN = 0.3
"""The daily correction the Kalman filter replaced: Dr = prior + 0.3 x weight x (measured - prior), kept within
0..TAW (its steady-state gain for Q = 1 mm2/day, R = 10 mm2, rounded)."""
ESTIMATORS = ("advisor hourly", "sensors alone", "open loop", "fixed gain", "kalman")


def true_depletion(theta_top: float, theta_low: float, field_capacity: float, zr: float) -> float:
    """The simulator's true depletion (mm, >= 0) over the top ``zr`` metres."""
    top = min(zr, LAYER_M[0])
    low = max(0.0, min(zr, sum(LAYER_M)) - LAYER_M[0])
    return max(0.0, 1000 * ((field_capacity - theta_top) * top + (field_capacity - theta_low) * low))


def fixed_gain_run(
    days: Sequence[BalanceDay], initial_mm: float, observations: Mapping[date, kalman.Observation]
) -> list[float]:
    """The baseline: the balance corrected by ``FIXED_GAIN`` x weight each measured day; the end-of-day Dr."""
    out, depletion = [], initial_mm
    for day in days:
        [state] = run([day], depletion)
        depletion = state.depletion_mm
        found = observations.get(day.day)
        if found is not None:
            depletion += FIXED_GAIN * found.weight * (found.depletion_mm - depletion)
            depletion = min(state.taw_mm, max(0.0, depletion))
        out.append(depletion)
    return out


def _errors(name: str, estimated: Iterable[float], truth: Iterable[float]) -> dict[str, object]:
    error = np.asarray(list(estimated), dtype=float) - np.asarray(list(truth), dtype=float)
    if error.size == 0:
        return {"estimator": name, "n": 0, "rmse": math.nan, "bias": math.nan}
    return {
        "estimator": name,
        "n": int(error.size),
        "rmse": float(np.sqrt((error**2).mean())),
        "bias": float(error.mean()),
    }


class _Zone:
    """One zone of a season: its timeline of aggregates and its true layers by tick."""

    def __init__(self, layout: Layout, farm_id: str, zone: Zone, hourly: pd.DataFrame, truth: pd.DataFrame) -> None:
        self.farm = next(f for f in layout.farms if f.id == farm_id)
        self.zone = zone
        self.soil = SOILS[zone.soil]
        self.tz = ZoneInfo(self.farm.timezone)
        hours = zone_aggregates(hourly, farm_id, zone.id)
        self.timeline = ZoneTimeline(self.farm, zone, hours, zone_days(self.farm, zone, hours))
        mine = truth[(truth["farm"] == farm_id) & (truth["zone"] == zone.id)]
        self.truth = mine.set_index("ts").sort_index()
        self.soil_hours: dict[datetime, ZoneAggregate] = {
            a.window_end: a for a in self.timeline.by_kind.get(SensorKind.SOIL_MOISTURE, [])
        }

    def truth_at(self, end: datetime, zr: float) -> float:
        row = self.truth.loc[:end].iloc[-1]
        return true_depletion(float(row["theta_top"]), float(row["theta_low"]), self.soil.field_capacity, zr)

    def zr(self, day: date) -> float:
        context = self.timeline.context(next(iter(self.soil_hours)))
        return managed_depth_m(context, root_depth_m(self.zone.crop, self.zone.planting_date, day))

    def hourly(self, every_h: int) -> list[dict[str, object]]:
        ends = sorted(self.soil_hours)
        first = ends[0] + timedelta(hours=HOURS)
        found: list[tuple[float, float, float]] = []
        for end in ends[:: max(1, every_h)]:
            context = self.timeline.context(end)
            if end < first or not in_field(context):
                continue
            est = estimate(context)
            if est is not None:
                found.append((est.depletion_mm, est.measured_mm, self.truth_at(end, est.root_depth_m)))
        return [
            _errors("advisor hourly", [f[0] for f in found], [f[2] for f in found]),
            _errors("sensors alone", [f[1] for f in found], [f[2] for f in found]),
        ]

    def daily(self) -> list[dict[str, object]]:
        """The daily balance from the truth's inputs, corrected by the last soil hour of each local day."""
        local = self.truth.index.tz_convert(self.tz)
        sums = self.truth[["et0_mm", "rain_mm", "irrigation_mm"]].groupby(local.date).sum()
        most = max((a.count for a in self.soil_hours.values()), default=0)
        last_hour: dict[date, ZoneAggregate] = {}
        for end, a in sorted(self.soil_hours.items()):
            last_hour[(end - HOUR).astimezone(self.tz).date()] = a
        days, observations, truth = [], {}, []
        crop = CROPS[self.zone.crop]
        for day, row in sums.iloc[1:-1].iterrows():  # whole days only
            if day < self.zone.planting_date or day not in last_hour:
                continue
            zr = self.zr(day)
            days.append(
                BalanceDay(
                    day=day,
                    et0_mm=float(row["et0_mm"]),
                    rain_mm=float(row["rain_mm"]),
                    irrigation_mm=float(row["irrigation_mm"]),
                    kc=crop_coefficient(self.zone.crop, self.zone.planting_date, day),
                    root_depth_m=zr,
                    p_table=crop.p,
                    field_capacity=self.soil.field_capacity,
                    wilting_point=self.soil.wilting_point,
                )
            )
            seen = last_hour[day]
            measured = depletion_from_theta(seen.mean / 100, self.soil.field_capacity, zr)
            observations[day] = kalman.Observation(measured, min(1.0, seen.count / most))
            truth.append(self.truth_at(seen.window_end, zr))
        if not days:
            return [_errors(name, [], []) for name in ("open loop", "fixed gain", "kalman")]
        # Each starts from the first day's reading, as the advisor starts from its first hour's, and is
        # corrected from the second day on.
        start = observations[days[0].day].depletion_mm
        rest = {d: o for d, o in observations.items() if d != days[0].day}
        states: list[BalanceState] = kalman.run(days, start, rest)
        return [
            _errors("open loop", [s.depletion_mm for s in run(days, start)], truth),
            _errors("fixed gain", fixed_gain_run(days, start, rest), truth),
            _errors("kalman", [s.depletion_mm for s in states], truth),
        ]


def simulated_skill(
    layout: Layout, readings: pd.DataFrame, truth: pd.DataFrame, every_h: int = 6, season: int = 0
) -> pd.DataFrame:
    """One row per zone and estimator of a simulated season (``edge.season.SeasonTables``' ``layout``,
    ``readings`` and ``truth``): the estimate's RMSE and bias (mm) against the true depletion, and ``n``."""
    hourly = hourly_aggregates(readings)
    rows = []
    for farm in layout.farms:
        for zone in farm.zones:
            one = _Zone(layout, farm.id, zone, hourly, truth)
            if not one.soil_hours:
                continue
            for found in one.hourly(every_h) + one.daily():
                rows.append(
                    {"season": season, "zone": zone.id, "crop": zone.crop.value, "soil": zone.soil.value} | found
                )
    return pd.DataFrame(rows)
