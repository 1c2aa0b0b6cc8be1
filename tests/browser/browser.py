"""Debian's Chromium, headless, driven by Selenium through Debian's chromedriver: nothing is downloaded.

    with chromium(shots=docs/screenshots or None) as browser:
        browser.login(base, "operator", password)
        browser.find("[data-testid=trigger-dag-button]").click()

Selenium Manager is never asked for a driver or a browser: both paths are given, and ``SE_OFFLINE`` forbids it the
network anyway. Every browser starts with a fresh profile (``--user-data-dir`` in a temporary folder) and a fixed
window size, so screenshots of the same screen have the same size run after run.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.helpers import missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1280, 800)
# What the issue asks of the browser: headless, no sandbox (root in CI), and nothing that reaches the network.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",  # a container's /dev/shm is small: Chromium's tabs crash on it
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)
T = TypeVar("T")


class Browser:
    """One Chromium session: waits on what the page shows, never on time."""

    def __init__(self, driver: webdriver.Chrome, shots: Path | None, timeout: float = 60.0) -> None:
        self.driver = driver
        self.shots = shots
        self.timeout = timeout

    def get(self, url: str) -> None:
        self.driver.get(url)

    def until(self, what: str, condition: Callable[[webdriver.Chrome], T], timeout: float | None = None) -> T:
        """Wait until ``condition(driver)`` is true (a stale element counts as not yet); fail naming ``what``."""
        wait = WebDriverWait(self.driver, timeout or self.timeout, ignored_exceptions=[StaleElementReferenceException])
        return wait.until(condition, f"{what} (page {self.driver.current_url})")

    def find(self, css: str, timeout: float | None = None) -> WebElement:
        """The first visible element matching ``css``, once there is one."""

        def visible(driver: webdriver.Chrome) -> WebElement | None:
            return next((e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None)

        return self.until(f"a visible {css}", visible, timeout)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def wait_text(self, text: str, timeout: float | None = None) -> None:
        self.until(f"the text {text!r}", lambda d: text in d.find_element(By.TAG_NAME, "body").text, timeout)

    def button(self, label: str, timeout: float | None = None) -> WebElement:
        """A visible, enabled button whose text is ``label``."""

        def found(driver: webdriver.Chrome) -> WebElement | None:
            return next(
                (
                    e
                    for e in driver.find_elements(By.XPATH, f"//button[normalize-space()={label!r}]")
                    if e.is_displayed() and e.is_enabled()
                ),
                None,
            )

        return self.until(f"a button {label!r}", found, timeout)

    def fill(self, css: str, value: str) -> None:
        """Replace what a (React-controlled) input holds, as a user does (select all, type); wait until it shows."""
        field = self.find(css)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(value)
        self.until(f"{css} to hold {value!r}", lambda _: field.get_attribute("value") == value)

    def login(self, base: str, user: str, password: str) -> None:
        """Sign in through Airflow's login page (SimpleAuthManager) and wait for the UI."""
        self.get(base + "/")
        self.until("the login page", lambda d: "/auth/login" in d.current_url)
        self.find("input[name=username]").send_keys(user)
        self.find("input[name=password]").send_keys(password)
        self.find("button[type=submit]").click()
        self.until(f"{user} to be signed in", lambda d: "/auth/login" not in d.current_url)
        self.find("[data-testid=nav-dags-link]")

    def shot(self, name: str) -> None:
        """Save the screen as ``<shots>/<name>.png`` when screenshots were asked for (RUNWAY_SCREENSHOTS=1)."""
        if self.shots is not None:
            self.shots.mkdir(parents=True, exist_ok=True)
            small_png(self.driver.get_screenshot_as_png(), self.shots / f"{name}.png")

    def script(self, source: str, *args: Any) -> Any:
        return self.driver.execute_script(source, *args)


def small_png(png: bytes, path: Path) -> None:
    """Write a screenshot with a 64-colour palette: a UI screen stays sharp at a third of the size."""
    from PIL import Image  # matplotlib's dependency, in the orchestrator environment

    with Image.open(io.BytesIO(png)) as image:
        image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


@contextmanager
def chromium(*, shots: Path | None = None) -> Iterator[Browser]:
    """A fresh headless Chromium; ``missing(...)`` when Debian's chromium or chromium-driver is not installed."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.is_file():
            missing(f"{path} is not installed (make setup installs it: apt-get install {package})")
    # Selenium Manager would otherwise look for a newer driver or browser on the network.
    os.environ["SE_OFFLINE"] = "true"
    with tempfile.TemporaryDirectory(prefix="runway-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
        try:
            yield Browser(driver, shots)
        finally:
            driver.quit()
