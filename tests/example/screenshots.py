"""Take the example's screenshots for the docs: ``python -m tests.example.screenshots [DIR]``.

Runs the example with ``runserver`` on a fresh database, has alice, bob and
carol chat in headless Chromium (1280x800), and saves ``example-rooms.png``
(the room list) and ``example-room.png`` (a room with a conversation) in
*DIR* (default ``docs/images``). Needs chromium, chromedriver and selenium.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.browser import CHROMIUM_FLAGS, _find
from tests.example import pages
from tests.example.support import ROOT, run_example

SIZE = {"width": 1280, "height": 800}
ROOMS = [
    ("carol", "Design review"),
    ("bob", "Release planning"),
    ("alice", "Support"),
    ("bob", "Off-topic"),
]
CONVERSATION = [
    ("alice", "Morning! Did the deploy go out?"),
    ("bob", "Yes: daphne and two runworkers, all on Redis now."),
    ("carol", "Nice. The room list updated by itself when I opened Design review."),
    ("alice", "That's the data binding: Room changes go to every open list after commit."),
    ("bob", "And the send button greys out while the server restarts, then comes back."),
    ("carol", "Shipping it, then. Thanks both!"),
]


@contextlib.contextmanager
def browsers() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _find("chromium", "chromium-browser"), _find("chromedriver")
    if binary is None or driver_path is None:
        raise SystemExit("Install chromium and chromedriver: apt-get install chromium-driver")
    drivers = []
    with contextlib.ExitStack() as stack:

        def start() -> Any:
            profile = stack.enter_context(tempfile.TemporaryDirectory(prefix="chat-shots-"))
            options = webdriver.ChromeOptions()
            options.binary_location = binary
            for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--hide-scrollbars"):
                options.add_argument(flag)
            driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
            drivers.append(driver)
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {**SIZE, "deviceScaleFactor": 1, "mobile": False},
            )
            return driver

        try:
            yield start
        finally:
            for driver in drivers:
                driver.quit()


def take(app: Any, start: Any, directory: Path) -> None:
    """Have the demo users open rooms and chat, then save the two screenshots."""
    users = {name: start() for name in ("alice", "bob", "carol")}
    for name, driver in users.items():
        pages.login(driver, app, name)
    for name, title in ROOMS:
        pages.open_new_room(users[name], app, title)
    for driver in users.values():
        pages.open_room(driver, app, "lobby")
    alice = users["alice"]
    pages.wait(alice, lambda d: pages.online(d) == "3", "not everyone is online")
    for name, text in CONVERSATION:
        pages.say(users[name], text)
        pages.wait(alice, lambda d, n=name, t=text: f"{n}: {t}" in pages.messages(d), text)
    pages.script(alice, "document.activeElement.blur()")
    alice.save_screenshot(str(directory / "example-room.png"))
    pages.open_page(alice, app, "/")
    alice.save_screenshot(str(directory / "example-rooms.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=ROOT / "docs" / "images")
    directory = parser.parse_args().directory
    directory.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_example("runserver", Path(tmp) / "db") as app,
        browsers() as start,
    ):
        take(app, start, directory)
    print(f"Saved example-room.png and example-rooms.png in {directory}")


if __name__ == "__main__":
    main()
