"""Recycle a worker: stop it after so many messages, or once it holds too much memory.

A worker lives for weeks, and the consumers it runs are the project's code:
a cache that only grows, a library that leaks a little per call
(django/daphne#403 asked for this). Rather than find every leak, stop the
process now and then and let the process manager start a fresh one, as
gunicorn's ``--max-requests`` and Celery's ``--max-tasks-per-child`` do.

A :class:`Recycler` only decides *when*: the worker asks it after taking
each message (:meth:`Recycler.took_one`) and after running each consumer
(:meth:`Recycler.finished_one`), and on the first reason it is given it stops
as on ``SIGTERM``: every message taken is finished, nothing is dropped, and
``runworker`` exits with status 0. The message limit is moved by up to
:attr:`Recycler.jitter` either way, once per process, so a fleet started
together does not restart all at once.
"""

from __future__ import annotations

import os
import random
import sys
import threading
from pathlib import Path

__all__ = ["Recycler", "resident_memory_mb"]

_STATM = Path("/proc/self/statm")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_MB = 1024 * 1024


def resident_memory_mb() -> float:
    """Return the memory this process holds in RAM now (its RSS), in MiB.

    Read from ``/proc/self/statm`` on Linux (a few microseconds). Elsewhere
    only the peak is known (``getrusage``), which a process that freed memory
    stays above; that is enough to recycle one that grew.
    """
    try:
        resident_pages = int(_STATM.read_bytes().split()[1])
    except (OSError, IndexError, ValueError):
        import resource  # not on Windows: imported only where /proc is missing

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # KiB on Linux and the BSDs, bytes on macOS.
        return peak / _MB if sys.platform == "darwin" else peak / 1024
    return resident_pages * _PAGE_SIZE / _MB


class Recycler:
    """Say when a worker has handled enough messages, or holds too much memory.

    *max_messages*: stop after about this many messages (across all the
    worker's threads; each thread that is waiting on the layer when the
    limit is reached may still take one). *max_memory_mb*: stop after a
    consumer if the process's resident memory is above this. Either may be
    None. Thread-safe: every receive loop of a worker shares one.
    """

    #: How far the message limit is moved, as a fraction, either way (0.1: ±10 %).
    jitter = 0.1

    def __init__(
        self,
        max_messages: int | None = None,
        max_memory_mb: float | None = None,
        *,
        jitter: float | None = None,
    ) -> None:
        if max_messages is not None and (isinstance(max_messages, bool) or max_messages < 1):
            raise ValueError(f"max_messages must be a whole number >= 1, not {max_messages!r}")
        if max_memory_mb is not None and not max_memory_mb > 0:
            raise ValueError(f"max_memory_mb must be a number of MiB > 0, not {max_memory_mb!r}")
        if jitter is not None:
            if not 0 <= jitter < 1:
                raise ValueError(f"jitter must be a fraction from 0 to below 1, not {jitter!r}")
            self.jitter = jitter
        self.max_messages = max_messages
        self.max_memory_mb = max_memory_mb
        #: This process's message limit: *max_messages* moved by up to :attr:`jitter`.
        self.limit: int | None = None
        if max_messages is not None:
            # Not for security: it only spreads restarts out.
            spread = random.uniform(-self.jitter, self.jitter)
            self.limit = max(1, round(max_messages * (1 + spread)))
        self._taken = 0
        self._lock = threading.Lock()

    @property
    def taken(self) -> int:
        """How many messages the worker has taken so far."""
        return self._taken

    def took_one(self) -> str | None:
        """Count a message the worker took; return why it must stop, once the limit is reached.

        The reason is given once, by the message that reaches the limit; the
        messages other threads take after it are counted, never refused.
        """
        with self._lock:
            self._taken += 1
            taken = self._taken
        if taken == self.limit:
            return f"it has taken {taken} messages (max_messages={self.max_messages} ± jitter)"
        return None

    def finished_one(self) -> str | None:
        """After a consumer ran: return why the worker must stop if it holds too much memory."""
        if self.max_memory_mb is None:
            return None
        resident = resident_memory_mb()
        if resident <= self.max_memory_mb:
            return None
        return (
            f"its resident memory, {resident:.0f} MiB, is above the limit of "
            f"{self.max_memory_mb:g} MiB (max_memory_mb)"
        )
