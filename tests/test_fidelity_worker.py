"""1.x fidelity of the worker: ChannelSocketException, close codes, failed connects, filters."""

from __future__ import annotations

import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from channels import Channel
from channels.asgi import ChannelLayerWrapper
from channels.exceptions import ChannelSocketException, WebsocketCloseException
from channels.routing import Router, route
from channels.worker import Worker
from tests.workers import RunWorker, expect


class ErrorFrame(ChannelSocketException):
    """Answer with an error frame (what 1.x apps raise these for)."""

    def run(self, message):
        message.reply_channel.send({"text": "error"})


def send(layer: ChannelLayerWrapper, channel: str, **content) -> None:
    layer.send(channel, {"reply_channel": "reply", "path": "/", **content})


def nothing_more(layer: ChannelLayerWrapper, *channels: str) -> bool:
    return layer.receive(list(channels), block=True, timeout=0.3) == (None, None)


# In-process -------------------------------------------------------------------


def test_a_channel_socket_exception_sends_what_was_queued_then_runs(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    def consumer(message):
        Channel("out").send({"queued": True})
        message.reply_channel.send({"text": "first"})
        raise ErrorFrame

    run_worker([route("websocket.receive", consumer)])
    send(layer, "websocket.receive", text="x")
    assert expect(layer, "reply") == {"text": "first"}
    assert expect(layer, "reply") == {"text": "error"}
    assert expect(layer, "out") == {"queued": True}


def test_an_async_consumer_can_raise_a_channel_socket_exception(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    async def consumer(message):
        await message.reply_channel.asend({"text": "first"})
        raise WebsocketCloseException(3000)

    run_worker([route("websocket.receive", consumer)])
    send(layer, "websocket.receive", text="x")
    assert expect(layer, "reply") == {"text": "first"}
    assert expect(layer, "reply") == {"close": 3000}


@pytest.mark.parametrize(("code", "close"), [(None, True), (1000, 1000), (4999, 4999)])
def test_websocket_close_exception_closes_with_its_code(
    layer: ChannelLayerWrapper, run_worker: RunWorker, code: int | None, close: object
) -> None:
    def consumer(message):
        raise WebsocketCloseException(code)

    run_worker([route("websocket.receive", consumer)])
    send(layer, "websocket.receive", text="x")
    assert expect(layer, "reply") == {"close": close}


@pytest.mark.parametrize("code", [1001, 1011, 2999, 5000, 0, True, "4000", 4000.0])
def test_websocket_close_exception_refuses_codes_a_consumer_cannot_send(code: object) -> None:
    with pytest.raises(ValueError, match="1000 or a code from 3000 to 4999"):
        WebsocketCloseException(code)  # type: ignore[arg-type]


def test_websocket_close_exception_outside_websockets_is_logged_and_the_worker_goes_on(
    layer: ChannelLayerWrapper, run_worker: RunWorker, caplog: pytest.LogCaptureFixture
) -> None:
    def consumer(message):
        if message["n"] == 1:
            raise WebsocketCloseException()
        message.reply_channel.send({"n": message["n"]})

    run_worker([route("tasks.run", consumer)])
    send(layer, "tasks.run", n=1)
    send(layer, "tasks.run", n=2)
    assert expect(layer, "reply") == {"n": 2}
    assert "raise it only from websocket.* consumers" in caplog.text


def test_a_failed_connect_consumer_gets_its_socket_refused(
    layer: ChannelLayerWrapper, run_worker: RunWorker, caplog: pytest.LogCaptureFixture
) -> None:
    def connect_consumer(message):
        message.reply_channel.send({"accept": True})  # dropped with the failure
        raise RuntimeError("no database")

    run_worker([route("websocket.connect", connect_consumer)])
    send(layer, "websocket.connect", order=0)
    assert expect(layer, "reply") == {"close": True}
    assert nothing_more(layer, "reply")
    assert "no database" in caplog.text


def test_a_failed_receive_consumer_leaves_the_socket_alone(
    layer: ChannelLayerWrapper, run_worker: RunWorker, caplog: pytest.LogCaptureFixture
) -> None:
    def receive(message):
        raise RuntimeError("bad frame")

    run_worker([route("websocket.receive", receive)])
    send(layer, "websocket.receive", text="x")
    assert nothing_more(layer, "reply")
    assert "bad frame" in caplog.text


DEFAULT_WEBSOCKET_CHANNELS = ("websocket.connect", "websocket.receive", "websocket.disconnect")


def test_a_worker_serves_its_layers_routing_plus_the_defaults(
    layer: ChannelLayerWrapper,
) -> None:
    """``layer.router`` is the project's routes (1.x); a worker adds the defaults on top."""
    layer.routing = [route("mine.a", lambda message: None)]
    assert layer.router.channels == {"mine.a"}
    worker = Worker(layer)
    assert set(worker.channels) == {"mine.a", "http.request", *DEFAULT_WEBSOCKET_CHANNELS}


def test_apply_channel_filters_keeps_the_order_as_1x_did(layer: ChannelLayerWrapper) -> None:
    router = Router([route(["yes.1", "no.1", "maybe.2"], lambda message: None)])
    only = Worker(layer, router, only_channels=["yes.*", "maybe.*"])
    assert only.apply_channel_filters(["yes.1", "no.1"]) == ["yes.1"]
    assert only.apply_channel_filters(["yes.1", "no.1", "maybe.2", "yes"]) == ["yes.1", "maybe.2"]
    exclude = Worker(layer, router, exclude_channels=["no.*", "maybe.*"])
    assert exclude.apply_channel_filters(["yes.1", "no.1", "maybe.2", "yes"]) == ["yes.1", "yes"]
    both = Worker(layer, router, exclude_channels=["no.*"], only_channels=["yes.*", "http.*"])
    assert both.apply_channel_filters(["yes.1", "no.1", "maybe.2", "yes"]) == ["yes.1"]
    assert both.channels == ["http.request", "yes.1"]  # what it listens on: sorted


# Over real daphne + runworker -------------------------------------------------


def broken_connect(message, **kwargs):
    raise RuntimeError("the connect consumer broke")


def closing_receive(message, **kwargs):
    message.reply_channel.send({"text": "bye"})
    raise WebsocketCloseException(4123)


#: The routing the deployment below runs (imported by the runworker processes).
routing = [
    route("websocket.connect", broken_connect, path=r"^/broken/$"),
    route("websocket.receive", closing_receive, path=r"^/closing/$"),
]

#: Longer than the test waits, so only a refusal can end the handshake in time.
HANDSHAKE_TIMEOUT = 30


def test_over_real_servers_failed_connects_are_refused_at_once_and_closes_carry_codes(
    deployments,
) -> None:
    server = deployments(
        "daphne",
        "tests.test_fidelity_worker.routing",
        daphne_flags=("--websocket_connect_timeout", str(HANDSHAKE_TIMEOUT)),
        workers=1,
    )
    started = time.monotonic()
    with pytest.raises(InvalidStatus) as refused:
        connect(server.ws_url + "/broken/", open_timeout=HANDSHAKE_TIMEOUT + 10)
    assert refused.value.response.status_code == 403
    assert time.monotonic() - started < HANDSHAKE_TIMEOUT / 2

    with connect(server.ws_url + "/closing/", open_timeout=20) as socket:
        socket.send("hello")
        assert socket.recv(timeout=20) == "bye"
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=20)
    assert closed.value.rcvd.code == 4123
