"""Origin checks deny malformed ``Origin`` headers instead of failing on them."""

from __future__ import annotations

from typing import Any

import pytest

from channels.exceptions import DenyConnection
from channels.layers.inmemory import InMemoryChannelLayer
from channels.message import Message
from channels.security.websockets import BaseOriginValidator, allowed_hosts_only


@allowed_hosts_only
def connect(message: Message) -> bool:
    return True


def connect_message(headers: Any) -> Message:
    return Message({"headers": headers}, "websocket.connect", InMemoryChannelLayer())


@pytest.fixture(autouse=True)
def only_example_com(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["example.com"]


@pytest.mark.parametrize(
    "headers",
    [
        [[]],  # an empty entry
        [[b"origin"]],  # a name without a value
        [[b"origin", b"http://example.com", b"extra"]],  # three items
        [[b"origin", None]],  # a value that is not bytes
        [[b"origin", "http://example.com"]],  # a str value
        [None],  # not a pair at all
        [[b"origin", b"\xc3\xa4"]],  # not ASCII
        [[b"origin", b""]],  # empty
        [[b"origin", b"http://[::1"]],  # urlparse raises "Invalid IPv6 URL"
        [[b"origin", b"http://example.com:99999"]],  # port out of range
        [[b"origin", b"http://example.com:abc"]],  # port not a number
        [[b"origin", b"null"]],  # what browsers send for file:// pages
        42,  # headers that are not a list
        [],  # no origin header
    ],
)
def test_a_malformed_origin_header_denies_the_socket(headers: Any) -> None:
    with pytest.raises(DenyConnection):
        connect(connect_message(headers))


def test_a_good_origin_after_a_malformed_entry_is_still_found() -> None:
    assert connect(connect_message([[b"x-broken"], [b"origin", b"http://example.com:8000"]]))


def test_old_style_dict_headers_are_read() -> None:
    assert connect(connect_message({"origin": b"http://example.com"}))
    with pytest.raises(DenyConnection):
        connect(connect_message({"origin": b"http://example.org"}))


def test_get_origin_is_the_1x_hook_for_subclasses() -> None:
    class OriginRecorder(BaseOriginValidator):
        seen: list[str] = []

        def validate_origin(self, message: Any, origin: str) -> bool:
            self.seen.append(origin)
            return True

    validator = OriginRecorder(lambda message: "ran")
    assert validator.get_origin(connect_message([[b"origin", b"http://a.test"]])) == "http://a.test"
    assert validator(connect_message([[b"origin", b"http://b.test"]])) == "ran"
    assert OriginRecorder.seen == ["http://b.test"]
    with pytest.raises(DenyConnection):
        validator(connect_message([[b"origin", 7]]))
    assert OriginRecorder.seen == ["http://b.test"]  # never asked about a malformed one
