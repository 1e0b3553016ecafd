"""Encoded sends: a message encoded once by ``encode()`` goes anywhere as those bytes.

Checked against every backend, with and without encryption, and against the
base class's fallback, which keeps layers written without the encoded twins
(or subclasses overriding only the plain methods) working.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import pytest

from channels.exceptions import ChannelFull, MessageTooLarge
from channels.layers.base import BaseChannelLayer, Message, ReceiveResult, SendsThenPoll
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer
from channels.outbox import Outbox
from tests.layers.factory import MakeLayer, layers_of

#: No encryption, and Fernet encryption with a key being rotated in.
CODECS = {"plain": {}, "encrypted": {"symmetric_encryption_keys": ["new key", "old key"]}}


@pytest.fixture(params=["inmemory", "redis"])
async def make_layer(request: pytest.FixtureRequest) -> AsyncIterator[MakeLayer]:
    """Build layers of the parametrized backend; each test gets its own key space."""
    async for make in layers_of(request):
        yield make


@pytest.mark.parametrize("codec", list(CODECS))
async def test_one_encoding_reaches_every_channel_and_group_member(
    make_layer: MakeLayer, codec: str
) -> None:
    """The bytes depend on the message only: one encoding serves any number of targets."""
    layer = make_layer(**CODECS[codec])
    message = {"text": "hi", "raw": b"\x00\xff", "nested": {"list": (1, 2.5, None, True)}}
    expected = {"text": "hi", "raw": b"\x00\xff", "nested": {"list": [1, 2.5, None, True]}}
    data = layer.encode(message)
    assert isinstance(data, bytes)
    await layer.agroup_add("enc.group", "enc.member")
    await layer.agroup_add("enc.group", "enc.proc!a")
    await layer.agroup_add("enc.group", "enc.proc!b")
    layer.send_encoded("enc.one", data)
    await layer.asend_encoded("enc.two", data)
    layer.send_group_encoded("enc.group", data)
    await layer.asend_group_encoded("enc.group", data)
    assert layer.receive(["enc.one"]) == ("enc.one", expected)
    assert await layer.areceive(["enc.two"]) == ("enc.two", expected)
    for _ in range(2):
        assert layer.receive(["enc.member"]) == ("enc.member", expected)
    got = sorted(layer.receive(["enc.proc!"])[0] or "" for _ in range(4))
    assert got == ["enc.proc!a", "enc.proc!a", "enc.proc!b", "enc.proc!b"]
    assert layer.receive(["enc.one", "enc.two", "enc.member", "enc.proc!"]) == (None, None)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"user": {"id": 1, "obj": object()}}, TypeError),
        ({1: "int key"}, TypeError),
        ({"n": 2**64}, TypeError),
        (["not", "a", "dict"], TypeError),
        ({"blob": b"x" * 2000}, MessageTooLarge),
    ],
)
def test_encode_raises_exactly_what_send_raises(
    make_layer: MakeLayer, message: Any, error: type[Exception]
) -> None:
    """A consumer's mistake surfaces at its send(), with the same advice as a direct send."""
    layer = make_layer(max_message_size=1024)
    with pytest.raises(error) as by_send:
        layer.send("enc.bad", message)
    with pytest.raises(error) as by_encode:
        layer.encode(message)
    assert str(by_encode.value) == str(by_send.value)
    assert layer.receive(["enc.bad"]) == (None, None)


def test_encoded_sends_check_names_and_capacity_as_sends_do(make_layer: MakeLayer) -> None:
    layer = make_layer(capacity=1)
    data = layer.encode({"n": 1})
    with pytest.raises(TypeError, match="invalid"):
        layer.send_encoded("not a name", data)
    with pytest.raises(TypeError, match="invalid"):
        layer.send_group_encoded("not a group", data)
    layer.send_encoded("enc.tight", data)
    with pytest.raises(ChannelFull):
        layer.send_encoded("enc.tight", data)
    assert layer.global_statistics() == {"messages_count": 1, "channel_full_count": 1}


@pytest.mark.parametrize("codec", list(CODECS))
def test_send_encoded_then_poll_is_send_then_poll_for_encoded_messages(
    make_layer: MakeLayer, codec: str
) -> None:
    layer = make_layer(capacity=1, **CODECS[codec])
    layer.send("stp.full", {"n": 0})
    layer.send("stp.in", {"next": 1})
    encode = layer.encode
    errors, taken = layer.send_encoded_then_poll(
        [
            ("stp.out", encode({"n": 1})),
            ("stp.full", encode({"n": 2})),
            ("not a name", encode({"n": 3})),
            ("stp.last", encode({"n": 4})),
        ],
        ["stp.in"],
    )
    assert errors[0] is None
    assert errors[3] is None
    assert isinstance(errors[1], ChannelFull)
    assert isinstance(errors[2], TypeError)
    assert layer.receive(["stp.out"]) == ("stp.out", {"n": 1})
    assert layer.receive(["stp.last"]) == ("stp.last", {"n": 4})
    assert layer.receive(["stp.full"]) == ("stp.full", {"n": 0})
    # A backend may take the next message in the same round trip, or leave it.
    if isinstance(layer, RedisChannelLayer):
        assert taken == ("stp.in", {"next": 1})
    else:
        assert taken == (None, None)
        assert layer.receive(["stp.in"]) == ("stp.in", {"next": 1})
    assert layer.receive(["stp.in", "stp.full"]) == (None, None)


# Layers without the encoded twins ---------------------------------------------------


class ListLayer(BaseChannelLayer):
    """A third-party layer written before the encoded twins: it stores messages as dicts."""

    extensions = ["groups"]

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.queues: dict[str, deque[Message]] = {}
        self.groups: dict[str, list[str]] = {}
        self.calls: list[str] = []

    def send(self, channel: str, message: Message) -> None:
        self.calls.append("send")
        self.queues.setdefault(channel, deque()).append(message)

    async def asend(self, channel: str, message: Message) -> None:
        self.calls.append("asend")
        self.queues.setdefault(channel, deque()).append(message)

    def receive(
        self, channels: Iterable[str], block: bool = False, *, timeout: float | None = None
    ) -> ReceiveResult:
        for channel in channels:
            queue = self.queues.get(channel)
            if queue:
                return channel, queue.popleft()
        return None, None

    def group_add(self, group: str, channel: str) -> None:
        self.groups.setdefault(group, []).append(channel)

    def send_group(self, group: str, message: Message) -> None:
        self.calls.append("send_group")
        for channel in self.groups.get(group, ()):
            self.queues.setdefault(channel, deque()).append(message)

    async def asend_group(self, group: str, message: Message) -> None:
        self.calls.append("asend_group")
        self.send_group(group, message)


async def test_a_layer_without_encoded_twins_gets_every_send_through_its_own_methods() -> None:
    layer = ListLayer()
    layer.group_add("g", "member")
    outbox = Outbox()
    outbox.add(layer, "send", "out", {"n": (1, 2)})
    outbox.add(layer, "send_group", "g", {"n": 3})
    outbox.flush()
    outbox.add(layer, "send", "out", {"n": 4})
    outbox.add(layer, "send_group", "g", {"n": 5})
    await outbox.aflush()
    outbox.add(layer, "send", "polled", {"n": 6})
    assert outbox.send_and_poll(layer, ["in"]) == (None, None)
    assert layer.calls == ["send", "send_group", "asend", "asend_group", "send_group", "send"]
    assert [layer.receive(["out"])[1] for _ in range(2)] == [{"n": [1, 2]}, {"n": 4}]
    assert [layer.receive(["member"])[1] for _ in range(2)] == [{"n": 3}, {"n": 5}]
    assert layer.receive(["polled"]) == ("polled", {"n": 6})


class CountingLayer(InMemoryChannelLayer):
    """A subclass of a backend that overrides the plain sends only (to count them)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.sent: list[str] = []

    def send(self, channel: str, message: Message) -> None:
        self.sent.append(channel)
        super().send(channel, message)

    def send_group(self, group: str, message: Message) -> None:
        self.sent.append(group)
        super().send_group(group, message)


class PollingLayer(InMemoryChannelLayer):
    """A subclass of a backend with its own send_then_poll (it takes what waits on *channels*)."""

    def send_then_poll(
        self, sends: Sequence[tuple[str, Message]], channels: Iterable[str]
    ) -> SendsThenPoll:
        errors, _ = super().send_then_poll(sends, channels)
        return errors, self.receive(list(channels))


def test_a_subclass_overriding_the_plain_sends_sees_the_flushed_messages_too() -> None:
    layer = CountingLayer()
    layer.group_add("g", "member")
    outbox = Outbox()
    outbox.add(layer, "send", "out", {"n": 1})
    outbox.add(layer, "send_group", "g", {"n": 2})
    outbox.flush()
    outbox.add(layer, "send", "polled", {"n": 3})
    outbox.send_and_poll(layer, ["in"])
    assert layer.sent == ["out", "g", "polled"]
    assert layer.receive(["out"]) == ("out", {"n": 1})
    assert layer.receive(["member"]) == ("member", {"n": 2})
    assert layer.receive(["polled"]) == ("polled", {"n": 3})


def test_a_subclass_with_its_own_send_then_poll_still_serves_the_worker() -> None:
    layer = PollingLayer()
    layer.send("in", {"next": 1})
    outbox = Outbox()
    outbox.add(layer, "send", "out", {"n": 1})
    assert outbox.send_and_poll(layer, ["in"]) == ("in", {"next": 1})
    assert layer.receive(["out"]) == ("out", {"n": 1})


def test_an_outbox_queues_sends_and_group_sends_only() -> None:
    with pytest.raises(ValueError, match="'send' or 'send_group'"):
        Outbox().add(InMemoryChannelLayer(), "group_add", "g", {})
