"""What a sensor reports: the true value from the weather or the zone, plus the device's own errors.

Each sensor of each device has a calibration offset drawn once, Gaussian noise on every reading, and the
physical range and resolution of its kind.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from edge.soil import SimulatedZone
from edge.weather import Weather
from smartfarm.layout import Sensor, SensorKind
from smartfarm.sensing import PRECISION


@dataclass(frozen=True, slots=True)
class ErrorModel:
    """How a sensor of one kind errs: a fixed offset and noise (standard deviations), and its resolution. Its
    measuring range is the kind's ``physical_range``, which the stream's cleaning checks too."""

    offset_sd: float
    noise_sd: float
    resolution: float


OFFSET_SD: dict[SensorKind, float] = {
    SensorKind.AIR_TEMPERATURE: 0.3,
    SensorKind.AIR_HUMIDITY: 1.5,
    SensorKind.SOLAR_RADIATION: 10.0,
    SensorKind.WIND_SPEED: 0.05,
    SensorKind.RAINFALL: 0.0,
    SensorKind.SOIL_MOISTURE: 1.0,
    SensorKind.SOIL_TEMPERATURE: 0.2,
    SensorKind.LEAF_WETNESS: 0.0,
    SensorKind.BATTERY: 0.0,
}
"""The spread of each kind's calibration offsets from one device to the next."""
ERRORS: dict[SensorKind, ErrorModel] = {
    kind: ErrorModel(OFFSET_SD[kind], p.noise_sd, p.resolution) for kind, p in PRECISION.items()
}
"""Noise and resolution are the kind's ``smartfarm.sensing.PRECISION``, which the fault detector reads too."""


def true_value(sensor: Sensor, weather: Weather, zone: SimulatedZone, battery_v: float) -> float:
    """What the sensor would read with no error at all."""
    kind = sensor.kind
    if kind is SensorKind.AIR_TEMPERATURE:
        return weather.air_temp_c
    if kind is SensorKind.AIR_HUMIDITY:
        return weather.humidity_pct
    if kind is SensorKind.SOLAR_RADIATION:
        return weather.solar_wm2
    if kind is SensorKind.WIND_SPEED:
        return weather.wind_ms
    if kind is SensorKind.RAINFALL:
        return weather.rain_mm
    if kind is SensorKind.SOIL_MOISTURE:
        return zone.moisture_pct(sensor.depth_cm or 0)
    if kind is SensorKind.SOIL_TEMPERATURE:
        return zone.soil_temperature(sensor.depth_cm or 0, weather.air_temp_c)
    if kind is SensorKind.LEAF_WETNESS:
        return zone.leaf_wetness
    return battery_v


class SensorErrors:
    """The error of every sensor of one device."""

    def __init__(self, sensors: tuple[Sensor, ...], rng: random.Random) -> None:
        self.rng = rng
        self.offsets = {s.id: rng.gauss(0, ERRORS[s.kind].offset_sd) for s in sensors}
        self._rain_carry = 0.0

    def observe(self, sensor: Sensor, value: float) -> float:
        """``value`` as the sensor reports it: offset, noise, range and resolution applied."""
        model = ERRORS[sensor.kind]
        if sensor.kind is SensorKind.RAINFALL:
            # A tipping bucket counts whole tips; the remainder waits for the next reading.
            total = value + self._rain_carry
            tips = int(total / model.resolution + 1e-9)
            self._rain_carry = total - tips * model.resolution
            return round(tips * model.resolution, 3)
        observed = value + self.offsets[sensor.id] + self.rng.gauss(0, model.noise_sd)
        return clamp_to_sensor(sensor.kind, observed)


def clamp_to_sensor(kind: SensorKind, value: float) -> float:
    """``value`` within the kind's physical range, at its resolution."""
    model = ERRORS[kind]
    low, high = kind.physical_range
    bounded = min(high, max(low, value))
    return round(round(bounded / model.resolution) * model.resolution, 4)
