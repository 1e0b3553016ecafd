"""Building an ``AsgiRequest``: the body is read off the layer first, never by a constructor."""

from __future__ import annotations

import io
from typing import Any

import pytest

from channels.asgi import ChannelLayerWrapper
from channels.exceptions import RequestTimeout
from channels.handler import AsgiRequest
from channels.message import Message


def request_message(layer: Any, **content: object) -> Message:
    return Message({"path": "/upload/", "method": "POST", **content}, "http.request", layer)


def test_a_request_whose_body_came_whole_is_built_without_touching_the_layer() -> None:
    """``AsgiRequest(message)`` (1.x user code) does no I/O: here there is no layer at all."""
    request = AsgiRequest(request_message(None, body=b"whole"))
    assert request.body == b"whole"
    assert request.path == "/upload/"


def test_from_message_reads_the_body_channel_then_builds_the_request(
    layer: ChannelLayerWrapper,
) -> None:
    body_channel = layer.new_channel("http.request.body?")
    layer.send(body_channel, {"content": b"-middle-", "more_content": True})
    layer.send(body_channel, {"content": b"end", "more_content": False})
    request = AsgiRequest.from_message(
        request_message(layer, body=b"start", body_channel=body_channel)
    )
    try:
        assert request.body == b"start-middle-end"
    finally:
        request.close()


def test_the_1x_constructor_still_reads_a_body_channel(layer: ChannelLayerWrapper) -> None:
    body_channel = layer.new_channel("http.request.body?")
    layer.send(body_channel, {"content": b"rest", "more_content": False})
    request = AsgiRequest(request_message(layer, body=b"first-", body_channel=body_channel))
    try:
        assert request.body == b"first-rest"
    finally:
        request.close()


def test_a_body_read_first_is_used_as_given_and_closed_if_the_request_cannot_be_built() -> None:
    body = io.BytesIO(b"given")
    request = AsgiRequest(request_message(None, body_channel="never.read?x"), body)
    assert request.body == b"given"
    broken = io.BytesIO(b"")
    with pytest.raises(TypeError, match="give each header name and value as bytes"):
        AsgiRequest(request_message(None, headers={"x-name": "\u20ac"}), broken)
    assert broken.closed


def test_a_body_that_does_not_arrive_in_time_is_a_request_timeout(
    layer: ChannelLayerWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AsgiRequest, "body_receive_timeout", 0.2)
    body_channel = layer.new_channel("http.request.body?")
    with pytest.raises(RequestTimeout):
        AsgiRequest.read_body(request_message(layer, body_channel=body_channel))
