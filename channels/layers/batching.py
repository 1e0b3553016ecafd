"""Coalesce concurrent async script calls into pipelines, one in flight at a time.

An interface server sends one message per WebSocket frame; with many busy
sockets, dozens of sends are in flight at once. Calls made while a pipeline
is on its way to Redis wait for it and then go together as the next one, so
the busier the server, the bigger the batches: one round trip, one write and
one pass through the client code for all of them instead of one each. An
idle server's call goes out on the next turn of the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from .redis_pipeline import AsyncPinnedConnection
from .redis_scripts import Script

_Call = tuple[Script, Sequence[str], Sequence[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    """Run script calls for one Redis client in batches, one batch in flight at a time."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._connection = AsyncPinnedConnection(client)
        self._pending: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None

    def call(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> asyncio.Future[Any]:
        """Queue one ``EVALSHA``; the future resolves to its result or raises its error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((script, keys, args, future))
        if self._sender is None:
            # Starts on the next turn of the loop, after the calls of this one.
            self._sender = loop.create_task(self._send_all())
        return future

    async def _send_all(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._flush(batch)
        finally:
            self._sender = None
            left, self._pending = self._pending, []
            for *_, future in left:  # only when this task was cancelled
                future.cancel()

    async def _flush(self, batch: list[_Call]) -> None:
        try:
            results = await self._execute(batch)
        except BaseException as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():
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
