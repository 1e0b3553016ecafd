"""Which processes are alive: each process that reads its ``prefix!`` channels says so.

An interface server receives on its own process channel (``daphne.response.<random>!``)
all its life. With that receive, in the same write, it refreshes two keys on
the shard of that channel, at most once per :attr:`ProcessLiveness.refresh_interval`:

``<layer prefix>alive:<process prefix>``
    lives ``process_ttl`` seconds past the last refresh: while it exists the
    process is alive. A clean close deletes it; a killed process's key expires.
``<layer prefix>seen:<process prefix>``
    lives as long as a group membership: that the process existed at all.

The same write puts the process in its shard's registry (``<layer prefix>hygiene:processes``,
process prefix -> ms deadline, :mod:`.hygiene`), where the reaper finds it once
its deadline has passed.

So a reader tells three cases apart: alive (the first key), gone (only the
second) and never heard of (neither: a process of an older release, or one
whose first receive has not run yet). Only "gone" reads as dead, so nothing is
skipped wrongly. Announcing costs no round trip and no polling; asking costs
one round trip per process per :attr:`ProcessLiveness.cache_seconds`, the
answer being cached meanwhile.

The refresh is a ``SET`` and a ``PEXPIRE``: at ``maxmemory`` Redis refuses the
``SET`` but still runs the ``PEXPIRE``, so a live process does not look dead
while Redis is out of memory. Errors of these commands are ignored: they
must never fail the receive they travel with.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from .errors import TranslateErrors
from .scripts import Command
from .shard import Shard

logger = logging.getLogger("channels.layers.redis")

#: Every liveness that has announced a process and not withdrawn it: what exit withdraws.
_announcing: weakref.WeakSet[ProcessLiveness] = weakref.WeakSet()
_exit_hook = threading.Lock()
_exit_hook_registered = False


def _withdraw_all_at_exit() -> None:
    """Delete the alive keys of every process this interpreter announced (a clean exit)."""
    for liveness in list(_announcing):
        liveness.withdraw()


def process_of(channel: str) -> str | None:
    """Return the process prefix (up to ``!``) of *channel*, or None for a normal channel."""
    bang = channel.find("!")
    return channel[: bang + 1] if bang >= 0 else None


class ProcessLiveness:
    """Announce this process's ``prefix!`` receivers, and answer whether others are alive."""

    #: Least seconds between two refreshes of one process's keys.
    refresh_interval = 1.0
    #: Seconds an answer about a process is reused before Redis is asked again.
    cache_seconds = 1.0
    #: Answers kept at most; past it, the cache starts afresh.
    max_cached = 4096

    def __init__(
        self,
        prefix: str,
        ttl: float,
        seen_ttl: int,
        shard_of: Callable[[str], Shard],
        translate_errors: TranslateErrors,
        registry: str | None = None,
        on_withdraw: Callable[[list[str]], None] | None = None,
    ) -> None:
        if not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl <= 0:
            raise ValueError(f"process_ttl must be a positive number of seconds, not {ttl!r}")
        if ttl < 2 * self.refresh_interval:
            raise ValueError(
                f"process_ttl must be at least {2 * self.refresh_interval:g} s, not {ttl!r}: "
                f"a process refreshes its key every {self.refresh_interval:g} s at most, and "
                "a shorter TTL would let a live process's key expire between two refreshes"
            )
        self.prefix = prefix
        self.ttl = ttl
        self._ttl_ms = int(ttl * 1000)
        self._seen_ttl = max(int(seen_ttl), int(ttl) + 1)
        self._shard_of = shard_of
        self._translate_errors = translate_errors
        #: The registry's key, and what a withdraw also does with the processes withdrawn.
        self._registry = registry
        self._on_withdraw = on_withdraw
        #: Longest a blocking receive on a process channel may wait: it refreshes on return.
        self.longest_wait = ttl / 2
        #: {process prefix: monotonic time of its last refresh}
        self._announced: dict[str, float] = {}
        #: {process prefix: (monotonic time the answer goes stale, alive)}
        self._cache: dict[str, tuple[float, bool]] = {}

    def keys(self, process: str) -> tuple[str, str]:
        """Return the alive and seen keys of the process prefix *process*."""
        return f"{self.prefix}alive:{process}", f"{self.prefix}seen:{process}"

    # Announcing ---------------------------------------------------------------

    def announce(self, process: str) -> list[Command]:
        """Return the commands that refresh *process*'s keys, or none if refreshed lately.

        The caller sends them in the same write as its receive, and ignores
        their replies.
        """
        now = time.monotonic()
        last = self._announced.get(process)
        if last is not None and now - last < self.refresh_interval:
            return []
        self._announced[process] = now
        if last is None:
            self._watch_exit()
        alive, seen = self.keys(process)
        commands: list[Command] = [
            ("SET", alive, b"1", "PX", self._ttl_ms),
            ("PEXPIRE", alive, self._ttl_ms),
            ("SET", seen, b"1", "EX", self._seen_ttl),
        ]
        if self._registry is not None:
            deadline = int(time.time() * 1000) + self._ttl_ms
            # The registry lasts as long as its newest process's seen key: a
            # deployment that is gone for good leaves nothing behind.
            commands.append(("ZADD", self._registry, deadline, process))
            commands.append(("EXPIRE", self._registry, self._seen_ttl))
        return commands

    def _watch_exit(self) -> None:
        global _exit_hook_registered
        _announcing.add(self)
        with _exit_hook:
            if not _exit_hook_registered:
                atexit.register(_withdraw_all_at_exit)
                _exit_hook_registered = True

    def withdraw(self) -> None:
        """Delete the alive keys of the processes announced here: they read as gone at once.

        Then hand them to *on_withdraw* (the reaper, which removes their
        memberships and presence at once). Best effort, from a close or at
        exit: a key left behind by an unreachable Redis expires after
        ``process_ttl`` anyway, and another process reaps it then.
        """
        announced, self._announced = self._announced, {}
        _announcing.discard(self)
        for process in announced:
            try:
                self._shard_of(process).execute(("DEL", self.keys(process)[0]))
            except Exception as exc:
                logger.debug("Could not withdraw %s's alive key (%s)", process, exc)
        if announced and self._on_withdraw is not None:
            try:
                self._on_withdraw(list(announced))
            except Exception as exc:
                logger.debug("Could not reap %s at once (%s)", ", ".join(announced), exc)

    # Asking -------------------------------------------------------------------

    def alive(self, channel: str) -> bool:
        """Return whether the process reading *channel* is alive (see the module's docstring)."""
        process, answer = self._cached(channel)
        if process is None:
            return answer
        alive, seen = self.keys(process)
        with self._translate_errors:
            replies = self._shard_of(process).execute(("EXISTS", alive), ("EXISTS", seen))
        return self._remember(process, replies)

    async def aalive(self, channel: str) -> bool:
        """Async twin of :meth:`alive`."""
        process, answer = self._cached(channel)
        if process is None:
            return answer
        alive, seen = self.keys(process)
        with self._translate_errors:
            replies = await self._shard_of(process).aexecute(("EXISTS", alive), ("EXISTS", seen))
        return self._remember(process, replies)

    def _cached(self, channel: str) -> tuple[str | None, bool]:
        """Return (process prefix to ask Redis about, or None; the answer if None).

        A normal channel is always alive; a process asked about within
        :attr:`cache_seconds` gets its last answer.
        """
        if not isinstance(channel, str):
            raise TypeError(f"process_alive() takes a channel name (str), not {channel!r}")
        process = process_of(channel)
        if process is None:
            return None, True
        answer = self._cache.get(process)
        if answer is not None and answer[0] > time.monotonic():
            return None, answer[1]
        return process, True

    def _remember(self, process: str, replies: Sequence[Any]) -> bool:
        alive = bool(replies[0]) or not replies[1]
        if len(self._cache) >= self.max_cached:
            self._cache = {}
        self._cache[process] = (time.monotonic() + self.cache_seconds, alive)
        return alive
