"""A zone's soil and canopy: a two-layer water balance (FAO-56), soil temperature and leaf wetness.

Pure state that advances one step at a time from the weather and any irrigation. Water is tracked as
volumetric content (m3/m3) of a top layer (0-30 cm) and a lower layer (30-60 cm):

- evapotranspiration ETc = Kc x Ks x ET0 (FAO-56 eq. 58 and 84) is taken from the layers in proportion to the
  roots in each; Ks falls linearly from 1 once a layer's water is below the readily available limit;
- rain and irrigation wet the top layer; water above saturation runs off;
- water above field capacity drains, a soil-dependent share per hour, from the top layer into the lower one
  and from the lower one out of the root zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from edge.weather import Weather
from smartfarm.agronomy import CROPS, SOILS, crop_coefficient
from smartfarm.layout import Zone

LAYER_M = 0.30
LAYER_BOTTOMS_CM = (30.0, 60.0)


@dataclass(slots=True)
class ZoneBalance:
    """Water moved in one step, in mm over the zone."""

    etc_mm: float = 0.0
    rain_mm: float = 0.0
    irrigation_mm: float = 0.0
    runoff_mm: float = 0.0
    drainage_mm: float = 0.0


@dataclass(slots=True)
class SimulatedZone:
    """One zone's soil water, soil temperature, leaf wetness and pending irrigation."""

    zone: Zone
    theta: list[float]
    soil_temp_c: dict[float, float] = field(default_factory=dict)
    leaf_wetness: float = 0.0
    irrigation_pending_mm: float = 0.0
    irrigation_applied_mm: float = 0.0
    last: ZoneBalance = field(default_factory=ZoneBalance)

    @classmethod
    def initial(cls, zone: Zone, fraction_of_available: float = 0.8, air_temp_c: float = 15.0) -> SimulatedZone:
        """Both layers at ``fraction_of_available`` of the way from wilting point to field capacity."""
        soil = SOILS[zone.soil]
        theta = soil.wilting_point + fraction_of_available * (soil.field_capacity - soil.wilting_point)
        return cls(zone=zone, theta=[theta, theta], soil_temp_c={}, leaf_wetness=0.0)

    @property
    def water_mm(self) -> float:
        """Water held in both layers, mm."""
        return sum(t * LAYER_M * 1000 for t in self.theta)

    def moisture_pct(self, depth_cm: float) -> float:
        """Volumetric water content at ``depth_cm``, percent."""
        return 100 * self.theta[0 if depth_cm <= LAYER_BOTTOMS_CM[0] else 1]

    def soil_temperature(self, depth_cm: float, air_temp_c: float) -> float:
        return self.soil_temp_c.get(depth_cm, air_temp_c)

    def irrigate(self, amount_mm: float) -> None:
        """Schedule ``amount_mm`` of irrigation, applied at the zone's irrigation rate from the next step."""
        if amount_mm > 0:
            self.irrigation_pending_mm += amount_mm

    def step(self, weather: Weather, step_s: float, depths_cm: tuple[float, ...] = ()) -> ZoneBalance:
        """Advance the zone by ``step_s`` seconds of ``weather``."""
        soil = SOILS[self.zone.soil]
        crop = CROPS[self.zone.crop]
        hours = step_s / 3600
        balance = ZoneBalance(rain_mm=weather.rain_mm)

        irrigation = min(self.irrigation_pending_mm, self.zone.irrigation_rate_mm_h * hours)
        self.irrigation_pending_mm -= irrigation
        self.irrigation_applied_mm += irrigation
        balance.irrigation_mm = irrigation

        # Water in: rain and irrigation into the top layer, the excess over saturation runs off.
        top_capacity_mm = (soil.saturation - self.theta[0]) * LAYER_M * 1000
        infiltrated = min(weather.rain_mm + irrigation, top_capacity_mm)
        balance.runoff_mm = weather.rain_mm + irrigation - infiltrated
        self.theta[0] += infiltrated / (LAYER_M * 1000)

        # Water out: ETc from the layers by root share, reduced by water stress.
        kc = crop_coefficient(self.zone.crop, self.zone.planting_date, weather.time.date())
        top_share = 1.0 if crop.root_depth_m <= LAYER_M else max(0.6, LAYER_M / crop.root_depth_m)
        for layer, share in enumerate((top_share, 1 - top_share)):
            if share <= 0:
                continue
            threshold = soil.field_capacity - crop.p * (soil.field_capacity - soil.wilting_point)
            ks = (
                1.0
                if self.theta[layer] >= threshold
                else max(0.0, (self.theta[layer] - soil.wilting_point) / (threshold - soil.wilting_point))
            )
            demand_mm = kc * ks * weather.et0_mm * share
            floor = soil.wilting_point * 0.5  # air-dry: even evaporation stops here
            taken = min(demand_mm, max(0.0, (self.theta[layer] - floor) * LAYER_M * 1000))
            self.theta[layer] -= taken / (LAYER_M * 1000)
            balance.etc_mm += taken

        # Drainage above field capacity: top into lower, lower out of the root zone.
        fraction = 1 - math.exp(-soil.drainage_per_h * hours)
        moved = max(0.0, self.theta[0] - soil.field_capacity) * fraction
        self.theta[0] -= moved
        room = soil.saturation - self.theta[1]
        self.theta[1] += min(moved, room)
        self.theta[0] += moved - min(moved, room)
        out = max(0.0, self.theta[1] - soil.field_capacity) * fraction
        self.theta[1] -= out
        balance.drainage_mm = out * LAYER_M * 1000

        # Soil temperature follows the air, damped and delayed more the deeper the sensor.
        for depth in depths_cm:
            tau_h = max(1.0, depth / 2.5)
            current = self.soil_temp_c.get(depth, weather.air_temp_c)
            self.soil_temp_c[depth] = current + (weather.air_temp_c - current) * (1 - math.exp(-hours / tau_h))

        self.leaf_wetness = next_leaf_wetness(self.leaf_wetness, weather, hours, irrigation > 0)
        self.last = balance
        return balance


def next_leaf_wetness(current: float, weather: Weather, hours: float, sprinkled: bool) -> float:
    """Leaf wetness (percent of the sensor wet): rain or irrigation wets it at once, dew builds on humid still
    nights, and it dries with the vapour pressure deficit, the sun and the wind."""
    if weather.rain_mm > 0.05 or sprinkled:
        return 100.0
    if weather.humidity_pct >= 90 and weather.solar_wm2 < 20:
        return min(100.0, current + 60 * hours * (weather.humidity_pct - 88) / 12 / (1 + weather.wind_ms))
    dryness = (100 - weather.humidity_pct) / 100 * (1 + weather.solar_wm2 / 300 + weather.wind_ms / 3)
    return max(0.0, current * math.exp(-2.0 * dryness * hours))
