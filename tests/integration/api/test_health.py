"""Device and pipeline health over real HTTP from what a real InfluxDB holds: last seen, battery, connection, clock
and suspect sensors per device; the newest reading and scored hour per zone, and whether the services answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from smartfarm.layout import SensorKind, load_layout
from storage.influx import InfluxClient
from storage.registry.store import FarmRegistry, Scope
from storage.schema import DeviceClockPoint, DeviceStatusPoint, Measurement, ReadingPoint, ZoneStatePoint
from tests.integration.api.conftest import serving
from tests.integration.api.test_farm_api import get, is_problem

FARM = load_layout().farms[0]
ZONE = FARM.zones[0]
SOIL, WX = "soil-tomato-north-1", "wx-tomato-north"


def reading(at: datetime, device: str, sensor: str, kind: SensorKind, value: float, **more: object) -> ReadingPoint:
    return ReadingPoint(
        time=at, farm=FARM.id, zone=ZONE.id, device=device, sensor=sensor, kind=kind, value=value, seq=1, **more
    )


def test_device_health_says_last_seen_battery_connection_clock_and_suspect_sensors(
    served: tuple[str, FarmRegistry], influx: InfluxClient
) -> None:
    base, registry = served
    token = registry.issue_token(FARM.id, "phone", [Scope.READ])
    now = datetime.now(UTC).replace(microsecond=0)
    points: list[Measurement] = [
        reading(now - timedelta(minutes=30), SOIL, "bat", SensorKind.BATTERY, 3.71, quality="good"),
        reading(now - timedelta(minutes=10), SOIL, "bat", SensorKind.BATTERY, 3.69, quality="good"),
        reading(now - timedelta(minutes=5), SOIL, "sm-15", SensorKind.SOIL_MOISTURE, 21.0, quality="good"),
        reading(
            now - timedelta(minutes=20), SOIL, "sm-45", SensorKind.SOIL_MOISTURE, 80.0, quality="suspect", flags="spike"
        ),
        reading(
            now - timedelta(minutes=15), SOIL, "sm-45", SensorKind.SOIL_MOISTURE, 81.0, quality="suspect", flags="spike"
        ),
        reading(
            now - timedelta(hours=3), SOIL, "sm-45", SensorKind.SOIL_MOISTURE, 82.0, quality="suspect", flags="spike"
        ),  # more than an hour ago: not counted
        reading(now - timedelta(days=2), WX, "air-t", SensorKind.AIR_TEMPERATURE, 24.0, quality="good"),
        DeviceStatusPoint(time=now - timedelta(hours=5), farm=FARM.id, device=SOIL, online=False, will=True),
        DeviceStatusPoint(time=now - timedelta(hours=4), farm=FARM.id, device=SOIL, online=True, will=False),
        DeviceStatusPoint(time=now - timedelta(hours=1), farm=FARM.id, device=WX, online=False, will=True),
        DeviceClockPoint(time=now - timedelta(hours=2), farm=FARM.id, device=WX, reason="stale_timestamp", skew_s=-9e8),
        DeviceClockPoint(time=now - timedelta(hours=1), farm=FARM.id, device=WX, reason="future_timestamp", skew_s=90),
        DeviceClockPoint(time=now - timedelta(days=3), farm=FARM.id, device=SOIL, reason="stale_timestamp", skew_s=-5),
    ]
    influx.write(points)

    status, _, page = get(f"{base}/farms/{FARM.id}/devices/health", token)
    assert status == 200, page
    assert [d["device"] for d in page["items"]] == sorted(d.id for d in FARM.devices) and page["next_offset"] is None
    by_id = {d["device"]: d for d in page["items"]}
    soil = by_id[SOIL]
    assert datetime.fromisoformat(soil["last_seen"]) == now - timedelta(minutes=5)
    assert soil["battery_v"] == 3.69 and datetime.fromisoformat(soil["battery_at"]) == now - timedelta(minutes=10)
    assert (soil["online"], soil["dropped"]) == (True, False)
    assert soil["clock_suspect"] is False and soil["clock_refusals"] == 0, "its refusal is three days old"
    assert soil["suspect_sensors"] == [{"sensor": "sm-45", "kind": "soil_moisture", "readings": 2}]
    wx = by_id[WX]
    assert datetime.fromisoformat(wx["last_seen"]) == now - timedelta(days=2) and wx["battery_v"] is None
    assert (wx["online"], wx["dropped"]) == (False, True)
    assert (wx["clock_suspect"], wx["clock_refusals"], wx["clock_skew_s"]) == (True, 2, 90.0)
    quiet = by_id["soil-maize-east-1"]
    assert (quiet["last_seen"], quiet["online"], quiet["clock_suspect"], quiet["suspect_sensors"]) == (
        None,
        None,
        False,
        [],
    )

    status, _, one = get(f"{base}/farms/{FARM.id}/devices/{SOIL}/health", token)
    assert status == 200 and one == soil
    status, _, second = get(f"{base}/farms/{FARM.id}/devices/health?limit=2&offset=2", token)
    assert [d["device"] for d in second["items"]] == sorted(d.id for d in FARM.devices)[2:4]
    assert second["next_offset"] == 4
    status, headers, problem = get(f"{base}/farms/{FARM.id}/devices/nothing/health", token)
    assert is_problem(status, headers, problem, 404)
    status, headers, problem = get(f"{base}/farms/{FARM.id}/devices/health?limit=0", token)
    assert is_problem(status, headers, problem, 422)


@pytest.mark.parametrize("stored", [True, False])
def test_pipeline_health_is_the_newest_data_per_zone_and_the_services_answers(
    served: tuple[str, FarmRegistry], influx: InfluxClient, stored: bool
) -> None:
    base, registry = served
    token = registry.issue_token(FARM.id, "phone", [Scope.READ])
    now = datetime.now(UTC).replace(microsecond=0)
    hour = now.replace(minute=0, second=0)
    if stored:
        state = {"trigger_pct": 19.0, "field_capacity_pct": 27.0, "depletion_mm": 2.0, "raw_mm": 20.0, "taw_mm": 40.0}
        points: list[Measurement] = [
            reading(now - timedelta(minutes=3), SOIL, "sm-15", SensorKind.SOIL_MOISTURE, 21.0, quality="good"),
            ZoneStatePoint(time=hour, farm=FARM.id, zone=ZONE.id, moisture_pct=21.0, model="m@1", **state),
        ]
        influx.write(points)
    status, _, body = get(f"{base}/farms/{FARM.id}/pipeline", token)
    assert status == 200, body
    assert body["influxdb"]["ok"] is True and body["influxdb"]["detail"].startswith("InfluxDB 1.")
    assert body["models"] == {"configured": False, "ok": False, "detail": "not configured: SMARTFARM_MODELS_STORE"}
    zones = {z["zone"]: z for z in body["zones"]}
    assert set(zones) == {z.id for z in FARM.zones}
    if stored:
        assert 180 <= body["newest_reading_age_s"] < 180 + 60
        assert datetime.fromisoformat(zones[ZONE.id]["newest_reading"]) == now - timedelta(minutes=3)
        assert datetime.fromisoformat(zones[ZONE.id]["newest_scored_hour"]) == hour
        assert zones[FARM.zones[1].id]["newest_reading"] is None
    else:
        assert body["newest_reading_age_s"] is None and zones[ZONE.id]["newest_scored_hour"] is None


def test_an_api_whose_influxdb_login_is_refused_answers_503_naming_the_settings(
    tmp_path: Path, influx: InfluxClient
) -> None:
    wrong = InfluxClient(influx.settings.model_copy(update={"password": SecretStr("not-the-writers-password")}))
    with serving(tmp_path, wrong) as (base, registry):
        token = registry.issue_token(FARM.id, "phone", [Scope.READ])
        status, headers, body = get(f"{base}/farms/{FARM.id}/devices/health", token)
        assert is_problem(status, headers, body, 503), body
        assert "SMARTFARM_INFLUX_USERNAME and SMARTFARM_INFLUX_PASSWORD" in body["detail"]
        status, _, body = get(f"{base}/farms/{FARM.id}/pipeline", token)
        assert (
            status == 200 and not body["influxdb"]["ok"] and "SMARTFARM_INFLUX_PASSWORD" in body["influxdb"]["detail"]
        )
    wrong.close()
