"""The farm layout: farms, their zones and devices with their sensors, read from one YAML file.

Every component reads the same file (``SMARTFARM_LAYOUT``, or the bundled default farm). Every id follows the
identifier rule of ``smartfarm.identifiers``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from smartfarm.errors import ConfigError
from smartfarm.identifiers import Identifier


class SensorKind(StrEnum):
    """What a sensor measures. Each kind has one unit on the wire (see ``unit``)."""

    AIR_TEMPERATURE = "air_temperature"
    """Air temperature at 2 m, degrees Celsius."""
    AIR_HUMIDITY = "air_humidity"
    """Relative humidity of the air, percent."""
    SOLAR_RADIATION = "solar_radiation"
    """Global solar irradiance on a horizontal surface, W/m2."""
    WIND_SPEED = "wind_speed"
    """Wind speed at 2 m, m/s."""
    RAINFALL = "rainfall"
    """Rain since the device's previous message, mm."""
    SOIL_MOISTURE = "soil_moisture"
    """Volumetric soil water content at the sensor's depth, percent."""
    SOIL_TEMPERATURE = "soil_temperature"
    """Soil temperature at the sensor's depth, degrees Celsius."""
    LEAF_WETNESS = "leaf_wetness"
    """Share of the leaf-wetness sensor's surface that is wet, percent."""
    BATTERY = "battery"
    """The device's battery voltage, volts."""

    @property
    def unit(self) -> str:
        return _UNITS[self]

    @property
    def physical_range(self) -> tuple[float, float]:
        """The lowest and highest value a working sensor of this kind can report (its measuring range)."""
        return _RANGES[self]

    @property
    def has_depth(self) -> bool:
        return self in (SensorKind.SOIL_MOISTURE, SensorKind.SOIL_TEMPERATURE)


_UNITS = {
    SensorKind.AIR_TEMPERATURE: "degC",
    SensorKind.AIR_HUMIDITY: "%",
    SensorKind.SOLAR_RADIATION: "W/m2",
    SensorKind.WIND_SPEED: "m/s",
    SensorKind.RAINFALL: "mm",
    SensorKind.SOIL_MOISTURE: "%",
    SensorKind.SOIL_TEMPERATURE: "degC",
    SensorKind.LEAF_WETNESS: "%",
    SensorKind.BATTERY: "V",
}


_RANGES = {
    SensorKind.AIR_TEMPERATURE: (-40.0, 60.0),
    SensorKind.AIR_HUMIDITY: (0.0, 100.0),
    SensorKind.SOLAR_RADIATION: (0.0, 1500.0),
    SensorKind.WIND_SPEED: (0.0, 60.0),
    SensorKind.RAINFALL: (0.0, 200.0),
    SensorKind.SOIL_MOISTURE: (0.0, 60.0),
    SensorKind.SOIL_TEMPERATURE: (-20.0, 60.0),
    SensorKind.LEAF_WETNESS: (0.0, 100.0),
    SensorKind.BATTERY: (0.0, 5.0),
}


class Crop(StrEnum):
    """Crops the models and the simulator know (FAO-56 table 12 crop coefficients exist for each)."""

    TOMATO = "tomato"
    MAIZE = "maize"
    WHEAT = "wheat"
    POTATO = "potato"
    LETTUCE = "lettuce"
    GRAPE = "grape"


class Soil(StrEnum):
    """Soil texture classes (USDA), which set field capacity and wilting point (FAO-56 table 19)."""

    SAND = "sand"
    LOAMY_SAND = "loamy_sand"
    SANDY_LOAM = "sandy_loam"
    LOAM = "loam"
    SILT_LOAM = "silt_loam"
    SILT = "silt"
    SILTY_CLAY_LOAM = "silty_clay_loam"
    SILTY_CLAY = "silty_clay"
    CLAY = "clay"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sensor(_Strict):
    id: Identifier
    kind: SensorKind
    depth_cm: float | None = Field(None, gt=0, le=300, description="soil sensors only")

    @model_validator(mode="after")
    def _depth_matches_kind(self) -> Self:
        if self.kind.has_depth and self.depth_cm is None:
            raise ValueError(f"sensor {self.id!r}: a {self.kind.value} sensor needs depth_cm")
        if not self.kind.has_depth and self.depth_cm is not None:
            raise ValueError(f"sensor {self.id!r}: depth_cm is only for soil sensors")
        return self


class Device(_Strict):
    id: Identifier
    zone: Identifier
    sensors: tuple[Sensor, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_sensors(self) -> Self:
        _refuse_duplicates((s.id for s in self.sensors), f"device {self.id!r}: sensor")
        return self


class Zone(_Strict):
    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    crop: Crop
    soil: Soil
    planting_date: date
    irrigation_rate_mm_h: float = Field(gt=0, le=100, description="what the zone's irrigation applies per hour")
    area_ha: float = Field(gt=0, le=10_000)


class Farm(_Strict):
    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    elevation_m: float = Field(ge=-500, le=6000)
    timezone: str = "UTC"
    zones: tuple[Zone, ...] = Field(min_length=1)
    devices: tuple[Device, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _refuse_duplicates((z.id for z in self.zones), f"farm {self.id!r}: zone")
        zones = {z.id for z in self.zones}
        for device in self.devices:
            if device.zone not in zones:
                raise ValueError(f"farm {self.id!r}: device {device.id!r} names unknown zone {device.zone!r}")
        return self


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a device sits: its farm and zone."""

    farm: Farm
    zone: Zone
    device: Device


class Layout(_Strict):
    """The whole layout file."""

    farms: tuple[Farm, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        _refuse_duplicates((f.id for f in self.farms), "farm")
        # Device ids are MQTT client ids and Kafka keys, so they are unique across the whole layout.
        _refuse_duplicates((d.id for f in self.farms for d in f.devices), "device")
        return self

    @property
    def placements(self) -> dict[str, Placement]:
        """Every device id mapped to its farm and zone."""
        out = {}
        for farm in self.farms:
            zones = {z.id: z for z in farm.zones}
            for device in farm.devices:
                out[device.id] = Placement(farm, zones[device.zone], device)
        return out

    def farm(self, farm_id: str) -> Farm:
        for farm in self.farms:
            if farm.id == farm_id:
                return farm
        raise KeyError(farm_id)


def overlay(base: Layout, farms: Iterable[Farm]) -> Layout:
    """``base`` with each of ``farms`` in place of the farm of its id, or after base's farms when new (the farm
    registry's newer word over a layout file). ConfigError when the result is no valid layout (a device id in two
    farms)."""
    newer = {farm.id: farm for farm in farms}
    merged = [newer.pop(farm.id, farm) for farm in base.farms] + list(newer.values())
    try:
        return Layout(farms=tuple(merged))
    except ValidationError as exc:
        raise ConfigError(f"the farm registry's layout cannot be applied: {exc.errors()[0]['msg']}") from exc


def _refuse_duplicates(ids: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"{what} id {i!r} appears twice")
        seen.add(i)


DEFAULT_LAYOUT = "default.yaml"


def parse_layout(text: str, source: str = "<layout>") -> Layout:
    """Parse and validate a layout document; every problem is a ConfigError naming the source."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    try:
        return Layout.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{source} is not a valid farm layout: {problems}") from exc


def load_layout(path: Path | None = None) -> Layout:
    """Read the layout at ``path``, or the bundled default farm when ``path`` is None."""
    if path is None:
        text = resources.files("smartfarm.layouts").joinpath(DEFAULT_LAYOUT).read_text()
        return parse_layout(text, f"bundled {DEFAULT_LAYOUT}")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read layout file {path}: {exc.strerror}; set SMARTFARM_LAYOUT or --layout") from exc
    return parse_layout(text, str(path))


def replicate(layout: Layout, devices: int) -> Layout:
    """A layout like ``layout`` with exactly ``devices`` devices: its devices cloned round-robin (ids suffixed
    ``-r1``, ``-r2``, ...) into the same zones, for fleets larger than the file describes."""
    if devices < 1:
        raise ConfigError("a fleet needs at least one device")
    originals = [(farm, device) for farm in layout.farms for device in farm.devices]
    if not originals:
        raise ConfigError("the layout has no devices to replicate")
    per_farm: dict[str, list[Device]] = {farm.id: [] for farm in layout.farms}
    for i in range(devices):
        farm, device = originals[i % len(originals)]
        copy = i // len(originals)
        clone = device if copy == 0 else device.model_copy(update={"id": f"{device.id[:58]}-r{copy}"})
        per_farm[farm.id].append(clone)
    farms = tuple(f.model_copy(update={"devices": tuple(per_farm[f.id])}) for f in layout.farms)
    return Layout(farms=tuple(f for f in farms if f.devices) or farms[:1])
