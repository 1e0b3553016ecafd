"""Generic consumers behave as 1.x's did: multiplexer=, disconnect(message), as_route(attrs)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings

from channels import Channel
from channels.exceptions import SendNotAvailableOnDemultiplexer
from channels.generic import BaseConsumer
from channels.generic.websockets import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
    WebsocketDemultiplexer,
    WebsocketMultiplexer,
)
from channels.test import ChannelTestCase, Client, WSClient, apply_routes

#: Where the consumers below report what they were called with.
SEEN = "fidelity.seen"


def report(**content: Any) -> None:
    Channel(SEEN).send(content)


class Recording(JsonWebsocketConsumer):
    """A stream consumer written as the 1.x docs show: ``multiplexer`` is a named argument."""

    def connection_groups(self, multiplexer=None, **kwargs):
        return [f"rec-{kwargs['id']}"] if multiplexer is not None else []

    def connect(self, message, multiplexer, **kwargs):
        multiplexer.send({"connected": kwargs, "stream": multiplexer.stream})

    def receive(self, content, multiplexer, **kwargs):
        report(text=self.message["text"], id=kwargs["id"])
        multiplexer.send({"echo": content})
        self.send({"via": "self.send"})

    def disconnect(self, message, multiplexer, **kwargs):
        report(disconnected=multiplexer.stream, code=message["code"])


def plain_stream(message, multiplexer, **kwargs):
    """A function consumer in ``consumers``, as a binding's ``consumer`` is."""
    report(channel=message.channel.name, text=message.get("text"), kwargs=sorted(kwargs))
    if message.channel.name == "websocket.receive":
        multiplexer.send({"function": json.loads(message["text"])})


class Lowercasing(WebsocketMultiplexer):
    @classmethod
    def encode_json(cls, content):
        payload = {key.lower(): value for key, value in content["payload"].items()}
        return json.dumps({"stream": content["stream"], "payload": payload})


class Demux(WebsocketDemultiplexer):
    consumers = {"rec": Recording, "fn": plain_stream}


@override_settings(SESSION_ENGINE="django.contrib.sessions.backends.cache")
class DemultiplexerTests(ChannelTestCase):
    def seen(self) -> dict[str, Any]:
        return self.get_next_message(SEEN, require=True).content

    def test_stream_consumers_get_multiplexer_on_connect_receive_and_disconnect(self) -> None:
        with apply_routes([Demux.as_route(path=r"^/d/(?P<id>\d+)$")]):
            client = WSClient()
            client.send_and_consume("websocket.connect", path="/d/7")
            replies = [client.receive(), client.receive()]
            assert {"stream": "rec", "payload": {"connected": {"id": "7"}, "stream": "rec"}} in (
                replies
            )
            assert self.seen() == {"channel": "websocket.connect", "text": None, "kwargs": ["id"]}
            # The stream consumer's connection_groups got multiplexer= too, as in 1.x.
            assert client.reply_channel in client.channel_layer.group_channels("rec-7")

            frame = {"stream": "rec", "payload": {"a": 1}}
            client.send_and_consume("websocket.receive", path="/d/7", text=frame)
            assert self.seen() == {"text": json.dumps({"a": 1}), "id": "7"}
            assert client.receive() == {"stream": "rec", "payload": {"echo": {"a": 1}}}
            assert client.receive() == {"stream": "rec", "payload": {"via": "self.send"}}

            client.send_and_consume("websocket.disconnect", {"code": 4001}, path="/d/7")
            assert self.seen() == {"disconnected": "rec", "code": 4001}
            assert self.seen()["channel"] == "websocket.disconnect"
            assert client.channel_layer.group_channels("rec-7") == []

    def test_a_function_consumer_gets_the_payload_as_the_message_text(self) -> None:
        with apply_routes([Demux.as_route(path=r"^/d/(?P<id>\d+)$")]):
            client = WSClient()
            client.send(
                "websocket.receive", path="/d/1", text={"stream": "fn", "payload": {"x": 2}}
            )
            client.consume("websocket.receive")
            assert self.seen() == {
                "channel": "websocket.receive",
                "text": json.dumps({"x": 2}),
                "kwargs": ["id"],
            }
            assert client.receive() == {"stream": "fn", "payload": {"function": {"x": 2}}}

    def test_a_custom_multiplexer_class_encodes_the_frames(self) -> None:
        def shout(message, multiplexer, **kwargs):
            multiplexer.send({"SHOUT": json.loads(message["text"])})

        class Custom(WebsocketDemultiplexer):
            multiplexer_class = Lowercasing
            consumers = {"fn": shout}

        with apply_routes([Custom.as_route()]):
            client = WSClient()
            client.send_and_consume(
                "websocket.receive", text={"stream": "fn", "payload": {"LOUD": 1}}
            )
            assert client.receive() == {"stream": "fn", "payload": {"shout": {"LOUD": 1}}}

    def test_the_demultiplexer_itself_cannot_send(self) -> None:
        class Sends(WebsocketDemultiplexer):
            consumers = {"fn": plain_stream}

            def receive(self, content, **kwargs):
                self.send(content)

        with apply_routes([Sends.as_route()]):
            client = WSClient()
            with pytest.raises(SendNotAvailableOnDemultiplexer, match="stream's consumer"):
                client.send_and_consume("websocket.receive", text={"stream": "fn", "payload": {}})
        with pytest.raises(SendNotAvailableOnDemultiplexer, match="WebsocketMultiplexer"):
            Demux.group_send("g", {"x": 1})

    def test_bad_frames_are_answered_not_raised(self) -> None:
        """1.x raised ValueError in the worker; the client now hears what was wrong."""
        with apply_routes([Demux.as_route(path=r"^/d/(?P<id>\d+)$")]):
            client = WSClient()
            for frame, error in [
                ({"stream": "nope", "payload": {}}, "Unknown stream 'nope'"),
                ({"stream": "rec", "payload": [1]}, "must be a JSON object"),
                ([1, 2], "Frames must look like"),
            ]:
                client.send_and_consume("websocket.receive", path="/d/1", text=frame)
                assert error in client.receive()["error"]

    def test_async_stream_consumers_get_multiplexer_too(self) -> None:
        class AsyncStream(AsyncJsonWebsocketConsumer):
            async def receive(self, content, multiplexer, **kwargs):
                await multiplexer.asend({"async": content})

        class Mixed(WebsocketDemultiplexer):
            consumers = {"a": AsyncStream}

        with apply_routes([Mixed.as_route()]):
            client = WSClient()
            client.send_and_consume("websocket.receive", text={"stream": "a", "payload": {"n": 1}})
            assert client.receive() == {"stream": "a", "payload": {"async": {"n": 1}}}


def test_multiplexer_encode_returns_the_message_to_send() -> None:
    assert WebsocketMultiplexer.encode("s", {"a": 1}) == {
        "text": json.dumps({"stream": "s", "payload": {"a": 1}})
    }
    assert Lowercasing.encode("s", {"A": 1}) == {"text": '{"stream": "s", "payload": {"a": 1}}'}


@override_settings(SESSION_ENGINE="django.contrib.sessions.backends.cache")
class ConsumerTests(ChannelTestCase):
    def test_disconnect_receives_the_message(self) -> None:
        class Sync(WebsocketConsumer):
            def disconnect(self, message, **kwargs):
                report(code=message["code"], path=self.path, kwargs=kwargs)

        class Async(AsyncWebsocketConsumer):
            async def disconnect(self, message, **kwargs):
                await Channel(SEEN).asend({"code": message["code"], "kwargs": kwargs})

        routes = [Sync.as_route(path=r"^/s/(?P<n>\d)$"), Async.as_route(path=r"^/a/(?P<n>\d)$")]
        with apply_routes(routes):
            client = WSClient()
            client.send_and_consume("websocket.disconnect", {"code": 4005}, path="/s/1")
            assert self.get_next_message(SEEN, require=True).content == {
                "code": 4005,
                "path": "/s/1",
                "kwargs": {"n": "1"},
            }
            client.send_and_consume("websocket.disconnect", {"code": 1001}, path="/a/2")
            assert self.get_next_message(SEEN, require=True).content == {
                "code": 1001,
                "kwargs": {"n": "2"},
            }

    def test_as_route_with_attrs_routes_a_subclass(self) -> None:
        class Greeter(WebsocketConsumer):
            greeting = "hello"

            def connect(self, message, **kwargs):
                self.accept()
                self.send(text=self.greeting)

        routes = [
            Greeter.as_route(attrs={"greeting": "bonjour"}, path=r"^/fr$"),
            Greeter.as_route({"greeting": "hallo"}, path=r"^/de$"),
            Greeter.as_route(path=r"^/en$"),
        ]
        with apply_routes(routes):
            client = WSClient()
            for path, expected in [("/fr", "bonjour"), ("/de", "hallo"), ("/en", "hello")]:
                client.send_and_consume("websocket.connect", path=path)
                reply = client.receive(json=False)  # the text, as in 1.x (or the whole reply)
                assert reply in (expected, {"text": expected})
        assert Greeter.greeting == "hello"
        with pytest.raises(TypeError, match="dict of class attributes"):
            Greeter.as_route(["greeting"])

    def test_as_route_attrs_can_set_the_method_mapping(self) -> None:
        class Trigger(BaseConsumer):
            trigger = "default"

            def test(self, message, **kwargs):
                message.reply_channel.send({"trigger": self.trigger, "kwargs": kwargs})

        attrs = {"method_mapping": {"my.channel": "test"}, "trigger": "attrs"}
        with apply_routes([Trigger.as_route(attrs, name=r"^(?P<name>\w+)$")]):
            client = Client()
            client.send_and_consume("my.channel", {"name": "filter"})
            assert client.receive() == {"trigger": "attrs", "kwargs": {"name": "filter"}}

    def test_get_handler_overrides_in_the_1x_style_still_wrap_the_handler(self) -> None:
        def tagged(tag):
            def decorator(handler):
                def inner(message, **kwargs):
                    report(tag=tag, channel=message.channel.name)
                    return handler(message, **kwargs)

                return inner

            return decorator

        class ByMessage(WebsocketConsumer):
            def get_handler(self, message, **kwargs):
                return tagged("message")(super().get_handler(message, **kwargs))

        class ByArgs(WebsocketConsumer):
            def get_handler(self, *args, **kwargs):
                return tagged("args")(super().get_handler(*args, **kwargs))

        with apply_routes([ByMessage.as_route(path="^/m$"), ByArgs.as_route(path="^/a$")]):
            client = WSClient()
            for path, tag in [("/m", "message"), ("/a", "args")]:
                client.send_and_consume("websocket.connect", path=path)
                assert self.get_next_message(SEEN, require=True).content == {
                    "tag": tag,
                    "channel": "websocket.connect",
                }
