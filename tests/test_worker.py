"""The Worker in-process: routing, atomic sends, errors, ConsumeLater, async consumers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from channels import Channel, Group
from channels.asgi import ChannelLayerWrapper, channel_layers
from channels.exceptions import ConsumeLater, DenyConnection
from channels.layers.codec import MessageCodec
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer
from channels.message import Message
from channels.routing import Router, route
from channels.signals import consumer_finished, consumer_started
from channels.worker import Worker, filter_channels
from tests.redis_server import command_calls
from tests.workers import RunWorker, expect


def send(layer: ChannelLayerWrapper, channel: str, **content: Any) -> None:
    layer.send(channel, {"reply_channel": "reply", **content})


def test_a_consumer_gets_the_message_and_its_kwargs(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    def consumer(message, room):
        message.reply_channel.send({"room": room, "text": message["text"]})

    run_worker([route("websocket.receive", consumer, path=r"^/(?P<room>\w+)/$")])
    send(layer, "websocket.receive", path="/lobby/", text="hi")
    assert expect(layer, "reply") == {"room": "lobby", "text": "hi"}


def test_sends_are_kept_on_success_and_dropped_when_the_consumer_raises(
    layer: ChannelLayerWrapper, run_worker: RunWorker, caplog: pytest.LogCaptureFixture
) -> None:
    def consumer(message):
        Channel("out").send({"n": message["n"]})
        Group("g").send({"n": message["n"]})
        Channel("now").send({"n": message["n"]}, immediately=True)
        if message["n"] == 1:
            raise RuntimeError("boom")
        message.reply_channel.send({"done": message["n"]})

    layer.group_add("g", "member")
    run_worker([route("atomic", consumer)])
    send(layer, "atomic", n=1)
    send(layer, "atomic", n=2)
    assert expect(layer, "now") == {"n": 1}
    assert expect(layer, "now") == {"n": 2}
    assert expect(layer, "reply") == {"done": 2}
    assert expect(layer, "out") == {"n": 2}  # n=1's buffered sends were dropped
    assert expect(layer, "member") == {"n": 2}
    assert layer.receive(["out", "member"]) == (None, None)
    assert "Error in consumer" in caplog.text
    assert "boom" in caplog.text


def test_the_worker_survives_any_exception(
    layer: ChannelLayerWrapper, run_worker: RunWorker, caplog: pytest.LogCaptureFixture
) -> None:
    def consumer(message):
        if message["kind"] == "type":
            raise TypeError("bad")
        message.reply_channel.send({"ok": message["kind"]})

    run_worker([route("fragile", consumer)])
    send(layer, "fragile", kind="type")
    send(layer, "fragile", kind="fine")
    assert expect(layer, "reply") == {"ok": "fine"}
    assert "for a message on fragile" in caplog.text


def test_unrouted_messages_are_dropped(layer: ChannelLayerWrapper, run_worker: RunWorker) -> None:
    run_worker([route("routed", lambda message: message.reply_channel.send({"ok": True}))])
    layer.send("routed", {"reply_channel": "reply", "path": "/"})
    assert expect(layer, "reply") == {"ok": True}


def test_consume_later_requeues_a_bounded_number_of_times(
    layer: ChannelLayerWrapper, run_worker: RunWorker, caplog: pytest.LogCaptureFixture
) -> None:
    def consumer(message):
        retries = message.get("__retries__", 0)
        message.reply_channel.send({"attempt": retries}, immediately=True)
        if message["until"] is None or retries < message["until"]:
            raise ConsumeLater()

    worker = run_worker([route("later", consumer)])
    send(layer, "later", until=2)
    assert [expect(layer, "reply")["attempt"] for _ in range(3)] == [0, 1, 2]
    send(layer, "later", until=None)
    attempts = [expect(layer, "reply")["attempt"] for _ in range(worker.message_retries + 1)]
    assert attempts == list(range(worker.message_retries + 1))
    assert layer.receive(["reply"], block=True, timeout=0.5) == (None, None)
    assert "still ConsumeLater after" in caplog.text


def test_deny_connection_closes_the_socket(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    def connect(message):
        message.reply_channel.send({"accept": True})  # dropped: the consumer raises
        raise DenyConnection

    run_worker([route("websocket.connect", connect)])
    send(layer, "websocket.connect", path="/", order=0)
    assert expect(layer, "reply") == {"close": True}
    assert layer.receive(["reply"], block=True, timeout=0.3) == (None, None)


def test_default_websocket_connect_accepts(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    run_worker([])
    send(layer, "websocket.connect", path="/", order=0)
    assert expect(layer, "reply") == {"accept": True}


def test_signals_fire_around_each_consumer(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    seen: list[str] = []
    consumer_started.connect(started := lambda sender, message, **kw: seen.append("start"))
    consumer_finished.connect(finished := lambda sender, message, **kw: seen.append("end"))
    try:
        run_worker([route("sig", lambda m: m.reply_channel.send({"seen": list(seen)}))])
        send(layer, "sig")
        assert expect(layer, "reply") == {"seen": ["start"]}
    finally:
        consumer_started.disconnect(started)
        consumer_finished.disconnect(finished)


def test_threads_consume_concurrently(layer: ChannelLayerWrapper, run_worker: RunWorker) -> None:
    barrier = threading.Barrier(3, timeout=10)

    def consumer(message):
        barrier.wait()  # only passes if three consumers run at the same time
        message.reply_channel.send({"n": message["n"]})

    run_worker([route("parallel", consumer)], threads=3)
    for n in range(3):
        send(layer, "parallel", n=n)
    assert sorted(expect(layer, "reply")["n"] for _ in range(3)) == [0, 1, 2]


def test_async_consumers_wait_together_in_one_worker_thread(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    release = threading.Event()

    async def slow(message):
        await Channel("started").asend({"n": message["n"]}, immediately=True)
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)
        await message.reply_channel.asend({"slow": message["n"]})

    def quick(message):
        message.reply_channel.send({"quick": True})

    run_worker([route("slow", slow), route("quick", quick)], threads=1)
    send(layer, "slow", n=1)
    send(layer, "slow", n=2)
    assert sorted(expect(layer, "started")["n"] for _ in range(2)) == [1, 2]
    send(layer, "quick")
    assert expect(layer, "reply") == {"quick": True}  # served while both slow ones wait
    release.set()
    assert sorted(expect(layer, "reply")["slow"] for _ in range(2)) == [1, 2]


def test_async_consumer_sends_are_atomic_too(
    layer: ChannelLayerWrapper, run_worker: RunWorker
) -> None:
    async def consumer(message):
        await Channel("aout").asend({"n": message["n"]})
        Channel("aout").send({"sync-style": message["n"]})  # buffered, no blocking I/O
        if message["n"] == 1:
            raise ValueError("nope")
        await message.reply_channel.asend({"done": message["n"]})

    run_worker([route("atomic.async", consumer)])
    send(layer, "atomic.async", n=1)
    send(layer, "atomic.async", n=2)
    assert expect(layer, "reply") == {"done": 2}
    assert expect(layer, "aout") == {"n": 2}
    assert expect(layer, "aout") == {"sync-style": 2}
    assert layer.receive(["aout"]) == (None, None)


def test_stop_lets_the_running_consumer_finish(layer: ChannelLayerWrapper) -> None:
    entered = threading.Event()
    release = threading.Event()

    def consumer(message):
        entered.set()
        release.wait(10)
        message.reply_channel.send({"finished": True})

    worker = Worker(layer, Router([route("long", consumer)]))
    worker.receive_timeout = 0.1
    thread = threading.Thread(target=worker.run)
    thread.start()
    send(layer, "long")
    assert entered.wait(10)
    worker.stop()
    release.set()
    thread.join(10)
    assert not thread.is_alive()
    assert expect(layer, "reply") == {"finished": True}


def test_channel_globs() -> None:
    channels = ["http.request", "websocket.connect", "websocket.receive", "chat-messages"]
    assert filter_channels(channels, only=["websocket.*"]) == [
        "websocket.connect",
        "websocket.receive",
    ]
    assert filter_channels(channels, exclude=["websocket.*", "http.*"]) == ["chat-messages"]
    assert filter_channels(channels, only=["*"], exclude=["chat-*"]) == [
        "http.request",
        "websocket.connect",
        "websocket.receive",
    ]


def test_a_worker_with_nothing_to_listen_on_is_refused(layer: ChannelLayerWrapper) -> None:
    with pytest.raises(ValueError, match="No channels left"):
        Worker(layer, Router([]), only_channels=["nothing.*"])


def test_a_backlog_is_taken_with_the_replies_exactly_once_and_in_order(
    redis_layer: ChannelLayerWrapper, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    def consumer(message):
        if message["n"] == 3:
            raise RuntimeError("boom")  # its sends are dropped; the next message still runs
        message.reply_channel.send({"n": message["n"]})

    for n in range(90):  # a channel holds 100
        send(redis_layer, "backlog", n=n)
    blpops_before = command_calls(redis_url, "BLPOP")
    worker = Worker(redis_layer, Router([route("backlog", consumer)]))
    worker.receive_timeout = 0.2
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        got = [expect(redis_layer, "reply")["n"] for _ in range(89)]
    finally:
        worker.stop()
        thread.join(10)
    assert got == [n for n in range(90) if n != 3]
    assert redis_layer.receive(["reply", "backlog"]) == (None, None)
    # Each message after the first came with the previous consumer's reply, not
    # with a blocking receive of its own (the test's 89 reads are BLPOPs; idle
    # receives of the worker add a few).
    assert command_calls(redis_url, "BLPOP") - blpops_before - 89 < 30
    assert "boom" in caplog.text


def test_a_stopping_worker_takes_no_more_messages(redis_layer: ChannelLayerWrapper) -> None:
    def consumer(message):
        if message["n"] == 0:
            worker.stop()
        message.reply_channel.send({"n": message["n"]})

    worker = Worker(redis_layer, Router([route("stopping", consumer)]))
    worker.receive_timeout = 0.2
    for n in range(3):
        send(redis_layer, "stopping", n=n)
    thread = threading.Thread(target=worker.run)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert expect(redis_layer, "reply") == {"n": 0}
    assert redis_layer.receive(["reply"]) == (None, None)
    assert [redis_layer.receive(["stopping"])[1]["n"] for _ in range(2)] == [1, 2]


class RacyLayer(InMemoryChannelLayer):
    """Pipelined sends as they could go: the first finds its channel full, then a
    reader makes room and the second gets in (a race no test can time for real)."""

    def send_then_poll(self, sends, channels):
        errors: list[Exception | None] = [self.ChannelFull("full, this once")]
        for channel, message in sends[1:]:
            self.send(channel, message)
            errors.append(None)
        return errors, (None, None)


def test_a_consumers_sends_to_one_channel_keep_their_order() -> None:
    layer = ChannelLayerWrapper(RacyLayer(), "default", None)
    old = channel_layers.set("default", layer)
    try:

        def consumer(message):
            Channel("out").send({"n": 1})
            Channel("out").send({"n": 2})

        worker = Worker(layer, Router([route("ordered", consumer)]))
        worker.receive_timeout = 0.1
        thread = threading.Thread(target=worker.run)
        thread.start()
        try:
            send(layer, "ordered")
            assert [expect(layer, "out")["n"] for _ in range(2)] == [1, 2]
        finally:
            worker.stop()
            thread.join(10)
    finally:
        channel_layers.set("default", old)


class CountingCodec(MessageCodec):
    """A layer's codec that counts its msgpack passes, each way."""

    packs = 0
    unpacks = 0

    def _pack(self, message: dict[str, Any]) -> bytes:
        self.packs += 1
        return super()._pack(message)

    def unpack(self, data: bytes) -> dict[str, Any]:
        self.unpacks += 1
        return super().unpack(data)


class CountingInMemoryLayer(InMemoryChannelLayer):
    codec_class = CountingCodec


class CountingRedisLayer(RedisChannelLayer):
    codec_class = CountingCodec


@pytest.fixture(params=["inmemory", "redis"])
def counting_layer(request: pytest.FixtureRequest) -> Iterator[ChannelLayerWrapper]:
    """A default layer of the parametrized backend, encrypted, whose codec counts."""
    options: dict[str, Any] = {"symmetric_encryption_keys": ["secret"]}
    if request.param == "redis":
        raw: InMemoryChannelLayer | RedisChannelLayer = CountingRedisLayer(
            hosts=[request.getfixturevalue("redis_url")],
            prefix=request.getfixturevalue("unique_prefix"),
            **options,
        )
    else:
        raw = CountingInMemoryLayer(**options)
    layer = ChannelLayerWrapper(raw, "default", None)
    old = channel_layers.set("default", layer)
    yield layer
    channel_layers.set("default", old)
    layer.flush()
    layer.close()


def test_a_consumers_sends_are_encoded_once_when_it_sends(
    counting_layer: ChannelLayerWrapper,
) -> None:
    """Each queued message is packed once, at send(), and not unpacked until it is received."""

    def consumer(message):
        reply = {"n": message["n"]}
        message.reply_channel.send(reply)
        reply["n"] = "changed"  # after send(): what goes out was encoded at send()
        Channel("encoded.other").send({"n": message["n"] + 1})

    worker = Worker(counting_layer, Router([route("encoded", consumer)]))
    codec: CountingCodec = counting_layer.codec
    # As the worker runs a message it took: the sends and the next poll go out together.
    assert worker.handle("encoded", {"reply_channel": "reply", "n": 1}) == (None, None)
    assert (codec.packs, codec.unpacks) == (2, 0)
    assert expect(counting_layer, "reply") == {"n": 1}
    assert expect(counting_layer, "encoded.other") == {"n": 2}
    assert (codec.packs, codec.unpacks) == (2, 2)


async def test_an_async_consumers_channel_and_group_sends_are_encoded_once(
    counting_layer: ChannelLayerWrapper,
) -> None:
    async def consumer(message):
        await message.reply_channel.asend({"n": 1})
        await Group("encoded.group").asend({"n": 2})

    await counting_layer.agroup_add("encoded.group", "encoded.member")
    worker = Worker(counting_layer, Router([route("encoded", consumer)]))
    codec: CountingCodec = counting_layer.codec
    try:
        message = Message({"reply_channel": "reply"}, "encoded", counting_layer)
        await worker.runner.arun(consumer, message, {})
        assert (codec.packs, codec.unpacks) == (2, 0)
        assert await counting_layer.areceive(["reply"]) == ("reply", {"n": 1})
        assert await counting_layer.areceive(["encoded.member"]) == ("encoded.member", {"n": 2})
    finally:
        await counting_layer.aclose()  # this loop's connections
    assert (codec.packs, codec.unpacks) == (2, 2)
