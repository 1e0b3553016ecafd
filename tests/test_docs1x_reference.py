"""reference.rst of Channels 1.1.8: every attribute and call the page documents.

Consumers (``ConsumeLater``), Message, Channel, Group, the channel layer's
``alias`` and ``router``, AsgiRequest and AsgiHandler, on the in-memory
layer, with a real worker for ``ConsumeLater``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest
from django.http import HttpResponse
from django.test import override_settings

from channels import DEFAULT_CHANNEL_LAYER, Channel, Group, channel_layers
from channels.handler import AsgiHandler, AsgiRequest
from channels.message import Message
from tests.docs1x import reference
from tests.logwatch import watch_logs
from tests.workers import RunWorker, expect

ROUTING = "tests.docs1x.reference.channel_routing"
LAYERS = {
    "default": {"BACKEND": "asgiref.inmemory.ChannelLayer", "ROUTING": ROUTING},
    "other": {"BACKEND": "asgiref.inmemory.ChannelLayer"},
}


@pytest.fixture
def project() -> Iterator[None]:
    with override_settings(CHANNEL_LAYERS=LAYERS):
        yield


def message_on(channel: str, layer: object, **content: object) -> Message:
    return Message(content, channel, layer)


# Consumers ---------------------------------------------------------------------------


def test_consume_later_puts_the_message_at_the_back_of_its_channel(
    run_worker: RunWorker, layer: object
) -> None:
    Channel("docs1x.later").send({"n": "first"})
    Channel("docs1x.later").send({"n": "second"})
    run_worker(reference.channel_routing)
    ran = [expect(layer, "docs1x.order")["n"] for _ in range(3)]
    assert ran == ["first", "second", "first"]


def test_consume_later_retries_ten_times_then_drops_the_message(
    run_worker: RunWorker, layer: object
) -> None:
    """The page: "(10 by default) until the message is dropped": the consumer runs 11 times.

    1.1.8 worker.py ``Worker.run``: ``content['__retries__'] += 1`` on each
    ``ConsumeLater``, and the message is dropped once it exceeds
    ``message_retries`` (10).
    """
    with watch_logs("channels") as logs:
        Channel("docs1x.never").send({})
        run_worker(reference.channel_routing)
        logs.wait_for("still ConsumeLater after 10 retries")
    tries = [expect(layer, "docs1x.tries")["retries"] for _ in range(11)]
    assert tries == list(range(11))
    assert layer.receive(["docs1x.tries", "docs1x.never"], block=False) == (None, None)


# Message, Channel, Group ---------------------------------------------------------------


def test_a_message_has_content_channel_reply_channel_and_channel_layer(project: None) -> None:
    layer = channel_layers["default"]
    message = Message({"reply_channel": "docs1x.reply!1", "a": 1}, "docs1x.in", layer)
    assert message.content == {"reply_channel": "docs1x.reply!1", "a": 1}
    assert isinstance(message.channel, Channel)
    assert message.channel.name == "docs1x.in"
    assert isinstance(message.reply_channel, Channel)
    assert message.reply_channel.name == "docs1x.reply!1"
    assert message.channel_layer is layer
    assert Message({}, "docs1x.in", layer).reply_channel is None


@pytest.mark.parametrize("kind", [Channel, Group])
def test_channel_and_group_take_a_name_an_alias_or_a_layer(project: None, kind: type) -> None:
    """``channels.Channel(name, alias=DEFAULT_CHANNEL_LAYER, channel_layer=None)``."""
    parameters = inspect.signature(kind).parameters
    assert list(parameters)[:3] == ["name", "alias", "channel_layer"]
    assert parameters["alias"].default == DEFAULT_CHANNEL_LAYER
    assert parameters["channel_layer"].default is None
    other = channel_layers["other"]
    assert kind("docs1x.x").channel_layer is channel_layers["default"]
    assert kind("docs1x.x", alias="other").channel_layer is other
    assert kind("docs1x.x", channel_layer=other).channel_layer is other
    assert kind("docs1x.x").name == "docs1x.x"


def test_channel_send_goes_onto_the_layer_named_by_its_alias(project: None) -> None:
    Channel("docs1x.x", alias="other").send({"on": "other"})
    assert channel_layers["default"].receive(["docs1x.x"], block=False) == (None, None)
    assert channel_layers["other"].receive(["docs1x.x"], block=False) == (
        "docs1x.x",
        {"on": "other"},
    )


def test_group_add_discard_and_send_take_channels_or_names(project: None) -> None:
    layer = channel_layers["default"]
    group = Group("docs1x-room")
    group.add(Channel("docs1x.a"))
    group.add("docs1x.b")
    group.add("docs1x.b")  # already in: does nothing
    group.send({"text": "both"})
    assert layer.receive(["docs1x.a"], block=False) == ("docs1x.a", {"text": "both"})
    assert layer.receive(["docs1x.b"], block=False) == ("docs1x.b", {"text": "both"})
    assert layer.receive(["docs1x.b"], block=False) == (None, None)
    group.discard(Channel("docs1x.a"))
    group.discard("docs1x.not-a-member")  # not in it: does nothing
    group.send({"text": "b only"})
    assert layer.receive(["docs1x.a"], block=False) == (None, None)
    assert layer.receive(["docs1x.b"], block=False) == ("docs1x.b", {"text": "b only"})


# Channel Layer -------------------------------------------------------------------------


def test_a_layer_got_by_alias_knows_its_alias(project: None) -> None:
    layer = reference.get_layer()
    assert layer is channel_layers["default"]
    assert layer.alias == "default"
    assert channel_layers["other"].alias == "other"


def test_the_router_lists_its_channels_and_matches_messages_with_kwargs(project: None) -> None:
    layer = reference.get_layer()
    assert {"websocket.connect", "docs1x.later", "docs1x.never"} <= layer.router.channels
    assert all(isinstance(name, str) for name in layer.router.channels)
    match = layer.router.match(message_on("websocket.connect", layer, path="/room/lobby/"))
    assert match == (reference.room_consumer, {"name": "lobby"})
    assert layer.router.match(message_on("docs1x.unrouted", layer)) is None


def test_the_layers_router_has_only_the_projects_routes(project: None) -> None:
    """1.x: ``channel_layers[alias].router`` is ``Router(ROUTING)``, no default consumers.

    1.1.8 asgi.py ``ChannelLayerWrapper.__init__``: ``self.router = Router(self.routing)``;
    the defaults come from ``Router.check_default()``, which only runworker and
    runserver call, in their own process.
    """
    layer = reference.get_layer()
    assert layer.router.channels == {"websocket.connect", "docs1x.later", "docs1x.never"}
    assert layer.router.match(message_on("http.request", layer, path="/")) is None
    assert layer.router.match(message_on("websocket.connect", layer, path="/elsewhere/")) is None


# AsgiRequest, AsgiHandler --------------------------------------------------------------


def http_request(layer: object) -> Message:
    content = {
        "reply_channel": "http.response!docs1x",
        "http_version": "1.1",
        "method": "GET",
        "path": "/hello/",
        "query_string": b"",
        "headers": [[b"host", b"testserver"]],
        "body": b"",
    }
    return Message(content, "http.request", layer)


def test_asgi_request_has_its_reply_channel_and_raw_message(project: None) -> None:
    """1.x gave the Channel: 1.1.8 handler.py ``AsgiRequest.__init__``,
    ``self.reply_channel = self.message.reply_channel``.
    """
    message = http_request(channel_layers["default"])
    request = AsgiRequest(message)
    assert request.path == "/hello/"
    assert request.method == "GET"
    assert isinstance(request.reply_channel, Channel)
    assert request.reply_channel.name == "http.response!docs1x"
    assert request.message is message


@override_settings(ROOT_URLCONF="tests.project.urls")
def test_asgi_handler_yields_the_response_messages_of_a_view(project: None) -> None:
    """As in 1.x, ``AsgiHandler(message)`` as written is a TypeError; ``AsgiHandler()(message)``.

    1.1.8 handler.py: ``AsgiHandler.__init__(self, *args, **kwargs)`` passes
    them to Django's ``BaseHandler.__init__``, which takes none; the message goes
    to ``__call__``.
    """
    message = http_request(channel_layers["default"])
    with pytest.raises(TypeError):
        AsgiHandler(message)
    replies = list(AsgiHandler()(message))
    assert replies[0]["status"] == 200
    body = b"".join(reply.get("content", b"") for reply in replies)
    assert body == b"Hello world! You asked for /hello/"
    assert not replies[-1].get("more_content", False)


def test_encode_response_is_a_classmethod_yielding_asgi_messages() -> None:
    response = HttpResponse("encoded", status=201, content_type="text/plain")
    response["X-Docs"] = "1x"
    (reply,) = AsgiHandler.encode_response(response)
    assert reply["status"] == 201
    assert reply["content"] == b"encoded"
    headers = {bytes(name).lower(): bytes(value) for name, value in reply["headers"]}
    assert headers[b"x-docs"] == b"1x"
    assert headers[b"content-type"] == b"text/plain"
