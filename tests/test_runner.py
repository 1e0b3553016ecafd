"""The runner of one message: shared by worker and toolkit, layer of the message, thread hops."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref import sync
from asgiref.sync import sync_to_async

from channels import Channel, Group
from channels.asgi import ChannelLayerWrapper, channel_layers
from channels.channel import consuming_layer
from channels.exceptions import ConsumeLater
from channels.layers.inmemory import InMemoryChannelLayer
from channels.outbox import current_outbox
from channels.routing import Router, route
from channels.runner import Runner
from channels.signals import consumer_finished, consumer_started
from channels.test import ChannelTestCase, Client, InlineWorker, apply_routes
from channels.worker import Worker
from tests.workers import expect


@pytest.fixture
def other_layer(layer: ChannelLayerWrapper) -> Iterator[ChannelLayerWrapper]:
    """A fresh in-memory layer on the alias "other", beside the test's default one."""
    other = ChannelLayerWrapper(InMemoryChannelLayer(), "other", None)
    old = channel_layers.set("other", other)
    yield other
    channel_layers.set("other", old)


def run_worker_on(layer: ChannelLayerWrapper, routing: list[Any]) -> Callable[[], None]:
    """Start a worker serving *routing* on *layer*; return what stops it."""
    worker = Worker(layer, Router(routing))
    worker.receive_timeout = 0.1
    thread = threading.Thread(target=worker.run)
    thread.start()

    def stop() -> None:
        worker.stop()
        thread.join(10)
        assert not thread.is_alive()

    return stop


def fan_out(message: Any) -> None:
    Group("room").add(message.reply_channel)
    Group("room").send({"text": "to the room"})
    Channel("log").send({"from": message.channel_layer.alias})


async def afan_out(message: Any) -> None:
    await Group("room").aadd(message.reply_channel)
    await Group("room").asend({"text": "to the room"})
    await Channel("log").asend({"from": message.channel_layer.alias})


@pytest.mark.parametrize("consumer", [fan_out, afan_out], ids=["def", "async def"])
def test_a_worker_on_another_alias_sends_group_and_channel_on_its_own_layer(
    layer: ChannelLayerWrapper, other_layer: ChannelLayerWrapper, consumer: Any
) -> None:
    """``Group(name)``/``Channel(name)`` without an alias use the consumed message's layer."""
    stop = run_worker_on(other_layer, [route("fan.out", consumer)])
    try:
        other_layer.send("fan.out", {"reply_channel": "member.one"})
        assert expect(other_layer, "member.one") == {"text": "to the room"}
        assert expect(other_layer, "log") == {"from": "other"}
    finally:
        stop()
    assert layer.receive(["member.one", "log"]) == (None, None)
    assert layer.group_channels("room") == []


def test_an_explicit_alias_or_layer_still_wins_inside_a_consumer(
    layer: ChannelLayerWrapper, other_layer: ChannelLayerWrapper
) -> None:
    def consumer(message: Any) -> None:
        Channel("pinned", alias="default").send({"by": "alias"})
        Channel("pinned", channel_layer=layer).send({"by": "layer"})
        assert Channel("loose").alias == "other"
        assert Channel("pinned", alias="default").alias == "default"

    stop = run_worker_on(other_layer, [route("pin", consumer)])
    try:
        other_layer.send("pin", {})
        assert expect(layer, "pinned") == {"by": "alias"}
        assert expect(layer, "pinned") == {"by": "layer"}
    finally:
        stop()
    assert other_layer.receive(["pinned"]) == (None, None)


def test_outside_a_consumer_names_use_the_default_layer(
    layer: ChannelLayerWrapper, other_layer: ChannelLayerWrapper
) -> None:
    assert consuming_layer() is None
    Group("outside").add("member.two")
    Group("outside").send({"text": "hi"})
    assert expect(layer, "member.two") == {"text": "hi"}
    assert Group("outside").alias == "default"
    assert other_layer.receive(["member.two"]) == (None, None)


class TwoAliasToolkitTests(ChannelTestCase):
    test_channel_aliases = ["default", "other"]

    @apply_routes([route("fan.out", fan_out)], aliases=["other"])
    def test_a_client_on_another_alias_fans_out_on_that_alias(self) -> None:
        client = Client(alias="other")
        client.send_and_consume("fan.out")
        assert client.receive() == {"text": "to the room"}
        assert self.get_next_message("log", alias="other", require=True).content == {
            "from": "other"
        }
        assert self.get_next_message("log") is None
        assert channel_layers["default"].group_channels("room") == []

    @apply_routes([route("fan.out", afan_out)], aliases=["other"])
    def test_an_async_consumer_on_another_alias_fans_out_on_that_alias(self) -> None:
        client = Client(alias="other")
        client.send_and_consume("fan.out")
        assert client.receive() == {"text": "to the room"}
        assert self.get_next_message("log") is None


def test_the_worker_and_the_test_client_run_messages_with_one_runner(
    layer: ChannelLayerWrapper,
) -> None:
    """The toolkit's InlineWorker changes only the exception policy of the worker's Runner."""
    inline = InlineWorker(layer)
    worker = Worker(layer, Router([route("x", lambda message: None)]))
    assert isinstance(worker.runner, Runner)
    assert isinstance(inline.runner, type(worker.runner))
    assert type(inline.runner).run is Runner.run
    assert type(inline.runner).arun is Runner.arun


# Thread hops of async consumers ---------------------------------------------------------


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every ``sync_to_async`` call (the real one still runs)."""
    seen: list[str] = []
    call = sync.SyncToAsync.__call__

    async def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await call(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", recording)
    return seen


@pytest.mark.parametrize("fails", [False, True], ids=["returns", "raises"])
def test_an_async_consumer_crosses_to_the_database_thread_twice_at_most(
    layer: ChannelLayerWrapper, hops: list[str], fails: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """One hop for ``consumer_started``, one for the policy, callbacks and ``consumer_finished``.

    Each runs in the thread of the consumer's own ``sync_to_async`` calls, the
    thread whose database connections ``close_old_connections`` must check.
    """
    threads: dict[str, int] = {}
    done = threading.Event()

    def started(sender: Any, message: Any, **kwargs: Any) -> None:
        threads["started"] = threading.get_ident()

    def finished(sender: Any, message: Any, **kwargs: Any) -> None:
        threads["finished"] = threading.get_ident()
        done.set()

    async def consumer(message: Any) -> None:
        threads["consumer"] = await sync_to_async(threading.get_ident)()
        outbox = current_outbox()
        assert outbox is not None
        outbox.call_after_flush(lambda: threads.__setitem__("callback", threading.get_ident()))
        await message.reply_channel.asend({"ok": True})
        if fails:
            raise RuntimeError("the consumer broke")

    consumer_started.connect(started)
    consumer_finished.connect(finished)
    stop = run_worker_on(layer, [route("hops", consumer)])
    try:
        layer.send("hops", {"reply_channel": "hops.reply"})
        assert done.wait(10)
    finally:
        stop()
        consumer_started.disconnect(started)
        consumer_finished.disconnect(finished)
    consumer_hops = [name for name in hops if name != "get_ident"]
    assert len(consumer_hops) == 2, consumer_hops
    assert len(set(threads.values())) == 1, threads
    assert set(threads) == {"started", "consumer", "callback", "finished"}
    if fails:
        assert "the consumer broke" in caplog.text
        assert layer.receive(["hops.reply"]) == (None, None)
    else:
        assert expect(layer, "hops.reply") == {"ok": True}


def test_the_toolkit_runs_async_consumers_signals_in_the_test_thread(
    layer: ChannelLayerWrapper,
) -> None:
    """Under the test client the database thread is the test's own (its transaction)."""
    threads: dict[str, int] = {}

    def started(sender: Any, message: Any, **kwargs: Any) -> None:
        threads["started"] = threading.get_ident()

    def finished(sender: Any, message: Any, **kwargs: Any) -> None:
        threads["finished"] = threading.get_ident()

    async def consumer(message: Any) -> None:
        threads["consumer"] = await sync_to_async(threading.get_ident)()

    layer.routing = [route("inline", consumer)]
    consumer_started.connect(started)
    consumer_finished.connect(finished)
    try:
        Client().send_and_consume("inline")
    finally:
        consumer_started.disconnect(started)
        consumer_finished.disconnect(finished)
    assert threads == dict.fromkeys(("started", "consumer", "finished"), threading.get_ident())


def test_consume_later_in_the_toolkit_puts_the_message_back_on_its_layer(
    layer: ChannelLayerWrapper, other_layer: ChannelLayerWrapper
) -> None:
    def consumer(message: Any) -> None:
        raise ConsumeLater

    other_layer.routing = [route("later", consumer)]
    client = Client(alias="other")
    client.send_and_consume("later")
    assert other_layer.receive(["later"])[1]["__retries__"] == 1
    assert layer.receive(["later"]) == (None, None)
