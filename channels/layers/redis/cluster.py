"""The Redis layer on a Redis Cluster: buckets routed to whichever master owns their slot.

With ``"cluster": True`` the layer's shards are not servers but the buckets
of :mod:`.slots`: one :class:`ClusterBucket` each, every key it sends tagged
with its bucket's hash slot. The buckets of a layer share one
:class:`~.slotmap.ClusterNodes`, which knows (from ``CLUSTER SLOTS``) which master owns
each slot and keeps one plain :class:`~.shard.Shard` per master. So a
cluster node gets exactly the exchanges a plain server gets (one write per
batch, kept connections, scripts reloaded on ``NOSCRIPT``, batched async
calls, ``CLIENT UNBLOCK`` for receives over several buckets), and concurrent
calls for the buckets of one node share its pipeline.

Why not redis-py's ``RedisCluster``: it routes and parses command by command,
raises on the first error of a pipeline, and hides the connection a
``BLPOP`` waits on, so a receive over several slots could not be woken with
``CLIENT UNBLOCK``; the layer would lose its one-write exchanges and error
values. Routing a bucket is one slot lookup, so it is done here.

Redirections are followed here, bounded by :attr:`ClusterBucket.max_redirects`:
``MOVED`` (the slot has a new owner: resharding, or a promoted replica)
updates the map and runs the command again there; ``ASK`` (the slot is being
migrated and the keys are already on the target) runs it once on the target
after ``ASKING``; ``TRYAGAIN`` (a multi-key script during a migration) waits
:attr:`~ClusterBucket.try_again_delay` and tries again. A node that cannot be
reached, or a cluster that answers ``CLUSTERDOWN`` while it fails over, is
an outage like a plain server's (a :class:`redis.ConnectionError`, which the
layer turns into :class:`~channels.exceptions.ChannelLayerConnectionError`),
and the next call asks the cluster again who owns the slot: when a replica
has been promoted, every process finds it by itself. Commands are never
resent after a lost connection: a send might then be delivered twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from typing import Any

from redis.exceptions import AskError, ClusterDownError, MovedError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError

from .scripts import POP, Command, Script
from .shard import Shard, _parse_url
from .slotmap import LOST, REDIRECTS, Address, ClusterNodes, as_cluster_error, redirect_to
from .slots import bucket_tags, slot_of, tag_command, untag, untag_reply

#: Settings of a host URL that name one server, not how to talk to every node.
_SERVER_SETTINGS = ("host", "port", "db", "path")


class _IdsOf(dict):  # type: ignore[type-arg]  # only __setitem__ is used
    """Record under the bucket the ``CLIENT ID`` its node's connection notes for itself."""

    def __init__(self, ids: dict[Shard, int], bucket: ClusterBucket) -> None:
        super().__init__()
        self._ids = ids
        self._bucket = bucket

    def __setitem__(self, _node: Shard, client_id: int) -> None:
        self._ids[self._bucket] = client_id


class ClusterBucket(Shard):
    """One bucket of a cluster layer's keys: the :class:`Shard` of whichever master owns its slot.

    It has no server of its own: every call tags its keys (:mod:`.slots`),
    runs on the owning master's shard and follows redirections.
    """

    #: Redirections (``MOVED``, ``ASK``, ``TRYAGAIN``) one call follows before it fails.
    max_redirects = 5
    #: Seconds to wait before trying a ``TRYAGAIN`` command again.
    try_again_delay = 0.05

    def __init__(self, tag: str, nodes: ClusterNodes) -> None:  # no Shard.__init__: no server
        self.tag = tag
        self.slot = slot_of(tag)
        self._nodes = nodes
        self.label = f"cluster {nodes.address}"
        self.address = nodes.address
        self.db = 0
        self.has_password = nodes.has_password

    def __repr__(self) -> str:
        return f"<ClusterBucket {{{self.tag}}} slot {self.slot}>"

    # The redirect loop's CPU-only half ---------------------------------------

    def _sort(
        self, pending: list[int], replies: list[Any], results: list[Any]
    ) -> tuple[list[int], Address | None, bool]:
        """File *replies* to *pending* into *results*; return what to run again, where, and
        whether to wait first (``TRYAGAIN``)."""
        again: list[int] = []
        ask: Address | None = None
        wait = False
        for index, raw in zip(pending, replies, strict=True):
            reply = as_cluster_error(raw)
            if isinstance(reply, MovedError):
                self._nodes.moved(self.slot, redirect_to(reply))
                again.append(index)
            elif isinstance(reply, AskError):
                ask = redirect_to(reply)
                again.append(index)
            elif isinstance(reply, TryAgainError):
                wait = True
                again.append(index)
            elif isinstance(reply, ClusterDownError):
                self._nodes.lost()
                results[index] = RedisConnectionError(f"The Redis Cluster is down: {reply}")
            else:
                results[index] = reply
        return again, ask, wait

    @staticmethod
    def _asking(commands: list[Command]) -> list[Command]:
        return [part for command in commands for part in (("ASKING",), command)]

    def _untagged(self, commands: Sequence[Command], results: list[Any]) -> list[Any]:
        return [untag_reply(self.tag, c, r) for c, r in zip(commands, results, strict=True)]

    def _too_many(self) -> RedisConnectionError:
        self._nodes.lost()
        return RedisConnectionError(
            f"Redis Cluster slot {self.slot} kept moving ({self.max_redirects} redirections)"
        )

    # Sync ----------------------------------------------------------------

    def run(self, commands: Sequence[Command], retry: int | None = None) -> list[Any]:
        tagged = [tag_command(self.tag, command) for command in commands]
        results: list[Any] = [None] * len(tagged)
        pending = list(range(len(tagged)))
        ask: Address | None = None
        for _ in range(self.max_redirects + 1):
            batch = [tagged[index] for index in pending]
            try:
                if ask is None:
                    replies = self._nodes.owner(self.slot).run(batch, retry)
                else:
                    replies = self._nodes.node(ask).run(self._asking(batch))[1::2]
            except LOST:
                self._nodes.lost()
                raise
            retry = None
            pending, ask, wait = self._sort(pending, replies, results)
            if not pending:
                return self._untagged(commands, results)
            if wait:
                time.sleep(self.try_again_delay)
        raise self._too_many()

    def eval(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        (result,) = self.run([("EVALSHA", script.sha, len(keys), *keys, *args)])
        if isinstance(result, Exception):
            raise result
        return result

    def scan(self, pattern: str, count: int = 1000) -> Iterator[bytes]:
        """Yield this bucket's keys matching *pattern* (untagged), from its slot's master."""
        node = self._nodes.owner(self.slot)
        for key in node.scan("{" + self.tag + "}" + pattern, count):
            yield untag(self.tag, key)

    def database_count(self, timeout: float) -> int:
        """Return 1: a Redis Cluster has database 0 only."""
        return 1

    def close(self) -> None:
        self._nodes.close()

    # Async ---------------------------------------------------------------

    async def _aredirected(self, name: str, commands: Sequence[Command]) -> list[Any]:
        """Run *commands* on kept connection *name* of the owner, following redirections."""
        tagged = [tag_command(self.tag, command) for command in commands]
        results: list[Any] = [None] * len(tagged)
        pending = list(range(len(tagged)))
        ask: Address | None = None
        for _ in range(self.max_redirects + 1):
            batch = [tagged[index] for index in pending]
            try:
                if ask is None:
                    node = await self._nodes.aowner(self.slot)
                    replies = await node.aexchange(name, batch)
                else:
                    node = self._nodes.node(ask)
                    replies = (await node.aexchange(name, self._asking(batch)))[1::2]
            except LOST:
                self._nodes.lost()
                raise
            pending, ask, wait = self._sort(pending, replies, results)
            if not pending:
                return self._untagged(commands, results)
            if wait:
                await asyncio.sleep(self.try_again_delay)
        raise self._too_many()

    async def acall(self, command: Command) -> Any:
        """Run one command, batched with the other calls to its node; follow redirections."""
        node = await self._nodes.aowner(self.slot)
        try:
            try:
                reply = await node.acall(tag_command(self.tag, command))
            except ResponseError as exc:
                raise as_cluster_error(exc) from None
        except (AskError, TryAgainError, ClusterDownError):
            # The rare path: run it again on a kept connection, where redirections are followed.
            (reply,) = await self._aredirected("redirected", [command])
            if isinstance(reply, Exception):
                raise reply from None
            return reply
        except LOST:
            self._nodes.lost()
            raise
        return untag_reply(self.tag, command, reply)

    async def aeval(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return await self.acall(("EVALSHA", script.sha, len(keys), *keys, *args))

    async def aexchange(self, name: str, commands: Sequence[Command]) -> list[Any]:
        return await self._aredirected(name, commands)

    async def ablpop_unblockable(
        self, keys: Sequence[str], wait: float, client_ids: dict[Shard, int]
    ) -> Any:
        command = tag_command(self.tag, ("BLPOP", *keys, wait))
        for _ in range(self.max_redirects + 1):
            node = await self._nodes.aowner(self.slot)
            try:
                try:
                    popped = await node.ablpop_unblockable(
                        command[1:-1], wait, _IdsOf(client_ids, self)
                    )
                except ResponseError as exc:
                    raise as_cluster_error(exc) from None
            except MovedError as exc:
                self._nodes.moved(self.slot, redirect_to(exc))
                continue
            except (AskError, TryAgainError):
                # The slot is migrating and these lists are (partly) on the target: take
                # what is there now, following ASK; the caller's next receive waits again.
                pop = ("EVALSHA", POP.sha, len(keys), *keys)
                (popped,) = await self._aredirected("redirected", [pop])
                if isinstance(popped, Exception):
                    raise popped from None
                return popped
            except ClusterDownError as exc:
                self._nodes.lost()
                raise RedisConnectionError(f"The Redis Cluster is down: {exc}") from exc
            except LOST:
                self._nodes.lost()
                raise
            return untag_reply(self.tag, command, popped)
        raise self._too_many()

    async def aclose(self, loop: asyncio.AbstractEventLoop) -> None:
        await self._nodes.aclose(loop)


def run_together(calls: Sequence[tuple[ClusterBucket, Command]]) -> list[Any]:
    """Run each command on its bucket, the commands of one master in one write; return replies.

    A sync group send pushes to many buckets, a few of them on each master:
    so it costs one round trip per master, not one per bucket. Error
    replies are values; a command redirected meanwhile (``MOVED``, ``ASK``,
    ``TRYAGAIN``, ``CLUSTERDOWN``) is run again on its own bucket, which
    follows the redirection.
    """
    by_node: dict[Shard, list[int]] = {}
    for index, (bucket, _command) in enumerate(calls):
        by_node.setdefault(bucket._nodes.owner(bucket.slot), []).append(index)
    results: list[Any] = [None] * len(calls)
    for node, indexes in by_node.items():
        batch = [tag_command(calls[i][0].tag, calls[i][1]) for i in indexes]
        try:
            replies = node.run(batch)
        except LOST:
            calls[indexes[0]][0]._nodes.lost()
            raise
        for index, reply in zip(indexes, replies, strict=True):
            bucket, command = calls[index]
            if isinstance(as_cluster_error(reply), REDIRECTS):
                (reply,) = bucket.run([command])
            results[index] = untag_reply(bucket.tag, command, reply)
    return results


def cluster_buckets(
    hosts: Sequence[Any], connection_kwargs: dict[str, Any], count: int
) -> list[ClusterBucket]:
    """Return the *count* buckets of a layer on the cluster whose seed nodes are *hosts*.

    The hosts are only where to start: any nodes of the cluster, in any
    order (every process may list different ones). Their URLs' password,
    user and TLS settings apply to every node; the database must be 0.
    """
    seeds: list[Address] = []
    kwargs = dict(connection_kwargs)
    for host in hosts:
        if isinstance(host, str) and host.startswith(("redis://", "rediss://")):
            settings = _parse_url(host)
            if int(settings.get("db") or 0) != 0:
                where = host.split("@")[-1]
                raise ValueError(f"A Redis Cluster has database 0 only: drop the db from {where!r}")
            seeds.append((settings.get("host") or "localhost", int(settings.get("port") or 6379)))
            for option, value in settings.items():
                if option not in _SERVER_SETTINGS:
                    kwargs.setdefault(option, value)
        elif isinstance(host, Sequence) and not isinstance(host, str) and len(host) == 2:
            seeds.append((str(host[0]), int(host[1])))
        else:
            raise ValueError(
                f"Each node of a Redis Cluster must be a URL such as 'redis://10.0.0.1:6379' or a "
                f"(host, port) pair, not {host!r}"
            )
    nodes = ClusterNodes(seeds, kwargs)
    return [ClusterBucket(tag, nodes) for tag in bucket_tags(count)]
