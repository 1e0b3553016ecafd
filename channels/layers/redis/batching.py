"""Coalesce concurrent async calls to one Redis into pipelines, one in flight at a time.

An interface server sends one message per WebSocket frame; with many busy
sockets, dozens of sends are in flight at once. A call made while the
batcher is idle goes out at once, from the caller's own task. Calls made
while a pipeline is on its way to Redis wait for it and then go together as
the next one, so the busier the server, the bigger the batches: one round
trip, one write and one pass through the client code for all of them
instead of one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

_Call = tuple[tuple[Any, ...], "asyncio.Future[Any] | None"]


class _Connection(Protocol):
    async def run(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]: ...


class Batcher:
    """Run single-command calls on one connection in batches, one batch in flight at a time.

    The connection sends a batch in one write and returns every reply, errors
    as values (and reloads scripts a restarted server lost).
    """

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self._pending: list[_Call] = []
        #: True while a pipeline is in flight (from a caller's task or the sender's).
        self._busy = False
        self._sender: asyncio.Task[None] | None = None  # a reference keeps it alive

    async def call(self, command: tuple[Any, ...]) -> Any:
        """Run *command*; return its reply or raise its error."""
        if not self._busy:
            self._busy = True
            try:
                (result,) = await self._connection.run([command])
            finally:
                self._next()
            if isinstance(result, Exception):
                raise result
            return result
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((command, future))
        return await future

    def _next(self) -> None:
        """Send what queued up meanwhile, in a task of its own, or go idle."""
        if self._pending:
            self._sender = asyncio.get_running_loop().create_task(self._send_all())
        else:
            self._busy = False

    async def _send_all(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._flush(batch)
        finally:
            self._busy = False
            left, self._pending = self._pending, []
            for _, future in left:  # only when this task was cancelled
                if future is not None:
                    future.cancel()

    async def _flush(self, batch: list[_Call]) -> None:
        try:
            results = await self._connection.run([command for command, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if future is not None and not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future is None or future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
