"""The chat example in real (headless) Chromium: the page's JavaScript, end to end."""

from __future__ import annotations

import pytest

from tests.example.support import PASSWORD, run_example

pytestmark = pytest.mark.browser

TIMEOUT = 20


@pytest.fixture(params=["runserver", "daphne+runworker"])
def example(request, redis_url, tmp_path):
    with run_example(request.param, tmp_path / "db.sqlite3", redis_url) as running:
        yield running


def wait(driver, condition, message):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT).until(condition, message)


def login(driver, example, username):
    from selenium.webdriver.common.by import By

    driver.get(example.url + "/accounts/login/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    wait(driver, lambda d: d.current_url == example.url + "/", f"{username} not logged in")


def open_room(driver, example, room):
    driver.get(f"{example.url}/chat/{room}/")
    wait(
        driver,
        lambda d: d.execute_script("return document.body.dataset.connected") == "true",
        f"the socket of {room} did not open",
    )


def messages(driver):
    from selenium.webdriver.common.by import By

    return [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#messages li")]


def online(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "online-count").text


def say(driver, text):
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "message-input").send_keys(text)
    driver.find_element(By.ID, "send-button").click()


def test_chat_in_the_browser(chromium, example):
    alice, bob = chromium(), chromium()
    login(alice, example, "alice")
    login(bob, example, "bob")
    open_room(alice, example, "lobby")
    lobby_tab = alice.current_window_handle
    open_room(bob, example, "lobby")
    wait(bob, lambda d: online(d) == "2", "bob does not see two people online")
    wait(alice, lambda d: online(d) == "2", "alice does not see two people online")

    # alice also has the other room open, in a second tab.
    alice.switch_to.new_window("tab")
    random_tab = alice.current_window_handle
    open_room(alice, example, "random")
    wait(alice, lambda d: online(d) == "1", "alice is not alone in random")

    alice.switch_to.window(lobby_tab)
    say(alice, "hello bob")
    wait(bob, lambda d: "alice: hello bob" in messages(d), "bob did not get the message")
    wait(alice, lambda d: "alice: hello bob" in messages(d), "alice did not see her message")

    # The other room did not get it: the next message there is its own.
    alice.switch_to.window(random_tab)
    say(alice, "a random thought")
    wait(alice, lambda d: "alice: a random thought" in messages(d), "random stayed silent")
    assert "alice: hello bob" not in messages(alice)

    # bob replies; reloading shows the history once, from the database.
    say(bob, "hi alice")
    alice.switch_to.window(lobby_tab)
    wait(alice, lambda d: "bob: hi alice" in messages(d), "alice did not get the reply")
    bob.refresh()
    assert messages(bob) == ["alice: hello bob", "bob: hi alice"]
    wait(
        bob,
        lambda d: d.execute_script("return document.body.dataset.connected") == "true",
        "bob's socket did not reopen",
    )
    wait(bob, lambda d: online(d) == "2", "bob's count after the reload")
    assert messages(bob) == ["alice: hello bob", "bob: hi alice"]

    # bob closes the room: alice's count goes down.
    bob.get(example.url + "/")
    wait(alice, lambda d: online(d) == "1", "alice's count did not go down")
