"""A channel session is nobody's HTTP login, even though both live in one session store.

Over real processes: daphne and two ``runworker`` on Redis, a real SQLite
database, a user logged in over HTTP. The socket's channel session key is
read from the session table, as a leak would hand it to someone, and sent to
a ``login_required`` Django view as the ``sessionid`` cookie.
"""

from __future__ import annotations

import http.client
import sqlite3
from typing import Any

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.test import Client
from websockets.sync.client import ClientConnection, connect

from channels.asgi import ChannelLayerWrapper
from channels.auth import (
    CHANNEL_USER_KEYS,
    channel_session_user,
    channel_session_user_from_http,
    transfer_user,
)
from channels.routing import route
from channels.sessions import CHANNEL_KEY_PREFIX, session_for_reply_channel
from tests.interface import login, migrated_database
from tests.waiting import wait_until
from tests.workers import RunWorker


@channel_session_user_from_http
def connect_user(message: Any) -> None:
    message.reply_channel.send({"accept": True})
    message.reply_channel.send({"text": message.user.username or "anonymous"})


@channel_session_user
def who_am_i(message: Any) -> None:
    message.reply_channel.send({"text": message.user.username or "anonymous"})


#: What daphne + runworker serve here: the socket's user on connect and on every frame.
routing = [route("websocket.connect", connect_user), route("websocket.receive", who_am_i)]
ROUTING = "tests.test_hardening_sessions.routing"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return migrated_database(str(tmp_path_factory.mktemp("db") / "db.sqlite3"), "ada")


def channel_session_keys(database: str) -> set[str]:
    with sqlite3.connect(database, timeout=20) as db:
        rows = db.execute(
            "SELECT session_key FROM django_session WHERE session_key LIKE ?",
            (CHANNEL_KEY_PREFIX + "%",),
        ).fetchall()
    return {key for (key,) in rows}


def get_private(port: int, session_key: str) -> tuple[int, str]:
    """GET the ``login_required`` page with *session_key* as the cookie; no redirects followed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", "/private/", headers={"Cookie": f"sessionid={session_key}"})
        response = connection.getresponse()
        return response.status, response.getheader("Location") or response.read().decode()
    finally:
        connection.close()


def said(ws: ClientConnection) -> str:
    text = ws.recv(timeout=20)
    assert isinstance(text, str)
    return text


def test_a_sockets_channel_session_key_does_not_log_in_on_django_views(
    deployments: Any, database: str
) -> None:
    """A logged-in socket's channel session key, as ``sessionid``, is sent to the login page."""
    server = deployments("daphne", ROUTING, CHANNELS_TEST_DB=database)
    http_key = login(server.url, "ada")
    assert get_private(server.port, http_key) == (200, "ada")  # the page and the login work
    before = channel_session_keys(database)
    with connect(
        server.ws_url + "/", open_timeout=20, additional_headers={"Cookie": f"sessionid={http_key}"}
    ) as ws:
        assert said(ws) == "ada"
        (channel_key,) = wait_until(
            lambda: channel_session_keys(database) - before,
            20,
            "the socket's channel session was never saved",
        )
        status, location = get_private(server.port, channel_key)
        assert status == 302, (status, location)
        assert location.startswith("/accounts/login/")
        ws.send("and now?")
        assert said(ws) == "ada"  # the socket itself is still logged in


@pytest.mark.django_db(transaction=True)
def test_transfer_user_keeps_the_login_under_channel_keys_only() -> None:
    """``transfer_user`` copies id, backend and hash under our keys, never Django's; or logs out."""
    client = Client()
    client.force_login(User.objects.create_user("ada", password="pw"))
    http_session = client.session
    channel_session = session_for_reply_channel("test.reply!abc")
    transfer_user(http_session, channel_session)
    logged_in = [channel_session[key] for key in CHANNEL_USER_KEYS]
    assert logged_in == [
        http_session[key] for key in (SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY)
    ]
    assert not {SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY} & set(channel_session.keys())
    transfer_user(None, channel_session)
    assert not set(CHANNEL_USER_KEYS) & set(channel_session.keys())


@pytest.mark.django_db(transaction=True)
def test_a_channel_session_with_djangos_keys_is_read_and_moved_to_ours(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    """A channel session saved by an earlier release logs its socket in, and stops being a login."""
    user = User.objects.create_user("ada", password="pw")
    reply = "test.reply!old"
    old = session_for_reply_channel(reply)
    old[SESSION_KEY] = str(user.pk)
    old[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    old[HASH_SESSION_KEY] = user.get_session_auth_hash()
    old.save()
    run_worker([route("websocket.receive", who_am_i)])
    layer.send("websocket.receive", {"reply_channel": reply, "path": "/", "text": "?", "order": 1})
    name, said_back = layer.receive(["test.reply!"], block=True, timeout=10)
    assert (name, said_back) == (reply, {"text": "ada"})

    def migrated() -> Any:
        stored = session_for_reply_channel(reply)
        return stored if SESSION_KEY not in stored else None

    stored = wait_until(migrated, 10, "Django's keys were not moved out of the channel session")
    assert stored[CHANNEL_USER_KEYS[0]] == str(user.pk)
