"""The chat example, deployed for real: in memory with runserver, and on Redis."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import InvalidStatus

from tests.example.support import (
    Browser,
    chat_message,
    is_diff,
    is_snapshot,
    joined,
    left,
    next_event,
    on_rooms_stream,
    online,
    room_titles,
    run_example,
)


@pytest.fixture(params=["runserver", "daphne+runworker"])
def example(request, redis_url, tmp_path):
    with run_example(request.param, tmp_path / "db.sqlite3", redis_url) as running:
        yield running


def is_message(event):
    return event.get("type") == "message"


def test_chat(example):
    alice, bob, carol = Browser(example), Browser(example), Browser(example)
    alice.login("alice")
    bob.login("bob")
    carol.login("carol")

    with alice.websocket("lobby") as alice_ws, carol.websocket("random") as carol_ws:
        next_event(alice_ws, online("alice"))
        next_event(carol_ws, online("carol"))
        with bob.websocket("lobby") as bob_ws:
            # bob's socket starts from the list; the lobby's group hears that he came.
            next_event(bob_ws, online("alice", "bob"))
            diff = next_event(alice_ws, joined("bob"))
            assert diff["presence"] == "chat-lobby"
            assert diff["joins"]["bob"] == [{"name": "bob"}]

            alice_ws.send(json.dumps({"text": "hello from alice"}))
            sent = next_event(bob_ws, chat_message("alice", "hello from alice"))
            assert next_event(alice_ws, is_message) == sent

            # The other room heard nothing of it: carol's next message is her own.
            carol_ws.send(json.dumps({"text": "anyone here?"}))
            assert next_event(carol_ws, is_message)["text"] == "anyone here?"

        # bob left: once the grace period is over, the lobby hears it.
        diff = next_event(alice_ws, left("bob"))
        assert diff["leaves"]["bob"] == [{"name": "bob"}]

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


def test_a_page_that_syncs_gets_what_it_missed_and_the_rooms(example):
    """The page sends {"type": "sync"} each time its socket opens, and is brought up to date."""
    alice, bob = Browser(example), Browser(example)
    alice.login("alice")
    bob.login("bob")
    with alice.websocket("lobby") as alice_ws:
        next_event(alice_ws, online("alice"))
        # One at a time: workers save a socket's frames concurrently.
        sent = []
        for text in ("one", "two", "three"):
            alice_ws.send(json.dumps({"text": text}))
            sent.append(next_event(alice_ws, chat_message("alice", text)))
        first = sent[0]

        # The bridge reconnects to the URL it was given, so the page asks in a frame.
        with bob.websocket("lobby", after=None) as bob_ws:
            next_event(bob_ws, online("alice", "bob"))
            bob_ws.send(json.dumps({"type": "sync", "after": first["id"]}))
            caught_up = [next_event(bob_ws, is_message)["text"] for _ in range(2)]
            assert caught_up == ["two", "three"]
            assert room_titles(next_event(bob_ws, is_snapshot)) == ["Lobby", "Random"]


def test_a_socket_that_reconnects_within_the_grace_period_is_not_seen_to_leave(example):
    """A reload closes the socket and opens another: the room hears one leave, at the end."""
    alice, bob = Browser(example), Browser(example)
    alice.login("alice")
    bob.login("bob")
    with alice.websocket("lobby") as alice_ws:
        next_event(alice_ws, online("alice"))
        with bob.websocket("lobby") as bob_ws:
            next_event(alice_ws, joined("bob"))
        # Closed, and open again well within presence_grace (5 s): still online.
        with bob.websocket("lobby") as bob_ws:
            next_event(bob_ws, online("alice", "bob"))
            # A second tab: bob is still one name, and alice hears nothing of it.
            with bob.websocket("lobby") as second_tab:
                next_event(second_tab, online("alice", "bob"))
        # Gone for good: the first diff alice hears since bob came is that he left.
        diff = next_event(alice_ws, is_diff)
        assert (diff["joins"], list(diff["leaves"])) == ({}, ["bob"])
        assert diff["leaves"]["bob"]
        assert all(meta == {"name": "bob"} for meta in diff["leaves"]["bob"])


def test_room_lists_follow_rooms_created_renamed_and_deleted(example):
    """RoomBinding tells every open room list (and room page) of each committed change."""
    alice, bob, anonymous = Browser(example), Browser(example), Browser(example)
    alice.login("alice")  # an admin: seed_users makes alice staff
    bob.login("bob")
    with bob.websocket(None) as rooms_ws, bob.websocket("lobby") as lobby_ws:
        assert room_titles(next_event(rooms_ws, is_snapshot)) == ["Lobby", "Random"]
        next_event(lobby_ws, online("bob"))

        # Opened with the room list's form...
        status, url, _ = alice.post("/", {"title": "Design Review"})
        assert (status, url) == (200, example.url + "/chat/design-review/")
        created = next_event(rooms_ws, on_rooms_stream("create", slug="design-review"))
        assert created["payload"]["data"] == {"slug": "design-review", "title": "Design Review"}
        next_event(lobby_ws, on_rooms_stream("create", slug="design-review"))
        pk = created["payload"]["pk"]

        # ...renamed in the admin...
        change = f"/admin/chat/room/{pk}/change/"
        status, _, _ = alice.post(
            change, {"title": "Design Crit", "slug": "design-review", "_save": "Save"}
        )
        assert status == 200
        renamed = next_event(rooms_ws, on_rooms_stream("update", title="Design Crit"))
        assert renamed["payload"]["pk"] == pk
        next_event(lobby_ws, on_rooms_stream("update", title="Design Crit"))

        # ...and deleted there.
        alice.post(f"/admin/chat/room/{pk}/delete/", {"post": "yes"})
        deleted = next_event(rooms_ws, on_rooms_stream("delete"))
        assert deleted["payload"]["pk"] == pk

        # The stream is read-only: a client cannot change rooms through it.
        rooms_ws.send(json.dumps({"stream": "rooms", "payload": {"action": "delete", "pk": 1}}))
        refused = next_event(rooms_ws, lambda event: "error" in event.get("payload", {}))
        assert refused["payload"]["error"]["code"] == "permission_denied"

    # A new socket starts from the list as it is now.
    with bob.websocket(None) as rooms_ws:
        assert room_titles(next_event(rooms_ws, is_snapshot)) == ["Lobby", "Random"]

    # The room list's socket is for logged-in users on our own origin only.
    with pytest.raises(InvalidStatus) as denied:
        anonymous.websocket(None)
    assert denied.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as denied:
        bob.websocket(None, origin="http://evil.example.com")
    assert denied.value.response.status_code == 403


def test_logged_out_pages_have_no_rooms_link_and_every_page_has_a_favicon(example):
    anonymous, alice = Browser(example), Browser(example)
    _, _, login_page = anonymous.get("/accounts/login/")
    assert 'id="rooms-link"' not in login_page
    assert 'rel="icon"' in login_page
    alice.login("alice")
    _, _, room_list = alice.get("/")
    assert 'id="rooms-link"' in room_list
    status, _, icon = anonymous.get("/static/chat/favicon.svg")
    assert status == 200
    assert icon.startswith("<svg")
    # The pages load the bundled client, not socket code of their own.
    assert "/static/channels/js/websocketbridge.js" in room_list
