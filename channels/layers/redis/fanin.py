"""Receives on channels that live on several shards: one pop, many servers.

A non-blocking receive asks each server in turn. A blocking one runs a
``BLPOP`` on every server at once; the first answer wins and the others are
released with ``CLIENT UNBLOCK``. What another server handed over in that
instant is kept in the layer's read-ahead, never lost. A sync receive does
the same on an event loop of its thread's own (:class:`PrivateLoops`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from . import scripts
from .entries import ReadAhead
from .shard import Shard

#: {shard index: the list keys to pop on it}, as the router plans a receive.
ByShard = dict[int, list[str]]


async def ablpop_any(targets: dict[Shard, list[str]], wait: float) -> list[Any]:
    """``BLPOP`` on several shards at once; return what each popped (None for nothing).

    When one shard answers, the others are woken with ``CLIENT UNBLOCK``;
    what one of them popped meanwhile is returned too, never lost. Raise an
    error only when nothing was popped.
    """
    client_ids: dict[Shard, int] = {}
    tasks = {
        asyncio.ensure_future(shard.ablpop_unblockable(keys, wait, client_ids)): shard
        for shard, keys in targets.items()
    }
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    while pending:
        for task in pending:
            client_id = client_ids.get(tasks[task])
            if client_id is not None:
                await tasks[task].acall(("CLIENT", "UNBLOCK", client_id))
        _, pending = await asyncio.wait(pending, timeout=0.05)
    popped: list[Any] = []
    error: BaseException | None = None
    for task in tasks:
        if task.exception() is not None:
            error = task.exception()
        elif task.result() is not None:
            popped.append(task.result())
    if not popped and error is not None:
        raise error
    return popped


class PrivateLoops:
    """One event loop per thread, for a sync call that waits on several shards at once."""

    def __init__(self) -> None:
        self._thread = threading.local()
        self._lock = threading.Lock()
        self._loops: list[asyncio.AbstractEventLoop] = []

    def get(self) -> asyncio.AbstractEventLoop:
        """Return this thread's loop, made on first use."""
        loop: asyncio.AbstractEventLoop | None = getattr(self._thread, "loop", None)
        if loop is None:
            loop = self._thread.loop = asyncio.new_event_loop()
            with self._lock:
                self._loops.append(loop)
        return loop

    def close(self, shards: Sequence[Shard]) -> None:
        """Close every loop, and the shards' connections on it, but those still running."""
        with self._lock:
            loops, self._loops = self._loops, []
        self._thread = threading.local()
        for loop in loops:
            if not loop.is_running():  # a receive still blocked elsewhere keeps its loop
                for shard in shards:
                    loop.run_until_complete(shard.aclose(loop))
                loop.close()


class FanIn:
    """Pop one entry from lists spread over *shards*; keep what more servers gave.

    Every method returns ``(list key, entry)`` as Redis gave it, or None.
    """

    def __init__(self, shards: Sequence[Shard], read_ahead: ReadAhead) -> None:
        self._shards = list(shards)
        self._read_ahead = read_ahead
        self._loops = PrivateLoops()

    def pop_now(self, by_shard: ByShard) -> Any:
        """Pop without waiting, asking each shard in turn (a sync receive with ``block=False``)."""
        for shard, keys in by_shard.items():
            popped = self._shards[shard].eval(scripts.POP, keys, ())
            if popped:
                return popped
        return None

    async def apop_now(self, by_shard: ByShard) -> Any:
        """Async twin of :meth:`pop_now`."""
        for shard, keys in by_shard.items():
            popped = await self._shards[shard].aeval(scripts.POP, keys, ())
            if popped:
                return popped
        return None

    def blpop(self, by_shard: ByShard, wait: float) -> Any:
        """Wait at most *wait* seconds for an entry on any shard, from a sync caller."""
        return self._loops.get().run_until_complete(self.ablpop(by_shard, wait))

    async def ablpop(self, by_shard: ByShard, wait: float) -> Any:
        """Async twin of :meth:`blpop`."""
        targets = {self._shards[index]: keys for index, keys in by_shard.items()}
        popped = await ablpop_any(targets, wait)
        for key, entry in popped[1:]:
            await self._read_ahead.akeep(key.decode("ascii"), (entry,))
        return popped[0] if popped else None

    def close(self) -> None:
        """Close the private loops, and the shards' connections on them."""
        self._loops.close(self._shards)
