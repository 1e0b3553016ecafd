"""One Redis server and every exchange the layer has with it, sync and async.

A :class:`Shard` owns the connections to one server: a sync pool whose
connections threads keep, and per event loop an async pool, a
:class:`~.batching.Batcher` of single calls and connections kept for blocking
reads. Every command goes out packed by hiredis, several in one write, with
error replies returned as values; an ``EVALSHA`` the server answers with
``NOSCRIPT`` (a new or restarted server) is run again after loading its
script, in one more round trip, by :func:`_exchange_now` and its async twin
(what to resend is :func:`.scripts.reload_plan`'s to say); a ``READONLY``
refusal (a demoted master) is a lost connection there. Waiting on several
shards at once is :mod:`.fanin`'s, over :meth:`Shard.ablpop_unblockable`.

This is the only module that touches redis-py's connections below their
public API (``send_packed_command(check_health=False)``, an async
connection's ``_writer`` and its buffered-data check, pool connections held
by hand). What differs between redis-py 5, 6, 7 and 8 is checked once, at
import, in :data:`_ASYNC_CAN_READ`.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import hiredis
import redis
import redis.asyncio
from redis.asyncio.connection import AbstractConnection as AsyncConnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from .batching import Batcher
from .scripts import AS_IS, Command, Script, merge_reloaded, reload_plan

#: Name of the kept connection an event loop's receives on normal channels use.
RECEIVE = "receive"
#: Name of the kept connection for an event loop's multi-command exchanges.
_COMMANDS = "commands"

#: The async connection's check for data already waiting on the socket: redis-py 8
#: named it ``can_read()`` and deprecated ``can_read_destructive()``, the only
#: name in 5 to 7 (both only look, whatever the old name says).
_ASYNC_CAN_READ = "can_read" if hasattr(AsyncConnection, "can_read") else "can_read_destructive"

_LOST = (RedisConnectionError, RedisTimeoutError, OSError)


def _parse_url(url: str) -> dict[str, Any]:
    """Return the connection settings in a Redis URL (typed: redis-py's function is not)."""
    settings: dict[str, Any] = redis.connection.parse_url(url)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
    return settings


def _pack(commands: Sequence[Command]) -> bytes:
    return b"".join([hiredis.pack_command(command) for command in commands])


#: How a replica refuses a write, alone or inside a script's error.
_READONLY = "READONLY You can't write against a read only replica"


def _demoted() -> RedisConnectionError:
    """A write refused by a demoted master, as a lost connection: the next call reconnects,
    to wherever Sentinel (or DNS, for a managed primary endpoint) says the master is now."""
    return RedisConnectionError(f"the server is a replica now and refused a write ({_READONLY})")


# Sync: a thread's kept connection ---------------------------------------------------


def _exchange_now(
    connection: Any, commands: Sequence[Command], retry: int | None = None
) -> list[Any]:
    """Send *commands* in one write; return every reply, reloading lost scripts (*retry*)."""
    connection.send_packed_command([_pack(commands)], check_health=False)
    results: list[Any] = []
    lost = demoted = False
    for _ in commands:
        try:
            results.append(connection.read_response())
        except ResponseError as exc:  # the connection is still in step
            results.append(exc)
            lost = lost or isinstance(exc, NoScriptError)
            demoted = demoted or _READONLY in str(exc)
    if demoted:
        raise _demoted()
    if not lost or retry == AS_IS:
        return results
    again, indexes = reload_plan(commands, results, retry)
    return merge_reloaded(results, _exchange_now(connection, again, AS_IS), indexes)


def _drop_if_stale(connection: Any) -> None:
    """Disconnect (it reconnects on use) a kept connection the server closed meanwhile.

    Before a command is sent nothing may be waiting on the socket: anything
    readable is the end of a connection from before a Redis restart, and
    sending on it would lose the command.
    """
    try:
        stale = connection.can_read(timeout=0)
    except _LOST:
        stale = True
    if stale:
        connection.disconnect()


class _KeptConnection:
    """One connection taken from the sync pool and kept by one thread.

    For a worker thread's sends-and-next-message exchange: no pool lock, pid
    check or health read per call. After an error the connection goes back
    to the pool and a fresh one is taken next time; if the server went away,
    the pool's idle connections are dropped as well (their sockets are dead
    too). Closing the pool closes it.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._connection: Any = None

    def run(self, commands: Sequence[Command], retry: int | None = None) -> list[Any]:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._pool.get_connection()
        else:
            _drop_if_stale(connection)
        try:
            return _exchange_now(connection, commands, retry)
        except BaseException as exc:
            self._connection = None
            connection.disconnect()
            if isinstance(exc, RedisConnectionError | RedisTimeoutError):
                self._pool.disconnect(inuse_connections=False)
            self._pool.release(connection)
            raise


# Async: an event loop's connections ------------------------------------------------


async def _write(connection: Any, data: bytes) -> None:
    """Write *data* on an async connection.

    redis-py's ``send_packed_command`` runs the write in a task of its own
    (``asyncio.wait_for``) whenever a socket timeout is set: an extra task and
    event-loop turn on every call. A small write to a healthy socket does not
    wait at all, so write directly and apply the timeout only if the socket
    pushes back.
    """
    writer = getattr(connection, "_writer", None)
    if writer is None or not connection.is_connected:  # (re)connect the usual way
        await connection.send_packed_command([data], check_health=False)
        return
    try:
        writer.write(data)
        if writer.transport.get_write_buffer_size():
            await asyncio.wait_for(writer.drain(), connection.socket_timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        await connection.disconnect(nowait=True)
        raise RedisConnectionError(f"Error while writing to Redis: {exc!r}") from exc


async def _exchange(
    connection: Any, commands: Sequence[Command], retry: int | None = None
) -> list[Any]:
    """Async twin of :func:`_exchange_now`."""
    await _write(connection, _pack(commands))
    results: list[Any] = []
    lost = demoted = False
    for _ in commands:
        try:
            results.append(await connection.read_response())
        except ResponseError as exc:  # the connection is still in step
            results.append(exc)
            lost = lost or isinstance(exc, NoScriptError)
            demoted = demoted or _READONLY in str(exc)
    if demoted:
        raise _demoted()
    if not lost or retry == AS_IS:
        return results
    again, indexes = reload_plan(commands, results, retry)
    return merge_reloaded(results, await _exchange(connection, again, AS_IS), indexes)


async def _adrop_if_stale(connection: Any) -> None:
    """Async twin of :func:`_drop_if_stale`."""
    if not connection.is_connected:
        return
    try:
        stale = await getattr(connection, _ASYNC_CAN_READ)()
    except _LOST:
        stale = True
    if stale:
        await connection.disconnect()


async def _drop(pool: Any, connection: Any, exc: BaseException) -> None:
    """Disconnect a connection that failed, and its idle siblings if the server went."""
    await connection.disconnect()
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        await pool.disconnect(inuse_connections=False)


async def _apooled(pool: Any, commands: Sequence[Command]) -> list[Any]:
    """Run *commands* in one write on a connection borrowed from *pool*."""
    connection = await pool.get_connection()
    try:
        return await _exchange(connection, commands)
    except BaseException as exc:
        await _drop(pool, connection, exc)
        raise
    finally:
        await pool.release(connection)


class AsyncKeptConnection:
    """Async twin of :class:`_KeptConnection`, kept for one exchange at a time.

    For a loop that talks to Redis over and over (an interface server's
    batched sends, its reply reads): no pool lock, timeout or health read per
    call. A call made while another is in flight borrows a pool connection
    instead. After an error the connection goes back to the pool and a fresh
    one is taken next time; closing the pool closes it too.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._connection: Any = None
        self._busy = False

    async def run(self, commands: Sequence[Command]) -> list[Any]:
        """Send *commands* in one write; return every reply (errors as values)."""
        if self._busy:
            return await _apooled(self._pool, commands)
        self._busy = True
        try:
            connection = self._connection
            if connection is None:
                connection = self._connection = await self._pool.get_connection()
            else:
                await _adrop_if_stale(connection)
            try:
                return await _exchange(connection, commands)
            except BaseException as exc:
                self._connection = None
                await _drop(self._pool, connection, exc)
                await self._pool.release(connection)
                raise
        finally:
            self._busy = False


class _ThreadState(threading.local):
    """What a shard keeps per thread: its kept connection, made on the thread's first call."""

    def __init__(self, pool: Any) -> None:
        self.kept = _KeptConnection(pool)


class _LoopState:
    """What a shard keeps per event loop: a pool, the batcher, kept connections."""

    __slots__ = ("batcher", "client", "kept")

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self.batcher = Batcher(AsyncKeptConnection(client.connection_pool))
        self.kept: dict[str, AsyncKeptConnection] = {}


def _raise_first_error(results: list[Any]) -> list[Any]:
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


class Shard:
    """One Redis server: its address and settings, and every exchange with it.

    Sync calls run on the calling thread's kept connection; async calls on
    the running loop's connections. Replies are raw (hiredis's bytes, ints,
    lists); ``run``/``aexchange`` return error replies as values, the other
    methods raise them. redis-py's exceptions pass through, for the layer's
    :class:`~.errors.TranslateErrors` to turn into what to fix.
    """

    def __init__(self, host: Any, connection_kwargs: dict[str, Any]) -> None:
        if isinstance(host, str) and host.startswith(("redis://", "rediss://", "unix://")):
            self._url: str | None = host
            self._address: dict[str, Any] = {}
            #: How the server is named in ``repr()``: never the password.
            self.label = host.split("@")[-1]
        elif isinstance(host, Sequence) and not isinstance(host, str) and len(host) == 2:
            self._url = None
            self._address = {"host": host[0], "port": int(host[1])}
            self.label = f"{host[0]}:{host[1]}"
        else:
            raise ValueError(
                f"Each Redis host must be a URL such as 'redis://localhost:6379/0', a "
                f"(host, port) pair, or a Sentinel-managed master such as "
                f"{{'sentinels': [('localhost', 26379)], 'master_name': 'mymaster'}}, "
                f"not {host!r}"
            )
        self._init_transport(connection_kwargs)

    def _init_transport(self, connection_kwargs: dict[str, Any]) -> None:
        """Make the pools, once the subclass or ``__init__`` has said where the server is."""
        self._kwargs = connection_kwargs
        settings = {**connection_kwargs, **(_parse_url(self._url) if self._url else self._address)}
        #: host:port (or socket path), for messages: never the password.
        self.address: str = (
            settings.get("path") or f"{settings.get('host')}:{settings.get('port', 6379)}"
        )
        #: What error messages need to know: the database index, and whether a password is sent.
        self.db = int(settings.get("db") or 0)
        self.has_password = bool(settings.get("password"))
        # Sync callers are threads, few and bounded: a plain pool is enough and cheaper.
        self._pool = self._make_pool(redis.ConnectionPool, Retry(NoBackoff(), 0))
        self._thread = _ThreadState(self._pool)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState]
        self._loops = weakref.WeakKeyDictionary()

    def _make_pool(self, pool_class: Any, retry: Any) -> Any:
        kwargs = {"retry": retry, **self._kwargs}
        if pool_class is redis.ConnectionPool:
            kwargs.pop("timeout", None)  # only blocking pools wait for a connection
        if self._url is not None:
            return pool_class.from_url(self._url, **kwargs)
        return pool_class(**self._address, **kwargs)

    # Sync ----------------------------------------------------------------

    def run(self, commands: Sequence[Command], retry: int | None = None) -> list[Any]:
        """Send *commands* in one write on this thread's connection; return every reply.

        Error replies are values. Calls of scripts the server lost are run
        again after loading them: all of them, or those among the first
        *retry* commands.
        """
        return self._thread.kept.run(commands, retry)

    def eval(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run *script* once; return its reply or raise its error."""
        (result,) = self._thread.kept.run([("EVALSHA", script.sha, len(keys), *keys, *args)])
        if isinstance(result, Exception):
            raise result
        return result

    def execute(self, *commands: Command) -> list[Any]:
        """Run *commands* in one round trip; return their replies, raise the first error."""
        return _raise_first_error(self.run(commands))

    def scan(self, pattern: str, count: int = 1000) -> Iterator[bytes]:
        """Yield the keys matching *pattern*, a few round trips at a time."""
        cursor: bytes | int = 0
        while True:
            ((cursor, keys),) = self.execute(("SCAN", cursor, "MATCH", pattern, "COUNT", count))
            yield from keys
            if cursor in (b"0", 0):
                return

    def database_count(self, timeout: float) -> int:
        """Ask the server, on a connection of its own to db 0, how many databases it has."""
        kwargs = {**self._kwargs, "socket_timeout": timeout, "socket_connect_timeout": timeout}
        for option in ("timeout", "max_connections"):
            kwargs.pop(option, None)
        pool = redis.ConnectionPool(**{**kwargs, **self._current_address(), "db": 0})
        client = redis.Redis(connection_pool=pool)
        try:
            reply: Any = client.config_get("databases")
            return int(reply["databases"])
        finally:
            client.close()
            pool.disconnect()

    def _current_address(self) -> dict[str, Any]:
        """Return where the server is now: ``host``/``port`` (or ``path``) keyword arguments."""
        return _parse_url(self._url) if self._url is not None else self._address

    def close(self) -> None:
        """Disconnect every sync connection; a thread's kept one reconnects on use."""
        self._pool.disconnect()

    # Async ---------------------------------------------------------------

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            pool = self._make_pool(redis.asyncio.BlockingConnectionPool, AsyncRetry(NoBackoff(), 0))
            state = self._loops[loop] = _LoopState(redis.asyncio.Redis(connection_pool=pool))
        return state

    async def acall(self, command: Command) -> Any:
        """Run one command, batched with this loop's other calls; return its reply or raise."""
        return await self._state().batcher.call(command)

    async def aeval(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Async twin of :meth:`eval`, batched with this loop's other calls."""
        return await self._state().batcher.call(("EVALSHA", script.sha, len(keys), *keys, *args))

    async def aexchange(self, name: str, commands: Sequence[Command]) -> list[Any]:
        """Send *commands* in one write on this loop's kept connection *name*.

        One name per list a loop blocks on, so that a blocking read never
        waits behind another. Error replies are values.
        """
        state = self._state()
        kept = state.kept.get(name)
        if kept is None:
            kept = state.kept[name] = AsyncKeptConnection(state.client.connection_pool)
        return await kept.run(commands)

    async def aexecute(self, *commands: Command) -> list[Any]:
        """Async twin of :meth:`execute`."""
        return _raise_first_error(await self.aexchange(_COMMANDS, commands))

    async def ablpop_unblockable(
        self, keys: Sequence[str], wait: float, client_ids: dict[Shard, int]
    ) -> Any:
        """``BLPOP`` *keys* on a connection of its own, noting its id for ``CLIENT UNBLOCK``."""
        pool: Any = self._state().client.connection_pool
        connection = await pool.get_connection()
        try:
            await _write(connection, _pack([("CLIENT", "ID"), ("BLPOP", *keys, wait)]))
            client_ids[self] = await connection.read_response()
            return await connection.read_response()
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)

    async def aclose(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the connections of *loop*, which must be the running loop."""
        state = self._loops.pop(loop, None)
        if state is not None:
            await state.client.aclose(close_connection_pool=True)
