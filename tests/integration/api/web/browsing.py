"""What a farmer does in the browser, for the web app's tests: sign in, click and wait for the next page, save a
screenshot of the whole page."""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.integration.api.web.conftest import PHONE


def sign_in_at(chrome: webdriver.Chrome, base: str, token: str) -> None:
    """Sign in to the web app at ``base`` with ``token``, from a browser with no cookie."""
    chrome.delete_all_cookies()
    chrome.get(f"{base}/app/")
    chrome.find_element(By.ID, "token").send_keys(token)
    click(chrome, By.CSS_SELECTOR, "form.signin button")


def click(chrome: webdriver.Chrome, by: str, what: str) -> None:
    """Click a link or a form's button and wait until the page it opens has replaced this one and loaded."""
    chrome.execute_script("window.beforeClick = true")  # a mark that the next document will not have
    # chromedriver may lose the button, or fail a look at the page, while the next page replaces it
    with contextlib.suppress(WebDriverException):
        chrome.find_element(by, what).click()
    WebDriverWait(chrome, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script("return !window.beforeClick && document.readyState === 'complete'")
    )


def save_page(chrome: webdriver.Chrome, path: Path) -> Path:
    """The whole page, not only what the phone's screen shows, as a PNG."""
    metrics = chrome.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = chrome.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": PHONE["width"], "height": size["height"], "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
