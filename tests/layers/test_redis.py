"""Behaviour only the Redis layer has: sharding, encryption, reconnects, keys."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable

import pytest
import redis

from channels.exceptions import ChannelLayerConnectionError, InvalidChannelLayerError
from channels.layers.redis import RedisChannelLayer
from tests.redis_server import RedisServer, command_calls


@pytest.fixture
def make_layer(
    redis_layers: Callable[..., RedisChannelLayer],
) -> Callable[..., RedisChannelLayer]:
    return redis_layers


def keys_under(url: str, prefix: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return sorted(client.scan_iter(match=prefix + "*"))
    finally:
        client.close()


@pytest.mark.parametrize(
    ("hosts", "error"),
    [
        ("redis://localhost:6379", "even if there is only one"),
        ([], "even if there is only one"),
        (["localhost"], "URL such as"),
        ([("localhost", 6379, 0)], "URL such as"),
    ],
)
def test_bad_hosts_are_refused_with_a_fix(hosts: object, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        RedisChannelLayer(hosts=hosts)


def test_constructing_a_layer_does_not_connect() -> None:
    RedisChannelLayer(hosts=[("127.0.0.1", 1)]).close()


def test_received_messages_leave_no_keys_behind(
    make_layer: Callable[..., RedisChannelLayer], redis_url: str, unique_prefix: str
) -> None:
    layer = make_layer()
    for n in range(50):
        layer.send("leak.test", {"n": n})
        layer.send("proc.leak!x", {"n": n})
    layer.group_add("leakgroup", "leak.test")
    layer.send_group("leakgroup", {"n": "group"})
    layer.group_discard("leakgroup", "leak.test")
    while layer.receive(["leak.test", "proc.leak!"])[0] is not None:
        pass
    assert keys_under(redis_url, unique_prefix) == [(unique_prefix + "stats").encode()]


def test_unread_messages_expire_from_redis(
    make_layer: Callable[..., RedisChannelLayer], redis_url: str, unique_prefix: str
) -> None:
    layer = make_layer(expiry=1)
    layer.send("expire.me", {"n": 1})
    deadline = time.monotonic() + 10
    while keys_under(redis_url, unique_prefix):
        assert time.monotonic() < deadline, "keys did not expire"
        time.sleep(0.1)


def test_send_group_is_one_script_call_per_shard(
    make_layer: Callable[..., RedisChannelLayer], redis_url: str
) -> None:
    layer = make_layer(capacity=5)
    members = [f"member{n}" for n in range(1000)]
    for member in members:
        layer.group_add("big", member)
    before = command_calls(redis_url, "EVALSHA")
    layer.send_group("big", {"text": "to everyone"})
    assert command_calls(redis_url, "EVALSHA") - before == 1  # one call per shard, and there is one
    for member in members:
        assert layer.receive([member]) == (member, {"text": "to everyone"})


def test_group_send_to_one_server_stores_one_entry(
    make_layer: Callable[..., RedisChannelLayer], redis_url: str, unique_prefix: str
) -> None:
    layer = make_layer()
    sockets = [f"daphne.abc!sock{n}" for n in range(100)]
    for name in sockets:
        layer.group_add("room", name)
    layer.send_group("room", {"text": "hi"})
    client = redis.Redis.from_url(redis_url)
    assert client.llen(unique_prefix + "daphne.abc!") == 1
    client.close()
    received = [layer.receive(["daphne.abc!"]) for _ in sockets]
    assert sorted(name for name, _ in received) == sorted(sockets)
    assert all(message == {"text": "hi"} for _, message in received)


def test_encrypted_layer_stores_nothing_readable(
    make_layer: Callable[..., RedisChannelLayer], redis_url: str, unique_prefix: str
) -> None:
    layer = make_layer(symmetric_encryption_keys=["a secret key"])
    layer.send("secret.channel", {"text": "the password is swordfish"})
    client = redis.Redis.from_url(redis_url)
    (stored,) = client.lrange(unique_prefix + "secret.channel", 0, -1)
    client.close()
    assert b"swordfish" not in stored
    assert b"password" not in stored
    assert layer.receive(["secret.channel"]) == (
        "secret.channel",
        {"text": "the password is swordfish"},
    )


def test_encryption_keys_rotate(
    make_layer: Callable[..., RedisChannelLayer], caplog: pytest.LogCaptureFixture
) -> None:
    old = make_layer(symmetric_encryption_keys=["old key"])
    rotated = make_layer(symmetric_encryption_keys=["new key", "old key"])
    old.send("rotate", {"n": 1})
    assert rotated.receive(["rotate"]) == ("rotate", {"n": 1})
    rotated.send("rotate", {"n": 2})
    with caplog.at_level(logging.WARNING, logger="channels.layers.redis"):
        assert old.receive(["rotate"]) == (None, None)  # cannot read the new key's messages
    assert "undecodable message" in caplog.text


def test_encryption_keys_must_be_a_list(make_layer: Callable[..., RedisChannelLayer]) -> None:
    with pytest.raises(ValueError, match="list of keys"):
        make_layer(symmetric_encryption_keys="just one key")


def test_garbage_under_the_prefix_is_dropped_with_a_log_line(
    make_layer: Callable[..., RedisChannelLayer],
    redis_url: str,
    unique_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    layer = make_layer()
    client = redis.Redis.from_url(redis_url)
    client.rpush(unique_prefix + "garbage", b"not an entry", b"99999999999999|x")
    client.close()
    layer.send("garbage", {"ok": True})
    with caplog.at_level(logging.WARNING, logger="channels.layers.redis"):
        assert layer.receive(["garbage"]) == ("garbage", {"ok": True})


def test_idle_blocking_receive_outlasting_the_socket_timeout_is_not_an_error(
    make_layer: Callable[..., RedisChannelLayer],
) -> None:
    layer = make_layer(connection_kwargs={"socket_timeout": 1.5})
    assert layer.receive(["idle"], block=True, timeout=2.5) == (None, None)


def test_sharding_spreads_keys_over_every_server(redis_shard_urls: list[str]) -> None:
    layer = RedisChannelLayer(hosts=redis_shard_urls, prefix="shardtest:")
    try:
        names = [f"spread{n}" for n in range(60)]
        for name in names:
            layer.send(name, {"name": name})
        counts = [len(keys_under(url, "shardtest:spread")) for url in redis_shard_urls]
        assert all(counts), counts
        assert sum(counts) == 60
        for name in names:
            assert layer.receive([name]) == (name, {"name": name})
    finally:
        layer.flush()
        layer.close()


def test_sharded_groups_reach_members_on_every_shard(redis_shard_urls: list[str]) -> None:
    layer = RedisChannelLayer(hosts=redis_shard_urls, prefix="shardgroups:")
    try:
        members = [f"gm{n}" for n in range(30)] + [f"srv{n}.x!s{n}" for n in range(10)]
        for member in members:
            layer.group_add("everyone", member)
        assert sorted(layer.group_channels("everyone")) == sorted(members)
        layer.send_group("everyone", {"text": "hi"})
        for member in members:
            receive_on = member.split("!")[0] + "!" if "!" in member else member
            assert layer.receive([receive_on]) == (member, {"text": "hi"})
    finally:
        layer.flush()
        layer.close()


def test_sharded_blocking_receive_wakes_on_any_shard(redis_shard_urls: list[str]) -> None:
    """A receive over channels on several shards returns as soon as any one gets a message."""
    layer = RedisChannelLayer(hosts=redis_shard_urls, prefix="shardblock:")
    sender = RedisChannelLayer(hosts=redis_shard_urls, prefix="shardblock:")
    names = [f"wake{n}" for n in range(12)]
    shards = {layer._ring.shard_for(name) for name in names}
    assert len(shards) == 3  # the channels really are spread
    results: queue.Queue[tuple] = queue.Queue()
    try:
        for target in (names[0], names[5], names[11]):
            started = time.monotonic()
            thread = threading.Thread(
                target=lambda: results.put(layer.receive(names, block=True, timeout=60))
            )
            thread.start()
            sender.send(target, {"to": target})
            assert results.get(timeout=20) == (target, {"to": target})
            thread.join(20)
            assert time.monotonic() - started < 20
        # Messages that arrive on two shards at once are both delivered, once each.
        sender.send(names[0], {"n": 1})
        sender.send(names[11], {"n": 2})
        got = [layer.receive(names, block=True, timeout=10) for _ in range(2)]
        assert sorted(message["n"] for _, message in got) == [1, 2]
        assert layer.receive(names) == (None, None)
    finally:
        for each in (layer, sender):
            each.flush()
            each.close()


async def test_async_sharded_blocking_receive(redis_shard_urls: list[str]) -> None:
    layer = RedisChannelLayer(hosts=redis_shard_urls, prefix="ashard:")
    names = [f"awake{n}" for n in range(12)]
    try:
        receiving = asyncio.ensure_future(layer.areceive(names, block=True, timeout=60))
        await asyncio.sleep(0.05)
        await layer.asend(names[7], {"n": 7})
        assert await asyncio.wait_for(receiving, 20) == (names[7], {"n": 7})
    finally:
        await layer.aflush()
        await layer.aclose()


def test_a_redis_restart_fails_calls_in_flight_then_reconnects(
    redis_server: RedisServer,
) -> None:
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="restart:")
    try:
        layer.send("before", {"n": 1})
        assert layer.receive(["before"]) == ("before", {"n": 1})
        redis_server.stop()
        with pytest.raises(ChannelLayerConnectionError):
            layer.send("during", {"n": 2})
        with pytest.raises(ConnectionError):  # the builtin family, for generic handlers
            layer.receive(["during"], block=True, timeout=1)
        redis_server.start()
        layer.send("after", {"n": 3})  # scripts were flushed by the restart: reloaded
        assert layer.receive(["after"], block=True, timeout=5) == ("after", {"n": 3})
        layer.group_add("g", "after")
        layer.send_group("g", {"n": 4})
        assert layer.receive(["after"]) == ("after", {"n": 4})
    finally:
        layer.close()


async def test_async_calls_reconnect_after_a_restart(redis_server: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="arestart:")
    try:
        await layer.asend("a", {"n": 1})
        assert await layer.areceive(["a"]) == ("a", {"n": 1})
        redis_server.stop()
        with pytest.raises(ChannelLayerConnectionError):
            await layer.asend("a", {"n": 2})
        redis_server.start()
        await layer.asend("a", {"n": 3})
        assert await layer.areceive(["a"], block=True, timeout=5) == ("a", {"n": 3})
    finally:
        await layer.aclose()


def test_unknown_config_is_reported_through_the_registry(settings: object) -> None:
    from channels.asgi import channel_layers

    settings.CHANNEL_LAYERS = {  # type: ignore[attr-defined]
        "default": {
            "BACKEND": "asgi_redis.RedisChannelLayer",
            "CONFIG": {"hosts": "redis://localhost:6379"},
        }
    }
    with pytest.raises(InvalidChannelLayerError, match=r"'default'.*even if there is only one"):
        channel_layers["default"]


@pytest.mark.parametrize("channel_capacity", [None, {"other": 5}])
def test_send_group_drops_members_whose_messages_expired_unread(
    make_layer: Callable[..., RedisChannelLayer],
    redis_url: str,
    unique_prefix: str,
    channel_capacity: dict | None,
) -> None:
    """Both group-send paths (one call, and members then pushes) forget dead members."""
    layer = make_layer(expiry=0.3, channel_capacity=channel_capacity)
    for member in ("alive", "dead", "gone.srv!a", "gone.srv!b"):
        layer.group_add("room", member)
    layer.send_group("room", {"n": 1})
    assert layer.receive(["alive"]) == ("alive", {"n": 1})
    time.sleep(0.4)  # the unread messages expire
    layer.send_group("room", {"n": 2})
    client = redis.Redis.from_url(redis_url)
    members = sorted(m.decode() for m in client.zrange(unique_prefix + "group:room", 0, -1))
    client.close()
    assert members == ["alive"]
    assert layer.receive(["alive"]) == ("alive", {"n": 2})


def test_send_then_poll_survives_lost_scripts(
    redis_url: str, make_layer: Callable[..., RedisChannelLayer]
) -> None:
    layer = make_layer()
    layer.send("stp.in", {"n": 1})
    client = redis.Redis.from_url(redis_url)
    try:
        client.script_flush()  # as after a Redis restart: the scripts must be loaded again
        errors, taken = layer.send_then_poll(
            [("stp.out", {"a": 1}), ("stp.out", {"a": 2})], ["stp.in"]
        )
    finally:
        client.close()
    assert errors == [None, None]
    assert [layer.receive(["stp.out"])[1] for _ in range(3)] == [{"a": 1}, {"a": 2}, None]
    # The pop found no script either: nothing was taken this time; the next poll takes it.
    assert taken == (None, None)
    assert layer.send_then_poll([], ["stp.in"]) == ([], ("stp.in", {"n": 1}))


def test_send_then_poll_while_redis_is_down_reports_every_send(
    redis_server: RedisServer,
) -> None:
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="stp-down:")
    try:
        layer.send("warm", {"n": 0})  # a pooled connection exists
        redis_server.stop()
        errors, taken = layer.send_then_poll([("a", {"n": 1}), ("b", {"n": 2})], ["in"])
        assert taken == (None, None)
        assert all(isinstance(error, ChannelLayerConnectionError) for error in errors)
        assert len(errors) == 2
        redis_server.start()
        errors, taken = layer.send_then_poll([("a", {"n": 3})], ["in"])
        assert errors == [None]
        assert layer.receive(["a"]) == ("a", {"n": 3})
    finally:
        layer.close()


def test_a_kept_connection_from_before_a_restart_loses_nothing(redis_server: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="kept:")
    try:
        layer.send_then_poll([("a", {"n": 1})], ["in"])  # the thread keeps this connection
        redis_server.stop()
        redis_server.start()  # nothing was sent meanwhile: the kept socket is dead, unnoticed
        errors, _ = layer.send_then_poll([("a", {"n": 2})], ["in"])
        assert errors == [None]
        assert layer.receive(["a"]) == ("a", {"n": 2})
    finally:
        layer.close()


async def test_async_kept_connections_from_before_a_restart_lose_nothing(
    redis_server: RedisServer,
) -> None:
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="akept:")
    try:
        await layer.asend("a", {"n": 1})  # the batcher keeps this connection
        # The event loop runs meanwhile, as in a server: it sees the socket close.
        await asyncio.to_thread(redis_server.stop)
        await asyncio.to_thread(redis_server.start)
        await layer.asend("a", {"n": 2})
        assert await layer.areceive(["a"]) == ("a", {"n": 2})
    finally:
        await layer.aclose()


async def test_sends_queued_behind_a_cancelled_send_still_go_out(
    make_layer: Callable[..., RedisChannelLayer],
) -> None:
    layer = make_layer()
    first = asyncio.ensure_future(layer.asend("q", {"n": 0}))
    await asyncio.sleep(0)  # the first send is on its way, from its own task
    queued = [asyncio.ensure_future(layer.asend("q", {"n": n})) for n in range(1, 20)]
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.wait_for(asyncio.gather(*queued), 10)
    got = []
    while (message := await layer.areceive(["q"]))[0] is not None:
        got.append(message[1]["n"])
    assert sorted(set(got) - {0}) == list(range(1, 20))
    await layer.aclose()
