"""No one gets into a visitor's session: not another site, not a planted key, not a socket's key.

The handshake tests run over real sockets, through daphne and two
``runworker`` processes on Redis, with users logged in over HTTP; the
settings that are not in the test project's environment run through an
in-process worker on a real database.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.core.checks import run_checks
from django.test import Client
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from channels.asgi import ChannelLayerWrapper
from channels.auth import channel_session_user, channel_session_user_from_http
from channels.routing import route
from channels.sessions import ChannelSessions, http_session
from tests.interface import login, migrated_database
from tests.workers import RunWorker


@channel_session_user_from_http
def connect_user(message: Any) -> None:
    message.reply_channel.send({"accept": True})
    message.reply_channel.send({"text": message.user.username or "anonymous"})


@channel_session_user
def tell_key(message: Any) -> None:
    # Only so the test can hold a channel session key, as a leak would give it one.
    message.reply_channel.send({"text": message.channel_session.session_key})


#: The routing daphne + runworker serve in these tests.
routing = [route("websocket.connect", connect_user), route("websocket.receive", tell_key)]
ROUTING = "tests.test_no_one_in.routing"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database of the test project with users ada and mallory (password "pw")."""
    return migrated_database(str(tmp_path_factory.mktemp("db") / "db.sqlite3"), "ada", "mallory")


@pytest.fixture
def server(deployments: Any, database: str) -> Any:
    return deployments(
        "daphne",
        ROUTING,
        CHANNELS_TEST_DB=database,
        CHANNELS_TEST_ALLOWED_HOSTS="127.0.0.1,localhost",
    )


def open_socket(server: Any, path: str = "/", **kwargs: Any) -> ClientConnection:
    return connect(server.ws_url + path, open_timeout=20, **kwargs)


def user_of(ws: ClientConnection) -> str:
    text = ws.recv(timeout=20)
    assert isinstance(text, str)
    return text


# 1. Cross-site WebSocket hijacking ----------------------------------------------


def test_a_page_on_another_site_cannot_open_a_socket_logged_in_as_its_visitor(
    server: Any,
) -> None:
    """A foreign Origin with the visitor's cookie is refused with 403 before any session loads."""
    cookie = {"Cookie": f"sessionid={login(server.url, 'ada')}"}
    for foreign in ("http://evil.example", "null", f"http://127.0.0.1.evil.example:{server.port}"):
        with pytest.raises(InvalidStatus) as refused:
            open_socket(server, origin=foreign, additional_headers=cookie)
        assert refused.value.response.status_code == 403, foreign


def test_same_origin_pages_and_clients_without_origin_are_logged_in(server: Any) -> None:
    """The site's own pages (its Host, ALLOWED_HOSTS) and non-browser clients still get in."""
    cookie = {"Cookie": f"sessionid={login(server.url, 'ada')}"}
    for origin in (f"http://127.0.0.1:{server.port}", "https://localhost", None):
        with open_socket(server, origin=origin, additional_headers=cookie) as ws:
            assert user_of(ws) == "ada", origin


# 2. Session fixation ------------------------------------------------------------


def test_a_session_key_in_the_url_does_not_replace_the_visitors_cookie(server: Any) -> None:
    """A link carrying the attacker's key leaves the visitor in the visitor's own session."""
    ada, mallory = login(server.url, "ada"), login(server.url, "mallory")
    origin = f"http://127.0.0.1:{server.port}"
    with open_socket(
        server,
        f"/?session_key={mallory}",
        origin=origin,
        additional_headers={"Cookie": f"sessionid={ada}"},
    ) as ws:
        assert user_of(ws) == "ada"
    with open_socket(server, f"/?session_key={mallory}", origin=origin) as ws:
        assert user_of(ws) == "anonymous"  # the query form is opt-in


# 3. Channel session keys are not HTTP session keys -----------------------------


def test_a_channel_session_key_sent_as_the_session_cookie_does_not_log_in(server: Any) -> None:
    """The key of a logged-in socket's channel session opens no HTTP session for another."""
    origin = f"http://127.0.0.1:{server.port}"
    cookie = {"Cookie": f"sessionid={login(server.url, 'ada')}"}
    with open_socket(server, origin=origin, additional_headers=cookie) as ada:
        assert user_of(ada) == "ada"
        ada.send("your key?")
        channel_key = user_of(ada)
        assert channel_key.startswith("chn")
        with open_socket(
            server, origin=origin, additional_headers={"Cookie": f"sessionid={channel_key}"}
        ) as thief:
            assert user_of(thief) == "anonymous"


@pytest.mark.django_db(transaction=True)
def test_no_http_session_key_has_the_form_of_a_channel_session_key() -> None:
    """Django's HTTP keys and our channel keys never share a form, so neither is the other."""
    channel_key = ChannelSessions.key_for("websocket.send!abc")
    for _ in range(20):
        store = SessionStore()
        store.create()
        assert store.session_key is not None
        assert not ChannelSessions.is_channel_key(store.session_key)
        assert len(store.session_key) != len(channel_key)
    assert ChannelSessions.is_channel_key(channel_key)
    assert ChannelSessions.http_session_by_key(channel_key) is None


# Settings: opt-ins and the trusted origins, through an in-process worker --------


def logged_in_cookie(username: str) -> list[list[bytes]]:
    client = Client()
    client.force_login(User.objects.create_user(username, password="pw"))
    return [[b"cookie", f"sessionid={client.session.session_key}".encode()]]


def connect_from(
    layer: ChannelLayerWrapper, headers: list[list[bytes]], query: bytes = b""
) -> dict[str, Any]:
    """Send one ``websocket.connect`` and return what the socket got back first."""
    layer.send(
        "websocket.connect",
        {"reply_channel": "test.reply!1", "path": "/", "headers": headers, "query_string": query},
    )
    name, message = layer.receive(["test.reply!"], block=True, timeout=10)
    assert name is not None, "the consumer did not answer"
    return message


@pytest.fixture
def user_worker(layer: ChannelLayerWrapper, run_worker: RunWorker) -> ChannelLayerWrapper:
    @http_session
    def consumer(message: Any) -> None:
        session = message.http_session
        message.reply_channel.send({"user": session.get("_auth_user_id") if session else None})

    run_worker([route("websocket.connect", consumer)])
    return layer


@pytest.mark.django_db(transaction=True)
def test_csrf_trusted_origins_may_open_session_sockets(
    user_worker: ChannelLayerWrapper, settings: Any
) -> None:
    """CSRF_TRUSTED_ORIGINS (wildcards too) are the site's; ``ALLOWED_HOSTS = ['*']`` is not."""
    settings.ALLOWED_HOSTS = ["*"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.example.com", "http://app.test:8080"]
    cookie = logged_in_cookie("ada")
    host = [[b"host", b"ws.example.com"]]
    for origin in (b"https://www.example.com", b"http://app.test:8080", b"http://ws.example.com"):
        reply = connect_from(user_worker, [*cookie, *host, [b"origin", origin]])
        assert reply["user"] is not None, origin
    for origin in (b"http://www.example.com", b"http://app.test:8081", b"https://evil.test"):
        reply = connect_from(user_worker, [*cookie, *host, [b"origin", origin]])
        assert reply == {"close": True}, origin


@pytest.mark.django_db(transaction=True)
def test_the_cross_origin_opt_out_lets_any_site_in_and_is_a_system_check_warning(
    user_worker: ChannelLayerWrapper, settings: Any
) -> None:
    """``CHANNELS_ALLOW_CROSS_ORIGIN_SESSIONS = True`` turns the check off, and W005 says so."""
    assert "channels.W005" not in [m.id for m in run_checks()]
    settings.CHANNELS_ALLOW_CROSS_ORIGIN_SESSIONS = True
    reply = connect_from(
        user_worker, [*logged_in_cookie("ada"), [b"origin", b"http://evil.example"]]
    )
    assert reply["user"] is not None
    assert "channels.W005" in [m.id for m in run_checks()]


@pytest.mark.django_db(transaction=True)
def test_the_session_key_query_parameter_is_opt_in_and_loses_to_the_cookie(
    user_worker: ChannelLayerWrapper, settings: Any
) -> None:
    """With ``CHANNELS_SESSION_KEY_QUERY = True`` a cookieless socket may name its session."""
    client = Client()
    client.force_login(User.objects.create_user("mallory", password="pw"))
    mallory = client.session.session_key
    mallory_id = str(User.objects.get(username="mallory").pk)
    query = f"session_key={mallory}".encode()
    assert connect_from(user_worker, [], query) == {"user": None}
    settings.CHANNELS_SESSION_KEY_QUERY = True
    assert connect_from(user_worker, [], query) == {"user": mallory_id}
    ada = connect_from(user_worker, logged_in_cookie("ada"), query)
    assert ada["user"] not in (None, mallory_id)
