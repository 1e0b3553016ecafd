"""The chat example in real (headless) Chromium: the pages' JavaScript, end to end.

The pages talk through ``channels.WebSocketBridge``; every wait is on what
the page shows (WebDriverWait), never a sleep.
"""

from __future__ import annotations

import pytest

from tests.example.pages import (
    connected,
    login,
    messages,
    online,
    open_new_room,
    open_page,
    open_room,
    people,
    room_pk,
    rooms,
    say,
    script,
    send_enabled,
    wait,
)
from tests.example.support import run_example

pytestmark = pytest.mark.browser


@pytest.fixture(params=["runserver", "daphne+runworker"])
def example(request, redis_url, tmp_path):
    with run_example(request.param, tmp_path / "db.sqlite3", redis_url) as running:
        yield running


@pytest.fixture
def deployed(redis_url, tmp_path):
    """The example on daphne + two runworkers + Redis, whose daphne a test can restart."""
    with run_example("daphne+runworker", tmp_path / "db.sqlite3", redis_url) as running:
        yield running


def test_chat_in_the_browser(chromium, example):
    alice, bob = chromium(), chromium()
    login(alice, example, "alice")
    login(bob, example, "bob")
    open_room(alice, example, "lobby")
    lobby_tab = alice.current_window_handle
    open_room(bob, example, "lobby")
    wait(bob, lambda d: online(d) == "2", "bob does not see two people online")
    wait(alice, lambda d: online(d) == "2", "alice does not see two people online")
    assert send_enabled(alice)

    # alice also has the other room open, in a second tab.
    alice.switch_to.new_window("tab")
    random_tab = alice.current_window_handle
    open_room(alice, example, "random")
    wait(alice, lambda d: online(d) == "1", "alice is not alone in random")

    alice.switch_to.window(lobby_tab)
    say(alice, "hello bob")
    wait(bob, lambda d: "alice: hello bob" in messages(d), "bob did not get the message")
    wait(alice, lambda d: "alice: hello bob" in messages(d), "alice did not see her message")
    # Each message shows when it was sent.
    assert script(bob, "return document.querySelector('#messages time').textContent")

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
    wait(bob, connected, "bob's socket did not reopen")
    wait(bob, lambda d: online(d) == "2", "bob's count after the reload")
    assert messages(bob) == ["alice: hello bob", "bob: hi alice"]

    # bob closes the room: alice's count goes down.
    bob.get(example.url + "/")
    wait(alice, lambda d: online(d) == "1", "alice's count did not go down")


def test_open_room_lists_follow_rooms_created_renamed_and_deleted(chromium, example):
    """A room opened, renamed or deleted shows in the other browser's open pages, no reload."""
    from selenium.webdriver.common.by import By

    alice, bob = chromium(), chromium()
    login(alice, example, "alice")
    login(bob, example, "bob")
    open_page(alice, example, "/")
    assert rooms(alice) == ["Lobby", "Random"]
    bob.switch_to.new_window("tab")  # bob's second tab: the lobby, with its sidebar
    open_room(bob, example, "lobby")
    lobby_tab = bob.current_window_handle
    bob.switch_to.window(bob.window_handles[0])

    open_new_room(bob, example, "Design review")
    wait(
        alice,
        lambda d: rooms(d) == ["Design review", "Lobby", "Random"],
        "the new room did not appear in alice's room list",
    )
    bob.switch_to.window(lobby_tab)
    wait(bob, lambda d: "Design review" in rooms(d), "nor in the lobby's sidebar")

    # alice (an admin) renames it; bob is in it and sees the new title.
    bob.switch_to.window(bob.window_handles[0])
    pk = room_pk(alice, "Design review")
    alice.switch_to.new_window("tab")
    alice.get(f"{example.url}/admin/chat/room/{pk}/change/")
    title = alice.find_element(By.NAME, "title")
    title.clear()
    title.send_keys("Design crit")
    alice.find_element(By.NAME, "_save").click()
    wait(alice, lambda d: d.current_url.endswith("/admin/chat/room/"), "the admin did not save")
    wait(
        bob,
        lambda d: (
            script(d, "return document.getElementById('room-title').textContent") == "Design crit"
        ),
        "bob's room title did not change",
    )
    alice.switch_to.window(alice.window_handles[0])
    wait(alice, lambda d: "Design crit" in rooms(d), "alice's list did not show the new name")

    # ...and deletes it: it vanishes from the list, and bob's room says it is gone.
    alice.switch_to.window(alice.window_handles[1])
    alice.get(f"{example.url}/admin/chat/room/{pk}/delete/")
    alice.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    alice.switch_to.window(alice.window_handles[0])
    wait(alice, lambda d: rooms(d) == ["Lobby", "Random"], "the room did not vanish")
    wait(
        bob,
        lambda d: script(d, "return !document.getElementById('room-gone').hidden"),
        "bob was not told the room is gone",
    )
    assert not send_enabled(bob)
    bob.switch_to.window(lobby_tab)
    wait(bob, lambda d: rooms(d) == ["Lobby", "Random"], "the lobby's sidebar kept the room")


def test_the_send_button_is_disabled_while_the_server_is_down(chromium, deployed):
    """Stop daphne: the page shows it and disables Send; start it: the page is back by itself."""
    alice, bob = chromium(), chromium()
    login(alice, deployed, "alice")
    login(bob, deployed, "bob")
    open_room(alice, deployed, "lobby")
    open_room(bob, deployed, "lobby")
    wait(alice, lambda d: online(d) == "2", "alice does not see bob")
    assert send_enabled(alice)

    deployed.stop_daphne()
    for driver in (alice, bob):
        wait(driver, lambda d: not send_enabled(d), "Send stayed enabled with the server down")
        wait(
            driver,
            lambda d: script(
                d, "return document.getElementById('connection').textContent"
            ).startswith("Reconnecting"),
            "the page does not say it is reconnecting",
        )
    deployed.start_daphne()

    for driver in (alice, bob):
        wait(driver, connected, "the page did not reconnect by itself")
        wait(driver, send_enabled, "Send was not enabled again")
    say(alice, "back again")
    wait(bob, lambda d: "alice: back again" in messages(d), "bob missed the message")
    # Each reconnected page was sent who is online as it is now.
    for driver in (alice, bob):
        wait(driver, lambda d: online(d) == "2", "the count after the restart")
    assert people(alice) == ["alice (you)", "bob"]
