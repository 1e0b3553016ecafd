"""A channel layer on one or more Redis servers, for processes on many machines.

Each channel is a Redis list of entries (:mod:`.entries`). A send is one Lua
script call (:mod:`.scripts`) that checks capacity, pushes and counts; a
receive is one ``BLPOP`` (or ``LPOP`` script) that takes the message off the
list, so nothing is left behind to leak. Several hosts shard the layer by
consistent hashing: a channel, a process's ``prefix!`` channels and each
group live on one shard. This module decides what to send where; every
exchange with a server is its :class:`~.shard.Shard`'s.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, ClassVar

from ...exceptions import ChannelLayerConnectionError
from ..base import BaseChannelLayer, Message, ReceiveResult
from ..names import non_local_part, require_valid_channel_name, require_valid_group_name, stats_name
from . import scripts
from .entries import ReadAhead, deadline_of, header, now_ms
from .errors import TranslateErrors
from .hashring import HashRing
from .shard import RECEIVE, PrivateLoops, Shard, ablpop_any

#: {list key: (local parts, channel names)}: where one push goes on one shard.
_Targets = dict[str, tuple[bytes, list[str]]]
#: (keys, args, channel names per list) of one PUSH call.
_PushCall = tuple[list[str], list[Any], list[list[str]]]


def _rotated(items: list[str]) -> list[str]:
    """*items* starting from a random one (cheaper than shuffling, as fair for BLPOP)."""
    start = random.randrange(len(items))
    return items[start:] + items[:start]


def _dead(status: list[int], owners: list[list[str]]) -> list[str]:
    """Return the members whose list held a message that expired unread."""
    return [name for code, names in zip(status, owners, strict=True) if code & 1 for name in names]


class RedisChannelLayer(BaseChannelLayer):
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
    """

    extensions = ["groups", "flush", "statistics"]

    #: Connections per pool; callers wait for a free one instead of failing.
    max_connections = 1000
    #: Entries a process takes from its own ``prefix!`` channel in one round trip.
    process_batch = 64
    #: The transport of one server; a subclass may use another (Sentinel, Cluster...).
    shard_class: ClassVar[type[Shard]] = Shard

    def __init__(
        self,
        hosts: Sequence[Any] | None = None,
        prefix: str = "asgi:",
        connection_kwargs: dict[str, Any] | None = None,
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
        kwargs: dict[str, Any] = {
            "socket_connect_timeout": 5,
            "socket_keepalive": True,
            "max_connections": self.max_connections,
            "timeout": None,
            **(connection_kwargs or {}),
        }
        socket_timeout = kwargs.setdefault("socket_timeout", self.blocking_timeout + 10)
        # A blocking receive must return before the socket times out, or an idle
        # worker would see a timeout error instead of an empty receive.
        self._max_block = (
            self.blocking_timeout if socket_timeout is None else max(0.1, socket_timeout - 1)
        )
        self.prefix = prefix
        self.hosts = list(hosts)
        self._shards = [self.shard_class(host, kwargs) for host in self.hosts]
        self._ring = HashRing(len(self._shards))
        self._translate_errors = TranslateErrors(self._shards)
        self._stats_key = prefix + "stats"
        self._list_ttl = int(self.expiry * 2) + 1
        self._read_ahead = ReadAhead(self.codec, prefix)
        self._private_loops = PrivateLoops()
        self._channel_key = lru_cache(maxsize=8192)(self._lookup_channel_key)
        self._plan = lru_cache(maxsize=256)(self._lookup_plan)

    def __repr__(self) -> str:
        hosts = ", ".join(shard.label for shard in self._shards)
        return f"<{type(self).__name__} hosts=[{hosts}] prefix={self.prefix!r}>"

    # Keys and plans (CPU only, shared by the sync and async twins) ------

    def _lookup_channel_key(self, channel: str) -> tuple[str, bytes, int]:
        """Return (list key, local part, shard index) of *channel*."""
        stored = non_local_part(channel)
        local = channel[len(stored) :].encode("ascii")
        return self.prefix + stored, local, self._ring.shard_for(stored)

    def _group_key(self, group: str) -> tuple[str, Shard]:
        require_valid_group_name(group)
        return self.prefix + "group:" + group, self._shards[self._ring.shard_for("group:" + group)]

    def _membership(self, group: str, channel: str) -> tuple[str, Shard]:
        key, shard = self._group_key(group)
        require_valid_channel_name(channel)
        return key, shard

    def _receive_plan(self, channels: Iterable[str]) -> tuple[list[str], dict[int, list[str]]]:
        if isinstance(channels, str):
            raise TypeError("receive() takes a list of channel names, not a single str")
        keys, by_shard = self._plan(tuple(channels))
        if len(keys) <= 1:
            return keys, by_shard
        # A busy channel must not starve a quiet one: BLPOP serves keys in order.
        return _rotated(keys), {shard: _rotated(names) for shard, names in by_shard.items()}

    def _lookup_plan(self, channels: tuple[str, ...]) -> tuple[list[str], dict[int, list[str]]]:
        """Return the list keys of *channels*, and the same keys grouped by shard."""
        keys = list(
            {self._channel_key(require_valid_channel_name(c, receive=True))[0]: c for c in channels}
        )
        by_shard: dict[int, list[str]] = defaultdict(list)
        for key in keys:
            by_shard[self._ring.shard_for(key[len(self.prefix) :])].append(key)
        return keys, dict(by_shard)

    def _push_args(self, targets: _Targets, data: bytes, *, group: bool = False) -> _PushCall:
        """Build PUSH script arguments for {list key: (local parts, channel names)}.

        With *group*, a list found holding an expired message gets nothing.
        """
        now = time.time()
        deadline = int((now + self.expiry) * 1000)
        keys: list[str] = []
        args: list[Any] = [int(now * 1000), self._list_ttl, data, 1 if group else 0]
        owners: list[list[str]] = []
        for key, (locals_, names) in targets.items():
            keys.append(key)
            args += [self.get_capacity(names[0]), header(deadline, locals_), stats_name(names[0])]
            owners.append(names)
        keys.append(self._stats_key)
        return keys, args, owners

    def _send_plan(self, channel: str, message: Message) -> tuple[Shard, list[str], list[Any]]:
        """Return the shard, keys and args of the PUSH that sends *message* to *channel*."""
        require_valid_channel_name(channel)
        data = self.codec.encode(message)
        key, local, shard = self._channel_key(channel)
        keys, args, _ = self._push_args({key: (local, [channel])}, data)
        return self._shards[shard], keys, args

    def _group_targets(self, members: list[str]) -> dict[int, _Targets]:
        """Group members by shard and list; one entry per process prefix."""
        plan: dict[int, _Targets] = defaultdict(dict)
        for channel in members:
            key, local, shard = self._channel_key(channel)
            targets = plan[shard]
            if key in targets and local:
                locals_, names = targets[key]
                targets[key] = (locals_ + b"," + local, [*names, channel])
            else:
                targets[key] = (local, [channel])
        return plan

    def _one_call_group_send(self, key: str, data: bytes) -> tuple[list[str], list[Any]] | None:
        """Return GROUP_SEND arguments when one script call can do the whole send."""
        if len(self._shards) > 1 or self._capacity_rules:
            return None
        now = time.time()
        args = [
            int(now * 1000),
            now - self.group_expiry,
            self._list_ttl,
            data,
            self.capacity,
            int((now + self.expiry) * 1000),
            self.prefix,
        ]
        return [key, self._stats_key], args

    def _members_cutoff(self) -> list[float]:
        return [time.time() - self.group_expiry]

    # Channels ------------------------------------------------------------

    def send(self, channel: str, message: Message) -> None:
        shard, keys, args = self._send_plan(channel, message)
        with self._translate_errors:
            status = shard.eval(scripts.PUSH, keys, args)
        if status[0] >= 2:
            raise self.ChannelFull(f"Channel {channel!r} is at capacity")

    async def asend(self, channel: str, message: Message) -> None:
        shard, keys, args = self._send_plan(channel, message)
        with self._translate_errors:
            status = await shard.aeval(scripts.PUSH, keys, args)
        if status[0] >= 2:
            raise self.ChannelFull(f"Channel {channel!r} is at capacity")

    def send_then_poll(
        self, sends: Sequence[tuple[str, Message]], channels: Iterable[str]
    ) -> tuple[list[Exception | None], ReceiveResult]:
        """Push *sends*, then pop from *channels*, in one write and one read (one server only)."""
        keys, by_shard = self._receive_plan(channels)
        if len(self._shards) > 1 or not keys or self._read_ahead.ready(keys):
            return super().send_then_poll(sends, channels)
        errors: list[Exception | None] = [None] * len(sends)
        commands: list[tuple[Any, ...]] = []
        queued: list[int] = []
        for index, (channel, message) in enumerate(sends):
            try:
                _, push_keys, args = self._send_plan(channel, message)
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
                errors[index] = status
            elif status[0] >= 2:
                errors[index] = self.ChannelFull(f"Channel {sends[index][0]!r} is at capacity")
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
                    (popped,) = self._shards[shard].execute(("BLPOP", *shard_keys, wait))
                else:
                    wait = max(0.01, min(deadline - time.monotonic(), self._max_block))
                    popped = self._keep_all_but_first(
                        self._private_loops.get().run_until_complete(
                            ablpop_any(self._targets(by_shard), wait)
                        )
                    )
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
                    popped = self._keep_all_but_first(
                        await ablpop_any(self._targets(by_shard), wait)
                    )
            if popped is not None:
                result = self._read_ahead.deliver(popped[0].decode("ascii"), popped[1])
                if result[0] is not None:
                    return result
                continue
            if not block or loop.time() >= deadline:
                return None, None

    async def _ablpop_process(self, shard: Shard, key: str, wait: float) -> bool:
        """BLPOP a process's own channel, and in the same round trip take its backlog.

        Only the owning process reads a ``prefix!`` channel, so reading ahead is
        safe there: a busy interface server then needs one round trip per batch
        of replies instead of one per reply. Everything goes through the
        read-ahead, so each channel's messages stay in order. Return whether
        anything was taken.
        """
        popped, more = await shard.aexchange(
            key, [("BLPOP", key, wait), ("LPOP", key, self.process_batch - 1)]
        )
        for result in (popped, more):
            if isinstance(result, Exception):
                raise result
        if popped is None:
            return False
        self._read_ahead.keep(key, (popped[1], *(more or ())))
        return True

    def _pop_now(self, by_shard: dict[int, list[str]]) -> Any:
        for shard, keys in by_shard.items():
            popped = self._shards[shard].eval(scripts.POP, keys, ())
            if popped:
                return popped
        return None

    async def _apop_now(self, by_shard: dict[int, list[str]]) -> Any:
        for shard, keys in by_shard.items():
            popped = await self._shards[shard].aeval(scripts.POP, keys, ())
            if popped:
                return popped
        return None

    def _targets(self, by_shard: dict[int, list[str]]) -> dict[Shard, list[str]]:
        return {self._shards[index]: keys for index, keys in by_shard.items()}

    def _keep_all_but_first(self, popped: list[Any]) -> Any:
        """Return the first (key, entry) several shards answered; keep the others' messages."""
        for key, entry in popped[1:]:
            self._read_ahead.keep(key.decode("ascii"), (entry,))
        return popped[0] if popped else None

    # Groups --------------------------------------------------------------

    def group_add(self, group: str, channel: str) -> None:
        key, shard = self._membership(group, channel)
        with self._translate_errors:
            shard.execute(
                ("ZADD", key, time.time(), channel), ("EXPIRE", key, int(self.group_expiry))
            )

    async def agroup_add(self, group: str, channel: str) -> None:
        key, shard = self._membership(group, channel)
        with self._translate_errors:
            await shard.aexecute(
                ("ZADD", key, time.time(), channel), ("EXPIRE", key, int(self.group_expiry))
            )

    def group_discard(self, group: str, channel: str) -> None:
        key, shard = self._membership(group, channel)
        with self._translate_errors:
            shard.execute(("ZREM", key, channel))

    async def agroup_discard(self, group: str, channel: str) -> None:
        key, shard = self._membership(group, channel)
        with self._translate_errors:
            await shard.aexecute(("ZREM", key, channel))

    def group_channels(self, group: str) -> list[str]:
        key, shard = self._group_key(group)
        with self._translate_errors:
            members = [
                m.decode() for m in shard.eval(scripts.MEMBERS, [key], self._members_cutoff())
            ]
            dead = []
            for index, targets in self._group_targets(members).items():
                keys = list(targets)
                stale = self._shards[index].eval(scripts.STALE, keys, [now_ms()])
                for position in stale:
                    dead += targets[keys[position - 1]][1]
            if dead:
                shard.execute(("ZREM", key, *dead))
        gone = set(dead)
        return [member for member in members if member not in gone]

    async def agroup_channels(self, group: str) -> list[str]:
        return await asyncio.to_thread(self.group_channels, group)

    def send_group(self, group: str, message: Message) -> None:
        key, shard = self._group_key(group)
        data = self.codec.encode(message)
        one_call = self._one_call_group_send(key, data)
        with self._translate_errors:
            if one_call is not None:
                shard.eval(scripts.GROUP_SEND, *one_call)
                return
            members = shard.eval(scripts.MEMBERS, [key], self._members_cutoff())
            dead: list[str] = []
            for index, targets in self._group_targets([m.decode() for m in members]).items():
                keys, args, owners = self._push_args(targets, data, group=True)
                dead += _dead(self._shards[index].eval(scripts.PUSH, keys, args), owners)
            if dead:
                shard.execute(("ZREM", key, *dead))

    async def asend_group(self, group: str, message: Message) -> None:
        key, shard = self._group_key(group)
        data = self.codec.encode(message)
        one_call = self._one_call_group_send(key, data)
        with self._translate_errors:
            if one_call is not None:
                await shard.aeval(scripts.GROUP_SEND, *one_call)
                return
            members = await shard.aeval(scripts.MEMBERS, [key], self._members_cutoff())
            plan = self._group_targets([m.decode() for m in members]).items()
            calls = [self._push_args(targets, data, group=True) for _, targets in plan]
            statuses = await asyncio.gather(
                *(
                    self._shards[index].aeval(scripts.PUSH, keys, args)
                    for (index, _), (keys, args, _) in zip(plan, calls, strict=True)
                )
            )
            dead = [
                name
                for status, (_, _, owners) in zip(statuses, calls, strict=True)
                for name in _dead(status, owners)
            ]
            if dead:
                await shard.aexecute(("ZREM", key, *dead))

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
        totals = {"messages_count": 0, "channel_full_count": 0}
        with self._translate_errors:
            for shard in self._shards:
                ((sent, full),) = shard.execute(("HMGET", self._stats_key, "count:", "full:"))
                totals["messages_count"] += int(sent or 0)
                totals["channel_full_count"] += int(full or 0)
        return totals

    def channel_statistics(self, channel: str) -> dict[str, int]:
        require_valid_channel_name(channel)
        key, _, index = self._channel_key(channel)
        name = stats_name(channel)
        with self._translate_errors:
            (sent, full), pending, head = self._shards[index].execute(
                ("HMGET", self._stats_key, "count:" + name, "full:" + name),
                ("LLEN", key),
                ("LINDEX", key, 0),
            )
        max_age = 0
        deadline = deadline_of(head) if head else None
        if deadline is not None:
            waited = time.time() - (deadline / 1000 - self.expiry)
            max_age = max(0, int(waited))  # whole seconds, as asgi_redis gave
        return {
            "messages_count": int(sent or 0),
            "channel_full_count": int(full or 0),
            "messages_pending": pending,
            "messages_max_age": max_age,
        }

    def close(self) -> None:
        """Put back messages read ahead from normal channels, then disconnect."""
        for key, entries in self._read_ahead.drain().items():
            with self._translate_errors:
                shard = self._shards[self._ring.shard_for(key[len(self.prefix) :])]
                shard.execute(("LPUSH", key, *entries))
        for shard in self._shards:
            shard.close()
        self._private_loops.close(self._shards)

    async def aclose(self) -> None:
        """Close this event loop's connections, then everything :meth:`close` closes."""
        loop = asyncio.get_running_loop()
        for shard in self._shards:
            await shard.aclose(loop)
        await asyncio.to_thread(self.close)
