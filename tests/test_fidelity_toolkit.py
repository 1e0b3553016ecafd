"""1.x fidelity of the test toolkit, the layer registry, and the 1.x module names."""

from __future__ import annotations

import importlib
import sys

import pytest
from django.test import override_settings
from django.utils.module_loading import import_string

from channels.asgi import INMEMORY_BACKEND, REDIS_BACKEND, ChannelLayerWrapper, channel_layers
from channels.exceptions import (
    ChannelSocketException,
    InvalidChannelLayerError,
    WebsocketCloseException,
)
from channels.generic import BaseConsumer
from channels.layers.inmemory import InMemoryChannelLayer
from channels.routing import Router, route, route_class
from channels.sessions import channel_session, session_for_reply_channel
from channels.test import ChannelTestCase, Client, WSClient, apply_routes


def echo_text(message, **kwargs):
    message.reply_channel.send({"text": message.content.get("text", "")})


def answer(message, **kwargs):
    return {"answered": message.content["n"]}


class PlainCounter:
    """A class routed with route_class and no as_consumer(): 1.x called the class."""

    @classmethod
    def channel_names(cls):
        return {"plain.count"}

    def __init__(self, message, **kwargs):
        self.seen = message.content["n"]


class Creator(BaseConsumer):
    method_mapping = {"test.create": "create", "test.test": "test"}

    def create(self, message, **kwargs):
        self.called = "create"

    def test(self, message, **kwargs):
        self.called = "test"


class ErrorFrame(ChannelSocketException):
    def run(self, message):
        message.reply_channel.send({"text": "error"})


def raises_error_frame(message, **kwargs):
    raise ErrorFrame


def raises_close(message, **kwargs):
    raise WebsocketCloseException(4001)


def query_recorder(message, **kwargs):
    content = message.content
    message.reply_channel.send(
        {
            "text": f"{content['path']}|{content.get('query_string', 'absent')!r}",
        }
    )


@channel_session
def remember(message, **kwargs):
    message.channel_session["word"] = message.content["text"]


class WSClientFrames(ChannelTestCase):
    def test_receive_without_json_returns_the_frame_text(self) -> None:
        client = WSClient()
        with apply_routes([route("websocket.receive", echo_text)]):
            client.send_and_consume("websocket.receive", text="plain words")
            assert client.receive(json=False) == "plain words"
            client.send_and_consume("websocket.receive", text='{"a": 1}')
            assert client.receive(json=False) == '{"a": 1}'
            client.send_and_consume("websocket.receive", text='{"a": 1}')
            assert client.receive() == {"a": 1}
            assert client.receive(json=False) is None

    def test_replies_without_text_come_back_whole(self) -> None:
        client = WSClient()
        with apply_routes(
            [route("websocket.connect", lambda m: m.reply_channel.send({"close": True}))]
        ):
            client.send_and_consume("websocket.connect", check_accept=False)
            assert client.receive(json=False) == {"close": True}

    def test_query_string_only_on_connect_and_paths_lose_it_elsewhere(self) -> None:
        client = WSClient()
        routes = [
            route("websocket.connect", query_recorder),
            route("websocket.receive", query_recorder),
        ]
        with apply_routes(routes):
            client.send_and_consume("websocket.connect", path="/room/?a=1&b=2", check_accept=False)
            assert client.receive(json=False) == "/room/|b'a=1&b=2'"
            client.send_and_consume("websocket.receive", text="x", path="/room/?a=1&b=2")
            assert client.receive(json=False) == "/room/|'absent'"


class ConsumeReturns(ChannelTestCase):
    def test_consume_returns_what_a_function_consumer_returned(self) -> None:
        client = Client()
        with apply_routes([route("test.answer", answer)]):
            assert client.send_and_consume("test.answer", {"n": 7}) == {"answered": 7}
            client.send("test.answer", {"n": 8})
            assert client.consume("test.answer") == {"answered": 8}

    def test_consume_returns_the_instance_of_a_class_based_consumer(self) -> None:
        client = Client()
        with apply_routes([route_class(Creator), route_class(PlainCounter)]):
            assert client.send_and_consume("test.create").called == "create"
            assert client.send_and_consume("test.test").called == "test"
            assert client.send_and_consume("plain.count", {"n": 3}).seen == 3

    def test_a_channel_socket_exception_runs_in_the_test_client(self) -> None:
        client = WSClient()
        with apply_routes(route("websocket.receive", raises_error_frame)):
            client.send_and_consume("websocket.receive")
            assert client.receive(json=False) == "error"
        with apply_routes(route("websocket.receive", raises_close)):
            client.send_and_consume("websocket.receive")
            assert client.receive(json=False) == {"close": 4001}

    def test_a_failing_run_reaches_the_test(self) -> None:
        with (
            apply_routes(route("tasks.run", raises_close)),
            pytest.raises(ValueError, match=r"only from websocket\.\* consumers"),
        ):
            Client().send_and_consume("tasks.run")


class ApplyRoutes(ChannelTestCase):
    def test_apply_routes_accepts_a_single_route(self) -> None:
        with apply_routes(route("test.answer", answer)):
            assert Client().send_and_consume("test.answer", {"n": 1}) == {"answered": 1}

    @apply_routes(route("test.answer", answer))
    def test_apply_routes_decorator_accepts_a_single_route(self) -> None:
        assert Client().send_and_consume("test.answer", {"n": 2}) == {"answered": 2}


class LayerRouter(ChannelTestCase):
    def test_a_layer_has_its_router_built_once_from_its_routing(self) -> None:
        layer = channel_layers["default"]
        with apply_routes([route("test.answer", answer)]):
            router = layer.router
            assert isinstance(router, Router)
            assert layer.router is router
            assert "test.answer" in router.channels
            assert router.match(_message(layer, "test.answer"))[0] is answer
        assert "test.answer" not in layer.router.channels

    def test_the_router_follows_a_change_of_settings(self) -> None:
        layers = {"default": {"BACKEND": INMEMORY_BACKEND, "ROUTING": [route("one.a", answer)]}}
        with override_settings(CHANNEL_LAYERS=layers):
            assert "one.a" in channel_layers["default"].router.channels
            layers = {"default": {"BACKEND": INMEMORY_BACKEND, "ROUTING": [route("two.b", answer)]}}
            with override_settings(CHANNEL_LAYERS=layers):
                channels = channel_layers["default"].router.channels
                assert "two.b" in channels
                assert "one.a" not in channels

    def test_an_assigned_router_is_used_until_the_routing_changes(self) -> None:
        layer = channel_layers["default"]
        mine = Router([route("mine.x", answer)])
        layer.router = mine
        assert layer.router is mine
        with apply_routes([]):
            assert layer.router is not mine


def _message(layer: ChannelLayerWrapper, channel: str):
    from channels.message import Message

    return Message({"n": 1}, channel, layer)


class Sessions(ChannelTestCase):
    def test_session_for_reply_channel_is_the_sockets_channel_session(self) -> None:
        client = WSClient()
        with apply_routes([route("websocket.receive", remember)]):
            client.send_and_consume("websocket.receive", text="kept")
        session = session_for_reply_channel(client.reply_channel)
        assert session["word"] == "kept"
        assert session.session_key == client.session.session_key
        assert session_for_reply_channel("other.reply!x").get("word") is None


# The registry -----------------------------------------------------------------


def test_make_test_backend_needs_a_test_config() -> None:
    layers = {
        "plain": {"BACKEND": INMEMORY_BACKEND, "CONFIG": {"capacity": 5}},
        "tested": {"BACKEND": INMEMORY_BACKEND, "TEST_CONFIG": {"capacity": 7}},
    }
    with override_settings(CHANNEL_LAYERS=layers):
        with pytest.raises(InvalidChannelLayerError, match=r"'plain'.*no TEST_CONFIG"):
            channel_layers.make_test_backend("plain")
        built = channel_layers.make_test_backend("tested")
        assert isinstance(built.channel_layer, InMemoryChannelLayer)
        assert built.channel_layer.capacity == 7
        with pytest.raises(InvalidChannelLayerError, match="no channel layer 'missing'"):
            channel_layers.make_test_backend("missing")


@pytest.mark.parametrize(
    "backend", ["asgi_redis.RedisLocalChannelLayer", "asgi_redis.local.RedisLocalChannelLayer"]
)
def test_the_1x_redis_local_layer_is_the_redis_layer(
    backend: str, redis_url: str, unique_prefix: str
) -> None:
    config = {"hosts": [redis_url], "prefix": unique_prefix}
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": backend, "CONFIG": config}}):
        layer = channel_layers["default"]
        assert type(layer.channel_layer) is import_string(REDIS_BACKEND)
        layer.send("local.test", {"n": 1})  # a normal channel: through Redis, like the rest
        assert layer.receive(["local.test"]) == ("local.test", {"n": 1})


# 1.x module names -------------------------------------------------------------


def test_the_1x_channels_tests_package_warns_and_re_exports_channels_test() -> None:
    sys.modules.pop("channels.tests", None)
    with pytest.warns(DeprecationWarning, match="channels.test instead"):
        legacy = importlib.import_module("channels.tests")
    assert legacy.ChannelTestCase is ChannelTestCase
    assert legacy.WSClient is WSClient
    assert legacy.apply_routes is apply_routes


def test_the_1x_http_client_module_warns_and_gives_wsclient() -> None:
    sys.modules.pop("channels.test.http", None)
    with pytest.warns(DeprecationWarning, match="WSClient"):
        legacy = importlib.import_module("channels.test.http")
    assert legacy.HttpClient is WSClient


def test_the_1x_delay_worker_name_is_the_delay_server() -> None:
    from channels.delay.server import DelayServer
    from channels.delay.worker import Worker

    assert Worker is DelayServer
