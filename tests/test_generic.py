"""Class-based consumers through a real Worker, and end to end through daphne + runworker."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.contrib.auth.models import User
from django.test import Client as DjangoClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from channels.asgi import ChannelLayerWrapper
from channels.generic import (
    AsyncBaseConsumer,
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    BaseConsumer,
    ConsumerCore,
    JsonWebsocketConsumer,
    WebsocketConsumer,
    WebsocketDemultiplexer,
    WebsocketMultiplexer,
)
from channels.generic.websocket_base import WebsocketBase
from channels.message import Message
from channels.routing import route_class
from tests.processes import django_command, project_env
from tests.sample.generic_consumers import (
    EVENTS,
    RELEASE,
    Api,
    AsyncApi,
    Chat,
    Counter,
    Demux,
    Slow,
)
from tests.workers import RunWorker, expect

pytestmark = pytest.mark.django_db(transaction=True)

_counter = iter(range(10**6))


class Socket:
    """One fake socket on the in-memory layer: numbered messages, its own replies."""

    def __init__(self, layer: ChannelLayerWrapper, path: str = "/", **content: Any) -> None:
        self.layer = layer
        self.prefix = f"test.sock{next(_counter)}!"
        self.reply = self.prefix + "r"
        self.path = path
        self.content = content
        self.order = 0

    def _send(self, channel: str, **content: Any) -> None:
        self.layer.send(
            channel,
            {"reply_channel": self.reply, "path": self.path, "order": self.order, **content},
        )
        self.order += 1

    def connect(self, **content: Any) -> None:
        self._send("websocket.connect", **{**self.content, **content})

    def text(self, text: str) -> None:
        self._send("websocket.receive", text=text)

    def bytes(self, data: bytes) -> None:
        self._send("websocket.receive", bytes=data)

    def disconnect(self, code: int = 1000) -> None:
        self._send("websocket.disconnect", code=code)

    def reply_(self, timeout: float = 10) -> dict[str, Any]:
        name, message = self.layer.receive([self.prefix], block=True, timeout=timeout)
        assert name == self.reply, f"no reply on {self.reply}"
        return message

    def json(self) -> Any:
        return json.loads(self.reply_()["text"])

    def nothing(self, timeout: float = 0.3) -> None:
        assert self.layer.receive([self.prefix], block=True, timeout=timeout) == (None, None)


def cookie_for(username: str) -> list[list[bytes]]:
    client = DjangoClient()
    client.force_login(User.objects.create_user(username, password="pw"))
    return [[b"cookie", f"sessionid={client.session.session_key}".encode()]]


# BaseConsumer ------------------------------------------------------------


def test_base_consumer_routes_on_its_method_mapping_with_a_channel_session(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    assert Counter.channel_names() == {"counter.add", "counter.read"}
    run_worker([Counter.as_route(group=r"^(?P<group>\w+)$")])
    for by in (2, 3):
        layer.send("counter.add", {"reply_channel": "test.counter", "group": "g", "by": by})
    layer.send("counter.read", {"reply_channel": "test.counter", "group": "g"})
    assert expect(layer, "test.counter") == {"n": 5, "kwargs": {"group": "g"}}


def test_a_new_instance_handles_each_message() -> None:
    seen: list[BaseConsumer] = []

    class Remember(BaseConsumer):
        method_mapping = {"a.b": "handle"}

        def handle(self, message, **kwargs):
            seen.append(self)

    consumer = route_class(Remember).consumer
    for _ in range(2):
        consumer(Message({"n": 1}, "a.b", None))
    first, second = seen
    assert first is not second
    assert first.message is not second.message
    assert first.kwargs == {}


def test_a_sync_consumer_handles_the_message_when_built_and_an_async_one_when_run() -> None:
    """``BaseConsumer(message)`` runs the handler (1.x); ``AsyncBaseConsumer(message)`` waits."""
    calls: list[str] = []

    class Sync(BaseConsumer):
        method_mapping = {"a.b": "handle"}

        def handle(self, message, **kwargs):
            calls.append(f"sync {kwargs}")

    class Async(AsyncBaseConsumer):
        method_mapping = {"a.b": "handle"}

        async def handle(self, message, **kwargs):
            calls.append(f"async {kwargs}")

    Sync(Message({}, "a.b", None), n=1)
    assert calls == ["sync {'n': 1}"]
    consumer = Async(Message({}, "a.b", None), n=2)
    assert calls == ["sync {'n': 1}"]
    async_to_sync(consumer.run)()
    assert calls == ["sync {'n': 1}", "async {'n': 2}"]


def test_async_consumers_are_siblings_of_the_sync_ones_over_shared_bases() -> None:
    """An async consumer is not a sync one: each declares its own hooks (plain or coroutine)."""
    assert not issubclass(AsyncBaseConsumer, BaseConsumer)
    assert not issubclass(AsyncWebsocketConsumer, WebsocketConsumer)
    assert not issubclass(AsyncJsonWebsocketConsumer, JsonWebsocketConsumer)
    for sync, asynchronous in [
        (WebsocketConsumer, AsyncWebsocketConsumer),
        (JsonWebsocketConsumer, AsyncJsonWebsocketConsumer),
    ]:
        assert issubclass(sync, WebsocketBase)
        assert issubclass(asynchronous, WebsocketBase)
        assert issubclass(sync, BaseConsumer)
        assert issubclass(asynchronous, AsyncBaseConsumer)
        for hook in ("connect", "receive", "disconnect", "accept", "send", "close", "group_send"):
            assert not iscoroutinefunction(getattr(sync, hook)), hook
            assert iscoroutinefunction(getattr(asynchronous, hook)), hook
    assert issubclass(WebsocketDemultiplexer, JsonWebsocketConsumer)
    assert issubclass(JsonWebsocketConsumer, ConsumerCore)
    assert issubclass(Slow, ConsumerCore)


def test_as_route_attrs_keep_an_async_consumer_async() -> None:
    route = Slow.as_route({"groups": ["slow-attrs"]}, path=r"^/slow/$")
    assert iscoroutinefunction(route.consumer)
    assert route.consumer_class.groups == ["slow-attrs"]
    assert issubclass(route.consumer_class, Slow)


def test_the_shared_base_alone_cannot_be_routed() -> None:
    class Neither(ConsumerCore):
        method_mapping = {"a.b": "handle"}

    with pytest.raises(NotImplementedError, match="subclass BaseConsumer or AsyncBaseConsumer"):
        route_class(Neither)


# WebsocketConsumer: a chat with http_user and groups ----------------------


def test_chat_with_http_user_and_groups(layer: ChannelLayerWrapper, run_worker: RunWorker) -> None:
    run_worker([Chat.as_route(path=r"^/chat/(?P<room>\w+)/$")])
    ada = Socket(layer, "/chat/lobby/", headers=cookie_for("ada"))
    bob = Socket(layer, "/chat/lobby/", headers=cookie_for("bob"))
    eve = Socket(layer, "/chat/other/", headers=cookie_for("eve"))
    for sock in (ada, bob, eve):
        sock.connect()
        assert sock.reply_() == {"accept": True}
    assert sorted(layer.group_channels("chat-lobby")) == sorted([ada.reply, bob.reply])
    ada.text("hello")  # frames carry no cookies: the user comes from the channel session
    assert ada.reply_() == {"text": "ada: hello"}
    assert bob.reply_() == {"text": "ada: hello"}
    eve.nothing()
    bob.disconnect(4000)
    assert expect(layer, EVENTS) == {"left": "lobby", "user": "bob", "code": 4000}
    assert layer.group_channels("chat-lobby") == [ada.reply]


def test_chat_closes_anonymous_sockets(layer: ChannelLayerWrapper, run_worker: RunWorker) -> None:
    run_worker([Chat.as_route(path=r"^/chat/(?P<room>\w+)/$")])
    nobody = Socket(layer, "/chat/lobby/", headers=[])
    nobody.connect()
    assert nobody.reply_() == {"close": True}


def test_strict_ordering_option_runs_frames_in_order(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    class Ordered(WebsocketConsumer):
        strict_ordering = True
        channel_session = True

        def connect(self, message, **kwargs):
            message.channel_session["seen"] = []
            self.accept()

        def receive(self, text=None, bytes=None, **kwargs):
            self.message.channel_session["seen"] += [text]
            self.send(text=",".join(self.message.channel_session["seen"]))

    run_worker([route_class(Ordered)], threads=3)
    sock = Socket(layer)
    messages = [("websocket.receive", {"text": f"m{n}", "order": n}) for n in range(5, 0, -1)]
    for channel, content in messages:
        layer.send(channel, {"reply_channel": sock.reply, "path": "/", **content})
    layer.send("websocket.connect", {"reply_channel": sock.reply, "path": "/", "order": 0})
    assert sock.reply_() == {"accept": True}
    replies = [sock.reply_()["text"] for _ in range(5)]
    assert replies[-1] == "m1,m2,m3,m4,m5"


# JsonWebsocketConsumer -----------------------------------------------------


def test_json_api_keeps_state_and_answers_bad_frames_with_errors(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    run_worker([Api.as_route(path=r"^/api/$")])
    sock = Socket(layer, "/api/")
    sock.connect()
    assert sock.reply_() == {"accept": True}
    sock.text(json.dumps({"action": "add", "value": 2}))
    assert sock.json() == {"total": 2}
    sock.bytes(b"\x00\x01")
    assert "Binary frames" in sock.json()["error"]
    sock.text("{not json")
    assert sock.json()["error"].startswith("Invalid JSON")
    sock.text(json.dumps({"action": "add", "value": 3}))  # the socket is still served
    assert sock.json() == {"total": 5}
    sock.text(json.dumps({"action": "total", "close": 4002}))
    reply = sock.reply_()
    assert json.loads(reply["text"]) == {"total": 5}
    assert reply["close"] == 4002


def test_json_group_send_encodes_content(layer: ChannelLayerWrapper) -> None:
    layer.group_add("fans", "test.fan")
    Api.group_send("fans", {"n": 1}, close=True)
    assert expect(layer, "test.fan") == {"text": '{"n": 1}', "close": True}


# Demultiplexer ---------------------------------------------------------------


def test_demultiplexer_dispatches_two_streams(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    run_worker([Demux.as_route(path=r"^/demux/$")])
    sock = Socket(layer, "/demux/")
    sock.connect()
    assert sock.reply_() == {"accept": True}
    assert sock.json() == {"stream": "echo", "payload": {"hello": "echo"}}  # connect forwarded
    sock.text(json.dumps({"stream": "echo", "payload": {"x": 1}}))
    assert sock.json() == {"stream": "echo", "payload": {"echo": {"x": 1}}}
    for expected in (1, 3):
        sock.text(json.dumps({"stream": "counter", "payload": {"by": expected - (expected > 1)}}))
        assert sock.json() == {"stream": "counter", "payload": {"count": expected}}
    sock.text(json.dumps({"stream": "nope", "payload": {}}))
    assert "Unknown stream 'nope'" in sock.json()["error"]
    sock.text(json.dumps({"payload": {}}))
    assert "Frames must look like" in sock.json()["error"]
    sock.text(json.dumps({"stream": "echo", "payload": [1]}))
    assert "must be a JSON object" in sock.json()["error"]
    sock.disconnect(1001)
    events = [expect(layer, EVENTS), expect(layer, EVENTS)]
    assert sorted(e["disconnected"] for e in events) == ["counter", "echo"]
    assert {e["code"] for e in events} == {1001}


def test_demultiplexer_runs_async_stream_consumers(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    class AsyncEcho(AsyncJsonWebsocketConsumer):
        async def receive(self, content, **kwargs):
            await self.send({"async": content})

    class Mixed(Demux):
        consumers = {**Demux.consumers, "async": AsyncEcho}

    run_worker([route_class(Mixed)])
    sock = Socket(layer)
    sock.connect()
    assert sock.reply_() == {"accept": True}
    assert sock.json()["payload"] == {"hello": "echo"}
    sock.text(json.dumps({"stream": "async", "payload": {"n": 1}}))
    assert sock.json() == {"stream": "async", "payload": {"async": {"n": 1}}}
    WebsocketMultiplexer.group_send("none", "async", {"n": 2})  # an empty group: no error


# Async consumers ---------------------------------------------------------------


def test_async_consumer_awaits_while_the_same_worker_serves_other_sockets(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    run_worker([Slow.as_route(path=r"^/slow/$")], threads=1)
    waiting, other = Socket(layer, "/slow/"), Socket(layer, "/slow/")
    for sock in (waiting, other):
        sock.connect()
        assert sock.reply_() == {"accept": True}
    assert sorted(layer.group_channels("slow")) == sorted([waiting.reply, other.reply])
    waiting.text("wait")
    assert waiting.reply_() == {"text": "waiting"}
    for n in range(3):  # one worker thread, and the first socket's handler still waits
        other.text(f"p{n}")
        assert other.reply_() == {"text": f"pong p{n}"}
    waiting.nothing(0.1)
    layer.send(RELEASE, {"n": 7})
    assert waiting.reply_() == {"text": "released 7"}
    other.disconnect(1000)
    assert expect(layer, EVENTS) == {"disconnected": "slow", "code": 1000}
    assert layer.group_channels("slow") == [waiting.reply]


def test_async_json_consumer(layer: ChannelLayerWrapper, run_worker: RunWorker) -> None:
    run_worker([AsyncApi.as_route()])
    first, second = Socket(layer), Socket(layer)
    for sock in (first, second):
        sock.connect()
        assert sock.reply_() == {"accept": True}
    first.text(json.dumps({"a": 1}))
    assert first.json() == {"got": {"a": 1}}
    first.bytes(b"x")
    assert "Binary frames" in first.json()["error"]
    second.text(json.dumps({"broadcast": "hi"}))
    assert first.json() == {"broadcast": "hi"}
    assert second.json() == {"broadcast": "hi"}


def test_async_routes_hand_the_worker_a_coroutine_function() -> None:
    from asgiref.sync import iscoroutinefunction

    assert iscoroutinefunction(Slow.as_route().consumer)
    assert not iscoroutinefunction(Chat.as_route().consumer)
    assert Slow.as_route().consumer.__qualname__ == "Slow"


# End to end: daphne (or runserver) + runworker -------------------------------------


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database of the test project with users ada and bob (password "pw")."""
    path = str(tmp_path_factory.mktemp("db") / "db.sqlite3")
    env = project_env(CHANNELS_TEST_DB=path)
    subprocess.run(django_command("migrate", "-v", "0"), env=env, check=True, timeout=120)
    create = "from django.contrib.auth.models import User; " + "; ".join(
        f"User.objects.create_user({name!r}, password='pw')" for name in ("ada", "bob")
    )
    subprocess.run(django_command("shell", "-c", create), env=env, check=True, timeout=120)
    return path


@pytest.mark.parametrize("kind", ["runserver", "daphne"])
def test_chat_end_to_end(deployments, database: str, kind: str) -> None:
    from tests.test_tutorial_sessions import login

    server = deployments(
        kind, "tests.project.generic_routing.channel_routing", CHANNELS_TEST_DB=database
    )
    ada_key, bob_key = login(server.url, "ada"), login(server.url, "bob")
    url = server.ws_url + "/chat/lobby/"
    with (
        connect(url, additional_headers={"Cookie": f"sessionid={ada_key}"}, open_timeout=20) as ada,
        connect(url, additional_headers={"Cookie": f"sessionid={bob_key}"}, open_timeout=20) as bob,
    ):
        ada.send("hello")
        assert ada.recv(timeout=20) == "ada: hello"
        assert bob.recv(timeout=20) == "ada: hello"
        bob.send("hi ada")
        assert ada.recv(timeout=20) == "bob: hi ada"
    with pytest.raises(InvalidStatus) as rejected:
        connect(url, open_timeout=20)
    assert rejected.value.response.status_code == 403


def test_async_consumer_end_to_end_on_one_worker(deployments, database: str) -> None:
    server = deployments(
        "daphne",
        "tests.project.generic_routing.channel_routing",
        workers=1,
        CHANNELS_TEST_DB=database,
    )
    url = server.ws_url + "/slow/"
    with connect(url, open_timeout=20) as waiting, connect(url, open_timeout=20) as other:
        waiting.send("wait")
        assert waiting.recv(timeout=20) == "waiting"
        for n in range(3):
            other.send(f"p{n}")
            assert other.recv(timeout=20) == f"pong p{n}"
        server.layer.send(RELEASE, {"n": 1})
        assert waiting.recv(timeout=20) == "released 1"


@pytest.mark.parametrize("kind", ["runserver", "daphne"])
def test_json_api_and_demultiplexer_end_to_end(deployments, database: str, kind: str) -> None:
    server = deployments(
        kind, "tests.project.generic_routing.channel_routing", CHANNELS_TEST_DB=database
    )
    with connect(server.ws_url + "/api/", open_timeout=20) as api:
        api.send(json.dumps({"action": "add", "value": 2}))
        assert json.loads(api.recv(timeout=20)) == {"total": 2}
        api.send(b"\x00binary")
        assert "Binary frames" in json.loads(api.recv(timeout=20))["error"]
        api.send("{not json")
        assert json.loads(api.recv(timeout=20))["error"].startswith("Invalid JSON")
        api.send(json.dumps({"action": "add", "value": 3}))
        assert json.loads(api.recv(timeout=20)) == {"total": 5}
    with connect(server.ws_url + "/demux/", open_timeout=20) as demux:
        assert json.loads(demux.recv(timeout=20)) == {
            "stream": "echo",
            "payload": {"hello": "echo"},
        }
        demux.send(json.dumps({"stream": "counter", "payload": {"by": 2}}))
        assert json.loads(demux.recv(timeout=20)) == {"stream": "counter", "payload": {"count": 2}}
        demux.send(json.dumps({"stream": "echo", "payload": {"x": 1}}))
        assert json.loads(demux.recv(timeout=20)) == {
            "stream": "echo",
            "payload": {"echo": {"x": 1}},
        }
        demux.send(json.dumps({"stream": "nope", "payload": {}}))
        assert "Unknown stream" in json.loads(demux.recv(timeout=20))["error"]
