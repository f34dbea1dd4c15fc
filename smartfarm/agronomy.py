"""Crop and soil parameters from FAO Irrigation and Drainage Paper 56 (Allen et al., 1998).

Shared by the simulator (edge) and the models (ml): crop coefficients and growth stages (tables 11 and 12),
rooting depth and the depletion fraction p (table 22), soil water limits by texture (table 19, midpoints), and
wind measured at another height brought to the 2 m of the reference surface (eq. 47).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from smartfarm.layout import Crop, Soil


class CropStage(StrEnum):
    """FAO-56 crop growth stages."""

    INITIAL = "initial"
    """From planting to about 10 % ground cover."""
    DEVELOPMENT = "development"
    """Until effective full cover."""
    MID_SEASON = "mid_season"
    """Full cover until maturity starts."""
    LATE_SEASON = "late_season"
    """Maturity until harvest."""
    HARVESTED = "harvested"
    """After the season's last day."""


@dataclass(frozen=True, slots=True)
class CropParams:
    kc_ini: float
    kc_mid: float
    kc_end: float
    stage_days: tuple[int, int, int, int]
    """Lengths of the initial, development, mid-season and late-season stages (days)."""
    root_depth_m: float
    p: float
    """Fraction of total available water that can be depleted before the crop suffers (FAO-56 table 22)."""

    @property
    def season_days(self) -> int:
        return sum(self.stage_days)


CROPS: dict[Crop, CropParams] = {
    Crop.TOMATO: CropParams(0.60, 1.15, 0.80, (30, 40, 40, 25), 1.0, 0.40),
    Crop.MAIZE: CropParams(0.30, 1.20, 0.60, (20, 35, 40, 30), 1.2, 0.55),
    Crop.WHEAT: CropParams(0.30, 1.15, 0.25, (20, 25, 60, 30), 1.2, 0.55),
    Crop.POTATO: CropParams(0.50, 1.15, 0.75, (25, 30, 45, 30), 0.5, 0.35),
    Crop.LETTUCE: CropParams(0.70, 1.00, 0.95, (20, 30, 15, 10), 0.4, 0.30),
    Crop.GRAPE: CropParams(0.30, 0.85, 0.45, (20, 40, 120, 60), 1.5, 0.35),
}


@dataclass(frozen=True, slots=True)
class SoilParams:
    field_capacity: float
    """Volumetric water content after free drainage (m3/m3)."""
    wilting_point: float
    """Volumetric water content at which plants wilt (m3/m3)."""
    saturation: float
    """Volumetric water content with every pore filled (m3/m3)."""
    drainage_per_h: float
    """Share of the water above field capacity that drains away in an hour."""


SOILS: dict[Soil, SoilParams] = {
    Soil.SAND: SoilParams(0.12, 0.045, 0.38, 0.50),
    Soil.LOAMY_SAND: SoilParams(0.14, 0.06, 0.40, 0.40),
    Soil.SANDY_LOAM: SoilParams(0.23, 0.10, 0.42, 0.25),
    Soil.LOAM: SoilParams(0.25, 0.12, 0.45, 0.15),
    Soil.SILT_LOAM: SoilParams(0.29, 0.15, 0.47, 0.12),
    Soil.SILT: SoilParams(0.32, 0.17, 0.48, 0.10),
    Soil.SILTY_CLAY_LOAM: SoilParams(0.34, 0.21, 0.49, 0.07),
    Soil.SILTY_CLAY: SoilParams(0.36, 0.23, 0.50, 0.05),
    Soil.CLAY: SoilParams(0.36, 0.24, 0.50, 0.04),
}


def growth_stage(crop: Crop, planting: date, day: date) -> CropStage:
    """The crop's FAO-56 stage on ``day``."""
    age = (day - planting).days
    if age < 0:
        return CropStage.INITIAL
    for stage, length in zip(
        (CropStage.INITIAL, CropStage.DEVELOPMENT, CropStage.MID_SEASON, CropStage.LATE_SEASON),
        CROPS[crop].stage_days,
        strict=True,
    ):
        if age < length:
            return stage
        age -= length
    return CropStage.HARVESTED


def crop_coefficient(crop: Crop, planting: date, day: date) -> float:
    """Single crop coefficient Kc on ``day`` (FAO-56 fig. 25: flat, rising, flat, falling)."""
    params = CROPS[crop]
    l_ini, l_dev, l_mid, l_late = params.stage_days
    age = (day - planting).days
    if age < l_ini:
        return params.kc_ini
    age -= l_ini
    if age < l_dev:
        return params.kc_ini + (params.kc_mid - params.kc_ini) * age / l_dev
    age -= l_dev
    if age < l_mid:
        return params.kc_mid
    age -= l_mid
    if age < l_late:
        return params.kc_mid + (params.kc_end - params.kc_mid) * age / l_late
    return params.kc_end


def wind_at_2m(speed_ms: float, height_m: float) -> float:
    """Wind speed at 2 m above the ground from ``speed_ms`` measured (or forecast) at ``height_m``, by FAO-56 eq. 47
    (a logarithmic profile over short grass): the reference ET equations take wind at 2 m, weather models and
    stations give it at 10 m, where it is about a third faster (x 0.748)."""
    if height_m <= 0.1:
        raise ValueError(f"a wind height of {height_m} m is below the profile eq. 47 describes")
    return speed_ms * 4.87 / math.log(67.8 * height_m - 5.42)
