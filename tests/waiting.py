"""Wait, with a deadline, for something to become true: the one bounded poll of the tests.

Prefer an event when there is one: a process's output line
(:meth:`tests.processes.ManagedProcess.wait_for`), a message on a channel
(``layer.receive(..., block=True, timeout=...)``), a socket's accept. Poll with
:func:`wait_until` only for a state nothing announces (a Redis key expiring, a
file appearing, a port that a silent server opens). Every wait has a time
limit, and its failure says what did not happen.

Standard library only: the benchmarks load it inside the anchor virtualenvs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Seconds between two looks at the predicate: short against the waits, long against a CPU.
POLL_INTERVAL = 0.05


class WaitTimeout(AssertionError):
    """What a test or benchmark waited for did not happen within its time limit.

    An :class:`AssertionError`, so pytest reports it as the failed expectation
    it is, with the message that says what was awaited.
    """


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    message: str | Callable[[], str],
    *,
    ignore: tuple[type[BaseException], ...] = (),
    interval: float = POLL_INTERVAL,
) -> T:
    """Call *predicate* until it returns something true, and return that; fail after *timeout*.

    *message* says what was awaited; a callable is called only on failure, so
    it can show the state at that moment (a process's output, the keys left).
    Exceptions of the *ignore* types count as "not yet" (``OSError`` while a
    server starts); the last one is chained to the :class:`WaitTimeout`.
    """
    if timeout <= 0:
        raise ValueError(f"wait_until needs a positive timeout in seconds, got {timeout!r}")
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except ignore as exc:
            last_error = exc
        else:
            if result:
                return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            text = message() if callable(message) else message
            raise WaitTimeout(f"{text} (waited {timeout:g} s)") from last_error
        time.sleep(min(interval, remaining))
