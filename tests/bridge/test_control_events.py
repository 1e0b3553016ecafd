"""A worker's reply is a reply whatever keys it carries: it is never read as a bridge event.

Before the bridge had a type of its own for its events, it put dicts such as
``{"__disconnected__": True}`` in the queue that holds workers' replies, and a
reply carrying one of those keys was taken for the event.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from channels.asgi import ChannelLayerWrapper
from channels.bridge import Bridge, BridgeSettings
from channels.layers.inmemory import InMemoryChannelLayer
from tests.test_bridge import FakeServer, start

#: The keys the bridge's own events were once spelled with.
FORMER_EVENT_KEYS = ("__disconnected__", "__too_large__", "__layer_down__")


def new_layer() -> ChannelLayerWrapper:
    return ChannelLayerWrapper(InMemoryChannelLayer(), "default", None)


def http_scope() -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}


async def request(layer: ChannelLayerWrapper) -> tuple[asyncio.Future[None], FakeServer, str]:
    """Start a GET through the bridge; return its task, its server and its reply channel."""
    server = FakeServer()
    bridge = Bridge(layer, BridgeSettings(http_timeout=10))
    task = asyncio.ensure_future(bridge(http_scope(), server.receive, server.send))
    await server.incoming.put({"type": "http.request", "body": b"", "more_body": False})
    _, message = await layer.areceive(["http.request"], block=True, timeout=5)
    return task, server, message["reply_channel"]


@pytest.mark.parametrize("key", FORMER_EVENT_KEYS)
async def test_an_http_reply_carrying_a_former_event_key_is_relayed_as_a_response(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    layer = new_layer()
    task, server, reply_channel = await request(layer)
    await layer.asend(reply_channel, {"status": 200, "content": b"hello", key: True})
    start_event = await server.next_sent()
    assert (start_event["type"], start_event["status"]) == ("http.response.start", 200)
    body = await server.next_sent()
    assert (body["body"], body["more_body"]) == (b"hello", False)
    await asyncio.wait_for(task, 5)
    assert f"Ignored unknown reply keys ['{key}']" in caplog.text


@pytest.mark.parametrize("key", FORMER_EVENT_KEYS)
async def test_a_first_http_reply_that_is_only_a_former_event_key_is_a_reply_without_status(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    layer = new_layer()
    task, server, reply_channel = await request(layer)
    with caplog.at_level(logging.ERROR, "channels.bridge"):
        await layer.asend(reply_channel, {key: True})
        start_event = await server.next_sent()
        await asyncio.wait_for(task, 5)
    assert start_event["status"] == 500
    assert "has no status" in caplog.text


@pytest.mark.parametrize("key", FORMER_EVENT_KEYS)
async def test_a_websocket_reply_carrying_a_former_event_key_is_relayed_as_a_frame(
    key: str,
) -> None:
    layer = new_layer()
    task, server = await start(layer, BridgeSettings())
    _, connect = await layer.areceive(["websocket.connect"])  # nothing left behind
    assert connect is None
    reply_channel = await reply_channel_of(layer, server)
    await layer.asend(reply_channel, {"text": "still open", key: True})
    assert await server.next_sent() == {"type": "websocket.send", "text": "still open"}
    await server.incoming.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 5)
    _, disconnect = await layer.areceive(["websocket.disconnect"], block=True, timeout=5)
    assert disconnect["code"] == 1000


async def reply_channel_of(layer: ChannelLayerWrapper, server: FakeServer) -> str:
    """Learn an open socket's reply channel from the frame it sends to the consumers."""
    await server.incoming.put({"type": "websocket.receive", "text": "ping"})
    _, frame = await layer.areceive(["websocket.receive"], block=True, timeout=5)
    assert frame["text"] == "ping"
    return str(frame["reply_channel"])
