"""Group hygiene on Redis: the members and presence of a dead process are reaped.

A real process is killed with SIGKILL and a live layer's housekeeping
removes what it owned; reapers race and one of them dies half-way; a clean
close cleans up at once. The presence rules both layers share are in
tests/layers/test_presence.py; this file holds what only Redis has.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from channels.layers.names import new_process_channel
from channels.layers.redis import RedisChannelLayer, plans
from tests.processes import ManagedProcess, project_env
from tests.redis_server import RedisServer
from tests.waiting import wait_until

GROUPS = ("hall", "lobby", "news")
#: A process that makes its layer, announces itself by receiving on its own
#: ``prefix!`` channel, puts its channels in every group and presence set, says
#: so, and goes on receiving (announcing) until it is killed, or exits without
#: closing its layer.
DOOMED = """
import json, sys
from channels.layers.names import new_process_channel
from channels.layers.redis import RedisChannelLayer

hosts, prefix, cluster, count, process, forever = json.loads(sys.argv[1])
layer = RedisChannelLayer(hosts=hosts, prefix=prefix, cluster=cluster, process_ttl=2)
layer.receive([process], block=True, timeout=0.05)
channels = [new_process_channel(process) for _ in range(count)]
for channel in channels:
    for group in %r:
        layer.group_add(group, channel)
    layer.presence_track("hall", channel, "user-" + channel[-8:], {"channel": channel})
print("ready " + json.dumps(channels), flush=True)
while forever:
    layer.receive([process], block=True, timeout=1)
""" % (GROUPS,)


@pytest.fixture(params=["redis", "redis-cluster"])
def backend(request: pytest.FixtureRequest, unique_prefix: str) -> Iterator[dict[str, Any]]:
    """Where a test's layers (and its doomed process's) are: one Redis, or a Redis Cluster."""
    if request.param == "redis":
        yield {"hosts": [request.getfixturevalue("redis_url")], "prefix": unique_prefix}
    else:
        urls = request.getfixturevalue("redis_cluster_urls")
        yield {"hosts": urls[:1], "prefix": unique_prefix, "cluster": True}


@pytest.fixture
def layers(backend: dict[str, Any]) -> Iterator[Callable[..., RedisChannelLayer]]:
    """A factory of layers on the test's backend, each housekeeping on every call."""
    made: list[RedisChannelLayer] = []

    def make(**options: Any) -> RedisChannelLayer:
        layer = RedisChannelLayer(**{**backend, **options})
        layer.maintain_interval = 0
        made.append(layer)
        return layer

    yield make
    for layer in made:
        layer.flush()
        layer.close()


def registered(layer: RedisChannelLayer, process: str) -> bool:
    """Whether *process* is in its shard's registry."""
    own = layer._ownership
    (score,) = own.shard_of(process).execute(("ZSCORE", own.registry, process))
    return score is not None


def list_exists(layer: RedisChannelLayer, process: str) -> bool:
    """Whether the list of *process*'s ``prefix!`` channels exists."""
    key = layer.prefix + process
    return bool(layer._router.shard_of_key(key).execute(("EXISTS", key))[0])


def start_doomed(
    backend: dict[str, Any], count: int, process: str, *, forever: bool
) -> ManagedProcess:
    cluster = backend.get("cluster", False)
    spec = [backend["hosts"], backend["prefix"], cluster, count, process, forever]
    args = [sys.executable, "-c", DOOMED, json.dumps(spec)]
    return ManagedProcess(args, project_env(), name="doomed")


def plant_dead(layer: RedisChannelLayer, process: str, channels: int = 3) -> list[str]:
    """Give *process* members and presence, then register it as past its deadline."""
    names = [new_process_channel(process) for _ in range(channels)]
    for name in names:
        for group in GROUPS:
            layer.group_add(group, name)
        layer.presence_track("hall", name, name[-6:])
    own = layer._ownership
    own.shard_of(process).execute(("ZADD", own.registry, 0, process))
    return names


def test_a_killed_process_loses_every_membership_and_presence_within_its_ttl(
    layers: Callable[..., RedisChannelLayer], backend: dict[str, Any]
) -> None:
    live = layers(presence_grace=0)
    live.group_add("hall", "live.one")
    live.group_add("hall", "live.two")
    process = "daphne.response.doomed!"
    doomed = start_doomed(backend, 50, process, forever=True)
    try:
        channels = json.loads(doomed.wait_for(r"^ready ", timeout=30).split(" ", 1)[1])
        assert all(live.group_count(group) == 50 + (group == "hall") * 2 for group in GROUPS)
        assert live.presence_count("hall") == 50
        assert registered(live, process)
        doomed.signal(signal.SIGKILL)
        killed = time.monotonic()
        doomed.wait()
    finally:
        doomed.stop()

    def reaped() -> bool:
        live.maintain()
        counts = [live.group_count(group) for group in GROUPS]
        return counts == [2, 0, 0] and live.presence_count("hall") == 0

    wait_until(reaped, 2 + 5, "the dead process's memberships and presence to be reaped")
    took = time.monotonic() - killed
    print(f"reaped {took:.2f} s after the kill (process_ttl 2)")
    assert sorted(live.group_channels("hall")) == ["live.one", "live.two"], f"took {took:.1f} s"
    assert not registered(live, process)
    assert not list_exists(live, process)
    assert live.process_alive(channels[0]) is False  # its seen: key stays

    live.send_group("hall", {"text": "after"})
    for member in ("live.one", "live.two"):
        assert live.receive([member]) == (member, {"text": "after"})
        assert live.receive([member]) == (None, None)
    assert not list_exists(live, process)


def test_two_reapers_at_once_reap_each_dead_process_once(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    maker = layers()
    dead = [f"gone{n}.x!" for n in range(12)]
    for process in dead:
        plant_dead(maker, process)
    reapers = [layers(), layers()]
    start = threading.Barrier(2)
    reaped: list[list[str]] = [[], []]

    def reap(index: int) -> None:
        reaper = reapers[index]._reaper
        reaper.batch = 2  # several claims each, so the two interleave
        start.wait(timeout=10)
        while got := reaper.reap_dead():
            reaped[index] += got

    threads = [threading.Thread(target=reap, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not set(reaped[0]) & set(reaped[1])
    assert sorted(reaped[0] + reaped[1]) == sorted(dead)
    assert not any(maker.group_count(group) for group in GROUPS)
    assert not any(registered(maker, process) for process in dead)


def test_a_reaper_that_dies_after_its_claim_is_replaced_when_the_lease_runs_out(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    maker = layers()
    plant_dead(maker, "stalled.x!")
    stalled, other = layers(), layers()
    stalled._reaper.lease = 1.0
    claim = stalled._reaper.claim()
    plans.run({shard: [claim] for shard in stalled._shards})  # claims it, then "dies"
    assert other._reaper.reap_dead() == []
    assert maker.group_count("hall") == 3
    got = wait_until(other._reaper.reap_dead, 1 + 5, "another reaper to take the process over")
    assert got == ["stalled.x!"]
    assert not any(maker.group_count(group) for group in GROUPS)


def test_a_live_process_past_its_registry_deadline_is_not_reaped(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    # At maxmemory Redis refuses the registry's ZADD but keeps the alive key's
    # PEXPIRE: the alive key has the last word.
    alive = layers()
    process = "busy.x!"
    alive.receive([process], block=True, timeout=0.05)  # announces
    channel = new_process_channel(process)
    alive.group_add("hall", channel)
    own = alive._ownership
    own.shard_of(process).execute(("ZADD", own.registry, 0, process))
    assert layers()._reaper.reap_dead() == []
    assert alive.group_channels("hall") == [channel]


def test_a_clean_close_removes_the_processs_memberships_and_presence_at_once(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    observer = layers(presence_grace=0)
    closing = layers(presence_grace=0)
    process = "daphne.response.closing!"
    closing.receive([process], block=True, timeout=0.05)
    channels = [new_process_channel(process) for _ in range(5)]
    for channel in channels:
        for group in GROUPS:
            closing.group_add(group, channel)
        closing.presence_track("hall", channel, channel[-6:])
    observer.group_add("hall", "live.one")
    assert registered(observer, process)
    closing.close()
    assert observer.group_channels("hall") == ["live.one"]
    assert not any(observer.group_count(group) for group in ("lobby", "news"))
    assert observer.presence_list("hall") == {}
    assert not registered(observer, process)
    assert observer.process_alive(channels[0]) is False


def test_a_process_that_exits_without_closing_its_layer_is_reaped_on_its_way_out(
    layers: Callable[..., RedisChannelLayer], backend: dict[str, Any]
) -> None:
    observer = layers()
    process = "daphne.response.leaving!"
    leaving = start_doomed(backend, 5, process, forever=False)
    try:
        leaving.wait_for(r"^ready ", timeout=30)
        assert leaving.wait() == 0
    finally:
        leaving.stop()
    # Its exit hook did the reaping: no housekeeping ran here.
    assert not any(observer.group_count(group) for group in GROUPS)
    assert not registered(observer, process)


def test_a_group_discard_and_untrack_take_the_entries_out_of_the_ownership_index(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    layer = layers()
    channel = new_process_channel("owner.x!")
    layer.group_add("hall", channel)
    layer.presence_track("hall", channel, "ann")
    own = layer._ownership
    shard = own.shard_of("owner.x!")
    assert len(shard.execute(("ZRANGE", own.key("owner.x!"), 0, -1))[0]) == 2
    layer.group_discard("hall", channel)
    layer.presence_untrack("hall", channel)
    assert shard.execute(("ZRANGE", own.key("owner.x!"), 0, -1))[0] == []


def test_index_entries_of_expired_memberships_go_with_the_next_group_add(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    # A socket whose consumer never leaves its groups must not grow its
    # process's index for ever: memberships expire, and so do their entries.
    layer = layers()
    own = layer._ownership
    index, shard = own.key("long.x!"), own.shard_of("long.x!")
    shard.execute(
        ("ZADD", index, 0, "g old long.x!gone"), ("ZADD", index, "+inf", "p hall long.x!a")
    )
    layer.group_add("hall", new_process_channel("long.x!"))
    entries = [entry.decode() for entry in shard.execute(("ZRANGE", index, 0, -1))[0]]
    assert "g old long.x!gone" not in entries
    assert "p hall long.x!a" in entries  # a presence entry lasts until it is released


def test_housekeeping_returns_quietly_while_redis_is_down(redis_server: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix="down:")
    layer.maintain_interval = 0
    try:
        redis_server.stop()
        layer.maintain()  # no error: the next pass tries again
    finally:
        layer.close()


def test_housekeeping_runs_at_most_once_per_interval(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    maker, reaper = layers(), layers()
    reaper.maintain_interval = 60
    reaper.maintain()  # the interval's pass
    plant_dead(maker, "late.x!")
    reaper.maintain()
    assert maker.group_count("hall") == 3
    reaper.maintain_interval = 0
    reaper.maintain()
    assert maker.group_count("hall") == 0


def test_the_registry_expires_with_the_last_process_that_announced_in_it(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    """A deployment gone for good leaves no registry behind: it lasts as long as a seen key."""
    layer = layers(group_expiry=600)
    process = "daphne.response.registry!"
    layer.receive([process], block=True, timeout=0.05)
    own = layer._ownership
    (ttl,) = own.shard_of(process).execute(("TTL", own.registry))
    assert 590 <= ttl <= 600
