"""``Presence`` and ``Group.count``/``channels``: layer resolution, arguments, async twins.

The layer side is checked on every backend in tests/layers/test_presence.py;
these tests are about the Python API over it, and the defaults
``BaseChannelLayer`` gives a backend without presence.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import channels
from channels import Channel, Group, Presence
from channels.asgi import ChannelLayerWrapper, channel_layers
from channels.channel import consuming_on
from channels.layers.base import BaseChannelLayer
from channels.layers.inmemory import InMemoryChannelLayer
from channels.message import Message
from channels.presence import Presence as PresenceInItsModule
from channels.routing import route
from channels.test import Client, apply_routes
from tests.workers import RunWorker, expect


class GroupsOnly(BaseChannelLayer):
    """A third party backend with groups and no presence: what the base's defaults serve."""

    extensions = ["groups"]

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.members: dict[str, list[str]] = {}

    def group_add(self, group: str, channel: str) -> None:
        self.members.setdefault(group, []).append(channel)

    def group_channels(self, group: str) -> list[str]:
        return list(self.members.get(group, ()))

    async def agroup_channels(self, group: str) -> list[str]:
        return self.group_channels(group)


@pytest.fixture
def other() -> Iterator[ChannelLayerWrapper]:
    """A second in-memory layer, installed under the alias ``"other"``."""
    wrapper = ChannelLayerWrapper(InMemoryChannelLayer(), "other", None)
    old = channel_layers.set("other", wrapper)
    yield wrapper
    channel_layers.set("other", old)


def diffs_on(layer: Any, watcher: str) -> list[dict[str, Any]]:
    """Run a housekeeping pass on *layer*; return the diffs *watcher* received, decoded."""
    layer.maintain_interval = 0
    layer.maintain()
    received = []
    while True:
        _, message = layer.receive([watcher])
        if message is None:
            return received
        received.append(json.loads(message["text"]))


# The base layer's defaults ------------------------------------------------------


def test_group_count_defaults_to_counting_group_channels() -> None:
    layer = GroupsOnly()
    layer.group_add("room", "a")
    layer.group_add("room", "b")
    assert layer.group_count("room") == 2
    assert layer.group_count("empty") == 0


async def test_agroup_count_defaults_to_counting_agroup_channels() -> None:
    layer = GroupsOnly()
    layer.group_add("room", "a")
    assert await layer.agroup_count("room") == 1


@pytest.mark.parametrize(
    ("method", "arguments"),
    [
        ("presence_track", ("room", "sock.a!1", "alice")),
        ("presence_untrack", ("room", "sock.a!1")),
        ("presence_release", ("sock.a!1",)),
        ("presence_list", ("room",)),
        ("presence_count", ("room",)),
    ],
)
async def test_a_layer_without_presence_says_which_layers_have_it(
    method: str, arguments: tuple[str, ...]
) -> None:
    layer = GroupsOnly()
    with pytest.raises(NotImplementedError) as plain:
        getattr(layer, method)(*arguments)
    twin = getattr(layer, "a" + method)(*arguments)
    with pytest.raises(NotImplementedError) as async_twin:
        await twin
    for raised in (plain, async_twin):
        message = str(raised.value)
        assert f"{method}()" in message
        assert "'presence' extension" in message
        assert "GroupsOnly" in message
        assert "InMemoryChannelLayer" in message
        assert "RedisChannelLayer" in message


async def test_maintain_is_a_no_op_by_default() -> None:
    layer = GroupsOnly()
    assert layer.maintain() is None
    assert await layer.amaintain() is None


def test_every_layer_takes_the_presence_grace_option() -> None:
    assert GroupsOnly().presence_grace == 5.0
    assert GroupsOnly(presence_grace=0).presence_grace == 0
    assert GroupsOnly(presence_grace=2).presence_grace == 2.0
    with pytest.raises(ValueError, match=r"presence_grace must be a number of seconds >= 0"):
        GroupsOnly(presence_grace=-0.5)


def test_presence_grace_is_a_config_option(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "asgiref.inmemory.ChannelLayer", "CONFIG": {"presence_grace": 1.5}}
    }
    assert channel_layers["default"].presence_grace == 1.5


def test_the_in_memory_layer_lists_the_presence_extension() -> None:
    assert "presence" in InMemoryChannelLayer.extensions


# Presence: names, notify, errors -------------------------------------------------


def test_presence_is_exported_by_the_package() -> None:
    assert Presence is PresenceInItsModule
    assert "Presence" in channels.__all__


def test_a_presence_is_named_as_a_group_is() -> None:
    assert Presence("room-1").name == "room-1"
    assert Presence(b"room-1").name == "room-1"
    assert repr(Presence("room-1")) == "Presence('room-1')"
    assert Presence("room-1") == Presence("room-1")
    for bad in ("bad name", "a?b", "a!b", "x" * 100, 5):
        with pytest.raises(TypeError, match="presence set is named as a group"):
            Presence(bad)  # type: ignore[arg-type]


def test_creating_a_presence_reads_no_settings(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "no.such.Backend"}}
    presence = Presence("lazy")  # a module-level Presence must not need a layer yet
    with pytest.raises(Exception, match="Cannot import BACKEND"):
        presence.count()


@pytest.mark.parametrize(
    ("notify", "group"),
    [
        (False, None),
        (None, None),
        (True, "room-1"),
        ("everyone", "everyone"),
        (Group("watchers"), "watchers"),
    ],
)
def test_notify_names_the_group_that_gets_the_diffs(notify: Any, group: str | None) -> None:
    assert Presence("room-1", notify=notify).notify == group


@pytest.mark.parametrize("notify", [5, "bad name", b"bytes", 1.0])
def test_a_bad_notify_is_refused_saying_what_to_pass(notify: Any) -> None:
    with pytest.raises(TypeError, match="notify"):
        Presence("room-1", notify=notify)


def test_bad_track_arguments_fail_at_the_call(layer: ChannelLayerWrapper) -> None:
    presence = Presence("room")
    with pytest.raises(TypeError, match="Channel name"):
        presence.track("bad channel", "alice")
    with pytest.raises(TypeError, match="key"):
        presence.track("sock.a!1", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="meta"):
        presence.track("sock.a!1", "alice", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="4096"):
        presence.track("sock.a!1", "alice", {"big": "x" * 5000})
    with pytest.raises(TypeError, match="Channel name"):
        presence.untrack("bad channel")
    assert presence.list() == {}


def test_presence_on_a_layer_without_it_raises_not_implemented() -> None:
    presence = Presence("room", channel_layer=GroupsOnly())
    with pytest.raises(NotImplementedError, match="'presence' extension"):
        presence.track("sock.a!1", "alice")


# Presence: what it does, on the layer Group would use ----------------------------------


def test_track_list_count_untrack_on_the_default_layer(layer: ChannelLayerWrapper) -> None:
    presence = Presence("room")
    presence.track(Channel("sock.a!1"), "alice", {"tab": 1})
    presence.track("sock.a!2", "alice", {"tab": 2})
    presence.track("sock.b!1", key="bob")
    assert presence.list() == {"alice": [{"tab": 1}, {"tab": 2}], "bob": [{}]}
    assert presence.count() == 2
    assert layer.presence_list("room") == presence.list()
    presence.untrack(Channel("sock.a!1"))
    presence.untrack("sock.b!1")
    presence.untrack("sock.never!1")
    assert presence.list() == {"alice": [{"tab": 2}]}
    assert Presence("room").count() == 1  # another object, the same set


def test_an_alias_pins_the_layer(layer: ChannelLayerWrapper, other: ChannelLayerWrapper) -> None:
    Presence("room", alias="other").track("sock.a!1", "alice")
    assert other.presence_list("room") == {"alice": [{}]}
    assert layer.presence_list("room") == {}
    with consuming_on(layer):  # even inside a consumer of another layer
        assert Presence("room", alias="other").count() == 1


def test_an_explicit_layer_is_used(layer: ChannelLayerWrapper) -> None:
    own = InMemoryChannelLayer()
    Presence("room", channel_layer=own).track("sock.a!1", "alice")
    assert own.presence_count("room") == 1
    assert layer.presence_count("room") == 0


def test_the_consumed_messages_layer_is_used_without_an_alias(
    layer: ChannelLayerWrapper, other: ChannelLayerWrapper
) -> None:
    with consuming_on(other):
        Presence("room").track("sock.a!1", "alice")
        assert Presence("room").list() == {"alice": [{}]}
    assert other.presence_count("room") == 1
    assert layer.presence_count("room") == 0


def test_diffs_go_to_the_notify_group_on_the_presences_layer(layer: ChannelLayerWrapper) -> None:
    Group("room-1").add("watcher.own")
    Group("elsewhere").add("watcher.elsewhere")
    Presence("room-1", notify=True).track("sock.a!1", "alice", {"n": 1})
    Presence("room-2", notify="elsewhere").track("sock.a!1", "alice", {"n": 2})
    Presence("room-3", notify=Group("elsewhere")).track("sock.b!1", "bob")
    Presence("room-4").track("sock.c!1", "carol")
    layer.maintain_interval = 0
    layer.maintain()
    _, own = layer.receive(["watcher.own"])
    assert json.loads(own["text"]) == {
        "presence": "room-1",
        "joins": {"alice": [{"n": 1}]},
        "leaves": {},
    }
    assert layer.receive(["watcher.own"]) == (None, None)
    elsewhere = sorted(
        (json.loads(layer.receive(["watcher.elsewhere"])[1]["text"]) for _ in range(2)),
        key=lambda diff: diff["presence"],
    )
    assert [diff["presence"] for diff in elsewhere] == ["room-2", "room-3"]
    assert layer.receive(["watcher.elsewhere"]) == (None, None)  # nothing from room-4


async def test_the_async_twins(layer: ChannelLayerWrapper) -> None:
    presence = Presence("room", notify=True)
    await Group("room").aadd("watcher")
    await presence.atrack(Channel("sock.a!1"), "alice", {"n": 1})
    await presence.atrack("sock.b!1", key="bob")
    assert await presence.alist() == {"alice": [{"n": 1}], "bob": [{}]}
    assert await presence.acount() == 2
    await presence.auntrack("sock.b!1")
    assert await presence.acount() == 1
    assert diffs_on(layer, "watcher") == [
        {"presence": "room", "joins": {"alice": [{"n": 1}]}, "leaves": {}}
    ]


# Group.count and Group.channels ----------------------------------------------------------


def test_group_count_and_channels(layer: ChannelLayerWrapper) -> None:
    group = Group("room")
    assert group.count() == 0
    assert group.channels() == []
    group.add("member.a")
    group.add(Channel("proc.x!b"))
    group.add("member.a")
    assert group.count() == 2
    assert sorted(group.channels()) == ["member.a", "proc.x!b"]
    group.discard("member.a")
    assert Group("room").count() == 1
    assert Group("room").channels() == ["proc.x!b"]


async def test_group_acount_and_achannels(layer: ChannelLayerWrapper) -> None:
    await Group("room").aadd("member.a")
    await Group("room").aadd("member.b")
    assert await Group("room").acount() == 2
    assert sorted(await Group("room").achannels()) == ["member.a", "member.b"]


def test_group_count_uses_the_layer_group_send_would(
    layer: ChannelLayerWrapper, other: ChannelLayerWrapper
) -> None:
    Group("room", alias="other").add("member.a")
    assert Group("room", alias="other").count() == 1
    assert Group("room").count() == 0
    with consuming_on(other):
        assert Group("room").channels() == ["member.a"]


# Inside consumers ------------------------------------------------------------------------


def join(message: Message) -> dict[str, Any]:
    """Track the socket, then tell it who is here: the track is there already."""
    Group("room").add(message.reply_channel)
    presence = Presence("room")
    presence.track(message.reply_channel, key=message["user"], meta={"via": "sync"})
    seen = {"count": presence.count(), "listed": presence.list(), "members": Group("room").count()}
    message.reply_channel.send({"text": json.dumps(seen)})
    return seen


async def ajoin(message: Message) -> None:
    await Group("room").aadd(message.reply_channel)
    presence = Presence("room")
    await presence.atrack(message.reply_channel, key=message["user"], meta={"via": "async"})
    seen = {
        "count": await presence.acount(),
        "listed": await presence.alist(),
        "members": await Group("room").acount(),
    }
    await message.reply_channel.asend({"text": json.dumps(seen)})


def test_a_consumer_run_by_the_test_client_tracks_on_its_messages_layer(
    layer: ChannelLayerWrapper, other: ChannelLayerWrapper
) -> None:
    with apply_routes([route("presence.join", join)], aliases=["other"]):
        client = Client(alias="other")
        seen = client.send_and_consume("presence.join", {"user": "alice"})
    assert seen == {"count": 1, "listed": {"alice": [{"via": "sync"}]}, "members": 1}
    assert other.presence_list("room") == {"alice": [{"via": "sync"}]}
    assert layer.presence_list("room") == {}
    assert other.presence_list("room") == Presence("room", alias="other").list()
    reply = client.receive()
    assert reply is not None
    assert json.loads(reply["text"])["count"] == 1


@pytest.mark.parametrize("consumer", [join, ajoin])
def test_a_consumer_run_by_a_worker_tracks_at_once(
    layer: ChannelLayerWrapper, run_worker: RunWorker, consumer: Any
) -> None:
    run_worker([route("presence.join", consumer)])
    layer.send("presence.join", {"user": "alice", "reply_channel": "reply.alice"})
    first = json.loads(expect(layer, "reply.alice")["text"])
    layer.send("presence.join", {"user": "bob", "reply_channel": "reply.bob"})
    second = json.loads(expect(layer, "reply.bob")["text"])
    via = "sync" if consumer is join else "async"
    assert first == {"count": 1, "listed": {"alice": [{"via": via}]}, "members": 1}
    assert second["count"] == 2
    assert second["members"] == 2
    assert layer.presence_list("room") == {"alice": [{"via": via}], "bob": [{"via": via}]}
