"""What the live-server sample uses of splinter's ``Browser``, on a real headless Chromium.

splinter is not installed here; this drives Debian's chromium through
Selenium and chromedriver (as splinter's Chrome driver does), with the flags
of the browser tests. Each page visited is kept in :data:`visited` so a test
can check what the sample's browser saw after it has quit.
"""

from __future__ import annotations

import shutil
import tempfile
from types import TracebackType
from typing import Any

from tests.browser import CHROMIUM_FLAGS

__all__ = ["Browser", "visited"]

#: (url, page source) of every page any Browser visited, in order.
visited: list[tuple[str, str]] = []


class Browser:
    """A headless Chromium with splinter's ``visit``, ``html``, ``url`` and ``quit``."""

    def __init__(self, driver_name: str = "chrome", **kwargs: Any) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        if driver_name != "chrome":
            raise ValueError(f"only the chrome driver is provided here, not {driver_name!r}")
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        driver = shutil.which("chromedriver")
        if binary is None or driver is None:
            raise RuntimeError("apt-get install -y chromium chromium-driver")
        self._profile = tempfile.TemporaryDirectory(prefix="docs1x-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=driver))
        self.driver.set_page_load_timeout(30)

    def visit(self, url: str) -> None:
        self.driver.get(url)
        visited.append((url, self.driver.page_source))

    @property
    def html(self) -> str:
        return self.driver.page_source

    @property
    def url(self) -> str:
        return self.driver.current_url

    def evaluate_script(self, script: str) -> Any:
        return self.driver.execute_script(f"return {script}")

    def quit(self) -> None:
        self.driver.quit()
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.quit()
