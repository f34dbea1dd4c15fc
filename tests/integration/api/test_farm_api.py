"""The farm API over real HTTP (uvicorn on a free loopback port) and a real registry: tokens per farm, a farm's
data for its own tokens only, the route's scope, and every refusal an RFC 9457 problem detail."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from api.app import MAX_BODY_BYTES
from cli.main import main
from smartfarm.layout import load_layout
from smartfarm.records import Recommendation, RecommendationKind, Severity
from storage.influx import InfluxClient
from storage.registry.store import FarmRegistry, Scope
from storage.schema import Measurement, SoilForecastPoint, ZoneStatePoint, recommendation_point
from tests.integration.api.stack import send


def get(url: str, token: str | None = None) -> tuple[int, dict[str, str], Any]:
    return send("GET", url, token)


def is_problem(status: int, headers: dict[str, str], body: Any, expected: int) -> bool:
    return (
        status == expected
        and headers.get("content-type") == "application/problem+json"
        and body["status"] == expected
        and bool(body["title"])
        and bool(body["detail"])
    )


def test_a_farms_token_sees_its_farm_and_nothing_of_another(served: tuple[str, FarmRegistry]) -> None:
    base, registry = served
    layout = load_layout()
    farm = layout.farms[0]
    token = registry.issue_token(farm.id, "farmer's phone", [Scope.READ])
    status, _, body = get(f"{base}/farms/{farm.id}", token)
    assert status == 200 and body["id"] == farm.id and len(body["zones"]) == len(farm.zones)
    status, _, zones = get(f"{base}/farms/{farm.id}/zones", token)
    assert status == 200 and [z["id"] for z in zones] == [z.id for z in farm.zones]
    zone = farm.zones[0]
    status, _, one = get(f"{base}/farms/{farm.id}/zones/{zone.id}", token)
    assert status == 200 and one["crop"] == zone.crop.value and one["planting_date"] == zone.planting_date.isoformat()
    status, _, devices = get(f"{base}/farms/{farm.id}/devices", token)
    assert status == 200 and {d["id"] for d in devices} == {d.id for d in farm.devices}

    # farm B, which exists, answers the same as a farm that does not
    for path in ("/farms/hill-farm", "/farms/hill-farm/zones", "/farms/no-such-farm"):
        status, headers, problem = get(base + path, token)
        assert is_problem(status, headers, problem, 404), (path, status, problem)
    assert get(f"{base}/farms/hill-farm", token)[2]["detail"] == "no farm 'hill-farm'"
    status, headers, problem = get(f"{base}/farms/{farm.id}/zones/nowhere", token)
    assert is_problem(status, headers, problem, 404) and "nowhere" in problem["detail"]


def test_no_token_a_wrong_one_or_a_missing_scope_is_refused(served: tuple[str, FarmRegistry]) -> None:
    base, registry = served
    farm = load_layout().farms[0].id
    status, headers, problem = get(f"{base}/farms/{farm}")
    assert is_problem(status, headers, problem, 401) and headers.get("www-authenticate") == "Bearer"
    status, headers, problem = get(f"{base}/farms/{farm}", "sft_not-a-token")
    assert is_problem(status, headers, problem, 401)
    ingest_only = registry.issue_token(farm, "gateway", [Scope.INGEST])
    status, headers, problem = get(f"{base}/farms/{farm}", ingest_only)
    assert is_problem(status, headers, problem, 403) and "'read' scope" in problem["detail"]
    revoked = registry.issue_token(farm, "old", [Scope.READ])
    client = registry.client(revoked)
    assert client is not None
    registry.revoke(client.id)
    assert get(f"{base}/farms/{farm}", revoked)[0] == 401


def test_health_and_the_openapi_document(served: tuple[str, FarmRegistry]) -> None:
    base, _ = served
    assert get(f"{base}/health") == (200, get(f"{base}/health")[1], {"status": "ok"})
    status, _, spec = get(f"{base}/openapi.json")
    assert status == 200 and spec["info"]["title"] == "SmartFarm farm API"
    assert {"/farms/{farm}", "/farms/{farm}/zones", "/farms/{farm}/devices/{device}"} <= set(spec["paths"])
    with urllib.request.urlopen(f"{base}/docs", timeout=10) as response:
        page = response.read().decode()
    assert response.status == 200 and "/static/swagger-ui/swagger-ui-bundle.js" in page
    assert "cdn." not in page and "https://" not in page.replace("https://swagger.io", ""), "nothing from the internet"
    with urllib.request.urlopen(f"{base}/static/swagger-ui/swagger-ui-bundle.js", timeout=10) as response:
        assert response.status == 200 and len(response.read()) > 100_000


def test_smartfarm_api_token_prints_a_working_token_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    assert main(["layout", "import", "--url", url]) == 0
    farm = load_layout().farms[0].id
    capsys.readouterr()
    assert (
        main(["api", "token", "--farm", farm, "--scopes", "read,write", "--name", "valve controller", "--url", url])
        == 0
    )
    token = capsys.readouterr().out.strip().splitlines()[-1]
    registry = FarmRegistry(url)
    try:
        client = registry.client(token)
        assert client is not None and client.farm == farm and client.scopes == {Scope.READ, Scope.WRITE}
    finally:
        registry.close()
    assert main(["api", "token", "--farm", farm, "--scopes", "admin", "--url", url]) == 2
    assert "read, write, ingest" in capsys.readouterr().err
    assert main(["api", "token", "--url", url]) == 2
    assert "--farm" in capsys.readouterr().err


def test_a_zone_now_is_its_newest_state_against_the_trigger_and_its_forecast(
    served: tuple[str, FarmRegistry], influx: InfluxClient
) -> None:
    base, registry = served
    farm = load_layout().farms[0]
    zone = farm.zones[0].id
    token = registry.issue_token(farm.id, "phone", [Scope.READ])
    status, _, before = get(f"{base}/farms/{farm.id}/zones/{zone}/now", token)
    assert status == 200 and before == {"farm": farm.id, "zone": zone, "state": None, "forecast": []}

    hour = datetime(2026, 7, 2, 14, tzinfo=UTC)
    state = {"trigger_pct": 19.0, "field_capacity_pct": 27.0, "depletion_mm": 24.0, "raw_mm": 20.0, "taw_mm": 40.0}
    points: list[Measurement] = [
        ZoneStatePoint(time=at, farm=farm.id, zone=zone, moisture_pct=moisture, model="m@1", **state)
        for at, moisture in ((hour - timedelta(hours=1), 18.0), (hour, 17.5))  # the newest one is served
    ]
    points += [
        SoilForecastPoint(
            time=hour + timedelta(hours=h), farm=farm.id, zone=zone, horizon=f"{h}h", moisture_pct=theta, model="f@3"
        )
        for h, theta in ((6, 16.9), (24, 15.2))
    ]
    influx.write(points)
    status, _, now = get(f"{base}/farms/{farm.id}/zones/{zone}/now", token)
    assert status == 200, now
    assert now["state"]["moisture_pct"] == 17.5 and now["state"]["trigger_pct"] == 19.0
    assert datetime.fromisoformat(now["state"]["at"]) == hour
    assert [(f["horizon"], f["moisture_pct"]) for f in now["forecast"]] == [("6h", 16.9), ("24h", 15.2)]
    assert datetime.fromisoformat(now["forecast"][1]["at"]) == hour + timedelta(hours=24)
    status, headers, problem = get(f"{base}/farms/{farm.id}/zones/nowhere/now", token)
    assert is_problem(status, headers, problem, 404)


def test_recommendations_page_newest_first_by_zone_and_kind(
    served: tuple[str, FarmRegistry], influx: InfluxClient
) -> None:
    base, registry = served
    farm = load_layout().farms[0]
    north, east = farm.zones[0].id, farm.zones[1].id
    token = registry.issue_token(farm.id, "phone", [Scope.READ])
    t0 = datetime(2026, 7, 2, 6, tzinfo=UTC)
    issued = [
        Recommendation.create(
            id=uuid.uuid4(),
            farm=farm.id,
            zone=north if i % 2 == 0 else east,
            kind=RecommendationKind.IRRIGATION if i < 5 else RecommendationKind.FROST,
            severity=Severity.ADVISORY,
            issued_at=t0 + timedelta(hours=i),
            valid_until=t0 + timedelta(days=1),
            message=f"advice {i}",
            model="fao56-baseline@1",
            confidence=0.7,
            amount_mm=4.5 if i < 5 else None,
            start_at=t0 + timedelta(hours=i + 2) if i < 5 else None,
        )
        for i in range(7)
    ]
    influx.write([recommendation_point(r) for r in issued])
    span = f"start={quote((t0 - timedelta(hours=1)).isoformat())}&end={quote((t0 + timedelta(days=1)).isoformat())}"
    url = f"{base}/farms/{farm.id}/recommendations?{span}"

    status, _, page = get(f"{url}&limit=3", token)
    assert status == 200 and page["next_offset"] == 3
    assert [a["message"] for a in page["items"]] == ["advice 6", "advice 5", "advice 4"], "newest first"
    first = page["items"][2]
    assert first["kind"] == "irrigation" and first["amount_mm"] == 4.5 and first["zone"] == north
    assert datetime.fromisoformat(first["start_at"]) == t0 + timedelta(hours=6)
    status, _, rest = get(f"{url}&limit=3&offset=6", token)
    assert [a["message"] for a in rest["items"]] == ["advice 0"] and rest["next_offset"] is None
    status, _, frost = get(f"{url}&kind=frost&zone={east}", token)
    assert [a["message"] for a in frost["items"]] == ["advice 5"]
    for bad in ("limit=0", "limit=501", "kind=rain", "start=yesterday", "start=2026-07-02T06:00:00"):
        status, headers, problem = get(f"{base}/farms/{farm.id}/recommendations?{bad}", token)
        assert is_problem(status, headers, problem, 422), bad
    status, headers, problem = get(f"{url.replace(span, '')}start=2026-07-02T06:00:00Z&end=2026-07-01T06:00:00Z", token)
    assert is_problem(status, headers, problem, 422) and "before end" in problem["detail"]
    status, headers, problem = get(f"{base}/farms/{farm.id}/recommendations?zone=nowhere", token)
    assert is_problem(status, headers, problem, 404)


def test_a_body_too_large_is_refused_before_it_is_read(served: tuple[str, FarmRegistry]) -> None:
    base, registry = served
    token = registry.issue_token("valley-farm", "uploader", [Scope.INGEST, Scope.WRITE])
    host, port = base.removeprefix("http://").split(":")
    huge = b"[" + b"0," * (MAX_BODY_BYTES // 2) + b"0]"
    for chunked in (False, True):
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = iter([huge[i : i + 65536] for i in range(0, len(huge), 65536)]) if chunked else huge
        connection.request("POST", "/farms/valley-farm/ingest", body=body, headers=headers, encode_chunked=chunked)
        response = connection.getresponse()
        problem = json.loads(response.read())
        connection.close()
        assert response.status == 413 and response.getheader("content-type") == "application/problem+json"
        assert problem["status"] == 413 and f"{MAX_BODY_BYTES:,} bytes" in problem["detail"], (chunked, problem)
