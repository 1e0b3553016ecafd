"""Headless Chromium for the browser tests (Selenium + Debian's chromium and chromedriver).

``chromium`` is a fixture (made available to every test module by
``tests/conftest.py``): a factory of drivers, each with its own profile, all
quit afterwards. Without selenium, chromium or chromedriver it skips, saying
what to install.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: The flags the browser tests start Chromium with (plus a fresh --user-data-dir).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: What ``pytest.mark.browser`` means (registered by ``tests/conftest.py``).
BROWSER_MARKER = (
    "browser: drives headless Chromium with Selenium (skipped without chromium, "
    "chromedriver and selenium)"
)


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def chromium() -> Iterator[Callable[[], Any]]:
    """A factory of headless Chromium drivers, each with its own profile; all quit afterwards."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed: pip install selenium")
    binary = _find("chromium", "chromium-browser")
    driver_path = _find("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip(
            "chromium and chromedriver are not installed: "
            "apt-get install -y chromium chromium-driver"
        )
    drivers = []
    with contextlib.ExitStack() as stack:

        def start() -> Any:
            profile = stack.enter_context(tempfile.TemporaryDirectory(prefix="chat-chromium-"))
            options = webdriver.ChromeOptions()
            options.binary_location = binary
            for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
                options.add_argument(flag)
            driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
            drivers.append(driver)
            driver.set_page_load_timeout(30)
            return driver

        try:
            yield start
        finally:
            for driver in drivers:
                driver.quit()
