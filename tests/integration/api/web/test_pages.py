"""The farmer's web app in Debian's headless Chromium, over real HTTP, on three days of a simulated farm stored in
the real InfluxDB as the workers store them: sign-in, the farm's zones, a zone's charts, the advice inbox and
device health show what the database holds, and a farm's token opens nothing of another farm."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from api.app import create_app, serve_in_thread
from api.web.pages import farm_now
from cli.services import InfluxDB, free_port
from edge.season import SeasonRecipe, farmer_valves, run_season
from ml.scoring import Baselines
from smartfarm.layout import Farm, Layout, load_layout
from storage.influx import InfluxClient
from storage.registry.store import FarmRegistry, Scope
from storage.zones import latest_state, recommendations, zone_states
from tests.integration.api.web.browsing import click, save_page, sign_in_at
from tests.integration.pipeline import influx_database
from tests.integration.zonedata import step_zones, store_readings

START = datetime(2026, 6, 1, 7, tzinfo=UTC)
DAYS = 3


@dataclass(frozen=True)
class Site:
    base: str
    farm: Farm
    token: str
    influx: InfluxClient
    registry: FarmRegistry


@pytest.fixture(scope="module")
def site(influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    layout = load_layout()
    season = run_season(layout, SeasonRecipe(seed=5, start=START, days=DAYS, replant=False), farmer_valves(5))
    farm = season.layout.farms[0]
    registry = FarmRegistry.at(tmp_path_factory.mktemp("web") / "registry.db")
    registry.migrate()
    other = farm.model_copy(update={"id": "hill-farm", "name": "Hill", "devices": ()})
    registry.import_layout(Layout(farms=(farm, other)))
    with influx_database(influxdb.url, "web") as influx:
        store_readings(influx, season.readings)
        step_zones(influx, season.layout, season.readings, Baselines())
        port = free_port()
        server, thread = serve_in_thread(create_app(registry, influx), "127.0.0.1", port)
        token = registry.issue_token(farm.id, "farmer's phone", [Scope.READ])
        try:
            yield Site(f"http://127.0.0.1:{port}", farm, token, influx, registry)
        finally:
            server.should_exit = True
            thread.join(10)
            registry.close()


def sign_in(chrome: webdriver.Chrome, site: Site, token: str) -> None:
    sign_in_at(chrome, site.base, token)


def texts(chrome: webdriver.Chrome, css: str) -> list[str]:
    return [e.text for e in chrome.find_elements(By.CSS_SELECTOR, css)]


def test_sign_in_keeps_the_token_in_a_strict_http_only_cookie_until_sign_out(
    browser: webdriver.Chrome, site: Site
) -> None:
    sign_in(browser, site, "sft_not-a-token")
    assert "not known" in browser.find_element(By.CSS_SELECTOR, ".error").text
    assert browser.get_cookies() == []

    sign_in(browser, site, site.token)
    assert browser.current_url == f"{site.base}/app/farms/{site.farm.id}"
    (cookie,) = browser.get_cookies()
    assert cookie["value"] == site.token and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/app"

    click(browser, By.CSS_SELECTOR, "form.signout button")
    assert browser.current_url == f"{site.base}/app/signin" and browser.get_cookies() == []
    browser.get(f"{site.base}/app/farms/{site.farm.id}")
    assert browser.current_url == f"{site.base}/app/signin", "signed out, the farm page asks for a token"

    sign_in(browser, site, f"{site.farm.id} {site.token}")  # a whole line of api-tokens.txt
    assert browser.current_url == f"{site.base}/app/farms/{site.farm.id}"


def test_the_farm_page_shows_each_zone_against_its_trigger(
    browser: webdriver.Chrome, site: Site, screenshots: Path
) -> None:
    sign_in(browser, site, site.token)
    assert texts(browser, ".card h2") == [z.name for z in site.farm.zones]
    for zone in site.farm.zones:
        state = latest_state(site.influx, site.farm.id, zone.id)
        assert state is not None
        card = browser.find_element(By.ID, f"zone-{zone.id}")
        assert card.find_element(By.CSS_SELECTOR, ".moisture .value").text == f"{state['moisture_pct']:.1f}"
        assert f"water below {state['trigger_pct']:.1f} %" in card.text
        assert card.find_element(By.CSS_SELECTOR, ".word").text in {"Needs water", "Getting dry", "Fine"}
    now = farm_now(site.influx, site.farm.id).astimezone(ZoneInfo(site.farm.timezone))
    shown = browser.find_element(By.CSS_SELECTOR, ".asof").text
    assert shown == f"Latest data: {now:%a} {now.day} {now:%b}, {now:%H:%M}", "the farm's newest hour, its local time"
    save_page(browser, screenshots / "farm.png")


def test_a_zone_page_charts_its_moisture_rain_water_and_temperature(
    browser: webdriver.Chrome, site: Site, screenshots: Path
) -> None:
    sign_in(browser, site, site.token)
    zone = next(
        z
        for z in site.farm.zones
        if any(s.kind.value == "rainfall" for d in site.farm.devices if d.zone == z.id for s in d.sensors)
    )
    click(browser, By.LINK_TEXT, zone.name)
    assert browser.current_url == f"{site.base}/app/farms/{site.farm.id}/zones/{zone.id}"
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert [c.get_attribute("aria-label") for c in charts] == [
        "Soil moisture (% vol)",
        "Rain and irrigation (mm)",
        "Air temperature (°C)",
    ]
    moisture = charts[0].find_element(By.CSS_SELECTOR, "path.series-moisture").get_attribute("d") or ""
    now = farm_now(site.influx, site.farm.id).timestamp()
    hours = zone_states(site.influx, site.farm.id, zone.id, now - DAYS * 86400, now + 1)
    assert moisture.startswith("M") and moisture.count("M") + moisture.count("L") == len(hours)
    assert charts[0].find_elements(By.CSS_SELECTOR, "path.series-trigger")
    assert charts[1].find_elements(By.CSS_SELECTOR, "rect.series-rain") or "No data" in charts[1].text
    assert charts[2].find_element(By.CSS_SELECTOR, "path.series-air").get_attribute("d")
    assert browser.find_element(By.CSS_SELECTOR, ".moisture .value").text == f"{hours[-1]['moisture_pct']:.1f}"
    save_page(browser, screenshots / "zone.png")


def test_the_inbox_explains_the_farms_advice(browser: webdriver.Chrome, site: Site, screenshots: Path) -> None:
    office = site.registry.issue_token(site.farm.id, "farm office", [Scope.READ, Scope.WRITE])
    sign_in(browser, site, office)
    click(browser, By.LINK_TEXT, "Advice")
    at = farm_now(site.influx, site.farm.id)
    now = at.timestamp()
    stored = recommendations(site.influx, site.farm.id, now - 7 * 86400, now + 3600, limit=500)
    assert stored, "three days of a farm give advice"
    shown = browser.find_elements(By.CSS_SELECTOR, "article.advice")
    assert [a.get_attribute("id") for a in shown] == [f"advice-{r['id']}" for r in stored], "newest first, all"
    first = shown[0].text
    assert stored[0]["message"] in first and "confidence" in first
    irrigations = [r for r in stored if r["kind"] == "irrigation" and r.get("amount_mm")]
    for r in irrigations:
        assert f"{r['amount_mm']:.1f} mm" in browser.find_element(By.ID, f"advice-{r['id']}").text
    replaced = {str(r["supersedes"]) for r in stored if r.get("supersedes")}
    standing = [
        f"advice-{r['id']}"
        for r in irrigations
        if str(r["id"]) not in replaced and datetime.fromisoformat(r["valid_until"]) >= at
    ]
    deciding = browser.find_elements(By.CSS_SELECTOR, "article.advice:has(.decide)")
    assert [a.get_attribute("id") for a in deciding] == standing, "accept or decline each standing irrigation"
    expired = [r for r in irrigations if str(r["id"]) not in replaced and f"advice-{r['id']}" not in standing]
    for r in expired:
        assert "No longer stands" in browser.find_element(By.ID, f"advice-{r['id']}").text
    assert standing or expired, "the three days hold an irrigation to answer or one past its time"
    save_page(browser, screenshots / "inbox.png")
    sign_in(browser, site, site.token)
    click(browser, By.LINK_TEXT, "Advice")
    assert browser.find_elements(By.CSS_SELECTOR, ".decide button") == [], "a read token may not answer"


def test_device_health_shows_each_devices_last_reading(browser: webdriver.Chrome, site: Site) -> None:
    sign_in(browser, site, site.token)
    click(browser, By.LINK_TEXT, "Devices")
    rows = browser.find_elements(By.CSS_SELECTOR, "li.device")
    assert [r.get_attribute("id") for r in rows] == [f"device-{d.id}" for d in site.farm.devices]
    assert all(r.find_element(By.CSS_SELECTOR, ".state").text == "Online" for r in rows), "all sent in the last hour"
    assert all("Last reading: " in r.text and "Jun" in r.text for r in rows)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def fetch(base: str, path: str, cookie: str | None = None) -> tuple[int, Message, str]:
    """One page, as is: no redirect followed."""
    headers = {"Cookie": f"smartfarm_token={cookie}"} if cookie else {}
    request = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def test_a_farms_token_opens_no_page_of_another_farm(site: Site) -> None:
    for path in ("/app/farms/hill-farm", "/app/farms/hill-farm/inbox", "/app/farms/no-such-farm/devices"):
        status, _, page = fetch(site.base, path, site.token)
        assert status == 404 and "Not found" in page and "no farm" in page, path
    status, _, page = fetch(site.base, f"/app/farms/{site.farm.id}/zones/nowhere", site.token)
    assert status == 404 and "has no zone" in page
    status, headers, page = fetch(site.base, f"/app/farms/{site.farm.id}", site.token)
    assert status == 200 and "<script" not in page and "https://" not in page, "no script, nothing from elsewhere"
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    for cookie in (None, "sft_not-a-token"):
        status, headers, _ = fetch(site.base, f"/app/farms/{site.farm.id}", cookie)
        assert status == 303 and headers["location"] == "/app/signin"
    ingest_only = site.registry.issue_token(site.farm.id, "gateway", [Scope.INGEST])
    status, _, page = fetch(site.base, f"/app/farms/{site.farm.id}", ingest_only)
    assert status == 403 and "read" in page


def post(site: Site, path: str, body: str, cookie: str) -> tuple[int, Message, str]:
    request = urllib.request.Request(
        site.base + path,
        data=body.encode(),
        headers={"Cookie": f"smartfarm_token={cookie}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def test_a_form_without_the_pages_form_token_is_refused_and_the_pages_are_not_in_the_openapi(site: Site) -> None:
    status, headers, page = post(site, "/app/signout", "form_token=forged", site.token)
    assert status == 403 and "out of date" in page and "set-cookie" not in {k.lower() for k in headers}
    status, _, page = fetch(site.base, f"/app/farms/{site.farm.id}", site.token)
    token = page.split('name="form_token" value="')[1].split('"')[0]
    status, headers, _ = post(site, "/app/signout", f"form_token={token}", site.token)
    assert status == 303 and 'smartfarm_token=""' in headers["set-cookie"]
    status, _, spec = fetch(site.base, "/openapi.json")
    assert status == 200 and "/app" not in spec


def test_without_influxdb_the_pages_say_what_is_missing(tmp_path: Path) -> None:
    registry = FarmRegistry.at(tmp_path / "registry.db")
    registry.migrate()
    registry.import_layout(load_layout())
    farm = load_layout().farms[0]
    port = free_port()
    server, thread = serve_in_thread(create_app(registry), "127.0.0.1", port)
    try:
        token = registry.issue_token(farm.id, "phone", [Scope.READ])
        status, _, page = fetch(f"http://127.0.0.1:{port}", f"/app/farms/{farm.id}", token)
        assert status == 503 and "SMARTFARM_INFLUX_URL" in page and "<h1>Not available</h1>" in page
    finally:
        server.should_exit = True
        thread.join(10)
        registry.close()


def test_a_farm_with_nothing_measured_yet_has_pages_that_say_so(site: Site) -> None:
    hill = site.registry.issue_token("hill-farm", "phone", [Scope.READ])
    zone = site.farm.zones[0].id
    status, _, page = fetch(site.base, "/app/farms/hill-farm", hill)
    assert status == 200 and page.count("No reading yet") == len(site.farm.zones)
    status, _, page = fetch(site.base, f"/app/farms/hill-farm/zones/{zone}", hill)
    assert status == 200 and page.count("No data for these days yet") == 3
    status, _, page = fetch(site.base, "/app/farms/hill-farm/inbox", hill)
    assert status == 200 and "No advice in the last week." in page
    status, _, page = fetch(site.base, "/app/farms/hill-farm/devices", hill)
    assert status == 200 and "<li " not in page and "This farm has no devices yet." in page
