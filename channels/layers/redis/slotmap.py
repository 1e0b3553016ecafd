"""Which master of a Redis Cluster owns each hash slot, and the cluster's own error replies.

:class:`ClusterNodes` is what a cluster layer's buckets (:mod:`.cluster`)
share: the slot map read with ``CLUSTER SLOTS``, corrected by ``MOVED``
replies, and one plain :class:`~.shard.Shard` per master, so a cluster node
gets exactly the exchanges a plain server gets.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import AskError, ClusterDownError, MovedError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from ...exceptions import ChannelLayerConfigurationError
from .shard import Shard
from .slots import SLOTS

#: (host, port) of a cluster node.
Address = tuple[str, int]

LOST = (RedisConnectionError, RedisTimeoutError, OSError)


#: The cluster's own error replies, by their first word.
_CLUSTER_REPLIES: dict[str, type[ResponseError]] = {
    "MOVED": MovedError,
    "ASK": AskError,
    "TRYAGAIN": TryAgainError,
    "CLUSTERDOWN": ClusterDownError,
}


#: The replies after which a command must be run again, elsewhere or later.
REDIRECTS = (MovedError, AskError, TryAgainError, ClusterDownError)


def as_cluster_error(reply: Any) -> Any:
    """Return *reply* as redis-py's cluster exception when it came as a plain ``ResponseError``.

    redis-py 5 gives ``MOVED``, ``ASK``, ``TRYAGAIN`` and ``CLUSTERDOWN``
    their classes only in its cluster client's parser; our connections use
    the plain one, so there they arrive as ``ResponseError("ASK 12 h:p")``.
    """
    if type(reply) is ResponseError:
        code, _, rest = str(reply).partition(" ")
        kind = _CLUSTER_REPLIES.get(code)
        if kind is not None:
            return kind(rest)
    return reply


def redirect_to(exc: AskError) -> Address:
    """Return the node an ``ASK``/``MOVED`` reply names (its text is ``<slot> <host>:<port>``)."""
    host, _, port = str(exc).split(" ")[-1].rpartition(":")
    return host, int(port)


class ClusterNodes:
    """Which master owns each slot of one cluster, and a :class:`Shard` for each master.

    The map is read with ``CLUSTER SLOTS`` from any node that answers (the
    masters seen last, then the seed hosts), on first use and again after a
    lost connection or a ``CLUSTERDOWN``, at most once per
    :attr:`refresh_interval`; ``MOVED`` replies correct it slot by slot.
    """

    #: Least seconds between two ``CLUSTER SLOTS`` reads (many calls fail at once in an outage).
    refresh_interval = 0.1

    def __init__(self, seeds: Sequence[Address], connection_kwargs: dict[str, Any]) -> None:
        self.seeds = list(seeds)
        self._kwargs = connection_kwargs
        self._owners: list[Address | None] = [None] * SLOTS
        self._nodes: dict[Address, Shard] = {}
        self._lock = threading.Lock()
        self._stale = True
        self._refreshed = float("-inf")
        self.has_password = bool(connection_kwargs.get("password"))
        #: The seeds, for messages: never a password.
        self.address = ", ".join(f"{host}:{port}" for host, port in self.seeds)

    def node(self, address: Address) -> Shard:
        """Return the shard of the node at *address*, made on first use."""
        shard = self._nodes.get(address)
        if shard is None:
            with self._lock:
                shard = self._nodes.get(address)
                if shard is None:
                    shard = self._nodes[address] = Shard(address, self._kwargs)
        return shard

    def owner(self, slot: int) -> Shard:
        """Return the shard of the master owning *slot*, reading the map first if stale."""
        if self._stale or self._owners[slot] is None:
            self.refresh()
        address = self._owners[slot]
        if address is None:
            raise RedisConnectionError(
                f"No master of the Redis Cluster at {self.address} owns slot {slot}"
            )
        return self.node(address)

    async def aowner(self, slot: int) -> Shard:
        """Async twin of :meth:`owner`; the map is read in a thread, never on the loop."""
        if self._stale or self._owners[slot] is None:
            await asyncio.to_thread(self.refresh)
        return self.owner(slot)

    def moved(self, slot: int, address: Address) -> None:
        """Note that *slot* is now served by *address* (a ``MOVED`` reply)."""
        self._owners[slot] = address
        self._stale = True  # other slots probably moved too

    def lost(self) -> None:
        """Note that a node could not be reached: read the map again before the next call."""
        self._stale = True

    def refresh(self) -> None:
        """Read the slot map from the first node that answers; raise if none does."""
        with self._lock:
            if not self._stale and any(self._owners):
                return
            now = time.monotonic()
            if now - self._refreshed < self.refresh_interval and any(self._owners):
                return
            self._refreshed = now
            candidates = list(dict.fromkeys([*self._masters(), *self.seeds]))
            error: Exception | None = None
            for address in candidates:
                try:
                    ranges = self._ask(address)
                except LOST as exc:
                    error = exc
                    continue
                owners: list[Address | None] = [None] * SLOTS
                for start, end, node in ranges:
                    owners[start : end + 1] = [node] * (end - start + 1)
                self._owners = owners
                self._stale = False
                return
            tried = ", ".join(map(_label, candidates))
            raise RedisConnectionError(
                f"No node of the Redis Cluster answered (tried {tried}): {error}"
            )

    def _masters(self) -> list[Address]:
        return [address for address in dict.fromkeys(self._owners) if address is not None]

    def _ask(self, address: Address) -> list[tuple[int, int, Address]]:
        timeout = self._kwargs.get("socket_connect_timeout") or 5
        kwargs = {k: v for k, v in self._kwargs.items() if k not in ("max_connections", "timeout")}
        kwargs.update(socket_timeout=timeout, socket_connect_timeout=timeout)
        # No retries: a dead node is skipped for the next candidate at once, not after
        # redis-py's backoff (which held every call of a failover for seconds more).
        kwargs["retry"] = Retry(NoBackoff(), 0)
        client = redis.Redis(host=address[0], port=address[1], **kwargs)
        try:
            # Unparsed, as in redis-py 5 to 8 (redis-py leaves execute_command unannotated).
            reply: Any = client.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
        except redis.ResponseError as exc:
            if "cluster support disabled" in str(exc):
                raise ChannelLayerConfigurationError(
                    f"Redis at {_label(address)} is not a cluster node, yet CONFIG['cluster'] is "
                    "True: list nodes of a Redis Cluster in CONFIG['hosts'], or drop 'cluster'"
                ) from exc
            raise
        finally:
            client.close()
        ranges = []
        for start, end, master, *_replicas in reply:
            host = master[0].decode() if isinstance(master[0], bytes) else master[0]
            ranges.append((int(start), int(end), (host or address[0], int(master[1]))))
        return ranges

    def close(self) -> None:
        for shard in list(self._nodes.values()):
            shard.close()

    async def aclose(self, loop: asyncio.AbstractEventLoop) -> None:
        for shard in list(self._nodes.values()):
            await shard.aclose(loop)


def _label(address: Address) -> str:
    return f"{address[0]}:{address[1]}"
