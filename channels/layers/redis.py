"""A channel layer on one or more Redis servers, for processes on many machines.

Each channel is a Redis list holding entries ``b"<deadline>|<local parts>|<message>"``
(see :mod:`channels.layers.redis_scripts`). A send is one Lua script call that
checks capacity, pushes and counts; a receive is one ``BLPOP`` (or ``LPOP``
script) that takes the message off the list, so nothing is left behind to
leak. Several hosts shard the layer by consistent hashing: a channel, a
process's ``prefix!`` channels and each group live on one shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
import weakref
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.exceptions import AuthenticationError as RedisAuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from ..exceptions import (
    ChannelLayerAuthenticationError,
    ChannelLayerConfigurationError,
    ChannelLayerConnectionError,
)
from .base import BaseChannelLayer, Message, ReceiveResult
from .batching import ScriptBatcher
from .hashring import HashRing
from .names import non_local_part, require_valid_channel_name, require_valid_group_name, stats_name
from .redis_pipeline import AsyncPinnedConnection, PinnedConnection
from .redis_scripts import (
    GROUP_SEND_SCRIPT,
    MEMBERS_SCRIPT,
    POP_SCRIPT,
    PUSH_SCRIPT,
    STALE_SCRIPT,
    Script,
)

logger = logging.getLogger("channels.layers.redis")

# (full channel name, encoded message, deadline in ms)
_Buffered = tuple[str, bytes, int]

#: Name of the kept connection an event loop's receives on normal channels use.
_RECEIVE = "receive"

#: Returned by a pop that put what it took into the read-ahead buffer.
_BUFFERED = object()


#: How the server's refusals of a missing or wrong password begin.
_AUTH_REPLIES = ("NOAUTH", "WRONGPASS", "invalid password", "invalid username-password")


class _TranslateErrors:
    """Turn redis-py's errors about reaching Redis into ours, each saying what to fix.

    An unreachable server is a :class:`ChannelLayerConnectionError`; a server
    that answers but refuses the layer's settings (password, database index,
    ACL permissions) is a :class:`ChannelLayerConfigurationError` naming the
    ``CONFIG`` entry to change. Everything else passes through.
    """

    #: Seconds the one-off ``CONFIG GET databases`` behind a wrong-db message may take.
    probe_timeout = 1.0

    def __init__(self, shards: list[_Shard]) -> None:
        self._shards = shards
        self._databases: dict[str, int | None] = {}

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            return
        if isinstance(exc, RedisAuthenticationError) or (
            # Older redis-py releases leave some of the server's auth replies unmapped.
            isinstance(exc, ResponseError) and str(exc).startswith(_AUTH_REPLIES)
        ):
            raise ChannelLayerAuthenticationError(self._auth_message(exc)) from exc
        if isinstance(exc, RedisConnectionError | RedisTimeoutError):
            raise ChannelLayerConnectionError(f"{self._where()} is unreachable: {exc}") from exc
        if isinstance(exc, NoPermissionError):
            raise ChannelLayerConfigurationError(
                f"{self._where()} refused a command to the layer's Redis user ({exc}): grant "
                "that user every command on the layer's keys, or use another user in "
                "CONFIG['hosts']"
            ) from exc
        if isinstance(exc, ResponseError) and "DB index is out of range" in str(exc):
            raise ChannelLayerConfigurationError(self._db_message()) from exc

    def _where(self) -> str:
        shards = self._shards
        if len(shards) == 1:
            return f"Redis at {shards[0].address}"
        return f"Redis (one of {', '.join(shard.address for shard in shards)})"

    def _auth_message(self, exc: BaseException) -> str:
        if not any(shard.has_password for shard in self._shards):
            return (
                f"{self._where()} requires a password and the layer sends none: put it in "
                "the URL in CONFIG['hosts'] ('redis://:PASSWORD@host:6379/0') or set "
                "CONFIG['connection_kwargs']['password']"
            )
        return (
            f"{self._where()} refused the layer's credentials ({exc}): check the password "
            "(and user) in CONFIG['hosts'] or CONFIG['connection_kwargs']"
        )

    def _db_message(self) -> str:
        shards = [shard for shard in self._shards if shard.db]
        details = []
        for shard in shards or self._shards:
            count = self._database_count(shard)
            if count is not None and shard.db < count:
                continue
            has = f"has {count} databases" if count is not None else "has fewer databases"
            last = f"0 to {count - 1}" if count is not None else "a lower number"
            details.append(
                f"Redis at {shard.address} {has}, db {shard.db} does not exist: use a db from "
                f"{last} in CONFIG['hosts'] (or raise 'databases' in redis.conf)"
            )
        return "; ".join(details) or f"{self._where()} has no database with the index asked for"

    def _database_count(self, shard: _Shard) -> int | None:
        """Ask *shard* how many databases it has (on db 0), once; None if it will not say."""
        if shard.label not in self._databases:
            count = None
            try:
                client = shard.probe_client(self.probe_timeout)
                try:
                    reply = client.config_get("databases")
                finally:
                    client.close()
                count = int(reply["databases"])
            except Exception:  # CONFIG may be renamed or forbidden: say less, never fail here
                logger.debug("Could not ask %s how many databases it has", shard.address)
            self._databases[shard.label] = count
        return self._databases[shard.label]


def _rotated(items: list[str]) -> list[str]:
    """*items* starting from a random one (cheaper than shuffling, as fair for BLPOP)."""
    start = random.randrange(len(items))
    return items[start:] + items[:start]


class _Shard:
    """One Redis server: a thread-safe sync client and one async client per event loop."""

    def __init__(self, host: Any, connection_kwargs: dict[str, Any]) -> None:
        if isinstance(host, str) and host.startswith(("redis://", "rediss://", "unix://")):
            self._url: str | None = host
            self._address: dict[str, Any] = {}
            self.label = host.split("@")[-1]  # never show a password
        elif isinstance(host, Sequence) and len(host) == 2:
            self._url = None
            self._address = {"host": host[0], "port": int(host[1])}
            self.label = f"{host[0]}:{host[1]}"
        else:
            raise ValueError(
                f"Each Redis host must be a URL such as 'redis://localhost:6379/0' or a "
                f"(host, port) pair, not {host!r}"
            )
        self._kwargs = connection_kwargs
        settings = {**connection_kwargs, **(parse_url(host) if self._url else self._address)}
        #: host:port (or socket path), for messages: never the password.
        self.address = (
            settings.get("path") or f"{settings.get('host')}:{settings.get('port', 6379)}"
        )
        #: What error messages need to know: the database index, and whether a password is sent.
        self.db = int(settings.get("db") or 0)
        self.has_password = bool(settings.get("password"))
        # Sync callers are threads, few and bounded: a plain pool is enough and cheaper.
        self.sync = redis.Redis(
            connection_pool=self._pool(redis.ConnectionPool, Retry(NoBackoff(), 0))
        )
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis]
        self._async = weakref.WeakKeyDictionary()
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ScriptBatcher]
        self._batchers = weakref.WeakKeyDictionary()
        self._pinned: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, AsyncPinnedConnection]
        ] = weakref.WeakKeyDictionary()
        self._thread = threading.local()

    def _pool(self, pool_class: Any, retry: Any) -> Any:
        kwargs = {"retry": retry, **self._kwargs}
        if pool_class is redis.ConnectionPool:
            kwargs.pop("timeout", None)  # only blocking pools wait for a connection
        if self._url is not None:
            return pool_class.from_url(self._url, **kwargs)
        return pool_class(**self._address, **kwargs)

    def probe_client(self, timeout: float) -> redis.Redis:
        """Return a new client on database 0 of this server, for one question after an error."""
        kwargs = {**self._kwargs, "socket_timeout": timeout, "socket_connect_timeout": timeout}
        for option in ("timeout", "max_connections"):
            kwargs.pop(option, None)
        address = parse_url(self._url) if self._url is not None else self._address
        return redis.Redis(connection_pool=redis.ConnectionPool(**{**kwargs, **address, "db": 0}))

    def aclient(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            pool = self._pool(redis.asyncio.BlockingConnectionPool, AsyncRetry(NoBackoff(), 0))
            client = self._async[loop] = redis.asyncio.Redis(connection_pool=pool)
        return client

    def batcher(self) -> ScriptBatcher:
        """Return this event loop's batcher of script calls."""
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = ScriptBatcher(self.aclient())
        return batcher

    def pinned(self, key: str) -> AsyncPinnedConnection:
        """Return this event loop's kept connection named *key* (a list it reads)."""
        loop = asyncio.get_running_loop()
        connections = self._pinned.setdefault(loop, {})
        connection = connections.get(key)
        if connection is None:
            connection = connections[key] = AsyncPinnedConnection(self.aclient())
        return connection

    def thread_pinned(self) -> PinnedConnection:
        """Return this thread's kept sync connection."""
        connection = getattr(self._thread, "connection", None)
        if connection is None:
            connection = self._thread.connection = PinnedConnection(self.sync)
        return connection

    def close(self) -> None:
        self.sync.connection_pool.disconnect()

    async def aclose(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the async client of *loop*, which must be running."""
        self._batchers.pop(loop, None)
        self._pinned.pop(loop, None)
        client = self._async.pop(loop, None)
        if client is not None:
            await client.aclose(close_connection_pool=True)


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
        self._shards = [_Shard(host, kwargs) for host in self.hosts]
        self._ring = HashRing(len(self._shards))
        self._translate_errors = _TranslateErrors(self._shards)
        self._stats_key = prefix + "stats"
        self._list_ttl = int(self.expiry * 2) + 1
        self._buffer: dict[str, deque[_Buffered]] = defaultdict(deque)
        self._buffer_lock = threading.Lock()
        self._thread = threading.local()
        self._private_loops: list[asyncio.AbstractEventLoop] = []
        self._channel_key = lru_cache(maxsize=8192)(self._lookup_channel_key)
        self._plan = lru_cache(maxsize=256)(self._lookup_plan)

    def __repr__(self) -> str:
        hosts = ", ".join(shard.label for shard in self._shards)
        return f"<{type(self).__name__} hosts=[{hosts}] prefix={self.prefix!r}>"

    # Keys and entries ----------------------------------------------------

    def _lookup_channel_key(self, channel: str) -> tuple[str, bytes, int]:
        """Return (list key, local part, shard index) of *channel*."""
        stored = non_local_part(channel)
        local = channel[len(stored) :].encode("ascii")
        return self.prefix + stored, local, self._ring.shard_for(stored)

    def _group_key(self, group: str) -> tuple[str, _Shard]:
        return self.prefix + "group:" + group, self._shards[self._ring.shard_for("group:" + group)]

    def _header(self, locals_: bytes) -> bytes:
        deadline = int((time.time() + self.expiry) * 1000)
        return b"%d|%s|" % (deadline, locals_)

    def _unpack(self, key: str, entry: bytes) -> list[_Buffered]:
        """Return the (channel, message, deadline) triples an entry holds; [] if none are live."""
        deadline_text, _, rest = entry.partition(b"|")
        locals_, sep, body = rest.partition(b"|")
        try:
            deadline = int(deadline_text)
        except ValueError:
            deadline = -1
        if not sep or deadline < 0:
            logger.warning("Dropped an undecodable entry in Redis list %s", key)
            return []
        if deadline <= time.time() * 1000:
            return []
        name = key[len(self.prefix) :]
        if not locals_:
            return [(name, body, deadline)]
        return [(name + local.decode("ascii"), body, deadline) for local in locals_.split(b",")]

    def _decode(self, item: _Buffered) -> ReceiveResult:
        try:
            return item[0], self.codec.decode(item[1])
        except ValueError:
            logger.warning("Dropped an undecodable message for channel %s", item[0])
            return None, None

    def _deliver(self, key: str, entry: bytes) -> ReceiveResult:
        items = self._unpack(key, entry)
        if not items:
            return None, None
        if len(items) > 1:
            with self._buffer_lock:
                self._buffer[key].extend(items[1:])
        return self._decode(items[0])

    def _take_buffered(self, keys: list[str]) -> ReceiveResult:
        if not self._buffer:
            return None, None
        now = time.time() * 1000
        with self._buffer_lock:
            for key in keys:
                queue = self._buffer.get(key)
                while queue:
                    item = queue.popleft()
                    if item[2] > now:
                        if not queue:
                            del self._buffer[key]
                        return self._decode(item)
                if queue is not None:
                    del self._buffer[key]
        return None, None

    def _take_buffered_ready(self, keys: list[str]) -> bool:
        """Whether messages read ahead for *keys* wait in this process."""
        return bool(self._buffer) and any(self._buffer.get(key) for key in keys)

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

    def _push_args(
        self, targets: dict[str, tuple[bytes, list[str]]], data: bytes, *, group: bool = False
    ) -> tuple[list[str], list[Any], list[list[str]]]:
        """Build PUSH script arguments for {list key: (local parts, channel names)}.

        With *group*, a list found holding an expired message gets nothing.
        """
        keys: list[str] = []
        args: list[Any] = [int(time.time() * 1000), self._list_ttl, data, 1 if group else 0]
        owners: list[list[str]] = []
        for key, (locals_, names) in targets.items():
            keys.append(key)
            args += [self.get_capacity(names[0]), self._header(locals_), stats_name(names[0])]
            owners.append(names)
        keys.append(self._stats_key)
        return keys, args, owners

    def _group_targets(self, members: list[str]) -> dict[int, dict[str, tuple[bytes, list[str]]]]:
        """Group members by shard and list; one entry per process prefix."""
        plan: dict[int, dict[str, tuple[bytes, list[str]]]] = defaultdict(dict)
        for channel in members:
            key, local, shard = self._channel_key(channel)
            targets = plan[shard]
            if key in targets and local:
                locals_, names = targets[key]
                targets[key] = (locals_ + b"," + local, [*names, channel])
            else:
                targets[key] = (local, [channel])
        return plan

    # Script calls --------------------------------------------------------

    @staticmethod
    def _eval_kept(shard: _Shard, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run *script* on this thread's kept connection to *shard*."""
        connection = shard.thread_pinned()
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        (result,) = connection.run([command])
        if isinstance(result, NoScriptError):  # a new or restarted server
            _, result = connection.run([("SCRIPT", "LOAD", script.source), command])
        if isinstance(result, Exception):
            raise result
        return result

    async def _aeval_kept(
        self, shard: int, script: Script, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        """Async twin of :meth:`_eval_kept`, on this loop's kept receive connection."""
        connection = self._shards[shard].pinned(_RECEIVE)
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        (result,) = await connection.run([command])
        if isinstance(result, NoScriptError):
            _, result = await connection.run([("SCRIPT", "LOAD", script.source), command])
        if isinstance(result, Exception):
            raise result
        return result

    @staticmethod
    async def _aeval(
        client: redis.asyncio.Redis, script: Script, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        try:
            return await client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.execute_command("SCRIPT", "LOAD", script.source)
            return await client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)

    # Channels ------------------------------------------------------------

    def send(self, channel: str, message: Message) -> None:
        require_valid_channel_name(channel)
        data = self.codec.encode(message)
        key, local, shard = self._channel_key(channel)
        keys, args, _ = self._push_args({key: (local, [channel])}, data)
        with self._translate_errors:
            status = self._eval_kept(self._shards[shard], PUSH_SCRIPT, keys, args)
        if status[0] >= 2:
            raise self.ChannelFull(f"Channel {channel!r} is at capacity")

    async def asend(self, channel: str, message: Message) -> None:
        require_valid_channel_name(channel)
        data = self.codec.encode(message)
        key, local, shard = self._channel_key(channel)
        keys, args, _ = self._push_args({key: (local, [channel])}, data)
        with self._translate_errors:
            status = await self._shards[shard].batcher().call(PUSH_SCRIPT, keys, args)
        if status[0] >= 2:
            raise self.ChannelFull(f"Channel {channel!r} is at capacity")

    def send_then_poll(
        self, sends: Sequence[tuple[str, Message]], channels: Iterable[str]
    ) -> tuple[list[Exception | None], ReceiveResult]:
        """Push *sends*, then pop from *channels*, in one write and one read (one server only)."""
        keys, by_shard = self._receive_plan(channels)
        if len(self._shards) > 1 or not keys or self._take_buffered_ready(keys):
            return super().send_then_poll(sends, channels)
        errors: list[Exception | None] = [None] * len(sends)
        commands: list[tuple[Any, ...]] = []
        queued: list[int] = []
        for index, (channel, message) in enumerate(sends):
            try:
                require_valid_channel_name(channel)
                data = self.codec.encode(message)
            except Exception as exc:
                errors[index] = exc
                continue
            key, local, _ = self._channel_key(channel)
            push_keys, args, _ = self._push_args({key: (local, [channel])}, data)
            commands.append(("EVALSHA", PUSH_SCRIPT.sha, len(push_keys), *push_keys, *args))
            queued.append(index)
        commands.append(("EVALSHA", POP_SCRIPT.sha, len(keys), *by_shard[0]))
        try:
            with self._translate_errors:
                results = self._shards[0].thread_pinned().run(commands)
        except ChannelLayerConnectionError as exc:
            for index in queued:
                errors[index] = exc
            return errors, (None, None)
        for index, status in zip(queued, results, strict=False):
            if isinstance(status, NoScriptError):  # not run (Redis lost its scripts): again
                try:
                    self.send(*sends[index])
                except Exception as exc:
                    errors[index] = exc
            elif isinstance(status, Exception):
                errors[index] = status
            elif status[0] >= 2:
                errors[index] = self.ChannelFull(f"Channel {sends[index][0]!r} is at capacity")
        popped = results[-1]
        if isinstance(popped, NoScriptError):  # nothing taken; the next poll can
            # If Redis is down, the next receive finds out and reports it.
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                self._shards[0].sync.execute_command("SCRIPT", "LOAD", POP_SCRIPT.source)
            return errors, (None, None)
        if not popped or isinstance(popped, Exception):
            return errors, (None, None)
        return errors, self._deliver(popped[0].decode("ascii"), popped[1])

    def receive(
        self, channels: Iterable[str], block: bool = False, *, timeout: float | None = None
    ) -> ReceiveResult:
        keys, by_shard = self._receive_plan(channels)
        if not keys:
            return None, None
        deadline = time.monotonic() + (self.blocking_timeout if timeout is None else timeout)
        while True:
            result = self._take_buffered(keys)
            if result[0] is not None:
                return result
            remaining = deadline - time.monotonic()
            with self._translate_errors:
                if not block:
                    popped = self._pop_now(by_shard)
                elif len(by_shard) == 1:
                    ((shard, shard_keys),) = by_shard.items()
                    wait = max(0.01, min(remaining, self._max_block))
                    (popped,) = (
                        self._shards[shard].thread_pinned().run([("BLPOP", *shard_keys, wait)])
                    )
                    if isinstance(popped, Exception):
                        raise popped
                else:
                    popped = self._sync_loop().run_until_complete(
                        self._blpop_many(by_shard, max(0.01, min(remaining, self._max_block)))
                    )
            if popped is not None:
                result = self._deliver(popped[0].decode("ascii"), popped[1])
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
            result = self._take_buffered(keys)
            if result[0] is not None:
                return result
            wait = max(0.01, min(deadline - loop.time(), self._max_block))
            with self._translate_errors:
                if not block:
                    popped = await self._apop_now(by_shard)
                elif len(keys) == 1 and keys[0].endswith("!"):
                    ((shard, _),) = by_shard.items()
                    popped = await self._ablpop_process(
                        self._shards[shard].pinned(keys[0]), keys[0], wait
                    )
                elif len(by_shard) == 1:
                    ((shard, shard_keys),) = by_shard.items()
                    (popped,) = (
                        await self._shards[shard]
                        .pinned(_RECEIVE)
                        .run([("BLPOP", *shard_keys, wait)])
                    )
                    if isinstance(popped, Exception):
                        raise popped
                else:
                    popped = await self._blpop_many(by_shard, wait)
            if popped is _BUFFERED:
                continue
            if popped is not None:
                result = self._deliver(popped[0].decode("ascii"), popped[1])
                if result[0] is not None:
                    return result
                continue
            if not block or loop.time() >= deadline:
                return None, None

    #: Entries a process takes from its own ``prefix!`` channel in one round trip.
    process_batch = 64

    async def _ablpop_process(
        self, connection: AsyncPinnedConnection, key: str, wait: float
    ) -> Any:
        """BLPOP a process's own channel, and in the same round trip take its backlog.

        Only the owning process reads a ``prefix!`` channel, so reading ahead is
        safe there: a busy interface server then needs one round trip per batch
        of replies instead of one per reply.
        """
        popped, more = await connection.run(
            [("BLPOP", key, wait), ("LPOP", key, self.process_batch - 1)]
        )
        for result in (popped, more):
            if isinstance(result, Exception):
                raise result
        if popped is None:
            return None
        # All of it through the buffer, so each channel's messages stay in order.
        items = [item for entry in (popped[1], *(more or ())) for item in self._unpack(key, entry)]
        with self._buffer_lock:
            self._buffer[key].extend(items)
        return _BUFFERED

    def _pop_now(self, by_shard: dict[int, list[str]]) -> Any:
        for shard, keys in by_shard.items():
            popped = self._eval_kept(self._shards[shard], POP_SCRIPT, keys, ())
            if popped:
                return popped
        return None

    async def _apop_now(self, by_shard: dict[int, list[str]]) -> Any:
        for shard, keys in by_shard.items():
            popped = await self._aeval_kept(shard, POP_SCRIPT, keys, ())
            if popped:
                return popped
        return None

    def _sync_loop(self) -> asyncio.AbstractEventLoop:
        """Return this thread's private loop, used to block on several shards at once."""
        loop = getattr(self._thread, "loop", None)
        if loop is None:
            loop = self._thread.loop = asyncio.new_event_loop()
            with self._buffer_lock:
                self._private_loops.append(loop)
        return loop

    async def _blpop_many(self, by_shard: dict[int, list[str]], wait: float) -> Any:
        """BLPOP on every shard at once; return the first entry and keep any others.

        When one shard answers, the others are woken with ``CLIENT UNBLOCK``;
        an entry one of them popped meanwhile is buffered for the next receive.
        """
        client_ids: dict[int, int] = {}

        async def blpop(shard: int, keys: list[str]) -> Any:
            pool = self._shards[shard].aclient().connection_pool
            connection = await pool.get_connection()
            try:
                await connection.send_packed_command(
                    connection.pack_commands([("CLIENT", "ID"), ("BLPOP", *keys, wait)])
                )
                client_ids[shard] = await connection.read_response()
                return await connection.read_response()
            except BaseException:
                await connection.disconnect()
                raise
            finally:
                await pool.release(connection)

        tasks = {asyncio.ensure_future(blpop(s, k)): s for s, k in by_shard.items()}
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        while pending:
            for task in pending:
                client_id = client_ids.get(tasks[task])
                if client_id is not None:
                    unblocker = self._shards[tasks[task]].aclient()
                    await unblocker.execute_command("CLIENT", "UNBLOCK", client_id)
            _, pending = await asyncio.wait(pending, timeout=0.05)
        first = None
        error: BaseException | None = None
        for task in tasks:
            if task.exception() is not None:
                error = task.exception()
            elif task.result() is not None:
                if first is None:
                    first = task.result()
                else:
                    key, entry = task.result()
                    items = self._unpack(key.decode("ascii"), entry)
                    with self._buffer_lock:
                        self._buffer[key.decode("ascii")].extend(items)
        if first is None and error is not None:
            raise error
        return first

    # Groups --------------------------------------------------------------

    def group_add(self, group: str, channel: str) -> None:
        require_valid_group_name(group)
        require_valid_channel_name(channel)
        key, shard = self._group_key(group)
        with self._translate_errors:
            pipe = shard.sync.pipeline(transaction=False)
            pipe.zadd(key, {channel: time.time()}).expire(key, int(self.group_expiry))
            pipe.execute()

    async def agroup_add(self, group: str, channel: str) -> None:
        require_valid_group_name(group)
        require_valid_channel_name(channel)
        key, shard = self._group_key(group)
        with self._translate_errors:
            pipe = shard.aclient().pipeline(transaction=False)
            pipe.zadd(key, {channel: time.time()}).expire(key, int(self.group_expiry))
            await pipe.execute()

    def group_discard(self, group: str, channel: str) -> None:
        require_valid_group_name(group)
        require_valid_channel_name(channel)
        key, shard = self._group_key(group)
        with self._translate_errors:
            shard.sync.zrem(key, channel)

    async def agroup_discard(self, group: str, channel: str) -> None:
        require_valid_group_name(group)
        require_valid_channel_name(channel)
        key, shard = self._group_key(group)
        with self._translate_errors:
            await shard.aclient().zrem(key, channel)

    def _members_args(self, group: str) -> tuple[str, _Shard, list[float]]:
        require_valid_group_name(group)
        key, shard = self._group_key(group)
        return key, shard, [time.time() - self.group_expiry]

    def group_channels(self, group: str) -> list[str]:
        key, shard, args = self._members_args(group)
        with self._translate_errors:
            members = [m.decode() for m in self._eval_kept(shard, MEMBERS_SCRIPT, [key], args)]
            dead = []
            for index, targets in self._group_targets(members).items():
                keys = list(targets)
                stale = self._eval_kept(
                    self._shards[index], STALE_SCRIPT, keys, [int(time.time() * 1000)]
                )
                for position in stale:
                    dead += targets[keys[position - 1]][1]
            if dead:
                shard.sync.zrem(key, *dead)
        gone = set(dead)
        return [member for member in members if member not in gone]

    async def agroup_channels(self, group: str) -> list[str]:
        return await asyncio.to_thread(self.group_channels, group)

    @staticmethod
    def _dead(status: list[int], owners: list[list[str]]) -> list[str]:
        """Return the members whose list held a message that expired unread."""
        return [
            name for code, names in zip(status, owners, strict=True) if code & 1 for name in names
        ]

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

    def send_group(self, group: str, message: Message) -> None:
        key, shard, args = self._members_args(group)
        data = self.codec.encode(message)
        one_call = self._one_call_group_send(key, data)
        if one_call is not None:
            with self._translate_errors:
                self._eval_kept(shard, GROUP_SEND_SCRIPT, *one_call)
            return
        with self._translate_errors:
            members = [m.decode() for m in self._eval_kept(shard, MEMBERS_SCRIPT, [key], args)]
            dead: list[str] = []
            for index, targets in self._group_targets(members).items():
                keys, push_args, owners = self._push_args(targets, data, group=True)
                status = self._eval_kept(self._shards[index], PUSH_SCRIPT, keys, push_args)
                dead += self._dead(status, owners)
            if dead:
                shard.sync.zrem(key, *dead)

    async def asend_group(self, group: str, message: Message) -> None:
        key, shard, args = self._members_args(group)
        data = self.codec.encode(message)
        one_call = self._one_call_group_send(key, data)
        if one_call is not None:
            with self._translate_errors:
                await self._aeval(shard.aclient(), GROUP_SEND_SCRIPT, *one_call)
            return
        with self._translate_errors:
            members = await self._aeval(shard.aclient(), MEMBERS_SCRIPT, [key], args)
            plan = self._group_targets([m.decode() for m in members]).items()
            calls = [self._push_args(targets, data, group=True) for _, targets in plan]
            statuses = await asyncio.gather(
                *(
                    self._aeval(self._shards[index].aclient(), PUSH_SCRIPT, keys, push_args)
                    for (index, _), (keys, push_args, _) in zip(plan, calls, strict=True)
                )
            )
            dead = [
                name
                for status, (_, _, owners) in zip(statuses, calls, strict=True)
                for name in self._dead(status, owners)
            ]
            if dead:
                await shard.aclient().zrem(key, *dead)

    # Flush, statistics, close --------------------------------------------

    def flush(self) -> None:
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix) + "*"
        with self._translate_errors:
            for shard in self._shards:
                batch = []
                for key in shard.sync.scan_iter(match=pattern, count=1000):
                    batch.append(key)
                    if len(batch) >= 500:
                        shard.sync.unlink(*batch)
                        batch = []
                if batch:
                    shard.sync.unlink(*batch)
        with self._buffer_lock:
            self._buffer.clear()

    async def aflush(self) -> None:
        await asyncio.to_thread(self.flush)

    def global_statistics(self) -> dict[str, int]:
        totals = {"messages_count": 0, "channel_full_count": 0}
        with self._translate_errors:
            for shard in self._shards:
                sent, full = shard.sync.hmget(self._stats_key, "count:", "full:")
                totals["messages_count"] += int(sent or 0)
                totals["channel_full_count"] += int(full or 0)
        return totals

    def channel_statistics(self, channel: str) -> dict[str, int]:
        require_valid_channel_name(channel)
        key, _, index = self._channel_key(channel)
        name = stats_name(channel)
        with self._translate_errors:
            pipe = self._shards[index].sync.pipeline(transaction=False)
            pipe.hmget(self._stats_key, "count:" + name, "full:" + name).llen(key).lindex(key, 0)
            (sent, full), pending, head = pipe.execute()
        max_age = 0
        if head:
            deadline_text = head.partition(b"|")[0]
            if deadline_text.isdigit():
                waited = time.time() - (int(deadline_text) / 1000 - self.expiry)
                max_age = max(0, int(waited))  # whole seconds, as asgi_redis gave
        return {
            "messages_count": int(sent or 0),
            "channel_full_count": int(full or 0),
            "messages_pending": pending,
            "messages_max_age": max_age,
        }

    def close(self) -> None:
        """Put back messages read ahead from normal channels, then disconnect."""
        with self._buffer_lock:
            buffered, self._buffer = self._buffer, defaultdict(deque)
        for key, items in buffered.items():
            if "!" in key:
                continue  # a process's own messages die with it
            with self._translate_errors:
                client = self._shards[self._ring.shard_for(key[len(self.prefix) :])].sync
                for _name, body, deadline in reversed(items):
                    client.lpush(key, b"%d||%s" % (deadline, body))
        for shard in self._shards:
            shard.close()
        with self._buffer_lock:
            loops, self._private_loops = self._private_loops, []
        self._thread = threading.local()
        for loop in loops:
            if not loop.is_running():  # a receive still blocked elsewhere keeps its loop
                for shard in self._shards:
                    loop.run_until_complete(shard.aclose(loop))
                loop.close()

    async def aclose(self) -> None:
        """Close this event loop's connections, then everything :meth:`close` closes."""
        loop = asyncio.get_running_loop()
        for shard in self._shards:
            await shard.aclose(loop)
        await asyncio.to_thread(self.close)
