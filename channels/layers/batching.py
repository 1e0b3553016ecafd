"""Coalesce concurrent async script calls into pipelines, one in flight at a time.

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
from typing import Any

from redis.exceptions import NoScriptError

from .redis_pipeline import AsyncPinnedConnection
from .redis_scripts import Script

_Call = tuple[Script, Sequence[str], Sequence[Any], "asyncio.Future[Any] | None"]


class ScriptBatcher:
    """Run script calls for one Redis client in batches, one batch in flight at a time."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._connection = AsyncPinnedConnection(client)
        self._pending: list[_Call] = []
        #: True while a pipeline is in flight (from a caller's task or the sender's).
        self._busy = False
        self._sender: asyncio.Task[None] | None = None  # a reference keeps it alive

    async def call(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one ``EVALSHA``; return its result or raise its error."""
        if not self._busy:
            self._busy = True
            try:
                (result,) = await self._execute([(script, keys, args, None)])
            finally:
                self._next()
            if isinstance(result, Exception):
                raise result
            return result
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((script, keys, args, future))
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
            for *_, future in left:  # only when this task was cancelled
                if future is not None:
                    future.cancel()

    async def _flush(self, batch: list[_Call]) -> None:
        try:
            results = await self._execute(batch)
        except BaseException as exc:
            for *_, future in batch:
                if future is not None and not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (*_, future), result in zip(batch, results, strict=True):
            if future is None or future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        results = await self._pipeline(batch)
        missing = {call[0] for call, result in zip(batch, results, strict=True)
                   if isinstance(result, NoScriptError)}  # fmt: skip
        if not missing:
            return results
        # Redis restarted (or flushed its scripts): load them, run those calls again.
        # On the connection that just answered: one the pool kept from before a
        # restart would fail once.
        loaded = await self._connection.run([("SCRIPT", "LOAD", s.source) for s in missing])
        for result in loaded:
            if isinstance(result, Exception):
                raise result
        again = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        retried = await self._pipeline([batch[i] for i in again])
        for index, result in zip(again, retried, strict=True):
            results[index] = result
        return results

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        commands = [
            ("EVALSHA", script.sha, len(keys), *keys, *args) for script, keys, args, _ in batch
        ]
        return await self._connection.run(commands)
