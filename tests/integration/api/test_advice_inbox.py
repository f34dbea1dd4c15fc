"""The advice inbox over real HTTP: accepting an irrigation sends its command through Kafka and the bridge to the
simulated valve, which opens at the accepted start; a decline is recorded and shown; an answered or replaced
recommendation cannot be answered again. Real Mosquitto, Kafka, InfluxDB and bridge."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from smartfarm.records import Recommendation
from storage.schema import recommendation_point
from tests.integration.api.stack import FARM, Farm, call, listening_valves
from tests.integration.pipeline import wait_for

ZONE = "tomato-north"


def irrigation(issued: datetime, amount_mm: float, start_in: timedelta, **more: object) -> Recommendation:
    return Recommendation.create(
        id=uuid.uuid4(),
        farm=FARM,
        zone=ZONE,
        kind="irrigation",
        severity="advisory",
        issued_at=issued,
        valid_until=issued + timedelta(hours=12),
        message="Irrigate 12 mm: the root zone will reach its trigger within 3 hours.",
        model="advisor@3",
        confidence=0.8,
        amount_mm=amount_mm,
        start_at=issued + start_in,
        **more,
    )


def test_accepting_an_irrigation_opens_the_valve_and_a_decline_is_recorded(farm: Farm) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    accepted = irrigation(now - timedelta(minutes=30), 12.0, timedelta(hours=2))
    declined = irrigation(now - timedelta(minutes=20), 8.0, timedelta(hours=1))
    replaced = irrigation(now - timedelta(minutes=15), 5.0, timedelta(hours=1))
    replacing = irrigation(now - timedelta(minutes=10), 4.0, timedelta(hours=1), supersedes=replaced.id)
    farm.influx.write(recommendation_point(r) for r in (accepted, declined, replaced, replacing))

    with listening_valves(farm) as valves:
        start = now + timedelta(minutes=5)
        body = {"amount_mm": 10.5, "start_at": start.isoformat(), "note": "a bit less: rain last night"}
        status, answer = call("POST", f"{farm.api}/recommendations/{accepted.id}/accept", farm.token, body)
        assert status == 200, answer
        assert (
            answer["recommendation"]["status"] == "accepted" and answer["recommendation"]["decided_by"] == "farm office"
        )
        command = answer["command"]
        assert command["amount_mm"] == 10.5 and command["recommendation"] == str(accepted.id)

        opened: list = []

        def valve_opens() -> bool:
            opened.extend(valves.due(start))
            return bool(opened)

        wait_for("the valve to receive the accepted irrigation", valve_opens, 30)
        (irrigated,) = opened
        assert (irrigated.zone, irrigated.amount_mm, irrigated.recommendation) == (ZONE, 10.5, str(accepted.id))
        assert irrigated.start_at == start
        assert valves.due(start + timedelta(hours=1)) == [], "once"

    status, answer = call("POST", f"{farm.api}/recommendations/{declined.id}/decline", farm.token, {"note": "busy"})
    assert status == 200 and answer["recommendation"]["status"] == "declined" and answer["command"] is None

    for rid, expected in ((accepted.id, "accepted"), (declined.id, "declined"), (replaced.id, "replaced")):
        status, problem = call("POST", f"{farm.api}/recommendations/{rid}/accept", farm.token)
        assert status == 409 and expected in problem["detail"], problem
    status, problem = call("POST", f"{farm.api}/recommendations/{uuid.uuid4()}/decline", farm.token)
    assert status == 404 and problem["status"] == 404

    # the replacing irrigation applied by hand; a rain gauge read by hand
    body = {"kind": "irrigation", "amount_mm": 4.0, "recommendation": str(replacing.id), "note": "hose"}
    status, logged = call("POST", f"{farm.api}/zones/{ZONE}/water", farm.token, body)
    assert status == 201 and logged["recommendation"]["status"] == "applied", logged
    status, logged = call("POST", f"{farm.api}/zones/{ZONE}/water", farm.token, {"kind": "rain", "amount_mm": 7.5})
    assert status == 201 and logged["recommendation"] is None
    rain_for_advice = {"kind": "rain", "amount_mm": 7.5, "recommendation": str(declined.id)}
    status, problem = call("POST", f"{farm.api}/zones/{ZONE}/water", farm.token, rain_for_advice)
    assert status == 422 and "only an irrigation" in problem["detail"]
    logs = farm.influx.query(f"SELECT kind, amount_mm, logged_by FROM field_log WHERE zone = '{ZONE}' GROUP BY kind")
    assert sorted((r["kind"], r["amount_mm"]) for r in logs) == [("irrigation", 4.0), ("rain", 7.5)]

    status, page = call("GET", f"{farm.api}/recommendations?zone={ZONE}", farm.token)
    assert status == 200
    statuses = {item["id"]: item["status"] for item in page["items"]}
    assert statuses == {
        str(accepted.id): "accepted",
        str(declined.id): "declined",
        str(replaced.id): "cancelled",
        str(replacing.id): "applied",
    }
