"""Real-browser fixtures: `jsm-mail serve` as a subprocess on a free loopback port, and a headless Chromium.

`live_service` runs the service the way an admin does, on the test's data dir, fake Jira and Dovecot
account (polling every second); `browser` drives Debian's chromium through chromium-driver. Every
test's screenshots land in `tmp_path/screenshots`; a failed test always leaves one of its last page.
"""
from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import Service
from tests.web.conftest import admin_password

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
APT_PACKAGES = "chromium chromium-driver"
# No network but loopback, nothing kept between runs, nothing a test did not ask for.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1366,900", "--lang=en-US")
WAIT_S = 15.0
START_TIMEOUT_S = 30.0
# On a first visit prefs.js adds `detected` to the form and sends it: the page is settled once it has not.
SETTLED_SCRIPT = """
const field = document.querySelector("form.prefs input[name=tz]");
return document.readyState === "complete" && field !== null && !document.querySelector("input[name=detected]")
    && (!field.hasAttribute("data-detect") || field.value === Intl.DateTimeFormat().resolvedOptions().timeZone);
"""
PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test, so `browser` knows at teardown whether the test failed."""
    report = yield
    item.stash.setdefault(PHASE_REPORTS, {})[report.when] = report
    return report


@dataclass
class Browser:
    """A headless Chromium: open pages, find and wait for elements, take screenshots."""

    driver: WebDriver
    screenshots: Path
    base_url: str = ""

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str = "body") -> str:
        return self.find(css).text

    def wait_for(self, css: str, timeout_s: float = WAIT_S) -> WebElement:
        """The first element matching `css`, once it is shown."""
        element: WebElement = WebDriverWait(self.driver, timeout_s).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css)))
        return element

    def until(self, condition: Callable[[WebDriver], Any], timeout_s: float = WAIT_S) -> Any:
        """Wait until `condition` holds; a page still loading (a stale element, a script run mid-way) is a no."""
        return WebDriverWait(self.driver, timeout_s, ignored_exceptions=(WebDriverException,)).until(condition)

    def submit_and_wait(self, button: WebElement) -> None:
        """Click a form's button and wait until the next page has replaced this one."""
        page = self.find("html")
        button.click()
        self.until(expected_conditions.staleness_of(page))
        self.until(lambda driver: driver.execute_script("return document.readyState") == "complete")

    def set_timezone(self, zone: str) -> None:
        """The zone the browser itself reports (Intl), as if the machine were set to it."""
        self.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": zone})

    def shot(self, name: str) -> Path:
        """A PNG of the whole page, not only the window, in the test's screenshots folder."""
        self.screenshots.mkdir(parents=True, exist_ok=True)
        path = self.screenshots / f"{name}.png"
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "clip": clip,
                                                                      "captureBeyondViewport": True})["data"]
        path.write_bytes(base64.b64decode(data))
        return path


def chromium_or_skip() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.skip(f"Chromium is not installed ({', '.join(missing)} missing): apt-get install {APT_PACKAGES}, "
                    "as scripts/setup.sh --test does")


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Browser]:
    chromium_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    # The pages pick their language from Accept-Language: English unless a test switches.
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    service = DriverService(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    shown = Browser(driver, tmp_path / "screenshots")
    try:
        yield shown
    finally:
        reports = request.node.stash.get(PHASE_REPORTS, {})
        if any(report.failed for report in reports.values()):
            with contextlib.suppress(WebDriverException):
                shown.shot("failure")
                (shown.screenshots / "failure.html").write_text(driver.page_source)
            request.node.add_report_section("teardown", "screenshots", f"the last page: {shown.screenshots}")
        driver.quit()


@dataclass
class LiveService:
    """`jsm-mail serve` on loopback, with the in-process view of its store, link and mailbox."""

    url: str
    service: Service
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def password(self) -> str:
        return admin_password(self.service.settings)

    def log_in(self, browser: Browser, password: str | None = None) -> None:
        """Fill in the login form as an admin would; with the right password, wait for the first page."""
        browser.base_url = self.url
        browser.open("/admin/login")
        browser.find("input[name=user]").send_keys(self.service.settings.admin_user)
        browser.find("input[name=password]").send_keys(password or self.password)
        browser.submit_and_wait(browser.find("form button"))
        if password is None:
            browser.until(prefs_settled)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def prefs_settled(driver: WebDriver) -> bool:
    """An admin page is shown and its script has not sent the browser's time zone (prefs.js)."""
    return bool(driver.execute_script(SETTLED_SCRIPT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
            return bool(answer.status == 200)
    except urllib.error.HTTPError:
        return True  # it answers: 503 only says a link is failing
    except OSError:
        return False


@pytest.fixture
def live_service(service: Service, env: dict[str, str], tmp_path: Path) -> Iterator[LiveService]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "plugin.cli", "serve", "--host", "127.0.0.1",
                                    "--port", str(port)], env={**env, "JSM_MAIL_POLL_INTERVAL_S": "1"},
                                   stdout=log, stderr=subprocess.STDOUT)
    live = LiveService(url, service, process, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            assert process.poll() is None, f"jsm-mail serve ended ({process.returncode}):\n{live.log_tail()}"
            assert time.monotonic() < deadline, f"jsm-mail serve did not answer in time:\n{live.log_tail()}"
            time.sleep(0.1)
        yield live
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
