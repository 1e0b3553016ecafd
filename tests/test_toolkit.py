"""The test toolkit: isolated layers, Client, WSClient and apply_routes."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from channels import Channel, Group
from channels.asgi import INMEMORY_BACKEND, channel_layers
from channels.generic import WebsocketConsumer
from channels.layers.inmemory import InMemoryChannelLayer
from channels.message import Message
from channels.routing import route
from channels.test import (
    ChannelTestCase,
    Client,
    HttpClient,
    TransactionChannelTestCase,
    WSClient,
    apply_routes,
)
from tests.sample.generic_consumers import AsyncApi, Chat, Counter, Demux, Slow

CHAT = [Chat.as_route(path=r"^/chat/(?P<room>\w+)/$")]


def echo(message, **kwargs):
    message.reply_channel.send({"echo": message.content.get("text"), "kwargs": kwargs})


def broken(message):
    raise RuntimeError("the consumer broke")


class Recorder(WebsocketConsumer):
    """Tells the client what the socket's messages carried."""

    channel_session = True

    def connect(self, message, **kwargs):
        message.channel_session["seen"] = "connect"
        self.accept()

    def receive(self, text=None, bytes=None, **kwargs):
        content = self.message.content
        self.send(
            text=json.dumps(
                {
                    "text": text,
                    "path": content["path"],
                    "query": content.get("query_string", b"no query_string").decode(),
                    "headers": [[n.decode(), v.decode()] for n, v in content["headers"]],
                    "order": content.get("order"),
                }
            )
        )


class IsolatedLayerTests(ChannelTestCase):
    def test_sends_land_on_an_in_memory_layer_of_the_test(self) -> None:
        layer = channel_layers["default"]
        assert isinstance(layer.channel_layer, InMemoryChannelLayer)
        Channel("toolkit.out").send({"n": 1})
        message = self.get_next_message("toolkit.out", require=True)
        assert isinstance(message, Message)
        assert message.content == {"n": 1}
        assert message.channel.name == "toolkit.out"
        assert self.get_next_message("toolkit.out") is None

    def test_require_fails_the_test_when_nothing_arrived(self) -> None:
        with pytest.raises(self.failureException, match=r"toolkit\.none"):
            self.get_next_message("toolkit.none", require=True)


@pytest.mark.django_db
def test_each_channel_test_case_test_gets_a_fresh_layer() -> None:
    before = channel_layers["default"]
    seen = []

    class Probe(ChannelTestCase):
        def test_one(self) -> None:
            seen.append(channel_layers["default"])
            Channel("left.over").send({})

        def test_two(self) -> None:
            seen.append(channel_layers["default"])
            assert self.get_next_message("left.over") is None

    import unittest

    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Probe).run(result)
    assert result.wasSuccessful(), result.failures + result.errors
    assert len({id(layer) for layer in seen}) == 2
    assert channel_layers["default"] is before


class ClientTests(ChannelTestCase):
    def test_send_consume_and_receive(self) -> None:
        client = Client()
        assert client.reply_channel.startswith("test.client.")
        with apply_routes([route("toolkit.echo", echo, text=r"^(?P<word>\w+)")]):
            client.send("toolkit.echo", {"text": "hello there"})
            assert client.consume("toolkit.echo") is None  # what echo returned
            assert client.receive() == {"echo": "hello there", "kwargs": {"word": "hello"}}
            assert client.receive() is None
            client.send_and_consume("toolkit.echo", {"text": "again"})
            assert client.receive()["echo"] == "again"

    def test_clients_do_not_see_each_others_replies(self) -> None:
        first, second = Client(), Client()
        with apply_routes([route("toolkit.echo", echo)]):
            first.send_and_consume("toolkit.echo", {"text": "mine"})
            assert second.receive() is None
            assert first.receive()["echo"] == "mine"

    def test_consume_fails_on_no_message_or_no_route_unless_told_not_to(self) -> None:
        client = Client()
        with pytest.raises(AssertionError, match=r"No message on 'toolkit\.empty'"):
            client.consume("toolkit.empty")
        assert client.consume("toolkit.empty", fail_on_none=False) is None
        client.send("toolkit.unrouted", {})
        with pytest.raises(AssertionError, match="No consumer is routed"):
            client.consume("toolkit.unrouted")
        client.send("toolkit.unrouted", {})
        assert client.consume("toolkit.unrouted", fail_on_none=False) is None

    @apply_routes([route("toolkit.broken", broken)])
    def test_a_consumer_error_reaches_the_test(self) -> None:
        with pytest.raises(RuntimeError, match="the consumer broke"):
            Client().send_and_consume("toolkit.broken")

    def test_join_group(self) -> None:
        client = Client()
        client.join_group("toolkit.fans")
        Group("toolkit.fans").send({"hi": True})
        assert client.receive() == {"hi": True}

    @apply_routes([Counter.as_route()])
    def test_class_based_consumers_with_a_channel_session(self) -> None:
        client = Client()
        client.send_and_consume("counter.add", {"by": 4})
        client.send_and_consume("counter.read")
        assert client.receive() == {"n": 4, "kwargs": {}}

    @apply_routes([Slow.as_route(path=r"^/$"), AsyncApi.as_route(path=r"^/api/$")])
    def test_async_consumers_run_to_completion(self) -> None:
        client = WSClient()
        client.send_and_consume("websocket.connect", path="/")
        client.send_and_consume("websocket.receive", text="ping", path="/")
        assert client.receive(json=False) == "pong ping"
        api = WSClient()
        api.send_and_consume("websocket.connect", path="/api/")  # opens a channel session
        api.send_and_consume("websocket.receive", text={"q": 1}, path="/api/")
        assert api.receive() == {"got": {"q": 1}}


@apply_routes(CHAT)
class WSClientTests(ChannelTestCase):
    def test_force_login_sends_a_real_session_cookie(self) -> None:
        client = WSClient()
        client.force_login(User.objects.create_user("ada"))
        client.send_and_consume("websocket.connect", path="/chat/lobby/")
        client.send_and_consume("websocket.receive", text="hi", path="/chat/lobby/")
        assert client.receive(json=False) == "ada: hi"
        # The channel session keeps the user under its own keys, never Django's.
        assert client.session["_channels_user_id"] == str(User.objects.get(username="ada").pk)
        assert "_auth_user_id" not in client.session

    def test_login_with_credentials(self) -> None:
        User.objects.create_user("bob", password="pw")
        client = WSClient()
        assert not client.login(username="bob", password="wrong")
        assert client.login(username="bob", password="pw")
        client.send_and_consume("websocket.connect", path="/chat/lobby/")
        client.send_and_consume("websocket.receive", text="yo", path="/chat/lobby/")
        assert client.receive(json=False) == "bob: yo"

    def test_check_accept_fails_when_the_socket_is_closed(self) -> None:
        with pytest.raises(AssertionError, match="did not accept"):
            WSClient().send_and_consume("websocket.connect", path="/chat/lobby/")
        client = WSClient()
        client.send_and_consume("websocket.connect", path="/chat/lobby/", check_accept=False)
        assert client.receive(json=False) == {"close": True}

    def test_group_messages_reach_every_client(self) -> None:
        ada, bob = WSClient(), HttpClient()
        ada.force_login(User.objects.create_user("ada"))
        bob.force_login(User.objects.create_user("bob"))
        for client in (ada, bob):
            client.send_and_consume("websocket.connect", path="/chat/lobby/")
        bob.send_and_consume("websocket.receive", text="hey", path="/chat/lobby/")
        assert ada.receive(json=False) == bob.receive(json=False) == "bob: hey"

    @apply_routes([Recorder.as_route()])
    def test_path_query_headers_cookies_and_order(self) -> None:
        client = WSClient(ordered=True)
        client.set_header("Origin", "http://example.com")
        client.set_cookie("flavour", "oatmeal")
        with pytest.raises(ValueError, match="set_cookie"):
            client.set_header("Cookie", "a=b")
        client.send_and_consume("websocket.connect", path="/room/?x=1")
        assert client.session["seen"] == "connect"
        client.send_and_consume("websocket.receive", text={"json": True}, path="/room/?x=1")
        got = client.receive()
        assert got == {
            "text": '{"json": true}',
            "path": "/room/",
            "query": "no query_string",  # only websocket.connect carries it
            "headers": [["origin", "http://example.com"], ["cookie", "flavour=oatmeal"]],
            "order": 1,
        }
        client.send_and_consume("websocket.receive", text="plain", path="/room/")
        assert client.receive()["order"] == 2
        assert WSClient().order == 0

    @apply_routes([Demux.as_route()])
    def test_receive_decodes_json(self) -> None:
        client = WSClient()
        client.send_and_consume("websocket.connect")
        assert client.receive() == {"stream": "echo", "payload": {"hello": "echo"}}
        client.send_and_consume("websocket.receive", text={"stream": "echo", "payload": {}})
        assert client.receive(json=False) == '{"stream": "echo", "payload": {"echo": {}}}'


OTHER_LAYERS = {
    "default": {"BACKEND": INMEMORY_BACKEND, "ROUTING": []},
    "other": {"BACKEND": INMEMORY_BACKEND, "ROUTING": []},
}


@override_settings(CHANNEL_LAYERS=OTHER_LAYERS)
class SecondAliasTests(ChannelTestCase):
    test_channel_aliases = ["default", "other"]

    def test_every_alias_is_isolated(self) -> None:
        Channel("toolkit.out", alias="other").send({"on": "other"})
        assert self.get_next_message("toolkit.out") is None
        assert self.get_next_message("toolkit.out", alias="other").content == {"on": "other"}

    def test_apply_routes_patches_every_alias_it_is_given(self) -> None:
        with apply_routes([route("toolkit.echo", echo)], aliases=["other"]):
            assert channel_layers["default"].routing == []
            client = Client(alias="other")
            client.send_and_consume("toolkit.echo", {"text": "second"})
            assert client.receive()["echo"] == "second"
            with pytest.raises(AssertionError, match="No consumer"):
                Client().send_and_consume("toolkit.echo", {"text": "default"})
        assert channel_layers["other"].routing == []

    @apply_routes([route("toolkit.echo", echo)], aliases=["default", "other"])
    def test_apply_routes_on_both_aliases(self) -> None:
        for alias in ("default", "other"):
            client = Client(alias=alias)
            client.send_and_consume("toolkit.echo", {"text": alias})
            assert client.receive()["echo"] == alias


def test_apply_routes_restores_the_routing_after_an_error(layer) -> None:
    original = layer.routing
    routes = [route("toolkit.echo", echo)]

    @apply_routes(routes)
    def fails() -> None:
        assert layer.routing is routes
        raise KeyError("boom")

    with pytest.raises(KeyError):
        fails()
    assert layer.routing is original


def test_apply_routes_refuses_async_functions() -> None:
    async def coroutine() -> None:
        pass

    with pytest.raises(TypeError, match="async"):
        apply_routes([])(coroutine)


@pytest.mark.django_db(transaction=True)
def test_transaction_channel_test_case_runs_async_consumers_with_the_database() -> None:
    class Probe(TransactionChannelTestCase):
        @apply_routes([AsyncApi.as_route()])
        def test_it(self) -> None:
            client = WSClient()
            client.force_login(User.objects.create_user("ada"))
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive", text={"broadcast": "all"})
            assert client.receive() == {"broadcast": "all"}

    import unittest

    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Probe).run(result)
    assert result.wasSuccessful(), result.failures + result.errors


@pytest.mark.django_db(transaction=True)
def test_live_server_serves_the_project_from_child_processes(redis_url: str) -> None:
    from django.test import Client as DjangoClient
    from websockets.sync.client import connect

    from channels.test import ChannelLiveServerTestCase

    layers = {
        "default": {
            "BACKEND": "channels.layers.redis.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": "live:"},
            "TEST_CONFIG": {"hosts": [redis_url], "prefix": "livetest:"},
            "ROUTING": "tests.project.generic_routing.channel_routing",
        }
    }

    @override_settings(CHANNEL_LAYERS=layers)
    class Live(ChannelLiveServerTestCase):
        def test_chat(self) -> None:
            assert channel_layers["default"].prefix == "livetest:"
            http = DjangoClient()
            http.force_login(User.objects.create_user("ada"))  # in the shared test database
            cookie = f"sessionid={http.session.session_key}"
            url = self.live_server_ws_url + "/chat/lobby/"
            with connect(url, additional_headers={"Cookie": cookie}, open_timeout=20) as ws:
                ws.send("live")
                assert ws.recv(timeout=20) == "ada: live"

    import unittest

    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Live).run(result)
    assert result.wasSuccessful(), result.failures + result.errors
    assert result.testsRun == 1
