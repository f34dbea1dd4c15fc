"""The model registry's versions and the promoted forecaster's predictions, over real HTTP on a real MLflow store:
the API's prediction of posted readings equals the library's of the same readings, with the served model@version."""

from __future__ import annotations

import hashlib
import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ml.forecast import Forecaster
from ml.models import FAULT_DETECTOR, FORECASTER
from ml.registry import Registry
from ml.settings import ModelSettings
from ml.timeline import readings_context
from smartfarm.layout import SensorKind, load_layout
from storage.influx import InfluxClient
from storage.registry.store import FarmRegistry, Scope
from tests.integration.api.conftest import serving
from tests.integration.api.test_farm_api import get, is_problem

FARM = load_layout().farms[0]
ZONE = FARM.zones[0]
END = datetime(2026, 7, 3, 14, tzinfo=UTC)


def post(url: str, token: str, body: object) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def readings(hours: int) -> list[dict[str, Any]]:
    """``hours`` before ``END`` of a drying zone every 15 minutes: two soil probes, air temperature and humidity,
    sun by day and a shower."""
    out = []
    for i in range(hours * 4):
        at = END - timedelta(minutes=15 * (hours * 4 - i)) + timedelta(minutes=7)
        day = math.sin(2 * math.pi * ((at.hour - 13) % 24) / 24 + math.pi / 2)
        out += [
            {"at": at.isoformat(), "kind": "soil_moisture", "value": round(26.0 - 0.05 * i / 4, 3)},
            {"at": at.isoformat(), "kind": "soil_moisture", "value": round(24.5 - 0.04 * i / 4, 3)},
            {"at": at.isoformat(), "kind": "air_temperature", "value": round(22 + 8 * day, 2)},
            {"at": at.isoformat(), "kind": "air_humidity", "value": round(55 - 20 * day, 2)},
            {"at": at.isoformat(), "kind": "solar_radiation", "value": round(max(0.0, 900 * day), 1)},
            {"at": at.isoformat(), "kind": "rainfall", "value": 1.5 if i == 40 else 0.0},
        ]
    return out


@pytest.fixture
def promoted(tmp_path: Path, trained_models: tuple[ModelSettings, str]) -> tuple[ModelSettings, Forecaster]:
    """A store of this test's own with the run's trained forecaster promoted as version 1 and its detector not."""
    trained = Registry(trained_models[0])
    forecaster = trained.load(trained.versions(FORECASTER)[-1])
    detector = trained.load(trained.versions(FAULT_DETECTOR)[-1])
    assert isinstance(forecaster, Forecaster)
    settings = ModelSettings(store=tmp_path / "models")
    with Registry(settings).run("api", {"what": "predictions"}, data_sha256=hashlib.sha256(b"api").hexdigest()) as run:
        run.register(FORECASTER, forecaster, {"skill_6h": 0.2, "skill_24h": 0.1}, True)
        run.register(FAULT_DETECTOR, detector, {"f1": 0.4}, False)
    return settings, forecaster


@pytest.fixture
def api(tmp_path: Path, influx: InfluxClient, promoted: tuple[ModelSettings, Forecaster]) -> Iterator[tuple[str, str]]:
    with serving(tmp_path, influx, promoted[0]) as (base, registry):
        yield base, registry.issue_token(FARM.id, "phone", [Scope.READ])


def test_the_served_prediction_is_the_librarys_on_the_same_readings(
    api: tuple[str, str], promoted: tuple[ModelSettings, Forecaster]
) -> None:
    base, token = api
    posted = readings(72)
    status, _, body = post(f"{base}/farms/{FARM.id}/zones/{ZONE.id}/predictions", token, {"readings": posted})
    assert status == 200, body
    assert body["model"] == f"{FORECASTER}@v1" and datetime.fromisoformat(body["at"]) == END
    assert body["soil_hours"] == 48

    triples = [(datetime.fromisoformat(r["at"]).timestamp(), SensorKind(r["kind"]), r["value"]) for r in posted]
    context = readings_context(FARM, ZONE, triples, END)
    assert len(context.days) == 2, "the two whole local days the readings cover, not the first part of one"
    expected = promoted[1].forecast(context)
    assert [(p["horizon"], p["moisture_pct"]) for p in body["forecast"]] == [
        ("6h", expected[6]),
        ("24h", expected[24]),
    ], "exactly the library's answer"
    assert datetime.fromisoformat(body["forecast"][1]["at"]) == END + timedelta(hours=24)
    last_hour = [v for ts, k, v in triples if k is SensorKind.SOIL_MOISTURE and ts >= END.timestamp() - 3600]
    assert body["moisture_pct"] == pytest.approx(sum(last_hour) / len(last_hour))

    at = END - timedelta(hours=2)
    status, headers, problem = post(
        f"{base}/farms/{FARM.id}/zones/{ZONE.id}/predictions", token, {"readings": posted, "at": at.isoformat()}
    )
    assert is_problem(status, headers, problem, 422) and "each before at" in problem["detail"]
    before = [r for r in posted if datetime.fromisoformat(r["at"]) < at]
    status, _, earlier = post(
        f"{base}/farms/{FARM.id}/zones/{ZONE.id}/predictions", token, {"readings": before, "at": at.isoformat()}
    )
    assert status == 200 and datetime.fromisoformat(earlier["at"]) == at
    assert earlier["forecast"][0]["moisture_pct"] == promoted[1].forecast(readings_context(FARM, ZONE, triples, at))[6]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"readings": readings(12)}, "at least 24 of the 48 hours"),
        ({"readings": []}, "at least 24 hours"),
        ({"readings": readings(30)[:-24], "at": END.isoformat()}, "none in the last hour"),
        ({"readings": readings(30), "at": "2026-07-03T14:30:00Z"}, "close of an hour"),
        ({"readings": readings(30), "at": "2026-07-12T14:00:00Z"}, "at most 7 days"),
        ({"readings": [{"at": "2026-07-03T13:00:00", "kind": "soil_moisture", "value": 20}]}, "timezone"),
        ({"readings": [{"at": "2026-07-03T13:00:00Z", "kind": "soil", "value": 20}]}, "kind"),
        ({"readings": [{"at": "2026-07-03T13:00:00Z", "kind": "soil_moisture", "value": "NaN"}]}, "value"),
        ({"readings": [{"at": "2026-07-03T13:00:00Z", "kind": "soil_moisture", "value": 1, "x": 1}]}, "x"),
        ({}, "readings"),
        ({"readings": [{"at": "9999-12-31T23:59:59Z", "kind": "soil_moisture", "value": 20}]}, "between 1970 and 2200"),
        ({"readings": readings(30), "at": "0001-01-01T00:00:00Z"}, "between 1970 and 2200"),
        ({"readings": [{"at": "2026-07-03T13:00:00Z", "kind": "soil_moisture", "value": 1e308}]}, "outside its range"),
    ],
)
def test_too_few_or_bad_readings_are_problems_that_say_what_is_needed(
    api: tuple[str, str], body: dict[str, Any], says: str
) -> None:
    base, token = api
    status, headers, problem = post(f"{base}/farms/{FARM.id}/zones/{ZONE.id}/predictions", token, body)
    assert is_problem(status, headers, problem, 422) and says in problem["detail"], problem


def test_the_registrys_versions_and_which_is_promoted(api: tuple[str, str]) -> None:
    base, token = api
    status, _, page = get(f"{base}/farms/{FARM.id}/models", token)
    assert status == 200, page
    found = [(v["name"], v["version"], v["promoted"], v["beats_baseline"]) for v in page["items"]]
    assert found == [(FORECASTER, 1, True, True), (FAULT_DETECTOR, 1, False, False)]
    assert page["items"][0]["metrics"] == {"skill_6h": 0.2, "skill_24h": 0.1} and page["next_offset"] is None
    status, _, only = get(f"{base}/farms/{FARM.id}/models?promoted=true&limit=1", token)
    assert status == 200 and [v["name"] for v in only["items"]] == [FORECASTER] and only["next_offset"] is None
    status, _, first = get(f"{base}/farms/{FARM.id}/models?limit=1", token)
    assert first["next_offset"] == 1
    status, headers, problem = get(f"{base}/farms/{FARM.id}/models?name=other", token)
    assert is_problem(status, headers, problem, 422) and FORECASTER in problem["detail"]
    status, headers, problem = get(f"{base}/farms/hill-farm/models", token)
    assert is_problem(status, headers, problem, 404)
    status, _, pipeline = get(f"{base}/farms/{FARM.id}/pipeline", token)
    assert status == 200 and pipeline["models"]["ok"] is True, pipeline
    assert pipeline["promoted"] == {FORECASTER: 1, FAULT_DETECTOR: None}


def test_without_a_store_or_a_promoted_forecaster_the_api_says_which(
    tmp_path: Path, influx: InfluxClient, served: tuple[str, FarmRegistry]
) -> None:
    base, registry = served
    token = registry.issue_token(FARM.id, "phone", [Scope.READ])
    url = f"{base}/farms/{FARM.id}/zones/{ZONE.id}/predictions"
    status, headers, problem = post(url, token, {"readings": readings(30)})
    assert is_problem(status, headers, problem, 503) and "SMARTFARM_MODELS_STORE" in problem["detail"]
    status, headers, problem = get(f"{base}/farms/{FARM.id}/models", token)
    assert is_problem(status, headers, problem, 503) and "SMARTFARM_MODELS_STORE" in problem["detail"]
    with serving(tmp_path / "empty", influx, ModelSettings(store=tmp_path / "empty" / "models")) as (other, reg):
        token = reg.issue_token(FARM.id, "phone", [Scope.READ])
        status, headers, problem = post(other + url.removeprefix(base), token, {"readings": readings(30)})
        assert is_problem(status, headers, problem, 503) and "smartfarm train" in problem["detail"], problem
        assert get(f"{other}/farms/{FARM.id}/models", token)[2]["items"] == []
