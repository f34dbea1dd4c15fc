"""Debian's headless Chromium, driven by Selenium through Debian's chromedriver, for the web app's tests.

It reaches nothing but loopback: every other address goes to a proxy that does not exist (Chromium connects to
loopback directly, whatever the proxy) and every host name but localhost and 127.0.0.1 resolves to nothing. It
looks like a phone: 412 x 915 CSS pixels at twice the density, touch, the mobile viewport. A missing Chromium or
driver fails the test with the command that installs them, as a missing service does.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from smartfarm.errors import ServiceMissingError

INSTALL = "sudo apt-get install -y chromium chromium-driver"
PHONE = {"width": 412, "height": 915, "deviceScaleFactor": 2, "mobile": True}


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise ServiceMissingError("chromium (with chromium-driver)", INSTALL)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
        f"--window-size={PHONE['width']},{PHONE['height']}",
    ):
        options.add_argument(flag)
    # An explicit driver: Selenium Manager, which would download one, never runs.
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.set_page_load_timeout(15)
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    chrome.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the tests save their screenshots: ``SMARTFARM_SCREENSHOTS`` (docs/screenshots to refresh the committed
    ones), or this test's temporary folder, so a test run leaves the tree as it was."""
    folder = Path(os.environ.get("SMARTFARM_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
