"""The Redis layer on a bad day: Redis out of memory, and interface servers that die.

A Redis at ``maxmemory`` (``noeviction``) refuses writes: to the bridge and
the workers that is the layer being down (503, 1011, retry), and everything
works again once memory is freed. Each process that reads its ``prefix!``
channels says it is alive in a short-lived key, so a worker can tell a
request whose interface server is gone and skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from channels.exceptions import ChannelLayerConnectionError
from channels.layers.base import BaseChannelLayer
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.names import new_process_channel
from channels.layers.redis import RedisChannelLayer
from tests.interface import Deployment, http
from tests.redis_server import RedisServer, command_calls
from tests.waiting import wait_until

ROUTING = "tests.project.sockets.channel_routing"
#: What the layer logs, once per outage, when Redis refuses writes.
OOM_ADVICE = "raise its maxmemory"


@contextlib.contextmanager
def out_of_memory(url: str) -> Iterator[None]:
    """Drive the Redis at *url* past its ``maxmemory`` (noeviction), and free it afterwards.

    The ballast is many small keys, not one big one: a big write leaves a
    query buffer behind that Redis frees a moment later, and memory would
    drop under the limit on its own.
    """
    client = redis.Redis.from_url(url)
    ballast = [f"ballast:{index}" for index in range(50)]
    try:
        for key in ballast:
            client.set(key, b"x" * 100_000)
        used = client.info("memory")["used_memory"]
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", used - 2_000_000)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            client.set("probe", b"refused")
        yield
    finally:
        client.delete(*ballast)
        client.config_set("maxmemory", 0)
        client.close()


def close_code_of(closed: ConnectionClosed) -> int | None:
    """The close code the server sent, or None if it sent no close frame."""
    return closed.rcvd.code if closed.rcvd is not None else None


def echo(ws: Any, text: str) -> None:
    ws.send(text)
    assert ws.recv(timeout=20) == text


async def send_then_close(layer: RedisChannelLayer) -> None:
    try:
        await layer.asend("test.oom", {"n": 1})
    finally:
        await layer.aclose()  # this event loop's connections go with it


# Redis at maxmemory -----------------------------------------------------------------


def test_a_layer_at_maxmemory_raises_what_an_unreachable_one_does_and_recovers(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Sends, sends-then-poll and group adds raise ChannelLayerConnectionError, logged once."""
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="oom:")
    try:
        with (
            caplog.at_level(logging.ERROR, logger="channels.layers.redis"),
            out_of_memory(redis_server.url),
        ):
            for _ in range(3):
                with pytest.raises(ChannelLayerConnectionError, match=OOM_ADVICE):
                    layer.send("test.oom", {"n": 1})
            with pytest.raises(ChannelLayerConnectionError, match=OOM_ADVICE):
                asyncio.run(send_then_close(layer))
            with pytest.raises(ChannelLayerConnectionError):
                layer.group_add("oom", "test.oom")
            errors, _ = layer.send_then_poll([("test.oom", {"n": 2})], ["test.other"])
            assert isinstance(errors[0], ChannelLayerConnectionError)
            # Reads still work: a receive is no failure.
            assert layer.receive(["test.oom"]) == (None, None)
        advice = [r for r in caplog.records if OOM_ADVICE in r.getMessage()]
        assert len(advice) == 1, [r.getMessage() for r in caplog.records]
        layer.send("test.oom", {"n": 3})
        assert layer.receive(["test.oom"]) == ("test.oom", {"n": 3})
    finally:
        layer.flush()
        layer.close()


def test_redis_at_maxmemory_answers_503_and_1011_and_all_recovers_when_memory_is_freed(
    deployments: Any, redis_server: RedisServer
) -> None:
    """HTTP gets 503, a new socket 1011, a socket that speaks 1011; after, all works again.

    A socket that stayed quiet during the outage works afterwards; none is
    left open and silent. The daphne says what to do once.
    """
    server: Deployment = deployments("daphne", ROUTING, redis_url=redis_server.url, workers=1)
    daphne = server.processes[0]
    with (
        connect(server.ws_url + "/ws/echo/", open_timeout=20) as speaking,
        connect(server.ws_url + "/ws/echo/", open_timeout=20) as quiet,
    ):
        echo(speaking, "before")
        echo(quiet, "before")
        with out_of_memory(redis_server.url):
            started = time.monotonic()
            assert http(server.url + "/hello/", timeout=20)[0] == 503
            assert time.monotonic() - started < 5  # refused at once, not timed out
            with (
                connect(server.ws_url + "/ws/echo/", open_timeout=20) as fresh,
                pytest.raises(ConnectionClosed) as refused,
            ):
                fresh.recv(timeout=20)
            assert close_code_of(refused.value) == 1011
            speaking.send("during")
            with pytest.raises(ConnectionClosed) as closed:
                speaking.recv(timeout=20)
            assert close_code_of(closed.value) == 1011
            assert http(server.url + "/hello/", timeout=20)[0] == 503
        assert http(server.url + "/hello/", timeout=20)[0] == 200
        echo(quiet, "after")
        with connect(server.ws_url + "/ws/echo/", open_timeout=20) as after:
            echo(after, "after")
    assert sum(OOM_ADVICE in line for line in daphne.output) == 1, daphne.tail(40)
    assert all(process.process.poll() is None for process in server.processes)


# Which processes are alive ------------------------------------------------------------


@pytest.mark.parametrize("make", [InMemoryChannelLayer, BaseChannelLayer])
def test_layers_that_track_no_process_say_every_channel_is_alive(make: type) -> None:
    layer = make()
    assert layer.process_alive(new_process_channel("daphne.response.x!")) is True
    assert layer.process_alive("http.request") is True
    assert asyncio.run(layer.aprocess_alive("daphne.response.x!y")) is True
    with pytest.raises(TypeError, match="channel name"):
        layer.process_alive(None)


def test_a_receiving_process_announces_itself_at_most_once_a_second_and_withdraws_on_close(
    redis_server: RedisServer,
) -> None:
    """Blocking receives refresh the key; asking is cached per process; close ends it at once."""
    url = redis_server.url
    process = "daphne.response.liveness!"
    reply = new_process_channel(process)
    reader = RedisChannelLayer(hosts=[url], prefix="live:")
    asker = RedisChannelLayer(hosts=[url], prefix="live:")
    try:
        exists = command_calls(url, "exists")
        started = time.monotonic()
        answers = [asker.process_alive(new_process_channel(process)) for _ in range(20)]
        if time.monotonic() - started < 1:  # one round trip (two EXISTS) per process per second
            assert command_calls(url, "exists") - exists == 2
        assert answers == [True] * 20  # never heard of: not skipped
        assert asker.process_alive("http.request") is True
        sets = command_calls(url, "set")
        started = time.monotonic()
        for _ in range(10):
            reader.receive([process], block=True, timeout=0.01)
        if time.monotonic() - started < 1:  # one refresh: an alive and a seen SET
            assert command_calls(url, "set") - sets == 2
        assert fresh_answer(url, reply) is True
        reader.close()
        assert fresh_answer(url, reply) is False  # closed: gone at once
    finally:
        asker.flush()
        asker.close()
        reader.close()


def fresh_answer(url: str, channel: str, prefix: str = "live:") -> bool:
    """Ask a layer of its own, with nothing cached, whether *channel*'s process is alive."""
    layer = RedisChannelLayer(hosts=[url], prefix=prefix)
    try:
        return layer.process_alive(channel)
    finally:
        layer.close()


def test_process_ttl_shorter_than_two_refreshes_is_refused(redis_url: str) -> None:
    with pytest.raises(ValueError, match="process_ttl must be at least"):
        RedisChannelLayer(hosts=[redis_url], process_ttl=1)


def reply_channel_of(server: Deployment) -> str:
    """Make one request through *server*'s daphne, answer it here; return its reply channel."""
    assert server.layer is not None
    result: dict[str, int] = {}
    client = threading.Thread(target=lambda: result.update(status=http(server.url + "/x/")[0]))
    client.start()
    channel, request = server.layer.receive(["http.request"], block=True, timeout=20)
    assert channel == "http.request", "daphne sent no http.request"
    server.layer.send(request["reply_channel"], {"status": 200, "content": b"answered"})
    client.join(20)
    assert result.get("status") == 200  # the daphne's reply loop read it: it has announced
    return request["reply_channel"]


TTL = 3.0


def test_a_killed_daphne_reads_dead_within_its_ttl(deployments: Any) -> None:
    server: Deployment = deployments(
        "daphne", ROUTING, workers=0, CHANNELS_TEST_PROCESS_TTL=str(TTL)
    )
    assert server.layer is not None
    reply = reply_channel_of(server)
    assert server.layer.process_alive(reply) is True
    os.kill(server.processes[0].pid, signal.SIGKILL)
    server.processes[0].wait(10)
    killed = time.monotonic()
    wait_until(
        lambda: not server.layer.process_alive(reply),  # type: ignore[union-attr]
        TTL + 5,
        "a killed daphne still reads alive",
    )
    assert time.monotonic() - killed <= TTL + 2  # the TTL, plus the 1 s cache, plus slack


def test_a_stopped_daphne_reads_dead_at_once(deployments: Any, redis_url: str) -> None:
    server: Deployment = deployments("daphne", ROUTING, workers=0, CHANNELS_TEST_PROCESS_TTL="60")
    assert server.layer is not None
    reply = reply_channel_of(server)
    assert server.layer.process_alive(reply) is True
    server.processes[0].stop()  # SIGTERM: a clean exit
    assert fresh_answer(redis_url, reply, server.layer.prefix) is False
