"""Accept and decline in the browser: the farmer presses Accept on an irrigation in the inbox, and the valve's
command comes through Kafka and the bridge to the simulated valve over MQTT; Decline is recorded; both show in
the inbox as answered, with no buttons left. Real Chromium, Mosquitto, Kafka, InfluxDB and bridge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By

from storage.schema import recommendation_point
from tests.integration.api.stack import FARM, Farm, listening_valves
from tests.integration.api.test_advice_inbox import ZONE, irrigation
from tests.integration.api.web.browsing import click, save_page, sign_in_at
from tests.integration.pipeline import wait_for


def test_accept_in_the_browser_opens_the_valve_and_decline_is_recorded(
    browser: webdriver.Chrome, farm: Farm, screenshots: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    accepted = irrigation(now - timedelta(minutes=30), 12.0, timedelta(minutes=45))  # the valve opens in 15 min
    declined = irrigation(now - timedelta(minutes=20), 8.0, timedelta(hours=1))
    farm.influx.write(recommendation_point(r) for r in (accepted, declined))
    base = farm.api.split("/farms/")[0]

    with listening_valves(farm) as valves:
        sign_in_at(browser, base, farm.token)
        click(browser, By.LINK_TEXT, "Advice")
        for rid in (accepted.id, declined.id):
            buttons = browser.find_elements(By.CSS_SELECTOR, f"#advice-{rid} .decide button")
            assert [b.text for b in buttons] == ["Accept", "Decline"], "a write token may answer an open irrigation"
        save_page(browser, screenshots / "inbox-answer.png")

        click(browser, By.CSS_SELECTOR, f"#advice-{accepted.id} .decide button.primary")
        assert browser.current_url == f"{base}/app/farms/{FARM}/inbox#advice-{accepted.id}"
        answered = browser.find_element(By.ID, f"advice-{accepted.id}")
        assert answered.find_element(By.CSS_SELECTOR, ".status").text.startswith("Accepted by farm office")
        assert answered.find_elements(By.CSS_SELECTOR, ".decide button") == []

        opened: list = []

        def valve_opens() -> bool:
            opened.extend(valves.due(now + timedelta(minutes=20)))
            return bool(opened)

        wait_for("the valve to receive the irrigation accepted in the browser", valve_opens, 30)
        (command,) = opened
        assert (command.zone, command.amount_mm, command.recommendation) == (ZONE, 12.0, str(accepted.id))
        assert command.start_at == accepted.start_at, "at the advised start, which is still ahead"

    click(browser, By.CSS_SELECTOR, f"#advice-{declined.id} .decide button:not(.primary)")
    answered = browser.find_element(By.ID, f"advice-{declined.id}")
    assert answered.find_element(By.CSS_SELECTOR, ".status").text.startswith("Declined by farm office")
    assert browser.find_elements(By.CSS_SELECTOR, ".decide button") == [], "nothing left to answer"
    click(browser, By.LINK_TEXT, "Fields")
    card = browser.find_element(By.ID, f"zone-{ZONE}").find_element(By.CSS_SELECTOR, ".next").text
    assert card.startswith("Next watering: 12.0 mm") and card.endswith("(accepted)"), "the declined one is not coming"
