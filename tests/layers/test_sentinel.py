"""The Redis layer on Sentinel-managed masters: asgi_redis 1.x's settings, and failovers.

Against real Sentinels (:mod:`tests.redis_sentinel`). The conformance suite
runs on a Sentinel-found master too (``redis-sentinel`` in
``test_conformance.py``); here is what only Sentinel has: finding masters,
the settings of 1.x and of channels_redis, the errors for bad settings, and
a master that is demoted or killed while layers are using it.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.utils.module_loading import import_string

from channels.asgi import BACKEND_ALIASES
from channels.exceptions import ChannelLayerConnectionError
from channels.layers.redis import RedisChannelLayer, RedisSentinelChannelLayer
from tests.processes import free_port
from tests.redis_sentinel import LOOPBACK, SentinelSet, start_or_skip
from tests.waiting import wait_until


@pytest.fixture
def sentinel_layers(sentinel_set: SentinelSet, redis_layers: Any) -> Any:
    """A factory of layers on the shared Sentinel set, each flushed and closed after the test."""

    def make(
        layer_class: type[RedisChannelLayer] = RedisSentinelChannelLayer, **options: Any
    ) -> Any:
        if layer_class is RedisSentinelChannelLayer:
            options.setdefault("hosts", sentinel_set.hosts)
        return redis_layers(layer_class, **options)

    return make


@pytest.fixture
def failover_set() -> Iterator[SentinelSet]:
    """A master with one replica, watched by 3 Sentinels that fail it over within seconds."""
    started = start_or_skip(SentinelSet(services=("mymaster",), replicas=1))
    try:
        yield started
    finally:
        started.cleanup()


def test_the_1x_backend_paths_name_the_sentinel_layer() -> None:
    for path in (
        "asgi_redis.RedisSentinelChannelLayer",
        "asgi_redis.sentinel.RedisSentinelChannelLayer",
    ):
        assert import_string(BACKEND_ALIASES[path]) is RedisSentinelChannelLayer


def test_without_services_every_monitored_master_is_found_and_sharded_across(
    sentinel_layers: Any, sentinel_set: SentinelSet
) -> None:
    layer = sentinel_layers()
    assert layer.services == ["channels-a", "channels-b"]
    for n in range(40):
        layer.send(f"spread{n}", {"n": n})
    for port in sentinel_set.first_masters.values():
        assert sentinel_set.client(port).keys(layer.prefix + "spread*"), "a master got nothing"
    assert sorted(layer.receive([f"spread{n}"])[1]["n"] for n in range(40)) == list(range(40))


def test_encrypted_messages_travel_sealed_through_a_sentinel_master(
    sentinel_layers: Any, sentinel_set: SentinelSet
) -> None:
    layer = sentinel_layers(services=["channels-a"], symmetric_encryption_keys=["test", "old"])
    layer.send("secret", {"text": "plaintext-marker"})
    stored = sentinel_set.client(sentinel_set.first_masters["channels-a"]).lrange(
        layer.prefix + "secret", 0, -1
    )
    assert stored
    assert "plaintext-marker" not in "".join(stored)
    assert layer.receive(["secret"]) == ("secret", {"text": "plaintext-marker"})


def test_a_refresh_interval_is_accepted_and_the_layer_works_the_same(
    sentinel_layers: Any,
) -> None:
    layer = sentinel_layers(services=["channels-b"], sentinel_refresh_interval=60)
    assert layer.sentinel_refresh_interval == 60
    layer.send("cached", {"n": 1})
    assert layer.receive(["cached"]) == ("cached", {"n": 1})


def test_refused_sends_count_as_full_not_as_messages(sentinel_layers: Any) -> None:
    layer = sentinel_layers(services=["channels-a"], capacity=5)
    for _ in range(5):
        layer.send("first_channel", {"pay": "load"})
    for _ in range(4):
        with pytest.raises(RedisSentinelChannelLayer.ChannelFull):
            layer.send("first_channel", {"pay": "load"})
    assert layer.global_statistics() == {"messages_count": 5, "channel_full_count": 4}
    stats = layer.channel_statistics("first_channel")
    assert (stats["messages_count"], stats["messages_pending"], stats["channel_full_count"]) == (
        5,
        5,
        4,
    )


def test_a_channels_redis_sentinel_entry_works_on_the_plain_layer_with_its_own_options(
    sentinel_layers: Any, sentinel_set: SentinelSet
) -> None:
    entry = {"sentinels": sentinel_set.hosts, "master_name": "channels-b", "db": 2}
    layer = sentinel_layers(RedisChannelLayer, hosts=[entry])
    layer.send("from4", {"n": 4})
    master = sentinel_set.first_masters["channels-b"]
    on_db2 = redis.Redis(LOOPBACK, master, db=2, decode_responses=True)
    assert on_db2.llen(layer.prefix + "from4") == 1
    on_db2.close()
    assert layer.receive(["from4"]) == ("from4", {"n": 4})
    assert "channels-b via Sentinel" in repr(layer)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"hosts": "localhost:26379"}, "list of Sentinel (host, port) pairs"),
        ({"hosts": ["redis://localhost:26379"]}, "must be a (host, port) pair"),
        ({"hosts": [("localhost", "port")]}, "must be a number"),
        ({"services": "mymaster"}, "list of master names"),
        ({"services": [""]}, "must name a master"),
        ({"sentinel_kwargs": "password"}, "dict of connection options"),
        ({"sentinel_refresh_interval": "60"}, "number of seconds"),
    ],
)
def test_bad_sentinel_settings_say_what_to_write(options: dict[str, Any], says: str) -> None:
    options.setdefault("services", ["mymaster"])
    with pytest.raises(ValueError, match=re.escape(says)):
        RedisSentinelChannelLayer(**options)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"master_name": "mymaster"}, "needs 'sentinels' and 'master_name'"),
        ({"sentinels": [("localhost", 26379)], "master_name": 5}, "must name a master"),
        ({"sentinels": ("localhost", 26379), "master_name": "m"}, "must be a (host, port)"),
        (
            {"sentinels": [("localhost", 26379)], "master_name": "m", "sentinel_kwargs": 1},
            "'sentinel_kwargs' must be a dict",
        ),
    ],
)
def test_bad_channels_redis_entries_say_what_to_write(entry: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        RedisChannelLayer(hosts=[entry])


def test_discovery_with_no_sentinel_answering_names_the_setting_to_fix() -> None:
    with pytest.raises(ChannelLayerConnectionError, match=r"No Sentinel in CONFIG\['hosts'\]"):
        RedisSentinelChannelLayer(hosts=[(LOOPBACK, free_port())])


async def test_a_demoted_master_answering_readonly_sends_both_clients_to_the_new_one(
    failover_set: SentinelSet,
) -> None:
    """A READONLY reply makes the layer ask Sentinel again: one failed call, then the new master.

    ``SENTINEL FAILOVER`` demotes a master that is still running, as when an
    old master comes back as a replica. What was sent and replicated before
    is still there.
    """
    layer = RedisSentinelChannelLayer(hosts=failover_set.hosts, capacity=1000)
    try:
        layer.send("ro", {"n": 0})  # sync and async connections kept on the first master
        await layer.asend("ro", {"n": 1})
        old = failover_set.master_port()
        await asyncio.to_thread(wait_until, failover_set.replicated, 10, "replica in sync")
        failover_set.client(failover_set.sentinel_ports[0]).execute_command(
            "SENTINEL", "FAILOVER", "mymaster"
        )

        def promoted() -> int | None:
            seen = {failover_set.master_port(sentinel=port) for port in failover_set.sentinel_ports}
            return seen.pop() if len(seen) == 1 and old not in seen else None

        new = await asyncio.to_thread(
            wait_until, promoted, 20, "every Sentinel to name the new master"
        )
        # What Sentinel does next (it may wait for its next look at the old master):
        failover_set.client(old).replicaof(LOOPBACK, new)
        failures = []
        for n, send in ((2, layer.send), (3, layer.asend)):
            for _ in range(2):
                try:
                    result = send("ro", {"n": n})
                    if asyncio.iscoroutine(result):
                        await result
                    break
                except ChannelLayerConnectionError as exc:
                    failures.append(str(exc))
        assert len(failures) <= 2, failures
        assert all("slave" in failure or "READONLY" in failure for failure in failures), failures
        got = [layer.receive(["ro"])[1] for _ in range(5)]
        assert got == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}, None]
    finally:
        await layer.aclose()  # no flush: the set is thrown away, and other threads' kept
        # connections would each fail once more on the demoted master


async def test_killing_the_master_loses_only_unreplicated_messages_and_recovers_alone(
    failover_set: SentinelSet, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill -9 the master under steady traffic; both clients find the promoted replica alone.

    An async sender (as an interface server) and a sync receiver (as a
    worker), each a layer of its own, carry numbered messages. Before the
    kill the sender pauses until the replica has everything: none of those
    messages may be lost. Messages acknowledged after that barrier may be
    (asynchronous replication); none may arrive twice. Prints the outage.
    """
    options = {"hosts": failover_set.hosts, "capacity": 100_000, "expiry": 120}
    sender = RedisSentinelChannelLayer(**options)
    receiver = RedisSentinelChannelLayer(**options)
    acked: list[int] = []
    ack_times: list[float] = []
    received: list[int] = []
    errors = {"send": 0, "receive": 0}
    retried: set[int] = set()  # a failed send may have been applied before its reply was lost
    go = asyncio.Event()
    go.set()
    stop_sending = asyncio.Event()
    stop_receiving = threading.Event()

    async def send() -> None:
        n = 0
        while not stop_sending.is_set():
            await go.wait()
            try:
                await sender.asend("failover", {"n": n})
            except ChannelLayerConnectionError:
                errors["send"] += 1
                retried.add(n)
                await asyncio.sleep(0.02)  # a client's retry pause, not a synchronisation
                continue
            acked.append(n)
            ack_times.append(time.monotonic())
            n += 1
            await asyncio.sleep(0.005)

    def receive() -> None:
        while not stop_receiving.is_set():
            try:
                _, message = receiver.receive(["failover"], block=True, timeout=0.2)
            except ChannelLayerConnectionError:
                errors["receive"] += 1
                stop_receiving.wait(0.02)  # a worker's retry pause
                continue
            if message is not None:
                received.append(message["n"])

    sending = asyncio.ensure_future(send())
    receiving = asyncio.ensure_future(asyncio.to_thread(receive))
    try:
        await asyncio.to_thread(wait_until, lambda: len(received) >= 50, 10, "traffic to flow")
        go.clear()
        await asyncio.to_thread(wait_until, failover_set.replicated, 10, "the replica in sync")
        replicated = len(acked)
        go.set()
        await asyncio.to_thread(
            wait_until, lambda: len(acked) >= replicated + 20, 10, "more traffic"
        )
        before = len(acked)
        killed_at = time.monotonic()
        old = failover_set.kill_master()
        await asyncio.to_thread(
            wait_until,
            lambda: len(acked) >= before + 50 and set(acked[before:]) <= set(received),
            30,
            lambda: f"recovery after the kill (errors {errors}, acked {len(acked)})",
        )
        stop_sending.set()
        await sending
        await asyncio.to_thread(
            wait_until,
            lambda: set(acked[before:]) <= set(received),
            5,
            "every message acknowledged after the kill to arrive",
        )
    finally:
        stop_sending.set()
        stop_receiving.set()
        await asyncio.gather(sending, receiving, return_exceptions=True)
        for layer in (sender, receiver):
            layer.flush()
            await layer.aclose()
    first_after = next(t for t in ack_times if t > killed_at)
    last_before = max(t for t in ack_times if t <= killed_at)
    outage = first_after - last_before
    lost = sorted(set(acked) - set(received))
    duplicated = sorted(n for n in set(received) if received.count(n) > 1)
    with capsys.disabled():
        print(
            f"\nSentinel failover (master {old} killed, now {failover_set.master_port()}): "
            f"outage {outage:.2f}s (from the kill {first_after - killed_at:.2f}s), "
            f"{len(acked)} acknowledged, {len(lost)} lost {lost[:10]}, "
            f"{len(duplicated)} duplicated {duplicated[:10]}, "
            f"{errors['send']} failed sends, {errors['receive']} failed receives"
        )
    assert set(duplicated) <= retried, "only a send retried after an error may arrive twice"
    assert not [n for n in lost if n < replicated], "a replicated message was lost"
    assert outage < 15
