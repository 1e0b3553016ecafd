"""The Redis layer's transport: one module owns redis-py's internals; lost scripts cost
one round trip more; a fan-out entry is decrypted once for all its sockets."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

import channels
from channels.layers.redis import RedisChannelLayer
from tests.redis_server import RedisServer, command_calls

#: What redis-py keeps below its public API, and the layer uses for speed.
INTERNALS = re.compile(r"_writer|can_read|send_packed_command")


def test_redis_py_internals_are_touched_in_the_transport_alone() -> None:
    root = Path(channels.__file__).parent
    users = {
        path.relative_to(root).as_posix()
        for path in root.rglob("*.py")
        if INTERNALS.search(path.read_text(encoding="utf-8"))
    }
    assert users == {"layers/redis/shard.py"}


def script_loads(url: str) -> int:
    # Redis 7 counts subcommands on their own; 6 counts every SCRIPT call together.
    return command_calls(url, "script|load") + command_calls(url, "script")


def flush_scripts(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.script_flush()  # as a restarted server: every script must be loaded again
    finally:
        client.close()


def test_a_sync_call_of_a_lost_script_loads_it_once_and_runs_again(
    redis_server: RedisServer,
) -> None:
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="lost:")
    try:
        layer.send("lost", {"n": 1})
        flush_scripts(redis_server.url)
        loads = script_loads(redis_server.url)
        layer.send("lost", {"n": 2})
        layer.send("lost", {"n": 3})
        assert script_loads(redis_server.url) - loads == 1
        assert [layer.receive(["lost"])[1] for _ in range(4)] == [
            {"n": 1},
            {"n": 2},
            {"n": 3},
            None,
        ]
    finally:
        layer.flush()
        layer.close()


async def test_batched_async_calls_of_a_lost_script_load_it_once(
    redis_server: RedisServer,
) -> None:
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="alost:")
    try:
        await layer.asend("alost", {"n": 0})
        await asyncio.to_thread(flush_scripts, redis_server.url)
        loads = await asyncio.to_thread(script_loads, redis_server.url)
        await asyncio.wait_for(
            asyncio.gather(*(layer.asend("alost", {"n": n}) for n in range(1, 30))), 10
        )
        assert await asyncio.to_thread(script_loads, redis_server.url) - loads == 1
        got = []
        while (received := await layer.areceive(["alost"]))[0] is not None:
            got.append(received[1]["n"])
        assert sorted(got) == list(range(30))
    finally:
        await layer.aflush()
        await layer.aclose()


@pytest.fixture
def counted_decrypts(
    redis_url: str, unique_prefix: str
) -> tuple[RedisChannelLayer, Callable[[], int]]:
    layer = RedisChannelLayer(
        hosts=[redis_url], prefix=unique_prefix, symmetric_encryption_keys=["key"]
    )
    encryptor: Any = layer.codec.encryptor
    calls = []
    decrypt = encryptor.decrypt

    def counting(data: bytes) -> bytes:
        calls.append(data)
        return decrypt(data)

    encryptor.decrypt = counting
    return layer, lambda: len(calls)


async def test_a_fan_out_entry_is_decrypted_once_and_each_socket_gets_its_own_copy(
    counted_decrypts: tuple[RedisChannelLayer, Callable[[], int]],
) -> None:
    layer, decrypts = counted_decrypts
    sockets = [f"daphne.fan!s{n}" for n in range(5)]
    try:
        for name in sockets:
            await layer.agroup_add("fan", name)
        await layer.asend_group("fan", {"text": "hi", "list": [1]})
        received = [
            await asyncio.wait_for(layer.areceive(["daphne.fan!"], block=True, timeout=5), 10)
            for _ in sockets
        ]
        assert sorted(name for name, _ in received) == sockets
        assert all(message == {"text": "hi", "list": [1]} for _, message in received)
        assert len({id(message["list"]) for _, message in received}) == len(sockets)
        assert decrypts() == 1
    finally:
        await layer.aflush()
        await layer.aclose()
