"""Changes through the API take effect without a restart: a zone added and a device registered through it can log
in to the broker and have their readings stored; a retired device is refused. Real Mosquitto, Kafka, InfluxDB,
bridge and worker process, the API over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from edge.loadgen import publish_messages
from storage.influx import InfluxClient
from tests.integration.api.stack import FARM, Farm, call, login
from tests.integration.pipeline import start_worker, wait_for

ZONE = {
    "id": "olive-grove",
    "name": "Olives, north terrace",
    "crop": "tomato",
    "soil": "loam",
    "planting_date": "2026-04-15",
    "irrigation_rate_mm_h": 3.0,
    "area_ha": 1.2,
}
DEVICE = {
    "id": "soil-olive-1",
    "zone": "olive-grove",
    "sensors": [
        {"id": "sm-15", "kind": "soil_moisture", "depth_cm": 15},
        {"id": "sm-45", "kind": "soil_moisture", "depth_cm": 45},
        {"id": "bat", "kind": "battery"},
    ],
}


def stored(influx: InfluxClient, device: str) -> int:
    rows = influx.query(f"SELECT count(value) AS n FROM reading WHERE device = '{device}' AND zone = 'olive-grove'")
    return int(rows[0]["n"]) if rows else 0


def test_a_device_registered_through_the_api_logs_in_and_its_readings_are_stored_without_a_restart(
    farm: Farm,
) -> None:
    worker = start_worker(farm.kafka, farm.influx.settings, farm.workdir, "w1")
    try:
        worker.wait_ready()
        registered_publishes_and_retires(farm)
    finally:
        worker.stop()


def registered_publishes_and_retires(farm: Farm) -> None:
    assert login(farm.mqtt, DEVICE["id"], "guess") == "Not authorized"

    status, zone = call("POST", f"{farm.api}/zones", farm.token, ZONE)
    assert status == 201 and zone["id"] == "olive-grove", zone
    status, registered = call("POST", f"{farm.api}/devices", farm.token, DEVICE)
    assert status == 201, registered
    login_ = registered["mqtt"]
    assert login_["username"] == DEVICE["id"] and login_["telemetry_topic"] == farm.mqtt.topics.telemetry(
        FARM, DEVICE["id"]
    )
    status, devices = call("GET", f"{farm.api}/devices", farm.token)
    assert DEVICE["id"] in {d["id"] for d in devices}

    wait_for(
        "the broker to let the new device in",
        lambda: login(farm.mqtt, login_["username"], login_["password"]) == "Success",
        30,
    )
    device = farm.mqtt.model_copy(update={"username": login_["username"], "password": SecretStr(login_["password"])})
    now = datetime.now(UTC).replace(microsecond=0)
    messages = []
    for seq in range(6):
        doc = {
            "schema_version": 1,
            "device": DEVICE["id"],
            "seq": seq,
            "ts": (now - timedelta(minutes=5 * (5 - seq))).isoformat(),
            "readings": [
                {"sensor": "sm-15", "kind": "soil_moisture", "value": 24.0 - seq * 0.1},
                {"sensor": "sm-45", "kind": "soil_moisture", "value": 28.0 - seq * 0.05},
                {"sensor": "bat", "kind": "battery", "value": 3.7},
            ],
        }
        messages.append((login_["telemetry_topic"], json.dumps(doc).encode()))
    publish_messages(device, messages, client_id=DEVICE["id"])
    wait_for("the new device's readings in InfluxDB", lambda: stored(farm.influx, DEVICE["id"]) == 18, 60)

    # Registered twice, or in a zone the farm lacks: refused with a problem, nothing changed.
    status, problem = call("POST", f"{farm.api}/devices", farm.token, DEVICE)
    assert status == 409 and "already registered" in problem["detail"]
    status, problem = call("POST", f"{farm.api}/devices", farm.token, {**DEVICE, "id": "x-1", "zone": "nowhere"})
    assert status == 404 and "no zone 'nowhere'" in problem["detail"]

    status, _ = call("DELETE", f"{farm.api}/devices/{DEVICE['id']}", farm.token)
    assert status == 204
    wait_for(
        "the broker to refuse the retired device",
        lambda: login(farm.mqtt, login_["username"], login_["password"]) == "Not authorized",
        30,
    )
    status, problem = call("POST", f"{farm.api}/devices", farm.token, DEVICE)
    assert status == 409 and "never reused" in problem["detail"]
