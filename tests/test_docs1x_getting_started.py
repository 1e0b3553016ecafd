"""getting-started.rst of Channels 1.1.8: each section's code runs as written.

The samples (tests/docs1x/getting_started/) are routed through the settings
sample's own ``CHANNEL_LAYERS`` (``asgiref.inmemory.ChannelLayer`` with
``ROUTING = "myproject.routing.channel_routing"``), ``myapp.consumers`` and
``myproject.routing`` standing for the sample modules, and driven with
``channels.test`` clients the way daphne would send their messages.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings

from channels import Channel, Group
from channels.message import Message
from channels.routing import Router, route
from channels.test import Client, WSClient, apply_routes
from tests.docs1x import sample_project
from tests.docs1x.getting_started import settings_inmemory

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "tests.docs1x.getting_started"


@contextlib.contextmanager
def tutorial(consumers: str, routing: str | None = None) -> Iterator[None]:
    """Run with the settings sample, ``myapp.consumers``/``myproject.routing`` being ours."""
    names = {"myapp.consumers": f"{PACKAGE}.{consumers}"}
    if routing is not None:
        names["myproject.routing"] = f"{PACKAGE}.{routing}"
    with override_settings(CHANNEL_LAYERS=settings_inmemory.CHANNEL_LAYERS), sample_project(names):
        yield


def reply(client: Client) -> dict | None:
    """The raw next message to *client*'s reply channel (what daphne would get)."""
    return Client.receive(client)


def connect(path: str = "/chat/", **kwargs) -> WSClient:
    client = WSClient(**kwargs)
    client.send_and_consume("websocket.connect", path=path)
    return client


def http_request(path: str, method: str = "GET") -> dict:
    return {"path": path, "method": method, "headers": [], "query_string": b"", "body": b""}


def test_first_consumer_answers_every_http_request_by_its_import_path() -> None:
    with tutorial("first_consumers", "first_routing"):
        client = Client()
        client.send_and_consume("http.request", http_request("/hello/"))
        response = reply(client)
    assert response["status"] == 200
    assert response["content"] == b"Hello world! You asked for /hello/"
    assert not response.get("more_content", False)


def test_echo_consumer_sends_each_frame_back_to_its_socket() -> None:
    with tutorial("echo_consumers", "echo_routing"):
        client = WSClient()
        client.send_and_consume("websocket.receive", text="hello world", path="/chat/")
        assert reply(client) == {"text": "hello world"}


def test_groups_first_sample_adds_on_connect_and_discards_on_disconnect() -> None:
    from tests.docs1x.getting_started import groups_add_consumers as sample

    with tutorial("groups_add_consumers"):
        routes = [
            route("websocket.connect", sample.ws_add),
            route("websocket.disconnect", sample.ws_disconnect),
        ]
        with apply_routes(routes):
            client = connect()  # fails unless the consumer accepted
            Group("chat").send({"text": "to the group"})
            assert reply(client) == {"text": "to the group"}
            client.send_and_consume("websocket.disconnect", {"code": 1000}, path="/chat/")
            Group("chat").send({"text": "nobody"})
            assert reply(client) is None


def test_chat_server_sends_each_message_to_every_tab() -> None:
    with tutorial("groups_consumers", "groups_routing"):
        first, second = connect(), connect()
        first.send_and_consume("websocket.receive", text="hello world", path="/chat/")
        assert reply(first) == {"text": "[user] hello world"}
        assert reply(second) == {"text": "[user] hello world"}
        second.send_and_consume("websocket.disconnect", {"code": 1000}, path="/chat/")
        first.send_and_consume("websocket.receive", text="alone now", path="/chat/")
        assert reply(first) == {"text": "[user] alone now"}
        assert reply(second) is None


def ws_connect_message(path: str, query_string: bytes) -> dict:
    """A ``websocket.connect`` as daphne sends it: query string as bytes."""
    return {"path": path, "query_string": query_string, "headers": [], "order": 0}


def test_persisting_data_keeps_the_username_in_the_channel_session_per_room() -> None:
    with tutorial("persisting_consumers", "persisting_routing"):
        alice, bob, carol = Client(), Client(), Client()
        for client, path, query in [
            (alice, "/lobby/", b"username=alice"),
            (bob, "/lobby/", b"username=bob"),
            (carol, "/kitchen/", b"username=carol"),
        ]:
            client.send_and_consume("websocket.connect", ws_connect_message(path, query))
            assert reply(client) == {"accept": True}
        alice.send_and_consume("websocket.receive", {"path": "/lobby/", "text": "hi", "order": 1})
        expected = {"text": json.dumps({"text": "hi", "username": "alice"})}
        assert reply(alice) == expected
        assert reply(bob) == expected
        assert reply(carol) is None
        # No username in the query string: accepted, then closed.
        nobody = Client()
        nobody.send_and_consume("websocket.connect", ws_connect_message("/lobby/", b""))
        assert reply(nobody) == {"accept": True}
        assert reply(nobody) == {"close": True}


def logged_in(username: str, **kwargs) -> WSClient:
    User.objects.create_user(username=username, password="pw")
    client = WSClient(**kwargs)
    assert client.login(username=username, password="pw")
    return client


def test_authentication_groups_users_by_the_first_letter_of_their_username() -> None:
    with tutorial("auth_consumers"):
        from tests.docs1x.getting_started import auth_consumers as sample

        routes = [
            route("websocket.connect", sample.ws_add),
            route("websocket.receive", sample.ws_message),
            route("websocket.disconnect", sample.ws_disconnect),
        ]
        with apply_routes(routes):
            alice, adam, bob = logged_in("alice"), logged_in("adam"), logged_in("bob")
            for client in (alice, adam, bob):
                client.send_and_consume("websocket.connect", path="/")
            # Later frames carry no cookies: the user comes from the channel session.
            alice.send_and_consume("websocket.receive", {"headers": []}, text="hi a's")
            assert reply(alice) == {"text": "hi a's"}
            assert reply(adam) == {"text": "hi a's"}
            assert reply(bob) is None
            adam.send_and_consume("websocket.disconnect", {"code": 1000, "headers": []})
            bob.send_and_consume("websocket.receive", {"headers": []}, text="b here")
            assert reply(bob) == {"text": "b here"}
            alice.send_and_consume("websocket.receive", {"headers": []}, text="still a")
            assert reply(adam) is None


@override_settings(ALLOWED_HOSTS=["example.com"])
def test_allowed_hosts_only_rejects_sockets_from_other_origins() -> None:
    with tutorial("security_consumers"):
        from tests.docs1x.getting_started import security_consumers as sample

        with apply_routes([route("websocket.connect", sample.ws_add)]):
            allowed = logged_in("alice")
            allowed.set_header("origin", "http://example.com")
            allowed.send_and_consume("websocket.connect", path="/")  # accepted
            Group("chat-a").send({"text": "joined"})
            assert reply(allowed) == {"text": "joined"}
            for origin in ("http://evil.example.org", None):
                other = logged_in(f"x{origin is None}")
                if origin:
                    other.set_header("origin", origin)
                other.send_and_consume("websocket.connect", path="/", check_accept=False)
                assert reply(other) == {"close": True}
                assert reply(other) is None


def routed(routing: list, channel: str, **content) -> object:
    """What *routing* runs for a message on *channel* (None: nothing matches)."""
    found = Router(routing, defaults=False).match(Message(content, channel, None))
    return None if found is None else found[0]


def test_routing_includes_chop_their_prefix_and_pass_named_groups() -> None:
    from tests.docs1x.getting_started import routing_sample as sample

    with tutorial("routing_sample"), apply_routes(sample.routing):
        client = WSClient()
        client.send_and_consume("websocket.connect", path="/chat/lobby/")
        assert reply(client) == {"text": "room lobby"}
        client.send_and_consume("websocket.disconnect", {"code": 1000}, path="/chat/lobby/")
        disconnected = Channel("docs.disconnected").channel_layer.receive(
            ["docs.disconnected"], block=False
        )[1]
        # The consumer gets the message as sent; only matching sees the chopped path.
        assert disconnected == {"path": "/chat/lobby/", "kwargs": {}}
        poller = Client()
        poller.send_and_consume("http.request", http_request("/poll/", "POST"))
        assert reply(poller)["content"] == b"polled"
    # What does not match, in order: the include's prefix, the route's path, the method.
    assert routed(sample.routing, "websocket.connect", path="/lobby/") is None
    assert routed(sample.routing, "websocket.connect", path="/chat/a/b/") is None
    assert routed(sample.routing, "websocket.disconnect", path="/elsewhere/") is None
    assert routed(sample.routing, "http.request", path="/poll/", method="GET") is None
    assert routed(sample.routing, "http.request", path="/poll/", method="POST") is (
        sample.poll_consumer
    )


def test_toolkit_client_runs_no_consumer_for_a_message_nothing_routes() -> None:
    """1.x ``Client.consume`` matched the layer's own router, which has no default routes.

    (1.1.8 channels/test/base.py ``Client.consume``: ``self.channel_layer.router.match``;
    the defaults are added by ``check_default()`` in runworker/runserver only.)
    """
    from tests.docs1x.getting_started import routing_sample as sample

    with tutorial("routing_sample"), apply_routes(sample.routing):
        client = WSClient()
        client.send_and_consume(
            "websocket.connect", path="/lobby/", fail_on_none=False, check_accept=False
        )
        assert reply(client) is None  # no default consumer accepted it
        with pytest.raises(AssertionError):
            client.send_and_consume("websocket.connect", path="/lobby/")


def test_routing_kwargs_choose_the_room_of_the_connect_consumer() -> None:
    from tests.docs1x.getting_started import routing_room_consumers as sample

    routes = [route("websocket.connect", sample.ws_add, path=r"^/(?P<room_name>\w+)/$")]
    with tutorial("routing_room_consumers"), apply_routes(routes):
        client = connect("/lobby/")
        Group("chat-lobby").send({"text": "in the lobby"})
        assert reply(client) == {"text": "in the lobby"}


@pytest.fixture
def chat_message_table() -> Iterator[None]:
    from tests.docs1x.getting_started.models import ChatMessage

    with connection.schema_editor() as editor:
        editor.create_model(ChatMessage)
    yield
    with connection.schema_editor() as editor:
        editor.delete_model(ChatMessage)


def test_models_saves_each_message_from_its_own_channel_then_broadcasts(
    chat_message_table: None,
) -> None:
    from tests.docs1x.getting_started.models import ChatMessage

    with tutorial("models_consumers", "models_routing"):
        first, second, elsewhere = connect("/room1/"), connect("/room1/"), connect("/room2/")
        first.send_and_consume("websocket.receive", text="saved first", path="/room1/")
        # ws_message only queued it: nothing is saved or sent yet.
        assert ChatMessage.objects.count() == 0
        assert reply(second) is None
        first.consume("chat-messages")
        saved = ChatMessage.objects.get()
        assert (saved.room, saved.message) == ("room1", "saved first")
        assert reply(first) == reply(second) == {"text": "saved first"}
        assert reply(elsewhere) is None
        # Anything may post to chat-messages, such as a bot.
        Channel("chat-messages").send({"room": "room2", "message": "from a bot"})
        first.consume("chat-messages")
        assert reply(elsewhere) == {"text": "from a bot"}
        second.send_and_consume("websocket.disconnect", {"code": 1000}, path="/room1/")


def ordering_routes(connect: object) -> list:
    from tests.docs1x.getting_started import ordering_consumers as sample

    return [
        route("websocket.connect", connect),
        route("websocket.receive", sample.ws_message),
        route("websocket.disconnect", sample.ws_disconnect),
    ]


def send_out_of_order(client: WSClient) -> None:
    """Daphne numbers a socket's messages: connect 0, then its frames 1, 2, ..."""
    client.send_and_consume("websocket.connect", {"order": 0}, path="/")
    client.send("websocket.receive", {"order": 2, "headers": []}, text="second")
    client.send("websocket.receive", {"order": 1, "headers": []}, text="first")
    for _ in range(4):  # an early one waits for its turn, then comes back
        client.consume("websocket.receive", fail_on_none=False)


def test_enforce_ordering_sample_as_written_holds_receives_after_an_undecorated_connect() -> None:
    """Broken in 1.x as written: ws_add lacks the decorator, so order 0 is never marked done.

    1.1.8 sessions.py ``enforce_ordering``: ``next_order = ...get("__channels_next_order", 0)``
    and only a decorated consumer advances it; daphne numbers connect 0, frames from 1.
    The frames wait (they are not lost), as they did in 1.x.
    """
    from tests.docs1x.getting_started import ordering_consumers as sample

    with tutorial("ordering_consumers"), apply_routes(ordering_routes(sample.ws_add)):
        client = logged_in("alice")
        send_out_of_order(client)
        assert reply(client) is None


def test_enforce_ordering_runs_receives_in_order_when_connect_is_decorated_too() -> None:
    """The sample's evident intent: ``@enforce_ordering`` on ws_add as well."""
    from channels.sessions import enforce_ordering
    from tests.docs1x.getting_started import ordering_consumers as sample

    routes = ordering_routes(enforce_ordering(sample.ws_add))
    with tutorial("ordering_consumers"), apply_routes(routes):
        client = logged_in("alice")
        send_out_of_order(client)
        assert [reply(client), reply(client)] == [{"text": "1: first"}, {"text": "2: second"}]
        assert reply(client) is None
