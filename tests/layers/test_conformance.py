"""The ASGI 1 channel-layer contract, checked against every backend."""

from __future__ import annotations

import asyncio
import queue
import re
import threading
import time

import pytest

from channels.exceptions import ChannelFull, MessageTooLarge
from channels.layers.base import BaseChannelLayer
from channels.layers.names import new_process_channel
from channels.layers.redis import RedisChannelLayer
from tests.layers.factory import MakeLayer


def test_send_then_receive(layer: BaseChannelLayer) -> None:
    layer.send("sr_test", {"value": "blue"})
    layer.send("sr_test", {"value": "green"})
    layer.send("sr_test2", {"value": "red"})
    assert layer.receive(["sr_test"]) == ("sr_test", {"value": "blue"})
    assert layer.receive(["sr_test"]) == ("sr_test", {"value": "green"})
    assert layer.receive(["sr_test2"]) == ("sr_test2", {"value": "red"})
    assert layer.receive(["sr_test", "sr_test2"]) == (None, None)


def test_receive_of_nothing_returns_none(layer: BaseChannelLayer) -> None:
    assert layer.receive(["empty"]) == (None, None)
    assert layer.receive([]) == (None, None)


def test_receive_rejects_a_bare_string(layer: BaseChannelLayer) -> None:
    with pytest.raises(TypeError, match="list of channel names"):
        layer.receive("abc")


def test_process_specific_channels_share_one_receive(layer: BaseChannelLayer) -> None:
    layer.send("proc.abc!one", {"n": 1})
    layer.send("proc.abc!two", {"n": 2})
    layer.send("proc.other!one", {"n": 3})
    assert layer.receive(["proc.abc!"]) == ("proc.abc!one", {"n": 1})
    assert layer.receive(["proc.abc!"]) == ("proc.abc!two", {"n": 2})
    assert layer.receive(["proc.abc!"]) == (None, None)
    assert layer.receive(["proc.other!"]) == ("proc.other!one", {"n": 3})


def test_receive_on_a_full_process_channel_name_is_an_error(layer: BaseChannelLayer) -> None:
    with pytest.raises(TypeError, match="process prefix"):
        layer.receive(["proc.abc!one"])


def test_message_expiry(make_layer: MakeLayer) -> None:
    layer = make_layer(expiry=0.3)
    layer.send("me_test", {"value": "blue"})
    time.sleep(0.4)  # the message's lifetime is what is being tested
    assert layer.receive(["me_test"]) == (None, None)
    layer.send("me_test", {"value": "fresh"})
    assert layer.receive(["me_test"]) == ("me_test", {"value": "fresh"})


def test_new_channel_single_reader(layer: BaseChannelLayer) -> None:
    name = layer.new_channel("test.reply?")
    assert name.startswith("test.reply?")
    assert len(name) > len("test.reply?") + 16
    assert name != layer.new_channel("test.reply?")
    layer.send(name, {"value": "blue"})
    assert layer.receive([name]) == (name, {"value": "blue"})


def test_a_process_makes_its_own_channel_names_without_new_channel(
    layer: BaseChannelLayer,
) -> None:
    name = new_process_channel("server.xyz!")
    assert name.startswith("server.xyz!")
    assert len(name) > len("server.xyz!") + 16
    layer.send(name, {"a": 1})
    assert layer.receive(["server.xyz!"]) == (name, {"a": 1})


def test_new_channel_refuses_a_process_prefix_and_names_the_helper(
    layer: BaseChannelLayer,
) -> None:
    """ASGI 1 conformance: ``new_channel("test!")`` is an error."""
    with pytest.raises(TypeError, match="new_process_channel"):
        layer.new_channel("test!")


@pytest.mark.parametrize("pattern", ["test", "test?x", "test!x", "te st?", 123])
def test_new_channel_needs_a_pattern_ending_in_a_type_character(
    layer: BaseChannelLayer, pattern: object
) -> None:
    with pytest.raises(TypeError):
        layer.new_channel(pattern)  # type: ignore[arg-type]


def test_bytes_and_strings_stay_distinct(layer: BaseChannelLayer) -> None:
    message = {
        "bytes": b"\x00\xff binary",
        "text": "\x00 text with \U0001f600 outside the BMP",
        "nested": {"list": [b"a", "a", 1, 2.5, True, None, [b"deep"]]},
        "tuple": (1, "two"),
    }
    layer.send("str_test", message)
    _, received = layer.receive(["str_test"])
    assert received == {**message, "tuple": [1, "two"]}
    assert isinstance(received["bytes"], bytes)
    assert isinstance(received["nested"]["list"][1], str)


def test_message_changed_after_send_is_received_as_sent(layer: BaseChannelLayer) -> None:
    message = {"value": [1, 2, 3], "inner": {"k": "v"}}
    layer.send("alter", message)
    message["value"].append(4)
    message["inner"]["k"] = "changed"
    assert layer.receive(["alter"]) == ("alter", {"value": [1, 2, 3], "inner": {"k": "v"}})


@pytest.mark.parametrize(
    ("message", "named"),
    [
        ({"ok": 1, "bad": {1, 2}}, "['bad']"),
        ({"outer": {"inner": [1, object()]}}, "['outer']['inner'][1]"),
        ({"outer": {3: "int key"}}, "['outer'][3]"),
        ({"big": 2**70}, "['big']"),
    ],
)
def test_unserializable_values_raise_type_error_naming_the_key(
    layer: BaseChannelLayer, message: dict, named: str
) -> None:
    with pytest.raises(TypeError, match=re.escape(named)):
        layer.send("bad", message)
    assert layer.receive(["bad"]) == (None, None)


@pytest.mark.parametrize("message", [["a list"], "text", None, b"bytes"])
def test_a_message_must_be_a_dict(layer: BaseChannelLayer, message: object) -> None:
    with pytest.raises(TypeError, match="must be a dict"):
        layer.send("bad", message)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name", ["", "spaces not allowed", "a?b?c", "a!b!c", "a?b!c", "x" * 100, "ünicode", b"bytes"]
)
def test_invalid_channel_names_raise_type_error(layer: BaseChannelLayer, name: object) -> None:
    with pytest.raises(TypeError):
        layer.send(name, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        layer.group_add("group", name)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "a?b", "a!", "x" * 100, 5])
def test_invalid_group_names_raise_type_error(layer: BaseChannelLayer, name: object) -> None:
    with pytest.raises(TypeError):
        layer.group_add(name, "channel")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        layer.send_group(name, {})  # type: ignore[arg-type]


def test_names_just_under_the_length_limit_work(layer: BaseChannelLayer) -> None:
    name = "n" * 99
    layer.send(name, {"ok": True})
    assert layer.receive([name]) == (name, {"ok": True})
    layer.group_add("g" * 99, name)
    assert layer.group_channels("g" * 99) == [name]


def test_message_too_large(make_layer: MakeLayer) -> None:
    layer = make_layer(max_message_size=1000)
    with pytest.raises(MessageTooLarge, match="max_message_size"):
        layer.send("big", {"data": b"x" * 1000})
    with pytest.raises(layer.MessageTooLarge):
        layer.send_group("anything", {"data": b"x" * 1000})
    layer.send("big", {"data": b"x" * 900})
    assert layer.receive(["big"])[0] == "big"


def test_one_megabyte_messages_fit_by_default(layer: BaseChannelLayer) -> None:
    payload = "x" * 1_000_000
    layer.send("large", {"text": payload})
    assert layer.receive(["large"]) == ("large", {"text": payload})


def test_groups(layer: BaseChannelLayer) -> None:
    layer.group_add("tgroup", "tg_test")
    layer.group_add("tgroup", "tg_test2")
    layer.group_add("tgroup", "tg_test3")
    layer.group_add("tgroup", "tg_test3")  # idempotent
    layer.group_discard("tgroup", "tg_test2")
    layer.group_discard("tgroup", "never_added")
    layer.send_group("tgroup", {"value": "orange"})
    assert layer.receive(["tg_test"]) == ("tg_test", {"value": "orange"})
    assert layer.receive(["tg_test2"]) == (None, None)
    assert layer.receive(["tg_test3"]) == ("tg_test3", {"value": "orange"})


def test_groups_with_process_specific_members(layer: BaseChannelLayer) -> None:
    layer.group_add("tgroup", "proc.x!one")
    layer.group_add("tgroup", "proc.x!two")
    layer.group_add("tgroup", "proc.y!one")
    layer.send_group("tgroup", {"value": "orange"})
    received = {layer.receive(["proc.x!"])[0], layer.receive(["proc.x!"])[0]}
    assert received == {"proc.x!one", "proc.x!two"}
    assert layer.receive(["proc.x!"]) == (None, None)
    assert layer.receive(["proc.y!"]) == ("proc.y!one", {"value": "orange"})


def test_each_group_member_gets_its_own_copy(layer: BaseChannelLayer) -> None:
    layer.group_add("copies", "proc.z!a")
    layer.group_add("copies", "proc.z!b")
    layer.send_group("copies", {"list": [1]})
    _, first = layer.receive(["proc.z!"])
    first["list"].append(2)
    assert layer.receive(["proc.z!"])[1] == {"list": [1]}


def test_group_channels(layer: BaseChannelLayer) -> None:
    assert list(layer.group_channels("tgroup")) == []
    layer.group_add("tgroup", "tg_test")
    layer.group_add("tgroup", "tg_test2")
    layer.group_add("tgroup", "proc.x!local")
    assert sorted(layer.group_channels("tgroup")) == ["proc.x!local", "tg_test", "tg_test2"]
    layer.group_discard("tgroup", "tg_test")
    assert sorted(layer.group_channels("tgroup")) == ["proc.x!local", "tg_test2"]


def test_flush(layer: BaseChannelLayer) -> None:
    layer.send("fl_test", {"value": "blue"})
    layer.send("proc.f!x", {"value": "blue"})
    layer.group_add("fl_group", "fl_test")
    layer.flush()
    assert layer.receive(["fl_test", "proc.f!"]) == (None, None)
    assert list(layer.group_channels("fl_group")) == []
    layer.send_group("fl_group", {"value": "red"})
    assert layer.receive(["fl_test"]) == (None, None)


def test_group_expiry(make_layer: MakeLayer) -> None:
    layer = make_layer(group_expiry=1)
    layer.group_add("gr_group", "gr_test")
    time.sleep(1.1)  # membership lifetime is what is being tested
    layer.group_add("gr_group", "gr_fresh")
    assert list(layer.group_channels("gr_group")) == ["gr_fresh"]
    layer.send_group("gr_group", {"value": "blue"})
    assert layer.receive(["gr_test"]) == (None, None)
    assert layer.receive(["gr_fresh"]) == ("gr_fresh", {"value": "blue"})


def test_a_channel_whose_message_expires_unread_leaves_its_groups(make_layer: MakeLayer) -> None:
    layer = make_layer(expiry=0.3)
    layer.group_add("room", "reader")
    layer.group_add("room", "dead_reader")
    layer.group_add("room", "proc.gone!sock")
    layer.send_group("room", {"n": 1})
    assert layer.receive(["reader"]) == ("reader", {"n": 1})
    time.sleep(0.4)  # let the unread messages expire
    assert sorted(layer.group_channels("room")) == ["reader"]


def test_capacity(make_layer: MakeLayer) -> None:
    layer = make_layer(capacity=2)
    layer.send("cap_test", {"n": 1})
    layer.send("cap_test", {"n": 2})
    with pytest.raises(ChannelFull):
        layer.send("cap_test", {"n": 3})
    with pytest.raises(layer.ChannelFull):
        layer.send("cap_test", {"n": 3})
    assert layer.receive(["cap_test"]) == ("cap_test", {"n": 1})
    layer.send("cap_test", {"n": 4})
    assert layer.channel_statistics("cap_test")["channel_full_count"] == 2


def test_channel_capacity_globs_and_regexes(make_layer: MakeLayer) -> None:
    layer = make_layer(
        capacity=5,
        channel_capacity={"http.request": 1, re.compile(r"^websocket\..*"): 2, "reply*!": 3},
    )
    layer.send("http.request", {})
    with pytest.raises(ChannelFull):
        layer.send("http.request", {})
    layer.send("websocket.receive", {})
    layer.send("websocket.receive", {})
    with pytest.raises(ChannelFull):
        layer.send("websocket.receive", {})
    for local in "abc":
        layer.send(f"reply.p!{local}", {})
    with pytest.raises(ChannelFull):
        layer.send("reply.p!d", {})
    for n in range(5):
        layer.send("other", {"n": n})
    with pytest.raises(ChannelFull):
        layer.send("other", {})


def test_capacity_is_shared_by_the_local_parts_of_a_process_channel(make_layer: MakeLayer) -> None:
    layer = make_layer(capacity=2)
    layer.send("proc.c!a", {})
    layer.send("proc.c!b", {})
    with pytest.raises(ChannelFull):
        layer.send("proc.c!c", {})


def test_send_group_skips_full_members_and_counts_them(make_layer: MakeLayer) -> None:
    layer = make_layer(capacity=1)
    layer.group_add("cg", "full_one")
    layer.group_add("cg", "free_one")
    layer.send("full_one", {"n": 0})
    layer.send_group("cg", {"n": 1})  # never raises ChannelFull
    assert layer.receive(["free_one"]) == ("free_one", {"n": 1})
    assert layer.receive(["full_one"]) == ("full_one", {"n": 0})
    assert layer.receive(["full_one"]) == (None, None)
    assert layer.channel_statistics("full_one")["channel_full_count"] == 1
    assert layer.global_statistics()["channel_full_count"] == 1


def test_exceptions_are_layer_attributes(layer: BaseChannelLayer) -> None:
    assert issubclass(layer.ChannelFull, Exception)
    assert issubclass(layer.MessageTooLarge, Exception)
    assert set(layer.extensions) >= {"groups", "flush", "statistics"}


def test_statistics(layer: BaseChannelLayer) -> None:
    layer.send("stats_test", {})
    layer.send("stats_test", {})
    layer.send("proc.s!a", {})
    stats = layer.channel_statistics("stats_test")
    assert stats["messages_count"] == 2
    assert stats["messages_pending"] == 2
    assert stats["channel_full_count"] == 0
    assert 0 <= stats["messages_max_age"] < 5
    layer.receive(["stats_test"])
    assert layer.channel_statistics("stats_test")["messages_pending"] == 1
    assert layer.channel_statistics("proc.s!other")["messages_pending"] == 1
    assert layer.global_statistics()["messages_count"] == 3


def test_a_busy_channel_does_not_starve_a_quiet_one(layer: BaseChannelLayer) -> None:
    layer.send("quiet", {"n": 0})
    for n in range(40):
        layer.send("busy", {"n": n})
    received = [layer.receive(["busy", "quiet"])[0] for _ in range(30)]
    assert "quiet" in received


def test_blocking_receive_wakes_when_another_thread_sends(layer: BaseChannelLayer) -> None:
    results: queue.Queue[tuple] = queue.Queue()
    started = threading.Event()

    def receiver() -> None:
        started.set()
        results.put(layer.receive(["wake_a", "wake_b"], block=True, timeout=30))

    thread = threading.Thread(target=receiver)
    thread.start()
    started.wait(5)
    layer.send("wake_b", {"hello": "there"})
    assert results.get(timeout=10) == ("wake_b", {"hello": "there"})
    thread.join(10)


def test_blocking_receive_gives_up_after_its_timeout(layer: BaseChannelLayer) -> None:
    start = time.monotonic()
    assert layer.receive(["nothing"], block=True, timeout=0.3) == (None, None)
    assert time.monotonic() - start >= 0.25


async def test_async_send_and_receive(layer: BaseChannelLayer) -> None:
    await layer.asend("async_test", {"a": 1})
    assert await layer.areceive(["async_test"]) == ("async_test", {"a": 1})
    await layer.agroup_add("agroup", "async_test")
    await layer.agroup_add("agroup", "proc.as!x")
    assert sorted(await layer.agroup_channels("agroup")) == ["async_test", "proc.as!x"]
    await layer.asend_group("agroup", {"b": 2})
    assert await layer.areceive(["async_test"]) == ("async_test", {"b": 2})
    assert await layer.areceive(["proc.as!"]) == ("proc.as!x", {"b": 2})
    await layer.agroup_discard("agroup", "async_test")
    assert await layer.agroup_channels("agroup") == ["proc.as!x"]
    name = await layer.anew_channel("areply?")
    assert name.startswith("areply?")
    await layer.aflush()
    assert await layer.agroup_channels("agroup") == []


async def test_async_blocking_receive_wakes_on_a_send_from_another_thread(
    layer: BaseChannelLayer,
) -> None:
    receiving = asyncio.ensure_future(layer.areceive(["awake"], block=True, timeout=30))
    await asyncio.sleep(0.05)  # let the receive start waiting
    thread = threading.Thread(target=layer.send, args=("awake", {"from": "thread"}))
    thread.start()
    assert await asyncio.wait_for(receiving, 10) == ("awake", {"from": "thread"})
    thread.join(5)


async def test_async_blocking_receive_gives_up_after_its_timeout(layer: BaseChannelLayer) -> None:
    assert await layer.areceive(["nothing"], block=True, timeout=0.2) == (None, None)


async def test_hundreds_of_concurrent_async_calls_succeed(layer: BaseChannelLayer) -> None:
    await asyncio.gather(*(layer.asend(f"burst{n % 10}", {"n": n}) for n in range(300)))
    results = await asyncio.gather(
        *(layer.areceive([f"burst{n % 10}"], block=True, timeout=10) for n in range(300))
    )
    assert sorted(message["n"] for _, message in results) == list(range(300))


def test_receive_many_is_a_deprecated_alias(layer: BaseChannelLayer) -> None:
    layer.send("old", {"x": 1})
    with pytest.warns(DeprecationWarning, match="receive_many"):
        assert layer.receive_many(["old"]) == ("old", {"x": 1})


async def test_blocking_receive_on_a_process_prefix_keeps_each_channels_order(
    layer: BaseChannelLayer,
) -> None:
    await layer.agroup_add("order.g", "proc.o!a")
    await layer.agroup_add("order.g", "proc.o!b")
    await layer.asend("proc.o!b", {"n": 0})
    await layer.asend_group("order.g", {"n": 1})
    await layer.asend("proc.o!b", {"n": 2})
    got = [await layer.areceive(["proc.o!"], block=True, timeout=5) for _ in range(4)]
    assert [m["n"] for name, m in got if name == "proc.o!b"] == [0, 1, 2]
    assert [m["n"] for name, m in got if name == "proc.o!a"] == [1]
    assert await layer.areceive(["proc.o!"], block=True, timeout=0.2) == (None, None)


def test_send_then_poll_sends_in_order_and_reports_each_failure(make_layer: MakeLayer) -> None:
    layer = make_layer(capacity=1)
    layer.send("stp.full", {"n": 0})
    errors, _ = layer.send_then_poll(
        [
            ("stp.out", {"n": 1}),
            ("stp.full", {"n": 2}),
            ("not a name", {"n": 3}),
            ("stp.other", {"n": object()}),
            ("stp.last", {"n": 5}),
        ],
        ["stp.idle"],
    )
    assert errors[0] is None
    assert errors[4] is None
    assert isinstance(errors[1], ChannelFull)
    assert isinstance(errors[2], TypeError)
    assert "invalid" in str(errors[2])
    assert isinstance(errors[3], TypeError)
    assert layer.receive(["stp.out"]) == ("stp.out", {"n": 1})
    assert layer.receive(["stp.last"]) == ("stp.last", {"n": 5})
    assert layer.receive(["stp.full"]) == ("stp.full", {"n": 0})
    assert layer.receive(["stp.full", "stp.other"]) == (None, None)


def test_send_then_poll_takes_at_most_one_waiting_message(make_layer: MakeLayer) -> None:
    layer = make_layer()
    for n in range(3):
        layer.send("stp.in", {"n": n})
    errors, taken = layer.send_then_poll([("stp.out", {"reply": 1})], ["stp.in"])
    assert errors == [None]
    assert layer.receive(["stp.out"]) == ("stp.out", {"reply": 1})
    # A backend may take the next message in the same round trip, or leave it.
    rest = [layer.receive(["stp.in"])[1] for _ in range(3)]
    # One round trip needs one server: a cluster's channels live on several.
    if isinstance(layer, RedisChannelLayer) and not layer.cluster:
        assert taken == ("stp.in", {"n": 0})
        assert rest == [{"n": 1}, {"n": 2}, None]
    else:
        assert taken == (None, None)
        assert rest == [{"n": 0}, {"n": 1}, {"n": 2}]
