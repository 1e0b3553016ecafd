"""``channels.log.setup_logger``, kept at its 1.x path for projects that call it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TextIO

__all__ = ["setup_logger"]

#: The 1.x format: time, level, module, message.
LOG_FORMAT = "%(asctime)s - %(levelname)s - %(module)s - %(message)s"


if TYPE_CHECKING:  # subscriptable at run time only from Python 3.11
    _StreamHandler = logging.StreamHandler[TextIO]
else:
    _StreamHandler = logging.StreamHandler


class _ConsoleHandler(_StreamHandler):
    """The stderr handler :func:`setup_logger` adds, told apart so it is added once."""


def setup_logger(name: str, verbosity: int = 1) -> logging.Logger:
    """Return the logger *name*, printing INFO (DEBUG from *verbosity* 2) to stderr.

    The package itself never configures logging; calling this is the
    project asking for it, as 1.x's management commands did. The logger stops
    propagating, so its lines are not printed twice by a root handler.
    Calling it again only changes the level.
    """
    logger = logging.getLogger(name)
    if not any(isinstance(handler, _ConsoleHandler) for handler in logger.handlers):
        handler = _ConsoleHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
    logger.propagate = False
    return logger
