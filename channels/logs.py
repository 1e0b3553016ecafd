"""One log format for every channels process, in the style of Django's ``runserver``.

Django's development server logs ``[01/Dec/2026 20:57:03] "GET / HTTP/1.1" 200
1234``; channels-classic's processes (``runserver``, ``runworker``,
``rundelay``, and daphne serving the channel layer) log the same way::

    [01/Dec/2026 20:57:03] "GET /hello/" 200 (0.004 s)
    [01/Dec/2026 20:57:04] WebSocket CONNECT /chat/lobby/
    [01/Dec/2026 20:57:09] WARNING channels.worker: Error in consumer ...

Everything goes through :mod:`logging`, on the ``channels`` logger and its
children (access lines of ``runserver`` on Django's own ``django.server``
logger, with its colours). Like Django for its ``django`` logger, the
commands give the ``channels`` logger a default handler, and only when the
project's ``LOGGING`` setting says nothing about it: a project that
configures ``"channels"`` (or any ``"channels.*"`` logger) gets exactly what
it configured.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, TextIO

from django.utils.log import ServerFormatter

__all__ = ["ChannelsFormatter", "use_default_logging"]

#: Log levels by a command's ``--verbosity``.
VERBOSITY_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


class ChannelsFormatter(ServerFormatter):
    """Django's server format, with the level and logger named on warnings and errors.

    Informational lines read like Django's access log; anything worse says
    what it is and where it comes from, so it stands out in a busy console.
    """

    def __init__(self) -> None:
        super().__init__("[{server_time}] {message}", datefmt="%d/%b/%Y %H:%M:%S", style="{")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            stamp, _, rest = text.partition("] ")
            text = f"{stamp}] {record.levelname} {record.name}: {rest}"
        return text


def _configured_by_project() -> bool:
    from django.conf import settings

    loggers = (getattr(settings, "LOGGING", None) or {}).get("loggers") or {}
    return any(name == "channels" or name.startswith("channels.") for name in loggers)


if TYPE_CHECKING:  # subscriptable at run time only from Python 3.11
    _StreamHandler = logging.StreamHandler[TextIO]
else:
    _StreamHandler = logging.StreamHandler


class _DefaultHandler(_StreamHandler):
    """The handler :func:`use_default_logging` adds, told apart so it is added once."""


def use_default_logging(verbosity: int = 1) -> None:
    """Give the ``channels`` logger its default handler, unless the project configured it.

    Called by the commands and by daphne's process when it loads the layer:
    entry points, never library code. Calling it again changes only the level.
    """
    if _configured_by_project():
        return
    logger = logging.getLogger("channels")
    logger.setLevel(VERBOSITY_LEVELS.get(verbosity, logging.DEBUG))
    if any(isinstance(handler, _DefaultHandler) for handler in logger.handlers):
        return
    handler = _DefaultHandler(sys.stderr)
    handler.setFormatter(ChannelsFormatter())
    logger.addHandler(handler)
    # The default handler is the only one: daphne's root handler would print
    # every line a second time, in its own format.
    logger.propagate = False


def served_by_daphne() -> bool:
    """Return True in a process that daphne's command line started."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    program = sys.argv[0] if sys.argv else ""
    return (spec is not None and spec.name.startswith("daphne")) or program.endswith("daphne")


def daphne_verbosity() -> int:
    """Return the ``-v`` daphne was started with, read back from the level it gave logging."""
    level = logging.getLogger().level
    return {logging.WARNING: 0, logging.INFO: 1}.get(level, 2)
