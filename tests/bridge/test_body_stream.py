"""A request body that cannot be streamed to its worker gets the client a 503 at once, logged.

The rest of a large body goes to a body channel from a task of its own. When
that task failed, its exception used to be lost: the worker waited for a body
that never came and the client for a response, until ``CHANNELS_HTTP_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from channels.asgi import ChannelLayerWrapper
from channels.bridge import Bridge, BridgeSettings
from channels.layers.inmemory import InMemoryChannelLayer
from tests.test_bridge import FakeServer

#: Long enough that an answer within the test's bounds cannot be the timeout's.
HTTP_TIMEOUT = 30.0


def post_scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/upload/",
        "headers": [],
        "query_string": b"",
    }


async def test_a_body_chunk_the_layer_refuses_gets_a_503_and_an_error_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The layer takes the first part (in http.request) but not a later chunk
    # larger than its max_message_size: a real refusal by a real layer.
    layer = ChannelLayerWrapper(InMemoryChannelLayer(max_message_size=16 * 1024), "default", None)
    settings = BridgeSettings(body_chunk_size=1024, http_timeout=HTTP_TIMEOUT)
    server = FakeServer()
    task = asyncio.ensure_future(Bridge(layer, settings)(post_scope(), server.receive, server.send))
    await server.incoming.put({"type": "http.request", "body": b"a" * 1024, "more_body": True})
    _, request = await layer.areceive(["http.request"], block=True, timeout=5)
    assert request["body"] == b"a" * 1024
    began = time.monotonic()
    with caplog.at_level(logging.ERROR, "channels.bridge"):
        await server.incoming.put(
            {"type": "http.request", "body": b"b" * 64 * 1024, "more_body": False}
        )
        start_event = await server.next_sent()
        body = await server.next_sent()
        await asyncio.wait_for(task, 5)
    assert start_event["status"] == 503
    assert b"Service unavailable" in body["body"]
    assert time.monotonic() - began < HTTP_TIMEOUT / 3
    [record] = [r for r in caplog.records if r.name == "channels.bridge"]
    assert record.levelno == logging.ERROR
    assert "Could not stream the request body of http /upload/" in record.getMessage()
    assert "max_message_size" in record.getMessage()
    # The worker reading the body hears it will get no more, rather than waiting.
    _, chunk = await layer.areceive([request["body_channel"]], block=True, timeout=5)
    assert chunk == {"closed": True}


async def test_a_body_that_streams_whole_is_answered_by_the_worker() -> None:
    """The failure path leaves the ordinary one alone: a streamed body reaches the worker."""
    layer = ChannelLayerWrapper(InMemoryChannelLayer(), "default", None)
    settings = BridgeSettings(body_chunk_size=1024, http_timeout=HTTP_TIMEOUT)
    server = FakeServer()
    task = asyncio.ensure_future(Bridge(layer, settings)(post_scope(), server.receive, server.send))
    await server.incoming.put({"type": "http.request", "body": b"a" * 1024, "more_body": True})
    await server.incoming.put({"type": "http.request", "body": b"b" * 2048, "more_body": False})
    _, request = await layer.areceive(["http.request"], block=True, timeout=5)
    _, chunk = await layer.areceive([request["body_channel"]], block=True, timeout=5)
    assert chunk == {"content": b"b" * 2048, "more_content": False}
    await layer.asend(request["reply_channel"], {"status": 201, "content": b"stored"})
    assert (await server.next_sent())["status"] == 201
    assert (await server.next_sent())["body"] == b"stored"
    await asyncio.wait_for(task, 5)
