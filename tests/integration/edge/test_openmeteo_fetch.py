"""The Open-Meteo fetcher against a real HTTP server on loopback (python's http.server on a thread) that answers as
Open-Meteo does: the sample answer, a 400 with its reason, a 503 then the answer, a server that stays down, one
too slow to answer in time, and nothing listening. A few seconds in all."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from cli.services import free_port
from edge.openmeteo import SOURCE
from edge.providers import OpenMeteoProvider
from edge.settings import ForecastSettings
from smartfarm.errors import ProviderError
from smartfarm.layout import load_layout

DATA = Path(__file__).parents[2] / "unit" / "edge" / "data"
SAMPLE = (DATA / "openmeteo-valley-farm.json").read_bytes()
REFUSED = (DATA / "openmeteo-refused.json").read_bytes()
FARM = load_layout().farms[0]
AT = datetime(2026, 7, 15, 18, 20, tzinfo=UTC)


class OpenMeteo(BaseHTTPRequestHandler):
    """Answers ``/{scenario}/v1/forecast`` as the scenario says; counts the requests of each."""

    asked: dict[str, list[dict[str, list[str]]]] = {}

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        scenario, _, rest = url.path.strip("/").partition("/")
        tries = self.asked.setdefault(scenario, [])
        tries.append(parse_qs(url.query))
        if rest != "v1/forecast":
            self._answer(404, b'{"error": true, "reason": "Not Found"}')
        elif scenario == "ok" or (scenario == "flaky" and len(tries) > 1):
            self._answer(200, SAMPLE)
        elif scenario == "refused":
            self._answer(400, REFUSED)
        elif scenario in ("flaky", "down"):
            self._answer(503, b"<html>503 Service Unavailable</html>")
        elif scenario == "slow":
            time.sleep(1.0)
            self._answer(200, SAMPLE)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (the slow scenario)
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test says what matters."""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), OpenMeteo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def provider(url: str, **settings: object) -> OpenMeteoProvider:
    return OpenMeteoProvider(ForecastSettings(openmeteo_url=url, backoff_s=0.05, timeout_s=0.3, **settings))


def test_the_forecast_is_fetched_with_the_adapters_query_and_read(server: str) -> None:
    forecast = provider(f"{server}/ok/").forecast(FARM, AT)
    assert (forecast.farm, forecast.source, forecast.issued_at) == (FARM.id, SOURCE, AT)
    assert len(forecast.hours) == 72 - 19
    (asked,) = OpenMeteo.asked["ok"]
    assert asked["hourly"] == [
        "temperature_2m,relative_humidity_2m,precipitation,precipitation_probability,wind_speed_10m,"
        "shortwave_radiation,et0_fao_evapotranspiration"
    ]
    assert (asked["latitude"], asked["timezone"], asked["wind_speed_unit"]) == (["38.5400"], ["GMT"], ["ms"])


def test_a_400_is_not_tried_again_and_says_open_meteos_reason_and_the_fix(server: str) -> None:
    with pytest.raises(ProviderError) as refused:
        provider(f"{server}/refused").forecast(FARM, AT)
    message = str(refused.value)
    assert refused.value.status == 400 and not refused.value.transient
    assert "refused (400): Latitude must be in range of -90 to 90°. Given: 138.54." in message
    assert "check the farm's coordinates and SMARTFARM_FORECAST_OPENMETEO_URL" in message
    assert len(OpenMeteo.asked["refused"]) == 1


def test_a_root_without_the_api_is_a_404_naming_the_setting(server: str) -> None:
    with pytest.raises(ProviderError, match=r"refused \(404\): Not Found; set SMARTFARM_FORECAST_OPENMETEO_URL"):
        provider(f"{server}/elsewhere/api").forecast(FARM, AT)


def test_a_503_is_tried_again_after_a_pause_and_the_answer_then_read(server: str) -> None:
    began = time.monotonic()
    forecast = provider(f"{server}/flaky").forecast(FARM, AT)
    assert forecast.hours and len(OpenMeteo.asked["flaky"]) == 2
    assert time.monotonic() - began >= 0.05, "it paused before the second try"


def test_a_server_that_stays_down_fails_after_its_tries_with_the_last_answer(server: str) -> None:
    with pytest.raises(ProviderError) as down:
        provider(f"{server}/down", attempts=3).forecast(FARM, AT)
    assert down.value.transient and down.value.status == 503
    assert "failed (503): <html>503 Service Unavailable</html>" in str(down.value)
    assert len(OpenMeteo.asked["down"]) == 3


def test_a_timeout_and_nothing_listening_are_transient_failures(server: str) -> None:
    began = time.monotonic()
    with pytest.raises(ProviderError, match=r"did not answer within 0\.3 s") as slow:
        provider(f"{server}/slow", attempts=2).forecast(FARM, AT)
    assert slow.value.transient and slow.value.status is None and len(OpenMeteo.asked["slow"]) == 2
    assert time.monotonic() - began < 1.5, "each try gave up after its 0.3 s"
    with pytest.raises(ProviderError, match="is unreachable") as closed:
        provider(f"http://127.0.0.1:{free_port()}", attempts=2).forecast(FARM, AT)
    assert closed.value.transient
