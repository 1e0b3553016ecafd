"""Wait for a log line from another thread, without polling."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator


class LogWatch(logging.Handler):
    """Collect log records (message and exception text) and wake waiters on each one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            line += f"\n{record.exc_info[1]}"
        with self._changed:
            self.lines.append(line)
            self._changed.notify_all()

    def count(self, text: str) -> int:
        with self._changed:
            return sum(text in line for line in self.lines)

    def wait_for(self, text: str, timeout: float = 10) -> None:
        """Return once a record containing *text* was logged; fail after *timeout*."""
        with self._changed:
            if not self._changed.wait_for(lambda: any(text in x for x in self.lines), timeout):
                raise AssertionError(f"nothing containing {text!r} was logged in {timeout} s")


@contextlib.contextmanager
def watch_logs(name: str = "") -> Iterator[LogWatch]:
    """Attach a :class:`LogWatch` to logger *name* (the root logger by default)."""
    watch = LogWatch()
    logger = logging.getLogger(name)
    logger.addHandler(watch)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
