"""The farm layout file."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartfarm.errors import ConfigError
from smartfarm.layout import Crop, SensorKind, load_layout, overlay, parse_layout

MINIMAL = """
farms:
  - id: f
    name: F
    latitude: 10
    longitude: 20
    elevation_m: 5
    zones:
      - {id: z, name: Z, crop: maize, soil: loam, planting_date: 2026-04-01, irrigation_rate_mm_h: 5, area_ha: 1}
    devices:
      - id: d
        zone: z
        sensors:
          - {id: sm, kind: soil_moisture, depth_cm: 20}
"""


def test_the_bundled_default_layout_is_valid_and_complete() -> None:
    layout = load_layout()
    placements = layout.placements
    assert len(placements) == 12
    farm = layout.farms[0]
    assert {z.crop for z in farm.zones} == {Crop.TOMATO, Crop.MAIZE, Crop.LETTUCE, Crop.GRAPE}
    kinds = {s.kind for d in farm.devices for s in d.sensors}
    assert kinds == set(SensorKind)
    for zone in farm.zones:
        assert any(p.zone == zone for p in placements.values()), f"zone {zone.id} has no device"


def test_a_layout_file_is_read_from_its_path(tmp_path: Path) -> None:
    path = tmp_path / "farm.yaml"
    path.write_text(MINIMAL)
    placement = load_layout(path).placements["d"]
    assert (placement.farm.id, placement.zone.id, placement.device.sensors[0].depth_cm) == ("f", "z", 20)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (("zone: z\n        sensors", "zone: nowhere\n        sensors"), "unknown zone 'nowhere'"),
        (("depth_cm: 20", "depth_cm: 20}\n          - {id: sm, kind: battery"), "sensor id 'sm' appears twice"),
        (("kind: soil_moisture, depth_cm: 20", "kind: soil_moisture"), "needs depth_cm"),
        (("id: d\n", "id: D_1\n"), "devices.0.id: String should match pattern"),
        (("crop: maize", "crop: cactus"), "crop: Input should be"),
        (("latitude: 10", "latitude: 100"), "latitude: Input should be less than or equal to 90"),
        (("area_ha: 1", "area_ha: 1, colour: red"), "colour: Extra inputs are not permitted"),
        (("farms:", "farms: ["), "not valid YAML"),
    ],
)
def test_invalid_layouts_are_refused_naming_the_problem(change: tuple[str, str], says: str) -> None:
    text = MINIMAL.replace(*change)
    assert text != MINIMAL
    with pytest.raises(ConfigError) as caught:
        parse_layout(text, "farm.yaml")
    assert "farm.yaml" in str(caught.value)
    assert says in str(caught.value)


def test_device_ids_are_unique_across_farms() -> None:
    second = MINIMAL.split("farms:\n", 1)[1].replace("id: f\n", "id: g\n", 1)
    with pytest.raises(ConfigError, match="device id 'd' appears twice"):
        parse_layout(MINIMAL + second)


def test_a_missing_layout_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SMARTFARM_LAYOUT"):
        load_layout(tmp_path / "missing.yaml")


def test_overlay_puts_the_registrys_farms_over_the_files() -> None:
    layout = load_layout()
    farm = layout.farms[0]
    fewer = farm.model_copy(update={"devices": farm.devices[1:]})
    other = farm.model_copy(update={"id": "hill-farm", "devices": ()})
    merged = overlay(layout, [other, fewer])
    assert [f.id for f in merged.farms] == [farm.id, "hill-farm"]
    assert merged.farms[0] == fewer and farm.devices[0].id not in merged.placements
    assert overlay(layout, []) == layout
    twin = other.model_copy(update={"devices": farm.devices[:1]})  # a device id already in the file's farm
    with pytest.raises(ConfigError, match="appears twice"):
        overlay(layout, [twin])
