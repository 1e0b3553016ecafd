"""Drive the chat example's pages in Chromium (Selenium), synchronised on what the page shows."""

from __future__ import annotations

from typing import Any

from tests.example.support import PASSWORD, Example

#: How long a page may take to show what a test waits for, in seconds.
TIMEOUT = 20


def wait(driver: Any, condition: Any, message: str) -> Any:
    """Poll *condition(driver)* until it is truthy, for at most :data:`TIMEOUT` seconds."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT, poll_frequency=0.1).until(condition, message)


def script(driver: Any, source: str, *arguments: Any) -> Any:
    return driver.execute_script(source, *arguments)


def login(driver: Any, example: Example, username: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(example.url + "/accounts/login/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    wait(driver, lambda d: d.current_url == example.url + "/", f"{username} not logged in")


def connected(driver: Any) -> bool:
    """Whether the page's bridge has an open socket (the page sets body[data-connected])."""
    return script(driver, "return document.body.dataset.connected") == "true"


def open_page(driver: Any, example: Example, path: str) -> None:
    """Load *path* and wait until its socket is open."""
    driver.get(example.url + path)
    wait(driver, connected, f"the socket of {path} did not open")


def open_room(driver: Any, example: Example, room: str) -> None:
    open_page(driver, example, f"/chat/{room}/")


def messages(driver: Any) -> list[str]:
    """The room's messages as "user: text", in the order shown."""
    return script(
        driver,
        """return [...document.querySelectorAll('#messages li[data-id]')].map(
             (li) => li.querySelector('.user').textContent + ': '
                     + li.querySelector('.text').textContent)""",
    )


def online(driver: Any) -> str:
    return script(driver, "return document.getElementById('online-count').textContent")


def people(driver: Any) -> list[str]:
    """The names under "Online" in a room's sidebar."""
    return script(
        driver,
        "return [...document.querySelectorAll('#online-users li span:last-child')]"
        ".map((name) => name.textContent)",
    )


def rooms(driver: Any) -> list[str]:
    """The titles in the page's list of rooms (the room list, or a room's sidebar)."""
    return script(
        driver,
        "return [...document.querySelectorAll('#rooms li[data-pk] .room-title')]"
        ".map((title) => title.textContent)",
    )


def room_pk(driver: Any, title: str) -> str:
    return script(
        driver,
        """return [...document.querySelectorAll('#rooms li[data-pk]')].find(
             (li) => li.querySelector('.room-title').textContent === arguments[0]).dataset.pk""",
        title,
    )


def say(driver: Any, text: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "message-input").send_keys(text)
    driver.find_element(By.ID, "send-button").click()


def send_enabled(driver: Any) -> bool:
    return script(driver, "return !document.getElementById('send-button').disabled")


def open_new_room(driver: Any, example: Example, title: str) -> None:
    """Open a room with the room list's form; the browser ends up in the room."""
    from selenium.webdriver.common.by import By

    open_page(driver, example, "/")
    driver.find_element(By.ID, "room-title-input").send_keys(title)
    driver.find_element(By.ID, "new-room-button").click()
    wait(driver, lambda d: "/chat/" in d.current_url, f"{title!r} did not open")
    wait(driver, connected, f"the socket of {title!r} did not open")
