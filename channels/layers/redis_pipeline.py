"""Several Redis commands in one write and one read, with as little Python as possible.

The channel layer's hot paths (a worker's sends plus its next pop, an
interface server's batched sends and its reply reads) send a few commands at
a time. redis-py's pipeline objects cost more than the round trip they save
there; these helpers pack the commands with hiredis, use a connection
directly, with no response callbacks, and return error replies as values.
The pinned connections also skip the pool's per-call bookkeeping for a
caller that runs one exchange at a time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis
import redis
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Commands = list[tuple[Any, ...]]


# Shared ----------------------------------------------------------------------


def _pack(commands: Commands) -> bytes:
    return b"".join([hiredis.pack_command(command) for command in commands])


# Sync: a worker thread -----------------------------------------------------


def _exchange_now(connection: Any, commands: Commands) -> list[Any]:
    connection.send_packed_command([_pack(commands)], check_health=False)
    results: list[Any] = []
    for _ in commands:
        try:
            results.append(connection.read_response())
        except ResponseError as exc:  # the connection is still in step
            results.append(exc)
    return results


def _drop_if_stale(connection: Any) -> None:
    """Disconnect (it reconnects on use) a kept connection the server closed meanwhile.

    Before a command is sent nothing may be waiting on the socket: anything
    readable is the end of a connection from before a Redis restart, and
    sending on it would lose the command.
    """
    try:
        stale = connection.can_read(timeout=0)
    except (RedisConnectionError, RedisTimeoutError, OSError):
        stale = True
    if stale:
        connection.disconnect()


class PinnedConnection:
    """One connection taken from a client's pool and kept by one thread.

    For a worker thread's sends-and-next-message exchange: no pool lock, pid
    check or health read per call. After an error the connection goes back
    to the pool and a fresh one is taken next time; if the server went away,
    the pool's idle connections are dropped as well (their sockets are dead
    too). Closing the pool closes it.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._connection: Any = None

    def run(self, commands: Commands) -> list[Any]:
        """Send *commands* in one write; return every reply (errors as values)."""
        pool = self.client.connection_pool
        connection = self._connection
        if connection is None:
            connection = self._connection = pool.get_connection()
        else:
            _drop_if_stale(connection)
        try:
            return _exchange_now(connection, commands)
        except BaseException as exc:
            self._connection = None
            connection.disconnect()
            if isinstance(exc, RedisConnectionError | RedisTimeoutError):
                pool.disconnect(inuse_connections=False)
            pool.release(connection)
            raise


# Async: an interface server's event loop ----------------------------------


async def _drop(pool: Any, connection: Any, exc: BaseException) -> None:
    """Disconnect a connection that failed, and its idle siblings if the server went."""
    await connection.disconnect()
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        await pool.disconnect(inuse_connections=False)


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


async def _exchange(connection: Any, commands: Commands) -> list[Any]:
    await _write(connection, _pack(commands))
    results: list[Any] = []
    for _ in commands:
        try:
            results.append(await connection.read_response())
        except ResponseError as exc:  # the connection is still in step
            results.append(exc)
    return results


async def _adrop_if_stale(connection: Any) -> None:
    """Async twin of :func:`_drop_if_stale`."""
    if not connection.is_connected:
        return
    # redis-py 8 renamed can_read_destructive(); both only look at buffered data.
    can_read = getattr(connection, "can_read", None) or connection.can_read_destructive
    try:
        stale = await can_read()
    except (RedisConnectionError, RedisTimeoutError, OSError):
        stale = True
    if stale:
        await connection.disconnect()


async def apipeline(client: redis.asyncio.Redis, commands: Commands) -> list[Any]:
    """Send *commands* in one write on a pooled connection; return every reply."""
    pool = client.connection_pool
    connection = await pool.get_connection()
    try:
        return await _exchange(connection, commands)
    except BaseException as exc:
        await _drop(pool, connection, exc)
        raise
    finally:
        await pool.release(connection)


class AsyncPinnedConnection:
    """Async twin of :class:`PinnedConnection`, kept for one exchange at a time.

    For a loop that talks to Redis over and over (an interface server's
    batched sends, its reply reads): no pool lock, timeout or health read per
    call. A call made while another is in flight uses the pool instead. After
    an error the connection goes back to the pool and a fresh one is taken
    next time; closing the pool closes it too.
    """

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self._connection: Any = None
        self._busy = False

    async def run(self, commands: Commands) -> list[Any]:
        """Send *commands* in one write; return every reply (errors as values)."""
        if self._busy:
            return await apipeline(self.client, commands)
        self._busy = True
        try:
            connection = self._connection
            if connection is None:
                connection = self._connection = await self.client.connection_pool.get_connection()
            else:
                await _adrop_if_stale(connection)
            try:
                return await _exchange(connection, commands)
            except BaseException as exc:
                self._connection = None
                await _drop(self.client.connection_pool, connection, exc)
                await self.client.connection_pool.release(connection)
                raise
        finally:
            self._busy = False
