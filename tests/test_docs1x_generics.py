"""generics.rst of Channels 1.1.8: its class-based consumers run as written.

Each sample class is routed (``route_class``/``as_route``) and driven with
``channels.test`` clients on the in-memory layer, as daphne would send.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User

from channels import Group
from channels.routing import route_class
from channels.test import Client, WSClient, apply_routes

pytestmark = pytest.mark.django_db(transaction=True)


def reply(client: Client) -> dict | None:
    return Client.receive(client)


def logged_in(username: str) -> WSClient:
    User.objects.create_user(username=username, password="pw")
    client = WSClient()
    assert client.login(username=username, password="pw")
    return client


def test_route_class_and_route_side_by_side() -> None:
    from tests.docs1x.generics import routing_example as sample

    with apply_routes(sample.channel_routing):
        chat = WSClient()
        chat.send_and_consume("websocket.connect", path="/chat/")  # the default connect accepts
        chat.send_and_consume("websocket.receive", text="hi", path="/chat/")
        assert reply(chat) == {"text": "chat: hi"}
        home = WSClient()
        home.send_and_consume("websocket.connect", path="/")
        assert reply(home) == {"text": "ws_connect"}


def test_base_consumer_dispatches_its_method_mapping() -> None:
    from tests.docs1x.generics import base as sample

    assert route_class(sample.MyConsumer).channel_names() == {"channel.name.here"}
    seen = []

    class Watching(sample.MyConsumer):
        def method_name(self, message, **kwargs):
            seen.append((self.message is message, message["n"], kwargs, self.kwargs))

    with apply_routes([route_class(Watching, n=r"^(?P<number>\d+)$")]):
        Client().send_and_consume("channel.name.here", {"n": "7"})
    assert seen == [(True, "7", {"number": "7"}, {"number": "7"})]


def test_websocket_consumer_echoes_and_manages_its_groups() -> None:
    from tests.docs1x.generics import websockets as sample

    with apply_routes([route_class(sample.MyConsumer, path=r"^/echo/$")]):
        client = logged_in("alice")
        client.send_and_consume("websocket.connect", path="/echo/")
        Group("test").send({"text": "to the group"})
        assert reply(client) == {"text": "to the group"}
        client.send_and_consume("websocket.receive", text="hello", path="/echo/")
        assert reply(client) == {"text": "hello"}
        client.send_and_consume("websocket.receive", {"bytes": b"\x00\x01"}, path="/echo/")
        assert reply(client) == {"bytes": b"\x00\x01"}
        client.send_and_consume("websocket.disconnect", {"code": 1000}, path="/echo/")
        Group("test").send({"text": "gone"})
        assert reply(client) is None


def test_json_consumer_echoes_decoded_content_and_its_connect_does_not_accept() -> None:
    from tests.docs1x.generics import json_consumer as sample

    with apply_routes([route_class(sample.MyConsumer)]):
        client = WSClient()
        client.send_and_consume("websocket.connect", path="/", check_accept=False)
        assert reply(client) is None  # connect is overridden with "pass"
        client.send_and_consume("websocket.receive", text={"a": [1, 2]}, path="/")
        assert json.loads(reply(client)["text"]) == {"a": [1, 2]}
        Group("test").send({"text": "member"})
        assert reply(client) == {"text": "member"}


def frames(client: Client) -> list[dict]:
    got = []
    while (content := reply(client)) is not None:
        got.append(content)
    return got


def test_demultiplexer_hands_each_stream_to_its_consumer_with_a_multiplexer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.docs1x.generics import multiplexing as sample

    with apply_routes([sample.Demultiplexer.as_route(path=r"^/$")]):
        client = WSClient()
        client.send_and_consume("websocket.connect", path="/", check_accept=False)
        connected = frames(client)
        assert connected[0] == {"accept": True}
        status = {"stream": "echo", "payload": {"status": "I just connected!"}}
        assert {"text": json.dumps(status)} in connected
        client.send_and_consume(
            "websocket.receive", text={"stream": "echo", "payload": {"x": 1}}, path="/"
        )
        echoed = json.loads(reply(client)["text"])
        assert echoed == {"stream": "echo", "payload": {"original_message": {"x": 1}}}
        client.send_and_consume(
            "websocket.receive", text={"stream": "other", "payload": {"y": 2}}, path="/"
        )
        assert reply(client) is None
        client.send_and_consume("websocket.disconnect", {"code": 1000}, path="/")
    assert "Stream echo is closed" in capsys.readouterr().out


def test_channel_session_user_on_a_class_gives_message_a_session_and_user() -> None:
    from tests.docs1x.generics import session_user as sample

    with apply_routes([route_class(sample.MyConsumer)]):
        client = WSClient()
        client.send_and_consume("websocket.connect", path="/")
        client.send_and_consume("websocket.receive", text="1", path="/")
        client.send_and_consume("websocket.receive", text="2", path="/")
        assert [reply(client), reply(client)] == [{"text": " 1"}, {"text": " 2"}]


def test_http_user_on_a_class_gives_the_user_of_the_http_session() -> None:
    from tests.docs1x.generics import http_user as sample

    with apply_routes([route_class(sample.MyConsumer)]):
        client = logged_in("alice")
        client.send_and_consume("websocket.connect", path="/")
        assert reply(client) == {"text": "hello alice"}


def test_get_handler_can_wrap_every_handler_in_a_decorator() -> None:
    from tests.docs1x.generics import decorators as sample

    with apply_routes([route_class(sample.MyConsumer)]):
        client = WSClient()
        client.send_and_consume("websocket.connect", path="/", check_accept=False)
        assert frames(client) == [{"text": "decorated websocket.connect"}, {"accept": True}]
        client.send_and_consume("websocket.receive", text="hi", path="/")
        assert frames(client) == [{"text": "decorated websocket.receive"}, {"text": "hi"}]


def test_as_route_takes_filters_like_route_class() -> None:
    from tests.docs1x.generics import as_route as sample

    with apply_routes(sample.channel_routing):
        client = WSClient()
        client.send_and_consume("websocket.connect", path="/chat/")
        client.send_and_consume("websocket.receive", text="via as_route", path="/chat/")
        assert reply(client) == {"text": "chat: via as_route"}
        assert client.send_and_consume("websocket.receive", path="/no/", fail_on_none=False) is None


def test_as_route_attrs_make_consumers_with_their_own_class_attributes() -> None:
    from tests.docs1x.generics import as_route_attrs as sample

    with apply_routes(sample.channel_routing):
        one, two = WSClient(), WSClient()
        one.send_and_consume("websocket.connect", path="/path/1/")
        two.send_and_consume("websocket.connect", path="/path/2/")
        Group("pre_one").send({"text": "one"})
        Group("public_two").send({"text": "two"})
        assert reply(one) == {"text": "one"}
        assert reply(two) == {"text": "two"}
