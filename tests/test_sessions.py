"""Sessions, users, ordering and origin checks, through a real worker and database."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from channels import Channel, Group
from channels.asgi import ChannelLayerWrapper
from channels.auth import (
    channel_and_http_session_user_from_http,
    channel_session_user,
    channel_session_user_from_http,
    http_session_user,
)
from channels.checks import check_session_engine
from channels.message import Message
from channels.routing import route
from channels.security.websockets import allowed_hosts_only
from channels.sessions import (
    ChannelSessions,
    Opened,
    SessionScope,
    channel_session,
    enforce_ordering,
    http_session,
    session_for_reply_channel,
)
from tests.logwatch import watch_logs
from tests.project.tutorial import persisting
from tests.workers import RunWorker, expect

pytestmark = pytest.mark.django_db(transaction=True)

_counter = iter(range(10**6))


def new_reply() -> str:
    return f"test.reply!{next(_counter)}"


def send(layer: ChannelLayerWrapper, channel: str, reply: str, **content: Any) -> None:
    layer.send(channel, {"reply_channel": reply, "path": "/", **content})


def reply_of(layer: ChannelLayerWrapper, prefix: str = "test.reply!") -> dict[str, Any]:
    """Return the next reply to any of the test's sockets (they share a process prefix)."""
    name, message = layer.receive([prefix], block=True, timeout=10)
    assert name is not None, f"nothing arrived on {prefix}"
    assert name.startswith(prefix)
    return message


def test_channel_session_persists_per_reply_channel_and_dies_on_disconnect(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    @channel_session
    def counter(message):
        message.channel_session["n"] = message.channel_session.get("n", 0) + 1
        message.reply_channel.send({"n": message.channel_session["n"]})

    @channel_session
    def gone(message):
        message.reply_channel.send({"had": message.channel_session.get("n")})

    run_worker([route("websocket.receive", counter), route("websocket.disconnect", gone)])
    first, second = new_reply(), new_reply()
    for expected in (1, 2, 3):
        send(layer, "websocket.receive", first)
        assert reply_of(layer) == {"n": expected}
    send(layer, "websocket.receive", second)
    assert reply_of(layer) == {"n": 1}
    key = ChannelSessions.key_for(first)
    assert first not in key
    assert Session.objects.filter(session_key=key).exists()
    send(layer, "websocket.disconnect", first)
    assert reply_of(layer) == {"had": 3}
    assert not Session.objects.filter(session_key=key).exists()


def test_a_failing_consumer_does_not_save_its_session(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    @channel_session
    def consumer(message):
        message.channel_session["value"] = message["value"]
        if message["value"] == "bad":
            raise RuntimeError("no")
        message.reply_channel.send({"ok": message["value"]})

    @channel_session
    def read(message):
        message.reply_channel.send({"value": message.channel_session.get("value")})

    run_worker([route("write", consumer), route("read", read)])
    reply = new_reply()
    send(layer, "write", reply, value="good")
    assert reply_of(layer) == {"ok": "good"}
    send(layer, "write", reply, value="bad")
    send(layer, "read", reply)
    assert reply_of(layer) == {"value": "good"}


def test_sessions_of_closed_sockets_are_deleted(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    @channel_session
    def connect(message):
        message.channel_session["room"] = "lobby"
        message.reply_channel.send({"accept": True})

    @channel_session
    def disconnect(message):
        message.reply_channel.send({"closed": True})

    run_worker([route("websocket.connect", connect), route("websocket.disconnect", disconnect)])
    before = Session.objects.count()
    replies = [new_reply() for _ in range(100)]
    for reply in replies:
        send(layer, "websocket.connect", reply, order=0)
        assert reply_of(layer) == {"accept": True}
    assert Session.objects.count() == before + 100
    for reply in replies:
        send(layer, "websocket.disconnect", reply, code=1000, order=1)
        assert reply_of(layer) == {"closed": True}
    assert Session.objects.count() == before


# The tutorial's "Persisting Data" consumers and routing, as written there.
PERSISTING_ROUTING = persisting.channel_routing


def test_tutorial_persisting_data(layer: ChannelLayerWrapper, run_worker: RunWorker) -> None:
    run_worker(PERSISTING_ROUTING)
    reply = new_reply()
    send(layer, "websocket.connect", reply, path="/lobby/", query_string=b"username=ada", order=0)
    assert reply_of(layer) == {"accept": True}
    layer.group_add("chat-lobby", "test.listener")
    send(layer, "websocket.receive", reply, path="/lobby/", text="hello", order=1)
    expected = {"text": "hello", "username": "ada"}
    assert json.loads(expect(layer, "test.listener")["text"]) == expected
    assert json.loads(reply_of(layer)["text"]) == expected  # the sender is in the room too
    anonymous = new_reply()
    send(layer, "websocket.connect", anonymous, path="/lobby/", query_string=b"", order=0)
    assert reply_of(layer) == {"accept": True}
    assert reply_of(layer) == {"close": True}


def logged_in(username: str) -> tuple[User, str]:
    user = User.objects.create_user(username, password="pw")
    client = Client()
    client.force_login(user)
    return user, client.session.session_key


def cookie(session_key: str) -> list[list[bytes]]:
    return [[b"cookie", f"sessionid={session_key}; other=1".encode()]]


def test_http_session_from_cookie_or_session_key(
    layer: ChannelLayerWrapper, run_worker: RunWorker, settings: Any
) -> None:
    settings.CHANNELS_SESSION_KEY_QUERY = True  # the session_key form is opt-in

    @http_session
    def consumer(message):
        session = message.http_session
        message.reply_channel.send({"key": session.session_key if session else None})

    run_worker([route("websocket.connect", consumer)])
    _, key = logged_in("ada")
    send(layer, "websocket.connect", new_reply(), headers=cookie(key))
    assert reply_of(layer) == {"key": key}
    send(layer, "websocket.connect", new_reply(), query_string=f"session_key={key}".encode())
    assert reply_of(layer) == {"key": key}
    send(layer, "websocket.connect", new_reply(), headers=[])
    assert reply_of(layer) == {"key": None}


def test_tutorial_authentication_chat(
    layer: ChannelLayerWrapper, run_worker: RunWorker, settings: Any
) -> None:
    settings.CHANNELS_SESSION_KEY_QUERY = True  # the session_key form is opt-in

    # The tutorial's "Authentication" consumers, as written there.
    # fmt: off
    @channel_session_user_from_http
    def ws_add(message):
        # Accept connection
        message.reply_channel.send({"accept": True})
        # Add them to the right group
        Group("chat-%s" % message.user.username[0]).add(message.reply_channel)

    @channel_session_user
    def ws_message(message):
        Group("chat-%s" % message.user.username[0]).send({
            "text": message['text'],
        })

    @channel_session_user
    def ws_disconnect(message):
        Group("chat-%s" % message.user.username[0]).discard(message.reply_channel)
    # fmt: on

    run_worker(
        [
            route("websocket.connect", ws_add),
            route("websocket.receive", ws_message),
            route("websocket.disconnect", ws_disconnect),
        ]
    )
    _, ada_key = logged_in("ada")
    _, bob_key = logged_in("bob")
    ada, bob = "test.ada!a", "test.bob!b"
    send(layer, "websocket.connect", ada, headers=cookie(ada_key), order=0)
    send(layer, "websocket.connect", bob, query_string=f"session_key={bob_key}".encode(), order=0)
    assert reply_of(layer, "test.ada!") == {"accept": True}
    assert reply_of(layer, "test.bob!") == {"accept": True}
    assert sorted(layer.group_channels("chat-a")) == [ada]
    send(layer, "websocket.receive", ada, text="hi from ada", order=1)
    assert reply_of(layer, "test.ada!") == {"text": "hi from ada"}
    assert layer.receive(["test.bob!"], block=True, timeout=0.3) == (None, None)
    send(layer, "websocket.disconnect", ada, code=1000, order=2)
    send(layer, "websocket.receive", bob, text="only bob", order=1)
    assert reply_of(layer, "test.bob!") == {"text": "only bob"}
    assert layer.group_channels("chat-a") == []


def test_logging_out_over_http_makes_the_socket_anonymous(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    @channel_and_http_session_user_from_http
    def consumer(message):
        message.reply_channel.send({"user": message.user.username or None})

    run_worker([route(["websocket.connect", "websocket.receive"], consumer)])
    user = User.objects.create_user("ada", password="pw")
    client = Client()
    client.force_login(user)
    reply = new_reply()
    send(layer, "websocket.connect", reply, headers=cookie(client.session.session_key), order=0)
    assert reply_of(layer) == {"user": "ada"}
    send(layer, "websocket.receive", reply, text="x", order=1)  # no cookies on frames
    assert reply_of(layer) == {"user": "ada"}
    client.logout()
    send(layer, "websocket.receive", reply, text="x", order=2)
    assert reply_of(layer) == {"user": None}


def test_http_session_user_is_anonymous_without_a_login(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    @http_session_user
    def consumer(message):
        message.reply_channel.send({"anonymous": message.user.is_anonymous})

    run_worker([route("websocket.connect", consumer)])
    send(layer, "websocket.connect", new_reply(), headers=[])
    assert reply_of(layer) == {"anonymous": True}


def test_strict_ordering_runs_messages_in_order_across_threads(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    # The tutorial's "Enforcing Ordering" consumers (without the user part).
    @enforce_ordering
    @channel_session
    def ws_add(message):
        message.channel_session["sent"] = 0
        message.reply_channel.send({"accept": True})

    @enforce_ordering
    @channel_session
    def ws_message(message):
        message.channel_session["sent"] = message.channel_session["sent"] + 1
        message.reply_channel.send(
            {"text": "%s: %s" % (message.channel_session["sent"], message["text"])}
        )

    run_worker(
        [route("websocket.connect", ws_add), route("websocket.receive", ws_message)], threads=4
    )
    reply = new_reply()
    # Sent out of order: the later frames overtake the connect and each other.
    for order in range(30, 0, -1):
        send(layer, "websocket.receive", reply, text=f"m{order}", order=order)
    send(layer, "websocket.connect", reply, order=0)
    assert reply_of(layer) == {"accept": True}
    texts = [reply_of(layer)["text"] for _ in range(30)]
    assert texts == [f"{n}: m{n}" for n in range(1, 31)]


def test_slight_ordering_runs_connect_first_as_in_0x(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    @enforce_ordering(slight=True)
    @channel_session
    def ws_add(message):
        message.channel_session["room"] = "lobby"

    @enforce_ordering(slight=True)
    @channel_session
    def ws_message(message):
        message.reply_channel.send({"room": message.channel_session["room"]})

    run_worker([route("websocket.connect", ws_add), route("websocket.receive", ws_message)])
    reply = new_reply()
    send(layer, "websocket.receive", reply, text="early", order=1)
    send(layer, "websocket.connect", reply, order=0)
    assert reply_of(layer) == {"room": "lobby"}


def test_ordering_needs_an_order_key(
    layer: ChannelLayerWrapper, run_worker: RunWorker, caplog: pytest.LogCaptureFixture
) -> None:
    @enforce_ordering
    def consumer(message):
        message.reply_channel.send({"ran": True})

    run_worker([route("no.order", consumer)])
    send(layer, "no.order", new_reply())
    assert layer.receive(["test.reply!"], block=True, timeout=0.5) == (None, None)
    assert "'order' key" in caplog.text


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        (b"http://example.com", True),
        (b"https://sub.example.com:8443", True),
        (b"http://evil.com", False),
        (b"null", False),
        (b"not a url", False),
        (None, False),
    ],
)
def test_allowed_hosts_only(
    layer: ChannelLayerWrapper,
    run_worker: RunWorker,
    settings: Any,
    origin: bytes | None,
    accepted: bool,
) -> None:
    settings.ALLOWED_HOSTS = ["example.com", ".example.com"]
    ran = threading.Event()

    @allowed_hosts_only
    @channel_session_user_from_http
    def ws_add(message):
        ran.set()
        message.reply_channel.send({"accept": True})

    run_worker([route("websocket.connect", ws_add)])
    headers = [[b"origin", origin]] if origin is not None else []
    send(layer, "websocket.connect", new_reply(), headers=headers, order=0)
    assert reply_of(layer) == ({"accept": True} if accepted else {"close": True})
    assert ran.is_set() is accepted


def test_debug_with_no_allowed_hosts_allows_localhost(settings: Any) -> None:
    from channels.security.websockets import AllowedHostsOnlyOriginValidator

    settings.DEBUG = True
    settings.ALLOWED_HOSTS = []
    validator = AllowedHostsOnlyOriginValidator(lambda message: None)
    assert validator.validate_origin(None, "http://localhost:8000")
    assert validator.validate_origin(None, "http://127.0.0.1:8000")
    assert not validator.validate_origin(None, "http://example.com")


def test_signed_cookie_sessions_are_refused(settings: Any) -> None:
    settings.CHANNEL_SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    with pytest.raises(ImproperlyConfigured, match="signed_cookies"):
        ChannelSessions().channel_session("x.y!z")
    (problem,) = check_session_engine()
    assert problem.id == "channels.E003"
    del settings.CHANNEL_SESSION_ENGINE
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    (problem,) = check_session_engine()
    assert problem.id == "channels.W002"


def test_channel_session_needs_a_reply_channel(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    """The mistake is logged, saying what is missing, and the worker carries on."""

    @channel_session
    def consumer(message):
        Channel("never").send({})

    with watch_logs("channels.worker") as logs:
        run_worker(
            [route("custom", consumer), route("ping", lambda m: m.reply_channel.send({"pong": 1}))]
        )
        layer.send("custom", {"no": "reply"})
        logs.wait_for("needs a message with a reply_channel")
    send(layer, "ping", new_reply())
    assert reply_of(layer) == {"pong": 1}


# The session unit and the ordering module --------------------------------------------


def test_ordering_has_its_own_module_and_keeps_its_1x_import_path() -> None:
    from channels import ordering, sessions

    assert sessions.enforce_ordering is ordering.enforce_ordering
    assert sessions.wait_channel is ordering.wait_channel
    assert sessions.NEXT_ORDER_KEY == ordering.NEXT_ORDER_KEY
    with pytest.raises(AttributeError, match="no_such_name"):
        sessions.no_such_name  # noqa: B018 - the lookup is the test


def test_the_ordering_module_can_be_imported_before_the_sessions_module() -> None:
    code = (
        "import channels.ordering, channels.sessions; "
        "assert channels.sessions.enforce_ordering is channels.ordering.enforce_ordering"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_a_session_scope_that_remembers_the_http_session_needs_the_channel_session() -> None:
    with pytest.raises(ValueError, match="pass channel=True"):
        SessionScope(remember_http=True)


def test_a_session_scope_closes_only_the_sessions_it_opened(layer: ChannelLayerWrapper) -> None:
    """Nested decorators share one session; the outermost saves it, once the consumer succeeded."""
    reply = new_reply()
    message = Message({"reply_channel": reply, "path": "/"}, "websocket.receive", layer)
    scope = SessionScope(channel=True, http=True)
    outer = scope.open(message)
    inner = scope.open(message)
    assert outer == Opened(channel=True, http=False)  # no cookie: no HTTP session to open
    assert inner == Opened(channel=False, http=False)
    message.channel_session["seen"] = True
    scope.close(message, inner, succeeded=True)
    assert "seen" not in session_for_reply_channel(reply)
    scope.close(message, outer, succeeded=False)
    assert "seen" not in session_for_reply_channel(reply)
    scope.close(message, outer, succeeded=True)
    assert session_for_reply_channel(reply)["seen"] is True


def test_a_session_scope_deletes_the_channel_session_after_a_disconnect(
    layer: ChannelLayerWrapper,
) -> None:
    reply = new_reply()
    session = session_for_reply_channel(reply)
    session["kept"] = "until the socket goes"
    session.save()
    message = Message({"reply_channel": reply, "path": "/"}, "websocket.disconnect", layer)
    scope = SessionScope(channel=True)
    opened = scope.open(message)
    assert message.channel_session["kept"] == "until the socket goes"
    scope.close(message, opened, succeeded=True)
    assert not Session.objects.filter(session_key=ChannelSessions.key_for(reply)).exists()
