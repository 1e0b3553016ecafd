"""Coalesce concurrent async script calls into one pipeline per event-loop turn.

An interface server sends one message per WebSocket frame; with many busy
sockets, dozens of sends are in flight at once. Sending those that arrive in
the same turn of the event loop as one pipeline costs one round trip and one
pass through redis-py for all of them, instead of one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from .redis_scripts import Script

_Call = tuple[Script, Sequence[str], Sequence[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    """Run script calls for one Redis client, batched per event-loop turn."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._pending: list[_Call] = []

    def call(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> asyncio.Future[Any]:
        """Queue one ``EVALSHA``; the future resolves to its result or raises its error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._start_flush)
        self._pending.append((script, keys, args, future))
        return future

    def _start_flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._flush(batch))
        # The results reach the callers' futures; keep a reference until done.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())

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
        for script in missing:
            await self.client.execute_command("SCRIPT", "LOAD", script.source)
        again = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        retried = await self._pipeline([batch[i] for i in again])
        for index, result in zip(again, retried, strict=True):
            results[index] = result
        return results

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        if len(batch) == 1:
            script, keys, args, _ = batch[0]
            try:
                return [
                    await self.client.execute_command(
                        "EVALSHA", script.sha, len(keys), *keys, *args
                    )
                ]
            except NoScriptError as exc:
                return [exc]
        pipe = self.client.pipeline(transaction=False)
        for script, keys, args, _ in batch:
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return await pipe.execute(raise_on_error=False)
