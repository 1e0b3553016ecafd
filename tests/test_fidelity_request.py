"""1.x request and response details: old style dict headers, ``chunk_bytes``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django import http

from channels.exceptions import ResponseLater
from channels.handler import AsgiHandler, AsgiRequest
from channels.layers.inmemory import InMemoryChannelLayer
from channels.message import Message


def request_message(**content: Any) -> Message:
    layer = InMemoryChannelLayer()
    base = {"reply_channel": "test.reply?abc", "http_version": "1.1", "method": "GET"}
    return Message({**base, "path": "/test/", **content}, "http.request", layer)


@contextmanager
def built_request(message: Message) -> Iterator[AsgiRequest]:
    request = AsgiRequest(message)
    try:
        yield request
    finally:
        request.close()


class FixedResponseHandler(AsgiHandler):
    """A handler that answers every request with one prepared response (1.x tests do this)."""

    chunk_size = 30

    def __init__(self, response: http.HttpResponseBase) -> None:
        self.response = response
        super().__init__()

    def get_response(self, request: http.HttpRequest) -> http.HttpResponseBase:
        return self.response


def test_old_style_dict_headers_fill_meta_and_cookies() -> None:
    message = request_message(
        query_string=b"x=1&y=%26foo+bar%2Bbaz",
        headers={"host": b"example.com", "cookie": b"test-time=1448995585123; test-value=yeah"},
        client=["10.0.0.1", 1234],
        server=["10.0.0.2", 80],
    )
    with built_request(message) as request:
        assert request.META["HTTP_HOST"] == "example.com"
        assert request.get_host() == "example.com"
        assert request.COOKIES == {"test-time": "1448995585123", "test-value": "yeah"}
        assert request.GET["y"] == "&foo bar+baz"
        assert request.META["REMOTE_ADDR"] == "10.0.0.1"
        assert request.META["SERVER_PORT"] == "80"


def test_old_style_dict_headers_carry_a_form_post() -> None:
    message = request_message(
        method="POST",
        query_string="django=great",
        body=b"ponies=are+awesome",
        headers={
            "host": b"example.com",
            "Content-Type": b"application/x-www-form-urlencoded",
            "content-length": b"18",
        },
    )
    with built_request(message) as request:
        assert request.META["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
        assert request.POST["ponies"] == "are awesome"
        assert "django" not in request.POST
        assert request.GET["django"] == "great"


def test_list_headers_still_work_and_the_message_is_not_changed() -> None:
    headers = {"host": b"example.com"}
    message = request_message(headers=headers)
    with built_request(message) as request:
        assert request.META["HTTP_HOST"] == "example.com"
    assert message.content["headers"] is headers  # the consumer's message stays as sent
    with built_request(request_message(headers=[(b"host", b"example.org")])) as listed:
        assert listed.META["HTTP_HOST"] == "example.org"


def test_a_dict_header_that_is_not_bytes_or_latin1_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="give each header name and value as bytes"):
        AsgiRequest(request_message(headers={"host": 42}))
    with pytest.raises(TypeError, match="Latin-1"):
        AsgiRequest(request_message(headers={"x-name": "\u20ac"}))


def test_response_later_is_reachable_from_the_request_class() -> None:
    assert AsgiRequest.ResponseLater is ResponseLater


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", [(b"", True)]),
        (b"1" * 29, [(b"1" * 29, True)]),
        (b"1" * 30, [(b"1" * 30, True)]),
        (b"1" * 30 + b"a", [(b"1" * 30, False), (b"a", True)]),
    ],
)
def test_chunk_bytes_yields_chunks_of_chunk_size_marking_the_last(
    data: bytes, expected: list[tuple[bytes, bool]]
) -> None:
    assert list(FixedResponseHandler.chunk_bytes(data)) == expected


def test_a_subclass_chunk_size_splits_the_response() -> None:
    handler = FixedResponseHandler(http.HttpResponse(b"x" * 65, content_type="text/plain"))
    replies = list(handler(request_message()))
    assert [reply["content"] for reply in replies] == [b"x" * 30, b"x" * 30, b"x" * 5]
    assert [reply["more_content"] for reply in replies] == [True, True, False]
    assert replies[0]["status"] == 200
    assert "status" not in replies[1]


def test_an_empty_response_is_one_final_message() -> None:
    handler = FixedResponseHandler(http.HttpResponseNotModified())
    (reply,) = handler(request_message())
    assert reply["status"] == 304
    assert reply["content"] == b""
    assert reply["more_content"] is False
