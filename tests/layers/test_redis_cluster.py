"""The Redis layer on a real Redis Cluster: key layout, group sends across nodes, resharding,
a master's failover.

The layer conformance suite runs against the cluster too (``redis-cluster`` in
tests/layers/test_conformance.py); this file holds what only a cluster has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
import redis

from channels.exceptions import ChannelLayerConnectionError
from channels.layers.redis import RedisChannelLayer
from channels.layers.redis.cluster import ClusterBucket
from channels.layers.redis.slots import SLOTS, bucket_tags, slot_of
from tests.redis_cluster import RedisClusterServers
from tests.redis_server import RedisServer, command_calls
from tests.waiting import wait_until


@pytest.fixture
def cluster_layers(
    redis_cluster_urls: list[str], unique_prefix: str
) -> Iterator[list[RedisChannelLayer]]:
    """Cluster layers made by the test (append to the list), flushed and closed after it."""
    made: list[RedisChannelLayer] = []
    yield made
    for layer in made:
        layer.flush()
        layer.close()


def cluster_layer(urls: list[str], prefix: str, made: list[RedisChannelLayer]) -> RedisChannelLayer:
    layer = RedisChannelLayer(hosts=urls[:1], prefix=prefix, cluster=True)
    made.append(layer)
    return layer


def bucket_of(layer: RedisChannelLayer, channel: str) -> ClusterBucket:
    """Return the bucket *channel*'s list lives in."""
    _, _, index = layer._router.channel_key(channel)
    bucket = layer._shards[index]
    assert isinstance(bucket, ClusterBucket)
    return bucket


def owner_client(urls: list[str], slot: int) -> redis.Redis:
    """Return a plain client of the master that owns *slot*, as the cluster says now."""
    with redis.Redis.from_url(urls[0]) as client:
        for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                host = master[0].decode() if isinstance(master[0], bytes) else master[0]
                return redis.Redis(host=host, port=int(master[1]))
    raise AssertionError(f"no master owns slot {slot}")


def node_keys(url: str, pattern: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return list(client.scan_iter(match=pattern, count=1000))
    finally:
        client.close()


def test_bucket_tags_spread_over_equal_slot_ranges() -> None:
    tags = bucket_tags(16)
    assert len(set(tags)) == 16
    for index, tag in enumerate(tags):
        assert index * SLOTS // 16 <= slot_of(tag) < (index + 1) * SLOTS // 16
    with pytest.raises(ValueError, match="cluster_buckets"):
        bucket_tags(1)


def test_every_key_a_script_touches_shares_its_buckets_hash_tag(
    redis_cluster_urls: list[str], unique_prefix: str, cluster_layers: list[RedisChannelLayer]
) -> None:
    """Each key sits in its bucket's slot: a list, the bucket's stats, a group, liveness."""
    layer = cluster_layer(redis_cluster_urls, unique_prefix, cluster_layers)
    layer.send("layout.one", {"n": 1})
    layer.group_add("layout", "layout.proc!a")
    layer.send_group("layout", {"n": 2})
    # A blocking receive on a process channel says the process is alive.
    assert layer.receive(["layout.proc!"], block=True, timeout=1) == ("layout.proc!a", {"n": 2})
    keys = [key for url in redis_cluster_urls for key in node_keys(url, f"*{unique_prefix}*")]
    assert keys
    tags = {"{" + tag + "}" for tag in bucket_tags(layer.cluster_buckets)}
    for key in keys:
        text = key.decode()
        tag, _, rest = text.partition("}")
        assert tag + "}" in tags, text
        assert rest.startswith(unique_prefix), text
    names = {key.decode().partition("}")[2] for key in keys}
    assert unique_prefix + "layout.one" in names
    assert unique_prefix + "group:layout" in names
    assert unique_prefix + "stats" in names
    assert unique_prefix + "alive:layout.proc!" in names


def test_a_plain_layer_keeps_its_untagged_keys(
    redis_url: str, unique_prefix: str, redis_layers: Callable[..., RedisChannelLayer]
) -> None:
    layer = redis_layers()
    layer.send("plain.one", {"n": 1})
    assert sorted(node_keys(redis_url, f"*{unique_prefix}*")) == [
        f"{unique_prefix}plain.one".encode(),
        f"{unique_prefix}stats".encode(),
    ]


def test_a_group_send_reaches_every_node_with_one_push_per_bucket(
    redis_cluster_urls: list[str], unique_prefix: str, cluster_layers: list[RedisChannelLayer]
) -> None:
    """60 processes on three masters get one group send: at most one PUSH per bucket."""
    layer = cluster_layer(redis_cluster_urls, unique_prefix, cluster_layers)
    members = [f"fan{n}.proc!sock" for n in range(60)]
    for member in members:
        layer.group_add("fan", member)
    nodes = {bucket_of(layer, member).slot * 3 // SLOTS for member in members}
    assert nodes == {0, 1, 2}  # the masters own equal thirds of the slots
    buckets = {bucket_of(layer, member).slot for member in members}
    layer.send_group("fan", {"to": "all", "first": True})  # every node loads the scripts
    before = sum(command_calls(url, "evalsha") for url in redis_cluster_urls)
    layer.send_group("fan", {"to": "all"})
    scripts = sum(command_calls(url, "evalsha") for url in redis_cluster_urls) - before
    assert scripts == len(buckets) + 1  # the pushes, and reading the members
    for member in members:
        process = member.partition("!")[0] + "!"
        assert layer.receive([process]) == (member, {"to": "all", "first": True})
        assert layer.receive([process]) == (member, {"to": "all"})


KEYS = ["the cluster's secret key"]
SECRET = "the password is swordfish"


def test_an_encrypted_layer_on_a_cluster_delivers_once_and_refuses_a_replay(
    redis_cluster_urls: list[str],
    unique_prefix: str,
    cluster_layers: list[RedisChannelLayer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Sealed entries work on a cluster: an entry pushed again on its master is not delivered
    again, by any receiver, since its claim sits in the list's own slot."""
    sender, worker_1, worker_2 = (
        RedisChannelLayer(
            hosts=redis_cluster_urls[:1],
            prefix=unique_prefix,
            cluster=True,
            symmetric_encryption_keys=KEYS,
        )
        for _ in range(3)
    )
    cluster_layers += [sender, worker_1, worker_2]
    sender.send("job.run", {"text": SECRET})
    bucket = bucket_of(sender, "job.run")
    mark = "{" + bucket.tag + "}" + unique_prefix
    attacker = owner_client(redis_cluster_urls, bucket.slot)
    try:
        (captured,) = attacker.lrange(mark + "job.run", 0, -1)
        assert SECRET.encode() not in captured
        with caplog.at_level(logging.WARNING, logger="channels.layers.redis"):
            assert worker_1.receive(["job.run"]) == ("job.run", {"text": SECRET})
            assert attacker.keys(mark + "claimed:*")  # the claim is in the list's slot
            attacker.rpush(mark + "job.run", captured, captured)
            assert worker_1.receive(["job.run"]) == (None, None)
            assert worker_2.receive(["job.run"], block=True, timeout=1) == (None, None)
        assert attacker.llen(mark + "job.run") == 0
    finally:
        attacker.close()
    assert "replayed" in caplog.text
    assert SECRET not in caplog.text


async def test_an_encrypted_group_send_reaches_members_on_every_master(
    redis_cluster_urls: list[str], unique_prefix: str, cluster_layers: list[RedisChannelLayer]
) -> None:
    """One encrypted group send reaches processes whose lists sit on all three masters,
    read by sync and async receives alike."""
    layer = RedisChannelLayer(
        hosts=redis_cluster_urls[:1],
        prefix=unique_prefix,
        cluster=True,
        symmetric_encryption_keys=KEYS,
    )
    cluster_layers.append(layer)
    members = [f"sealed{n}.proc!sock" for n in range(30)] + ["sealed.solo"]
    for member in members:
        await layer.agroup_add("sealed", member)
    assert {bucket_of(layer, member).slot * 3 // SLOTS for member in members} == {0, 1, 2}
    try:
        await layer.asend_group("sealed", {"text": SECRET})
        for index, member in enumerate(members):
            process = member.partition("!")[0] + ("!" if "!" in member else "")
            if index % 2:
                received = await layer.areceive([process], block=True, timeout=1)
            else:
                received = layer.receive([process], block=True, timeout=1)
            assert received == (member, {"text": SECRET})
    finally:
        await layer.aclose()


def _migrate_keys(slot: int, source: RedisServer, target: RedisServer, ids: dict[int, str]) -> None:
    """Start migrating *slot* from *source* to *target*, and move every key it has."""
    with (
        redis.Redis(host=source.host, port=source.port) as src,
        redis.Redis(host=target.host, port=target.port) as dst,
    ):
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])
        keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
        assert keys
        src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)


def _start_migration(
    cluster: RedisClusterServers, layer: RedisChannelLayer, channel: str
) -> tuple[int, RedisServer, dict[int, str]]:
    """Start moving *channel*'s slot to another master, keys first; return (slot, target, ids)."""
    slot = bucket_of(layer, channel).slot
    source = cluster.owner_of(slot)
    target = next(node for node in cluster.masters if node is not source)
    ids = {node.port: cluster.node_id(node) for node in cluster.masters}
    _migrate_keys(slot, source, target, ids)
    return slot, target, ids


def _hand_over(
    slot: int, masters: list[RedisServer], target: RedisServer, ids: dict[int, str]
) -> None:
    """End the migration: every master says *target* owns *slot*."""
    for node in masters:
        with redis.Redis(host=node.host, port=node.port) as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target.port])


@pytest.fixture
def own_cluster() -> Iterator[RedisClusterServers]:
    """A 3-master cluster of the test's own, which it may reshard."""
    cluster = RedisClusterServers(masters=3).start()
    try:
        yield cluster
    finally:
        cluster.cleanup()


def test_sends_and_receives_follow_ask_and_moved_while_a_slot_migrates(
    own_cluster: RedisClusterServers, unique_prefix: str, cluster_layers: list[RedisChannelLayer]
) -> None:
    """Mid-migration calls follow ASK to the target; after the hand-over, MOVED."""
    layer = cluster_layer(own_cluster.urls, unique_prefix, cluster_layers)
    layer.send("moving", {"n": 0})
    slot, target, ids = _start_migration(own_cluster, layer, "moving")
    target_url = f"redis://{target.host}:{target.port}"
    asked = command_calls(target_url, "asking")
    layer.send("moving", {"n": 1})  # ASK: the list is on the target already
    assert layer.receive(["moving"]) == ("moving", {"n": 0})
    assert command_calls(target_url, "asking") > asked

    _hand_over(slot, own_cluster.masters, target, ids)
    layer.send("moving", {"n": 2})  # MOVED: the layer's map still names the source
    assert layer.receive(["moving"]) == ("moving", {"n": 1})
    assert layer.receive(["moving"], block=True, timeout=1) == ("moving", {"n": 2})
    assert own_cluster.owner_of(slot) is target


def other_bucket(layer: RedisChannelLayer, channel: str) -> str:
    """Return a channel whose list is in another bucket than *channel*'s."""
    slot = bucket_of(layer, channel).slot
    return next(
        name
        for name in (f"elsewhere{n}" for n in range(1000))
        if bucket_of(layer, name).slot != slot
    )


async def test_async_sends_and_receives_follow_ask_and_moved_while_a_slot_migrates(
    own_cluster: RedisClusterServers, unique_prefix: str, cluster_layers: list[RedisChannelLayer]
) -> None:
    """``asend`` and every kind of ``areceive`` (no wait, a wait on one bucket, a wait over
    several) follow MOVED after the hand-over; ASK mid-migration is followed by the first
    three here, and by a wait over several buckets in the next test."""
    # One layer per call to check, each with the map it read before the migration.
    (sender, pop, wait_one, wait_many) = layers = [
        cluster_layer(own_cluster.urls, unique_prefix, cluster_layers) for _ in range(4)
    ]
    elsewhere = other_bucket(sender, "moving")
    try:
        for layer in layers:
            assert await layer.areceive([elsewhere]) == (None, None)  # reads the map
        await sender.asend("moving", {"n": 0})
        slot, target, ids = _start_migration(own_cluster, sender, "moving")
        target_url = f"redis://{target.host}:{target.port}"
        asked = command_calls(target_url, "asking")
        for n in (1, 2, 3):
            await sender.asend("moving", {"n": n})  # ASK: the list is on the target already
        assert await pop.areceive(["moving"]) == ("moving", {"n": 0})
        assert await wait_one.areceive(["moving"], block=True, timeout=1) == ("moving", {"n": 1})
        assert command_calls(target_url, "asking") > asked
        assert await pop.areceive(["moving"]) == ("moving", {"n": 2})
        assert await pop.areceive(["moving"]) == ("moving", {"n": 3})

        _hand_over(slot, own_cluster.masters, target, ids)
        # ASK left every layer's map naming the source: each call below meets MOVED first.
        for n in (4, 5, 6):
            await sender.asend("moving", {"n": n})
        assert await pop.areceive(["moving"]) == ("moving", {"n": 4})
        assert await wait_one.areceive(["moving"], block=True, timeout=1) == ("moving", {"n": 5})
        received = await wait_many.areceive(["moving", elsewhere], block=True, timeout=1)
        assert received == ("moving", {"n": 6})
        assert own_cluster.owner_of(slot) is target
    finally:
        for layer in layers:
            await layer.aclose()


async def test_an_async_wait_over_several_buckets_follows_ask_while_a_slot_migrates(
    own_cluster: RedisClusterServers, unique_prefix: str, cluster_layers: list[RedisChannelLayer]
) -> None:
    """A blocking ``areceive`` over channels of two buckets, one of whose slots is mid-migration,
    gets the message from the migration's target."""
    layer = cluster_layer(own_cluster.urls, unique_prefix, cluster_layers)
    elsewhere = other_bucket(layer, "moving")
    try:
        await layer.asend("moving", {"n": 0})
        _start_migration(own_cluster, layer, "moving")
        received = await layer.areceive(["moving", elsewhere], block=True, timeout=1)
        assert received == ("moving", {"n": 0})
    finally:
        await layer.aclose()


def test_a_masters_failover_is_survived_without_a_restart(unique_prefix: str) -> None:
    """Kill a master: calls fail as an outage until its replica is promoted, then work again,
    and a message replicated before the kill is delivered."""
    cluster = RedisClusterServers(masters=3, replicas=1).start()
    layer = RedisChannelLayer(hosts=cluster.urls, prefix=unique_prefix, cluster=True)
    try:
        layer.send("survivor", {"n": 1})
        slot = bucket_of(layer, "survivor").slot
        master = cluster.owner_of(slot)
        with redis.Redis(host=master.host, port=master.port) as client:
            assert client.execute_command("WAIT", 1, 5000) == 1  # replicated
        assert master.process is not None
        master.process.kill()
        master.process.wait()
        master.process = None

        def sends() -> bool:
            layer.send("survivor", {"n": 2})
            return True

        wait_until(
            sends,
            30,
            "the layer did not reach the promoted replica",
            ignore=(ChannelLayerConnectionError,),
            interval=0.1,
        )
        assert cluster.owner_of(slot) is not master
        assert layer.receive(["survivor"]) == ("survivor", {"n": 1})
        assert layer.receive(["survivor"]) == ("survivor", {"n": 2})
    finally:
        layer.close()
        cluster.cleanup()


def test_a_plain_redis_listed_as_a_cluster_says_what_to_change(
    redis_url: str, unique_prefix: str
) -> None:
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix, cluster=True)
    try:
        with pytest.raises(Exception, match=r"not a cluster node.*CONFIG\['cluster'\]"):
            layer.send("anything", {"n": 1})
    finally:
        layer.close()
