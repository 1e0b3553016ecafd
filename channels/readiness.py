"""Tell an orchestrator that a process can take work: a log line, and a file if asked.

A rolling restart stops an old worker only once its replacement is ready,
and "the process started" is not "ready": Django has to load, and the
channel layer has to answer. ``runworker`` and ``rundelay`` are ready once
the layer has answered and they are about to wait for their first message
(after the layer check at start; if the layer was down then, as soon as a
receive works). They then log one line::

    [02/Dec/2026 09:14:03] Ready: worker 4242 listening on 4 channels of channel layer 'default'

and, given a path (``--ready-file``), write a file there holding the pid, for
an orchestrator to test (``test -f PATH`` as a Kubernetes exec probe or a
Compose healthcheck). The file is removed when the process exits, and one
left behind by a process that was killed is removed at start, so it never
says "ready" for a process that is not.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from types import TracebackType

__all__ = ["Readiness", "ReadyFile"]


class ReadyFile:
    """A file that exists while this process is ready, holding its pid."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise ValueError(
                f"the directory of {str(self.path)!r} does not exist: create it, or choose "
                "a path in a directory that does"
            )

    def clear_stale(self) -> None:
        """Remove a file left by an earlier process (killed before it could remove it)."""
        self.path.unlink(missing_ok=True)

    def write(self) -> None:
        """Write the file in one step: a reader sees no file or a whole one."""
        pid = os.getpid()
        partial = self.path.with_name(f".{self.path.name}.{pid}.tmp")
        partial.write_text(f"{pid}\n")
        os.replace(partial, self.path)

    def remove(self) -> None:
        """Remove the file if this process wrote it (a successor's is left alone)."""
        try:
            holder = self.path.read_text().strip()
        except OSError:
            return
        if holder == str(os.getpid()):
            self.path.unlink(missing_ok=True)


class Readiness:
    """Announce once that a process is ready, and take it back when it ends.

    Use it as a context manager around the process's life: entering removes
    a stale ready file, :meth:`announce` (from any thread, any number of
    times) logs ``Ready: <description>`` and writes the file the first time,
    and leaving removes the file.
    """

    def __init__(
        self,
        logger: logging.Logger,
        description: str,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.logger = logger
        self.description = description
        self.file = ReadyFile(path) if path else None
        self._announced = False
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        """Whether :meth:`announce` was called."""
        return self._announced

    def __enter__(self) -> Readiness:
        if self.file is not None:
            self.file.clear_stale()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.withdraw()

    def announce(self) -> None:
        """Say the process is ready: the ready file first, then the log line (once)."""
        with self._lock:
            if self._announced:
                return
            self._announced = True
        if self.file is not None:
            try:
                self.file.write()
            except OSError as exc:  # the process works; only the orchestrator's probe fails
                self.logger.error("Could not write the ready file %s: %s", self.file.path, exc)
        self.logger.info("Ready: %s", self.description)

    def withdraw(self) -> None:
        """Remove the ready file (the process is stopping); the log line stays said."""
        if self.file is not None:
            self.file.remove()
