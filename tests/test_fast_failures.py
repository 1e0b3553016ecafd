"""Requests and handshakes that go wrong are answered at once, and say why.

* a request built by user code holds no open file; a streamed body's file is
  closed with the request;
* ``CHANNELS_WS_PROTOCOLS`` chooses the subprotocol, as daphne 1.x's
  ``--ws-protocol`` did, unless the consumer's accept names one;
* a handshake no consumer answers gets a 403 and a warning naming the fix,
  before daphne would drop it silently;
* an exception while serving static files, or outside any view, gets its
  4xx/5xx at once rather than the interface server's 503 a minute later.
"""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections.abc import Iterator

import pytest
from django.core import signals
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from channels.asgi import ChannelLayerWrapper
from channels.bridge import choose_subprotocol, ws_protocols_setting
from channels.handler import AsgiRequest, ViewConsumer
from channels.message import Message
from channels.staticfiles import StaticFilesApplication
from tests.interface import Deployment, http
from tests.processes import ROOT
from tests.workers import expect

ROUTING = "tests.fastfail.routing.channel_routing"
SETTINGS = "tests.fastfail.settings"
STATIC_DIR = str(ROOT / "tests" / "project" / "static")


@pytest.fixture
def no_resource_warnings() -> Iterator[None]:
    """Fail the test if anything it left for the garbage collector was an unclosed resource."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaked == []


def request_message(layer: ChannelLayerWrapper, **content: object) -> Message:
    return Message(
        {"reply_channel": layer.new_channel("test.reply?"), "path": "/", **content},
        "http.request",
        layer,
    )


# 1. A request holds no file it does not close ----------------------------------------


@pytest.mark.usefixtures("no_resource_warnings")
def test_a_request_built_from_a_message_keeps_its_body_in_memory(
    layer: ChannelLayerWrapper,
) -> None:
    """1.x: "a view is merely another consumer"; such code never closes the request."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}  # 1.x's dict of headers
    request = AsgiRequest(request_message(layer, method="POST", headers=form, body=b"a=1"))
    assert request.POST["a"] == "1"
    unread = AsgiRequest(request_message(layer, body=b"never read"))
    del request, unread


@pytest.mark.usefixtures("no_resource_warnings")
def test_a_body_streamed_on_a_body_channel_is_spooled_and_closed_with_the_request(
    layer: ChannelLayerWrapper,
) -> None:
    body_channel = layer.new_channel("http.request.body?")
    layer.send(body_channel, {"content": b"b" * 10, "more_content": True})
    layer.send(body_channel, {"content": b"c" * 10, "more_content": False})
    request = AsgiRequest(request_message(layer, body=b"a" * 10, body_channel=body_channel))
    assert request.read(5) == b"aaaaa"  # read from the stream, not request.body
    request.close()
    del request


@pytest.mark.usefixtures("no_resource_warnings")
def test_a_body_cut_short_by_the_client_leaves_no_file_open(layer: ChannelLayerWrapper) -> None:
    body_channel = layer.new_channel("http.request.body?")
    layer.send(body_channel, {"closed": True})
    ViewConsumer()(request_message(layer, body=b"partial", body_channel=body_channel))


# 2. CHANNELS_WS_PROTOCOLS and the accept's subprotocol -----------------------------------


def test_the_subprotocol_is_the_first_offered_one_the_setting_lists() -> None:
    supported = ("graphql-ws", "chat.v2")
    assert choose_subprotocol(["x", "chat.v2", "graphql-ws"], supported) == "chat.v2"
    assert choose_subprotocol(["x"], supported) is None
    assert choose_subprotocol([], supported) is None
    assert choose_subprotocol(["x", "graphql-ws"], supported, requested="x") == "x"
    assert choose_subprotocol(["graphql-ws"], supported, requested="y") == "graphql-ws"


def test_channels_ws_protocols_must_be_a_list_of_names() -> None:
    assert ws_protocols_setting(None) == ()
    assert ws_protocols_setting(["graphql-ws"]) == ("graphql-ws",)
    with pytest.raises(ImproperlyConfigured, match=r'CHANNELS_WS_PROTOCOLS = \["graphql-ws"\]'):
        ws_protocols_setting("graphql-ws")


@pytest.fixture
def protocols_server(deployments) -> Deployment:
    return deployments("daphne", ROUTING, workers=1, DJANGO_SETTINGS_MODULE=SETTINGS)


def test_accepting_answers_with_the_first_offered_subprotocol_in_the_setting(
    protocols_server: Deployment,
) -> None:
    url = protocols_server.ws_url
    with connect(url + "/accept/", subprotocols=["mqtt", "chat.v2", "graphql-ws"]) as ws:
        assert ws.subprotocol == "chat.v2"
    with connect(url + "/accept/", subprotocols=["mqtt"]) as ws:
        assert ws.subprotocol is None
    with connect(url + "/greet/", subprotocols=["graphql-ws"]) as ws:  # an implicit accept
        assert ws.subprotocol == "graphql-ws"
        assert ws.recv(timeout=20) == "hello"


def test_a_consumer_may_choose_any_subprotocol_the_client_offered(
    protocols_server: Deployment,
) -> None:
    url = protocols_server.ws_url
    with connect(url + "/choose/?mqtt", subprotocols=["graphql-ws", "mqtt"]) as ws:
        assert ws.subprotocol == "mqtt"  # not in the setting, but the consumer's choice
    with connect(url + "/choose/?stomp", subprotocols=["graphql-ws"]) as ws:
        assert ws.subprotocol == "graphql-ws"  # not offered: ignored, the setting decides
    daphne = protocols_server.processes[0]
    warning = daphne.wait_for("Ignored the subprotocol 'stomp'", timeout=10)
    assert "/choose/" in warning
    assert "daphne.response." not in warning


# 3. A handshake no consumer answers ------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "flags", "server_limit"),
    [
        ("runserver", (), 5.0),  # --websocket_handshake_timeout's default
        ("daphne", ("--websocket_connect_timeout", "2"), 2.0),
    ],
)
def test_an_unanswered_handshake_is_refused_with_403_before_the_server_drops_it(
    deployments, kind: str, flags: tuple[str, ...], server_limit: float
) -> None:
    server = deployments(kind, ROUTING, workers=1, daphne_flags=flags)
    # Autobahn rounds its handshake timer down to a whole second: connecting
    # just before one (the worst case, and what once failed in CI) makes its
    # drop come almost a full second early. A refusal timed from the nominal
    # limit lost this race every time.
    time.sleep((0.997 - time.time() % 1) % 1)
    started = time.monotonic()
    with pytest.raises(InvalidStatus) as refused:
        connect(server.ws_url + "/forget/", open_timeout=20)
    elapsed = time.monotonic() - started
    assert refused.value.response.status_code == 403
    # Autobahn's timer fires up to a second early (it rounds down to a whole
    # second); the refusal comes half a second before it does.
    assert server_limit - 1.5 - 0.2 < elapsed < server_limit
    warning = server.processes[0].wait_for("No consumer accepted the WebSocket", timeout=10)
    assert "/forget/" in warning
    assert 'message.reply_channel.send({"accept": True})' in warning
    assert "daphne.response." not in warning  # reply channels key sessions: never logged
    with connect(server.ws_url + "/accept/", open_timeout=20):  # the server carries on
        pass


# 4. Exceptions outside views -------------------------------------------------------------


TRAVERSAL = "/static/../../etc/passwd"


def test_a_path_outside_the_static_roots_is_a_400_at_once(deployments) -> None:
    """``SuspiciousFileOperation`` in a worker becomes 400, as in a view, not a late 503."""
    server = deployments("daphne", ROUTING, workers=1, CHANNELS_TEST_DEBUG="1")
    started = time.monotonic()
    status, _, _ = http(server.url + TRAVERSAL, timeout=15)
    assert status == 400
    assert time.monotonic() - started < 10  # CHANNELS_HTTP_TIMEOUT is 60
    assert http(server.url + "/static/site.css")[0] == 200


def test_runserver_answers_a_path_outside_the_static_roots_at_once(deployments) -> None:
    """runserver serves static files in daphne's process, and answers 400 as a view would.

    Django's own ASGI static handler lets ``SuspiciousFileOperation`` escape (daphne
    then answers 500); :class:`channels.staticfiles.StaticFilesApplication` does not.
    """
    server = deployments("runserver", ROUTING, CHANNELS_TEST_DEBUG="1")
    started = time.monotonic()
    status, _, _ = http(server.url + TRAVERSAL, timeout=15)
    assert status == 400
    assert time.monotonic() - started < 10


@override_settings(
    STATIC_URL="/static/",
    STATICFILES_DIRS=[STATIC_DIR],
    DEBUG=True,
    ROOT_URLCONF="tests.project.urls",
)
async def test_the_static_files_application_answers_a_suspicious_path_with_400() -> None:
    async def not_static(scope: dict, receive: object, send: object) -> None:
        raise AssertionError(f"{scope['path']} is under STATIC_URL")

    application = StaticFilesApplication(not_static)
    for path, expected in ((TRAVERSAL, 400), ("/static/site.css", 200), ("/static/no", 404)):
        sent = await call_http(application, path)
        assert sent[0]["type"] == "http.response.start"
        assert sent[0]["status"] == expected, path


async def call_http(application: object, path: str) -> list[dict]:
    """Make one GET request of the ASGI *application*; return the events it sent."""
    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
    requested = False
    sent: list[dict] = []
    finished = asyncio.Event()

    async def receive() -> dict:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b""}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(event: dict) -> None:
        sent.append(event)

    try:
        await asyncio.wait_for(application(scope, receive, send), 10)
    finally:
        finished.set()
    return sent


def test_an_exception_before_any_response_is_answered_with_500(
    layer: ChannelLayerWrapper,
) -> None:
    """Django makes a view's exceptions into responses; this is one it never sees."""

    def broken_receiver(**kwargs: object) -> None:
        raise RuntimeError("a request_started receiver failed")

    message = request_message(layer)
    signals.request_started.connect(broken_receiver)
    try:
        with pytest.raises(RuntimeError, match="receiver failed"):
            ViewConsumer()(message)
    finally:
        signals.request_started.disconnect(broken_receiver)
    reply = expect(layer, message.content["reply_channel"])
    assert reply["status"] == 500
    assert reply["more_content"] is False


@override_settings(MIDDLEWARE=["tests.fastfail.middleware.FailsToLoad"])
def test_middleware_that_fails_to_load_is_answered_with_500(layer: ChannelLayerWrapper) -> None:
    message = request_message(layer)
    with pytest.raises(RuntimeError, match="failed to load"):
        ViewConsumer()(message)
    assert expect(layer, message.content["reply_channel"])["status"] == 500
