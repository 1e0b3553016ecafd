"""The Redis layer on a real Redis Cluster: key layout, group sends across nodes, resharding,
a master's failover.

The layer conformance suite runs against the cluster too (``redis-cluster`` in
tests/layers/test_conformance.py); this file holds what only a cluster has.
"""

from __future__ import annotations

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
    slot = bucket_of(layer, "moving").slot
    source = own_cluster.owner_of(slot)
    target = next(node for node in own_cluster.masters if node is not source)
    ids = {node.port: own_cluster.node_id(node) for node in own_cluster.masters}

    _migrate_keys(slot, source, target, ids)
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
