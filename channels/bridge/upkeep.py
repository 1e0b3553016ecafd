"""What an interface server does to keep the layer's groups and presence clean.

Two duties, one per process and event loop, owned by the
:class:`~channels.bridge.dispatcher.ReplyDispatcher`:

* **Housekeeping.** For as long as the reply loop runs, a task of its own
  awaits the layer's ``amaintain()`` about once per ``maintain_interval``.
  That pass reaps the memberships and presence of dead processes (Redis),
  ends presence entries whose grace ran out and sends the batched join/leave
  diffs. Every live interface server and worker runs it, so a dead process is
  cleaned up as long as one of them lives; the layer itself keeps the passes
  to one per interval, whoever calls. A pass that fails is logged at debug
  and tried again on the next tick: the layer reports its outages elsewhere
  (the reply loop's :class:`~channels.layers.outage.OutageReport`), and
  housekeeping must never end the loop or a connection.
* **Release on close.** When a WebSocket ends, its entries in every presence
  set are released (``apresence_release``): they go after the layer's
  ``presence_grace``, even when the project routes no ``websocket.disconnect``
  consumer that would untrack them.

Both work with layers that are not ours (the bridge serves any layer through
:class:`channels.asgi.ChannelLayerWrapper`): a layer without ``amaintain``
gets no task, and one that does not list the ``"presence"`` extension is not
asked to release anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("channels.bridge")


def _interval_of(layer: Any, default: float) -> float:
    interval = getattr(layer, "maintain_interval", None)
    if isinstance(interval, int | float) and not isinstance(interval, bool) and interval > 0:
        return float(interval)
    return default


class Upkeep:
    """Run the layer's housekeeping while the reply loop runs, and release closed sockets."""

    #: Seconds between two calls of ``amaintain()`` when the layer names no
    #: positive ``maintain_interval`` (a test may set 0 there, to have every
    #: call do a pass: the task must still not spin).
    interval = 1.0
    #: The shortest pause between two calls, whatever the layer says.
    least_interval = 0.05

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self._maintain: Callable[[], Awaitable[None]] | None = getattr(layer, "amaintain", None)
        self._release: Callable[[str], Awaitable[None]] | None = None
        if "presence" in (getattr(layer, "extensions", None) or ()):
            self._release = getattr(layer, "apresence_release", None)
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the housekeeping task is running."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the housekeeping task on the running loop, unless it runs or has nothing to do."""
        if self._maintain is None or self.running:
            return
        self._task = asyncio.ensure_future(self._run(self._maintain))

    def stop(self) -> None:
        """Stop the housekeeping task (the reply loop has stopped)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self, maintain: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await maintain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the layer's trouble is reported by the reply loop
                logger.debug("The layer's housekeeping failed (%s); trying again", exc)
            pause = max(_interval_of(self.layer, self.interval), self.least_interval)
            await asyncio.sleep(pause)

    async def release(self, channel: str) -> None:
        """Release the presence entries of *channel*, a socket that has ended; never raises.

        A layer without presence has nothing to release. A layer that is
        down cannot be told: its entries then go with the process, when
        its memberships are reaped.
        """
        release = self._release
        if release is None:
            return
        try:
            await release(channel)
        except asyncio.CancelledError:
            raise
        except NotImplementedError:  # lists the extension, yet lacks the method: stop asking
            self._release = None
        except Exception as exc:
            logger.debug("Could not release the presence of a closed socket (%s)", exc)
