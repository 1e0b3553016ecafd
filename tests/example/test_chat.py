"""The chat example, deployed for real: in memory with runserver, and on Redis."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import InvalidStatus

from tests.example.support import (
    Browser,
    chat_message,
    next_event,
    presence,
    run_example,
)


@pytest.fixture(params=["runserver", "daphne+runworker"])
def example(request, redis_url, tmp_path):
    with run_example(request.param, tmp_path / "db.sqlite3", redis_url) as running:
        yield running


def is_message(event):
    return event["type"] == "message"


def test_chat(example):
    alice, bob, carol = Browser(example), Browser(example), Browser(example)
    alice.login("alice")
    bob.login("bob")
    carol.login("carol")

    with alice.websocket("lobby") as alice_ws, carol.websocket("random") as carol_ws:
        next_event(alice_ws, presence(1, ["alice"]))
        next_event(carol_ws, presence(1, ["carol"]))
        with bob.websocket("lobby") as bob_ws:
            # Everyone in the lobby hears that both are online.
            both = next_event(alice_ws, presence(2, ["alice", "bob"]))
            next_event(bob_ws, presence(2, ["alice", "bob"]))

            alice_ws.send(json.dumps({"text": "hello from alice"}))
            sent = next_event(bob_ws, chat_message("alice", "hello from alice"))
            assert next_event(alice_ws, is_message) == sent

            # The other room heard nothing of it: carol's next message is her own.
            carol_ws.send(json.dumps({"text": "anyone here?"}))
            assert next_event(carol_ws, is_message)["text"] == "anyone here?"

        # bob left: the lobby's count goes down.
        next_event(alice_ws, presence(1, ["alice"], newer_than=both["version"]))

        # A socket opened with ?after=0 catches up on what the room said.
        with bob.websocket("lobby", after=0) as late_ws:
            assert next_event(late_ws, is_message) == sent

    # The history is on the room pages, rendered by Django from the database.
    status, _, page = bob.get("/chat/lobby/")
    assert status == 200
    assert "hello from alice" in page
    assert "anyone here?" not in page
    _, _, page = carol.get("/chat/random/")
    assert "anyone here?" in page
    assert "hello from alice" not in page


def test_sockets_need_a_login_and_our_origin(example):
    anonymous, alice = Browser(example), Browser(example)
    alice.login("alice")
    with pytest.raises(InvalidStatus) as denied:
        anonymous.websocket("lobby")
    assert denied.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as denied:
        alice.websocket("lobby", origin="http://evil.example.com")
    assert denied.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as denied:
        alice.websocket("no-such-room")
    assert denied.value.response.status_code == 403
    # Pages need a login too.
    _, url, _ = anonymous.get("/chat/lobby/")
    assert url.startswith(example.url + "/accounts/login/")
