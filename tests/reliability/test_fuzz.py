"""Random messages through the codec and the router: clear errors or round trips, nothing else."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from channels.layers.codec import MessageCodec
from channels.layers.inmemory import InMemoryChannelLayer
from channels.message import Message
from channels.routing import Router, include, route

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)
messages = st.dictionaries(st.text(), values, max_size=8)
anything = st.recursive(
    scalars | st.integers() | st.sets(st.integers(), max_size=3) | st.just(object()),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text() | st.integers() | st.binary(), inner, max_size=4)
        | st.tuples(inner, inner)
    ),
    max_leaves=12,
)


@given(messages)
@settings(max_examples=300, deadline=None)
def test_valid_messages_round_trip_exactly(message: dict) -> None:
    codec = MessageCodec()
    assert codec.decode(codec.encode(message)) == message


@given(st.dictionaries(st.text(), anything, max_size=5) | anything)
@settings(max_examples=300, deadline=None)
def test_anything_else_is_a_type_error_or_a_round_trip(candidate: object) -> None:
    codec = MessageCodec()
    try:
        data = codec.encode(candidate)  # type: ignore[arg-type]
    except TypeError:
        return
    assert isinstance(candidate, dict)
    assert isinstance(codec.decode(data), dict)


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_garbage_bytes_decode_to_a_value_error_at_worst(data: bytes) -> None:
    try:
        result = MessageCodec().decode(data)
    except ValueError:
        return
    assert isinstance(result, dict)


def consumer(message, **kwargs):
    return kwargs


ROUTER = Router(
    [
        route("websocket.receive", consumer, path=r"^/chat/(?P<room>[a-z]+)/$"),
        include([route("http.request", consumer, method=r"^POST$")], path=r"^/api"),
        route(["a.b", "c.d"], consumer),
    ]
)
LAYER = InMemoryChannelLayer()
names = st.sampled_from(
    ["websocket.receive", "websocket.connect", "http.request", "a.b", "c.d", "x.y"]
)
keys = st.sampled_from(["path", "method", "text", "order"]) | st.text(max_size=5)


@given(names, st.dictionaries(keys, values, max_size=5))
@settings(max_examples=500, deadline=None)
def test_the_router_matches_or_declines_any_message(channel: str, content: dict) -> None:
    found = ROUTER.match(Message(content, channel, LAYER))
    if found is not None:
        matched_consumer, kwargs = found
        assert callable(matched_consumer)
        assert all(isinstance(key, str) for key in kwargs)


@given(st.text(alphabet=string.printable, max_size=120))
@settings(max_examples=300, deadline=None)
def test_any_channel_name_is_accepted_or_a_type_error(name: str) -> None:
    try:
        LAYER.send(name, {"x": 1})
    except TypeError:
        return
    except LAYER.ChannelFull:
        return
    LAYER.flush()
