"""Redis Cluster key layout: the layer's keys, each tagged with the hash slot of its bucket.

A Lua script may only touch keys of one hash slot in a cluster, and the
layer's scripts touch several keys: a PUSH to a group's member lists and the
statistics hash, a receive over a process's lists, a claim next to its list.
So in cluster mode the layer's names are spread over a fixed number of
*buckets* by the same consistent hashing that spreads them over plain shards,
and every key of bucket *i* starts with the bucket's hash tag::

    {<tag i>}<prefix><channel>          a channel's list (a process's prefix!)
    {<tag i>}<prefix>stats              the bucket's statistics hash
    {<tag i>}<prefix>group:<name>       a group, on the bucket of "group:<name>"
    {<tag i>}<prefix>alive:<process>    liveness, claims: on the bucket of their list
    {<tag i>}<prefix>hygiene:...        the bucket's process registry; a process's
                                        ownership index and reaping lease (:mod:`.hygiene`)
    {<tag i>}<prefix>presence:<name>... a presence set, on the bucket of "presence:<name>"

Everything one script call touches is thus in one slot, and a group send
makes one PUSH call per bucket holding member lists (pushed concurrently,
several per node in one write), however many members there are.

The tags are chosen once, here, from the slot numbers alone: bucket *i*'s
tag hashes into the *i*-th of ``count`` equal slot ranges, so buckets spread
evenly over masters that own contiguous ranges, and every process computes
the same tags without asking the cluster. Keys keep their plain form
everywhere else in the layer: the bucket's transport adds the tag to each
key it sends (:func:`tag_command`) and takes it off the keys Redis returns
(:func:`untag_reply`). The plain (non-cluster) layout has no tags at all.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from redis.crc import key_slot

from .scripts import POP, Command

#: Hash slots of a Redis Cluster.
SLOTS = 16384

# Where the keys are in each command the layer sends: from the first argument
# on (all keys), the first argument only, or none.
_ALL_KEYS = frozenset({"EXISTS", "DEL", "UNLINK"})
_FIRST_KEY = frozenset(
    {"LPOP", "LPUSH", "RPUSH", "SET", "PEXPIRE", "EXPIRE", "ZADD", "ZREM", "HMGET", "LLEN"}
    | {"LINDEX", "ZRANGE", "GET"}
    | {"SADD", "SREM", "SMEMBERS", "ZCOUNT", "ZRANGEBYSCORE", "ZREMRANGEBYSCORE", "ZSCORE"}
    | {"TTL", "PTTL"}
)
_NO_KEYS = frozenset({"CLIENT", "SCRIPT", "PING", "CONFIG", "ASKING", "INFO"})


@lru_cache(maxsize=64)
def bucket_tags(count: int) -> tuple[str, ...]:
    """Return the hash tags of *count* buckets, bucket *i*'s in the *i*-th slot range."""
    if not isinstance(count, int) or isinstance(count, bool) or not 2 <= count <= SLOTS:
        raise ValueError(f"cluster_buckets must be an int from 2 to {SLOTS}, not {count!r}")
    tags: list[str] = []
    for index in range(count):
        low, high = index * SLOTS // count, (index + 1) * SLOTS // count
        candidate = 0
        while not low <= key_slot(b"%d" % candidate) < high:
            candidate += 1
        tags.append(str(candidate))
    return tuple(tags)


def slot_of(tag: str) -> int:
    """Return the hash slot of every key tagged *tag*."""
    return int(key_slot(tag.encode("ascii")))


def _tagged(tag: str, key: Any) -> Any:
    if isinstance(key, bytes):
        return b"{%s}%s" % (tag.encode("ascii"), key)
    return "{" + tag + "}" + key


def tag_command(tag: str, command: Command) -> Command:
    """Return *command* with each of its keys tagged *tag*; ``ValueError`` if unknown.

    A command this table does not know fails loudly: a key sent untagged
    would land in another slot, and a script touching it would fail there.
    """
    name = str(command[0]).upper()
    if name == "EVALSHA":
        count = int(command[2])
        keys = [_tagged(tag, key) for key in command[3 : 3 + count]]
        return (*command[:3], *keys, *command[3 + count :])
    if name == "BLPOP":
        return (name, *(_tagged(tag, key) for key in command[1:-1]), command[-1])
    if name in _FIRST_KEY:
        return (name, _tagged(tag, command[1]), *command[2:])
    if name in _ALL_KEYS:
        return (name, *(_tagged(tag, key) for key in command[1:]))
    if name in _NO_KEYS:
        return command
    raise ValueError(
        f"The Redis layer's cluster transport does not know where the keys of {name} are: "
        "add it to channels.layers.redis.slots"
    )


def untag(tag: str, key: bytes) -> bytes:
    """Return *key* (as Redis gave it) without its bucket's tag."""
    mark = b"{%s}" % tag.encode("ascii")
    return key[len(mark) :] if key.startswith(mark) else key


def untag_reply(tag: str, command: Command, reply: Any) -> Any:
    """Return *reply* to *command* with the keys in it untagged (those of BLPOP and POP)."""
    if not reply or isinstance(reply, Exception):
        return reply
    name = command[0]
    if name == "BLPOP" or (name == "EVALSHA" and command[1] == POP.sha):
        return [untag(tag, reply[0]), *reply[1:]]
    return reply
