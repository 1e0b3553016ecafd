"""A channel layer on one or more Redis servers, for processes on many machines.

Each channel is a Redis list of entries (:mod:`.entries`). A send is one Lua
script call (:mod:`.scripts`) that checks capacity, pushes and counts; a
receive is one ``BLPOP`` (or ``LPOP`` script) that takes the message off the
list, so nothing is left behind to leak. Several hosts shard the layer by
consistent hashing: a channel, a process's ``prefix!`` channels and each
group live on one shard. Groups, presence and the housekeeping that keeps
them free of dead processes are :mod:`.membership`'s. Where each message goes is the
:class:`~.router.KeyRouter`'s to say; every exchange with a server is its
:class:`~.shard.Shard`'s; this module puts the two together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from ...exceptions import ChannelLayerConnectionError
from ..base import Message, ReceiveResult, SendsThenPoll
from ..names import require_valid_channel_name, stats_name
from . import scripts, statistics
from .entries import ReadAhead
from .errors import TranslateErrors
from .fanin import FanIn
from .groups import GroupFanOut
from .hygiene import Reaper
from .liveness import ProcessLiveness
from .membership import MembershipMethods
from .ownership import Ownership
from .presence import PresenceSets
from .router import KeyRouter
from .seal import entry_seal
from .shard import RECEIVE, Shard
from .transports import make_shards, pool_settings

#: The PUSH of one send: its shard, keys and arguments.
_Push = tuple[Shard, list[str], list[Any]]


class RedisChannelLayer(MembershipMethods):
    """Channel layer backed by Redis (redis-py, sync and asyncio clients).

    Options, besides those of :class:`~channels.layers.base.BaseChannelLayer`:

    ``hosts``
        A list of Redis URLs or ``(host, port)`` pairs; more than one shards
        the layer. Every process must use the same list.
    ``prefix``
        Prefix of every key (default ``"asgi:"``); layers with different
        prefixes share a Redis server without seeing each other.
    ``connection_kwargs``
        Extra keyword arguments for redis-py's connection pools (password,
        SSL options, ``socket_timeout``, ``max_connections``...).
    ``process_ttl``
        Seconds a process that receives on its ``prefix!`` channels (an
        interface server) still reads as alive after its last receive
        (default 10): how soon :meth:`process_alive` notices a killed one,
        and how soon housekeeping (:meth:`maintain`) starts reaping its
        group memberships and presence entries. Its receives refresh it
        about once a second; a clean close ends it, and reaps, at once
        (:mod:`.liveness`, :mod:`.hygiene`).
    ``cluster``
        True when ``hosts`` are nodes of a Redis Cluster (any: the rest are
        discovered). Keys then carry hash tags, so each script call stays in
        one slot (:mod:`.slots`); calls follow redirections (:mod:`.cluster`).
    """

    extensions = ["groups", "flush", "statistics", "presence"]

    #: Connections per pool; callers wait for a free one instead of failing.
    max_connections = 1000
    #: Entries a process takes from its own ``prefix!`` channel in one round trip.
    process_batch = 64
    #: The transport of one server; a subclass may use another (Sentinel, Cluster...).
    shard_class: ClassVar[type[Shard]] = Shard
    #: Buckets a cluster layer spreads its names over (each one hash slot); every
    #: process must use the same number. More spread a cluster's load finer;
    #: a group send makes at most one script call per bucket.
    cluster_buckets = 16

    def __init__(
        self,
        hosts: Sequence[Any] | None = None,
        prefix: str = "asgi:",
        connection_kwargs: dict[str, Any] | None = None,
        process_ttl: float = 10,
        cluster: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if hosts is None:
            hosts = [("localhost", 6379)]
        if isinstance(hosts, str | bytes) or not isinstance(hosts, Sequence) or not hosts:
            raise ValueError(
                "hosts must be a list of Redis URLs or (host, port) pairs, even if there is "
                f"only one, not {hosts!r}"
            )
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix must be a non-empty str, not {prefix!r}")
        kwargs, self._max_block = pool_settings(
            connection_kwargs, self.max_connections, self.blocking_timeout
        )
        self.prefix = prefix
        self.hosts = list(hosts)
        self.cluster = cluster  # the hosts are nodes of a Redis Cluster
        self._shards = make_shards(
            self.hosts, kwargs, self.shard_class, cluster, self.cluster_buckets
        )
        self._router = router = KeyRouter(
            prefix,
            self._shards,
            expiry=self.expiry,
            group_expiry=self.group_expiry,
            capacity=self.capacity,
            get_capacity=self.get_capacity,
            per_channel_capacity=bool(self._capacity_rules),
            encode=self.codec.encode,
            seal=entry_seal(self.codec),
        )
        self._ring = router.ring
        # The router's methods, bound here: a send or receive looks one name up, as
        # it did when they were the layer's own.
        self._send_plan = router.send_plan
        self._push_plan = router.push_plan
        self._receive_plan = router.receive_plan
        self._group_key = router.group_key
        self._membership = router.membership
        self._channel_key = router.channel_key
        self._translate_errors = TranslateErrors(self._shards)
        self._groups = GroupFanOut(self._shards, router, self._translate_errors)
        self._stats_key = router.stats_key
        self._read_ahead = ReadAhead(self.codec, prefix, router.shard_of_key)
        self._fan_in = fan_in = FanIn(self._shards, self._read_ahead)
        self._pop_now = fan_in.pop_now
        self._apop_now = fan_in.apop_now
        # Groups and presence kept free of dead processes (:mod:`.membership`).
        self._ownership = ownership = Ownership(prefix, router, int(self.group_expiry))
        self._presence = PresenceSets(
            router, ownership, lambda: self.presence_grace, int(self.group_expiry)
        )
        self._reaper = Reaper(ownership, router, self._presence)
        self._liveness = ProcessLiveness(
            prefix,
            process_ttl,
            int(self.group_expiry),
            ownership.shard_of,
            self._translate_errors,
            registry=ownership.registry,
            on_withdraw=self._reaper.reap_own,
        )

    def __repr__(self) -> str:
        hosts = ", ".join(dict.fromkeys(shard.label for shard in self._shards))
        return f"<{type(self).__name__} hosts=[{hosts}] prefix={self.prefix!r}>"

    # Channels ------------------------------------------------------------

    def send(self, channel: str, message: Message) -> None:
        shard, keys, args = self._send_plan(channel, message)
        with self._translate_errors:
            status = shard.eval(scripts.PUSH, keys, args)
        if status[0] >= 2:
            raise self.ChannelFull(f"Channel {stats_name(channel)!r} is at capacity")

    async def asend(self, channel: str, message: Message) -> None:
        shard, keys, args = self._send_plan(channel, message)
        with self._translate_errors:
            status = await shard.aeval(scripts.PUSH, keys, args)
        if status[0] >= 2:
            raise self.ChannelFull(f"Channel {stats_name(channel)!r} is at capacity")

    def send_encoded(self, channel: str, data: bytes) -> None:
        shard, keys, args = self._push_plan(channel, data)
        with self._translate_errors:
            status = shard.eval(scripts.PUSH, keys, args)
        if status[0] >= 2:
            raise self.ChannelFull(f"Channel {stats_name(channel)!r} is at capacity")

    async def asend_encoded(self, channel: str, data: bytes) -> None:
        shard, keys, args = self._push_plan(channel, data)
        with self._translate_errors:
            status = await shard.aeval(scripts.PUSH, keys, args)
        if status[0] >= 2:
            raise self.ChannelFull(f"Channel {stats_name(channel)!r} is at capacity")

    def send_then_poll(
        self, sends: Sequence[tuple[str, Message]], channels: Iterable[str]
    ) -> SendsThenPoll:
        """Push *sends*, then pop from *channels*, in one write and one read (one server only)."""
        return self._push_then_pop(sends, channels, self._send_plan, super().send_then_poll)

    def send_encoded_then_poll(
        self, sends: Sequence[tuple[str, bytes]], channels: Iterable[str]
    ) -> SendsThenPoll:
        """:meth:`send_then_poll` for messages :meth:`encode` made."""
        return self._push_then_pop(sends, channels, self._push_plan, super().send_encoded_then_poll)

    def _push_then_pop(
        self,
        sends: Sequence[tuple[str, Any]],
        channels: Iterable[str],
        plan: Callable[[str, Any], _Push],
        one_by_one: Callable[[Any, Iterable[str]], SendsThenPoll],
    ) -> SendsThenPoll:
        """Run the PUSH of each send as *plan* makes it, then a pop, in one round trip.

        With several servers, or messages already read ahead for *channels*,
        it sends *one_by_one* instead, and takes nothing.
        """
        keys, by_shard = self._receive_plan(channels)
        if len(self._shards) > 1 or not keys or self._read_ahead.ready(keys):
            return one_by_one(sends, channels)
        errors: list[Exception | None] = [None] * len(sends)
        commands: list[tuple[Any, ...]] = []
        queued: list[int] = []
        for index, (channel, message) in enumerate(sends):
            try:
                _, push_keys, args = plan(channel, message)
            except Exception as exc:
                errors[index] = exc
                continue
            commands.append(("EVALSHA", scripts.PUSH.sha, len(push_keys), *push_keys, *args))
            queued.append(index)
        commands.append(("EVALSHA", scripts.POP.sha, len(keys), *by_shard[0]))
        try:
            with self._translate_errors:
                # A pop that found its script missing is not run again: (None, None)
                # only means nothing was taken this way, and the next poll takes it.
                results = self._shards[0].run(commands, retry=len(queued))
        except ChannelLayerConnectionError as exc:
            for index in queued:
                errors[index] = exc
            return errors, (None, None)
        for index, status in zip(queued, results, strict=False):
            if isinstance(status, Exception):
                errors[index] = self._translate_errors.translated(status) or status
            elif status[0] >= 2:
                errors[index] = self.ChannelFull(
                    f"Channel {stats_name(sends[index][0])!r} is at capacity"
                )
        popped = results[-1]
        if not popped or isinstance(popped, Exception):
            return errors, (None, None)
        return errors, self._read_ahead.deliver(popped[0].decode("ascii"), popped[1])

    def receive(
        self, channels: Iterable[str], block: bool = False, *, timeout: float | None = None
    ) -> ReceiveResult:
        keys, by_shard = self._receive_plan(channels)
        if not keys:
            return None, None
        deadline = time.monotonic() + (self.blocking_timeout if timeout is None else timeout)
        while True:
            result = self._read_ahead.take(keys)
            if result[0] is not None:
                return result
            with self._translate_errors:
                if not block:
                    popped = self._pop_now(by_shard)
                elif len(by_shard) == 1:
                    ((shard, shard_keys),) = by_shard.items()
                    wait = max(0.01, min(deadline - time.monotonic(), self._max_block))
                    popped = self._blpop(self._shards[shard], shard_keys, wait)
                else:
                    wait = max(0.01, min(deadline - time.monotonic(), self._max_block))
                    popped = self._fan_in.blpop(by_shard, wait)
            if popped is not None:
                result = self._read_ahead.deliver(popped[0].decode("ascii"), popped[1])
                if result[0] is not None:
                    return result
                continue  # expired or undecodable: look again
            if not block or time.monotonic() >= deadline:
                return None, None

    async def areceive(
        self, channels: Iterable[str], block: bool = False, *, timeout: float | None = None
    ) -> ReceiveResult:
        keys, by_shard = self._receive_plan(channels)
        if not keys:
            return None, None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.blocking_timeout if timeout is None else timeout)
        while True:
            result = self._read_ahead.take(keys)
            if result[0] is not None:
                return result
            wait = max(0.01, min(deadline - loop.time(), self._max_block))
            with self._translate_errors:
                if not block:
                    popped = await self._apop_now(by_shard)
                elif len(keys) == 1 and keys[0].endswith("!"):
                    ((shard, _),) = by_shard.items()
                    if await self._ablpop_process(self._shards[shard], keys[0], wait):
                        continue  # the messages wait in the read-ahead
                    popped = None
                elif len(by_shard) == 1:
                    ((shard, shard_keys),) = by_shard.items()
                    (popped,) = await self._shards[shard].aexchange(
                        RECEIVE, [("BLPOP", *shard_keys, wait)]
                    )
                    if isinstance(popped, Exception):
                        raise popped
                else:
                    popped = await self._fan_in.ablpop(by_shard, wait)
            if popped is not None:
                result = await self._read_ahead.adeliver(popped[0].decode("ascii"), popped[1])
                if result[0] is not None:
                    return result
                continue
            if not block or loop.time() >= deadline:
                return None, None

    def _blpop(self, shard: Shard, keys: list[str], wait: float) -> Any:
        """``BLPOP`` *keys* on *shard*; on a process's own channel, say it is alive too."""
        announce: list[Any] = []
        if len(keys) == 1 and keys[0].endswith("!"):
            announce = self._liveness.announce(keys[0][len(self.prefix) :])
            wait = min(wait, self._liveness.longest_wait)
        *_, popped = shard.run([*announce, ("BLPOP", *keys, wait)])
        if isinstance(popped, Exception):
            raise popped
        return popped

    async def _ablpop_process(self, shard: Shard, key: str, wait: float) -> bool:
        """BLPOP a process's own channel, and in the same round trip take its backlog.

        Only the owning process reads a ``prefix!`` channel, so reading ahead is
        safe there: a busy interface server then needs one round trip per batch
        of replies instead of one per reply. Everything goes through the
        read-ahead, so each channel's messages stay in order. The same write
        says the process is alive (:mod:`.liveness`). Return whether anything
        was taken.
        """
        announce = self._liveness.announce(key[len(self.prefix) :])
        wait = min(wait, self._liveness.longest_wait)
        *_, popped, more = await shard.aexchange(
            key, [*announce, ("BLPOP", key, wait), ("LPOP", key, self.process_batch - 1)]
        )
        for result in (popped, more):
            if isinstance(result, Exception):
                raise result
        if popped is None:
            return False
        await self._read_ahead.akeep(key, (popped[1], *(more or ())))
        return True

    # Flush, statistics, close --------------------------------------------

    #: Keys a flush deletes per ``UNLINK``.
    flush_batch = 500

    def flush(self) -> None:
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix) + "*"
        with self._translate_errors:
            for shard in self._shards:
                batch = []
                for key in shard.scan(pattern):
                    batch.append(key)
                    if len(batch) >= self.flush_batch:
                        shard.execute(("UNLINK", *batch))
                        batch = []
                if batch:
                    shard.execute(("UNLINK", *batch))
        self._read_ahead.clear()

    async def aflush(self) -> None:
        await asyncio.to_thread(self.flush)

    def global_statistics(self) -> dict[str, int]:
        with self._translate_errors:
            return statistics.global_statistics(self._shards, self._stats_key)

    def channel_statistics(self, channel: str) -> dict[str, int]:
        require_valid_channel_name(channel)
        key, _, index = self._channel_key(channel)
        with self._translate_errors:
            return statistics.channel_statistics(
                self._shards[index], self._stats_key, key, stats_name(channel), self.expiry
            )

    # Which processes are alive -------------------------------------------

    def process_alive(self, channel: str) -> bool:
        """Return whether the process that reads *channel* (a ``prefix!...`` name) is alive.

        False only for a process known to have gone (killed: its key expired;
        closed: it deleted it); True for a normal channel and for a process
        never heard of. Answers are cached per process for about a second.
        """
        return self._liveness.alive(channel)

    async def aprocess_alive(self, channel: str) -> bool:
        """Async twin of :meth:`process_alive`."""
        return await self._liveness.aalive(channel)

    def close(self) -> None:
        """Say this process's receivers are gone, put back messages read ahead, disconnect.

        Their channels leave every group, and their presence entries are
        released, at once (:meth:`.hygiene.Reaper.reap_own`).
        """
        self._liveness.withdraw()
        for key, entries in self._read_ahead.drain().items():
            with self._translate_errors:
                self._router.shard_of_key(key).execute(("LPUSH", key, *entries))
        for shard in self._shards:
            shard.close()
        self._fan_in.close()

    async def aclose(self) -> None:
        """Close this event loop's connections, then everything :meth:`close` closes."""
        loop = asyncio.get_running_loop()
        for shard in self._shards:
            await shard.aclose(loop)
        await asyncio.to_thread(self.close)
