"""Say once what is wrong with a channel layer, and once that it works again.

A loop that keeps calling a layer (a worker's receive loop, an interface
server's reply loop) must survive the layer being down or misconfigured, and
retry with a growing pause. What it must not do is log the same traceback
several times a second: the first failure is reported with its fix, repeats
of it are silent, a different failure is reported again, and the first
success after a failure says the layer is back. One :class:`OutageReport`
is shared by every thread of a process that calls the same layer, so "once"
means once per process.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ..exceptions import ChannelLayerConfigurationError, ChannelLayerConnectionError


def _problem_of(exc: BaseException) -> tuple[type[BaseException], str]:
    """What makes two failures the same problem, for saying it once.

    An unreachable server is one problem however the client words it (the sync
    and async clients do not word it alike); any other failure is one problem
    per message, since a different message means a different mistake.
    """
    plain_outage = isinstance(exc, ChannelLayerConnectionError) and not isinstance(
        exc, ChannelLayerConfigurationError
    )
    return (type(exc), "" if plain_outage else str(exc))


class OutageReport:
    """Log a layer's failures once per distinct problem, and its recovery once."""

    def __init__(self, logger: logging.Logger, layer_name: str) -> None:
        self.logger = logger
        self.layer_name = layer_name
        self._lock = threading.Lock()
        self._problem: tuple[type[BaseException], str] | None = None

    @property
    def down(self) -> bool:
        """Whether the last call reported here failed."""
        return self._problem is not None

    def failed(self, exc: BaseException, retry_in: float) -> bool:
        """Report *exc* unless it repeats the problem already reported; True if it was logged."""
        problem = _problem_of(exc)
        with self._lock:
            if problem == self._problem:
                return False
            self._problem = problem
        if isinstance(exc, ChannelLayerConfigurationError):
            self.logger.error(
                "Channel layer %s is misconfigured: %s. Retrying every %.0f s until it works.",
                self.layer_name,
                exc,
                retry_in,
            )
        elif isinstance(exc, ChannelLayerConnectionError):
            self.logger.warning("%s; retrying every %.0f s at most", exc, max(retry_in, 1))
        elif isinstance(exc, ConnectionError):
            self.logger.warning(
                "Channel layer %s is unreachable (%s); retrying every %.0f s at most",
                self.layer_name,
                exc,
                max(retry_in, 1),
            )
        else:
            self.logger.error(
                "Calling channel layer %s failed; retrying (repeats of this error are not logged)",
                self.layer_name,
                exc_info=exc,
            )
        return True

    def succeeded(self) -> None:
        """Note a call that worked: if the layer was failing, say it is back."""
        if self._problem is None:  # the common case: no lock
            return
        with self._lock:
            if self._problem is None:
                return
            self._problem = None
        self.logger.warning("Channel layer %s is reachable again", self.layer_name)


def check_layer(layer: Any, report: OutageReport, retry_in: float) -> bool:
    """Make one harmless call to *layer*, reporting a failure through *report*.

    Run when a process starts (a worker, an interface server), so a layer
    that is down or misconfigured is said before the first message is waited
    for. Return whether it answered; a layer without statistics is assumed to.
    """
    probe = getattr(layer, "global_statistics", None)
    if probe is None or "statistics" not in getattr(layer, "extensions", ()):
        return True
    try:
        probe()
    except Exception as exc:
        report.failed(exc, retry_in)
        return False
    return True
