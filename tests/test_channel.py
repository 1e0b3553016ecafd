"""Channel, Group and Message, inside and outside consumers."""

from __future__ import annotations

import pytest

from channels import Channel, Group
from channels.asgi import ChannelLayerWrapper, channel_layers
from channels.exceptions import MessageTooLarge
from channels.layers.inmemory import InMemoryChannelLayer
from channels.message import Message
from channels.outbox import Outbox, current_outbox


@pytest.fixture
def layer(settings: object) -> ChannelLayerWrapper:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "asgiref.inmemory.ChannelLayer"}}  # type: ignore[attr-defined]
    return channel_layers["default"]


def test_channel_send_outside_a_consumer_goes_out_at_once(layer: ChannelLayerWrapper) -> None:
    Channel("plain").send({"a": 1})
    assert layer.receive(["plain"]) == ("plain", {"a": 1})


def test_channel_accepts_bytes_names_and_compares_by_name() -> None:
    assert Channel(b"abc").name == "abc"
    assert Channel("abc") == Channel("abc")
    assert {Channel("abc"), Channel("abc")} == {Channel("abc")}
    assert str(Channel("abc")) == "abc"


def test_creating_a_channel_reads_no_settings(settings: object) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "no.such.Backend"}}  # type: ignore[attr-defined]
    channel = Channel("lazy")  # module-level objects must not need a layer yet
    with pytest.raises(Exception, match="Cannot import BACKEND"):
        channel.send({})


@pytest.mark.parametrize("content", ["text", ["list"], None, b"bytes"])
def test_non_dict_content_is_a_type_error_for_channels_and_groups(
    layer: ChannelLayerWrapper, content: object
) -> None:
    with pytest.raises(TypeError, match="only send dicts"):
        Channel("x").send(content)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="only send dicts"):
        Group("x").send(content)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frame", "hint"),
    [
        ({"text": {"a": 1}}, "json.dumps"),
        ({"text": b"x"}, "must be str"),
        ({"bytes": "x"}, "bytes"),
    ],
)
def test_a_frame_of_the_wrong_type_fails_at_send_saying_what_to_do(
    layer: ChannelLayerWrapper, frame: dict, hint: str
) -> None:
    """Forgetting json.dumps fails on the consumer's line, not later inside daphne."""
    with pytest.raises(TypeError, match=hint):
        Channel("daphne.response.abc!def").send(frame)
    with pytest.raises(TypeError, match=hint):
        Group("room").send(frame)
    assert layer.receive(["daphne.response.abc!"]) == (None, None)


def test_frames_are_only_checked_on_their_way_to_sockets(layer: ChannelLayerWrapper) -> None:
    """A normal channel may carry any dict, as in 1.x."""
    Channel("jobs").send({"text": {"any": "shape"}})
    assert layer.receive(["jobs"]) == ("jobs", {"text": {"any": "shape"}})


def test_invalid_names_are_type_errors() -> None:
    with pytest.raises(TypeError):
        Channel("bad name")
    with pytest.raises(TypeError):
        Group("bad?name")


def test_group_add_discard_send_accept_channels_or_names(layer: ChannelLayerWrapper) -> None:
    group = Group("room")
    group.add(Channel("member.a"))
    group.add("member.b")
    group.send({"hi": True})
    assert layer.receive(["member.a"]) == ("member.a", {"hi": True})
    assert layer.receive(["member.b"]) == ("member.b", {"hi": True})
    group.discard("member.a")
    group.discard(Channel("never.added"))
    assert layer.group_channels("room") == ["member.b"]


def test_explicit_channel_layer() -> None:
    own = ChannelLayerWrapper(InMemoryChannelLayer(), "own", None)
    Channel("x", channel_layer=own).send({"n": 1})
    Group("g", channel_layer=own).add("x")
    Group("g", channel_layer=own).send({"n": 2})
    assert own.receive(["x"]) == ("x", {"n": 1})
    assert own.receive(["x"]) == ("x", {"n": 2})


def test_sends_inside_an_outbox_wait_for_the_flush(layer: ChannelLayerWrapper) -> None:
    Group("og").add("og.member")
    outbox = Outbox()
    with outbox:
        assert current_outbox() is outbox
        Channel("buffered").send({"n": 1})
        Group("og").send({"n": 2})
        Channel("direct").send({"n": 3}, immediately=True)
        assert layer.receive(["buffered", "og.member"]) == (None, None)
        assert layer.receive(["direct"]) == ("direct", {"n": 3})
    assert current_outbox() is None
    outbox.flush()
    assert layer.receive(["buffered"]) == ("buffered", {"n": 1})
    assert layer.receive(["og.member"]) == ("og.member", {"n": 2})


def test_buffered_content_is_frozen_and_checked_at_send_time(layer: ChannelLayerWrapper) -> None:
    outbox = Outbox()
    with outbox:
        content = {"list": [1]}
        Channel("frozen").send(content)
        content["list"].append(2)
        with pytest.raises(TypeError, match=r"\['bad'\]"):
            Channel("frozen").send({"bad": object()})
    outbox.flush()
    assert layer.receive(["frozen"]) == ("frozen", {"list": [1]})
    assert layer.receive(["frozen"]) == (None, None)


def test_a_message_too_large_fails_at_send_inside_a_consumer_saying_what_to_do(
    settings: object,
) -> None:
    settings.CHANNEL_LAYERS = {  # type: ignore[attr-defined]
        "default": {"BACKEND": "asgiref.inmemory.ChannelLayer", "CONFIG": {"max_message_size": 64}}
    }
    layer = channel_layers["default"]
    with pytest.raises(MessageTooLarge) as direct:
        Channel("big").send({"blob": "x" * 100})
    outbox = Outbox()
    with outbox, pytest.raises(MessageTooLarge) as queued:
        Channel("big").send({"blob": "x" * 100})
    assert str(queued.value) == str(direct.value)
    assert "max_message_size" in str(queued.value)
    outbox.flush()
    assert layer.receive(["big"]) == (None, None)


def test_a_full_channel_during_a_flush_is_retried_then_logged(
    settings: object, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CHANNEL_LAYERS = {  # type: ignore[attr-defined]
        "default": {"BACKEND": "asgiref.inmemory.ChannelLayer", "CONFIG": {"capacity": 1}}
    }
    layer = channel_layers["default"]
    layer.send("tight", {"n": 0})
    outbox = Outbox()
    outbox.full_retry_deadline = 0.2
    with outbox:
        Channel("tight").send({"n": 1})
        Channel("roomy").send({"n": 2})
    outbox.flush()  # returns: the full channel does not block it for ever
    assert "Dropped a message to tight" in caplog.text
    assert layer.receive(["roomy"]) == ("roomy", {"n": 2})


async def test_async_twins(layer: ChannelLayerWrapper) -> None:
    await Channel("async.plain").asend({"a": 1})
    await Group("ag").aadd("async.member")
    await Group("ag").asend({"b": 2})
    assert await layer.areceive(["async.plain"]) == ("async.plain", {"a": 1})
    assert await layer.areceive(["async.member"]) == ("async.member", {"b": 2})
    await Group("ag").adiscard("async.member")
    outbox = Outbox()
    with outbox:
        await Channel("async.buffered").asend({"c": 3})
    assert await layer.areceive(["async.buffered"]) == (None, None)
    await outbox.aflush()
    assert await layer.areceive(["async.buffered"]) == ("async.buffered", {"c": 3})


def test_message_behaves_like_its_content(layer: ChannelLayerWrapper) -> None:
    message = Message({"text": "hi", "reply_channel": "reply.abc!x"}, "websocket.receive", layer)
    assert message["text"] == "hi"
    assert message.get("missing", 5) == 5
    assert "text" in message
    assert set(message.keys()) == {"text", "reply_channel"}
    assert dict(message.items())["text"] == "hi"
    assert message.channel == Channel("websocket.receive")
    assert message.reply_channel == Channel("reply.abc!x")
    assert message.channel_layer is layer
    message["extra"] = 1
    duplicate = message.copy()
    duplicate["text"] = "changed"
    assert message["text"] == "hi"
    assert Message({}, "x", layer).reply_channel is None
