"""Several Redis commands in one write and one read, with as little Python as possible.

The channel layer's hot paths (a worker's sends plus its next pop, an
interface server's batched sends and its reply reads) send a few commands at
a time. redis-py's pipeline objects cost more than the round trip they save
there; these helpers use a pooled connection directly, with no response
callbacks, and return error replies as values.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from redis.exceptions import ResponseError


def pipeline(client: redis.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send *commands* in one write, read every reply; error replies come back as values."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command(connection.pack_commands(commands))
        results: list[Any] = []
        for _ in commands:
            try:
                results.append(connection.read_response())
            except ResponseError as exc:  # the connection is still in step
                results.append(exc)
        return results
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)


async def apipeline(client: redis.asyncio.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Async twin of :func:`pipeline`."""
    pool = client.connection_pool
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command(connection.pack_commands(commands))
        results: list[Any] = []
        for _ in commands:
            try:
                results.append(await connection.read_response())
            except ResponseError as exc:
                results.append(exc)
        return results
    except BaseException:
        await connection.disconnect()
        raise
    finally:
        await pool.release(connection)
