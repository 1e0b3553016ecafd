"""Messages that must reach a consumer even when their channel is full: ``websocket.disconnect``.

A disconnect is what lets consumers leave their groups and delete the
socket's channel session; dropped because the channel was full at that
moment (many sockets closing at once), it leaves them behind for good. So a
disconnect refused as full waits for room, for up to
:attr:`SendBacklog.timeout`, and only then is it dropped and logged.

The waiting is not done by the connection: daphne cancels an application
that outlives its client by more than its ``application_close_timeout``, and
the waiting disconnect would go with it. Nor is it done by one task per
connection: thousands of tasks retrying against a full channel would
multiply the layer's load just when it is overloaded. Each process has one
:class:`SendBacklog` per dispatcher: one task sends its messages in order,
one at a time, waiting for room with the bounded pause of
:func:`channels.backoff.asend_when_room`. The connection itself returns at
once, and the other sockets are never held up.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from functools import partial
from typing import Any

from ..backoff import asend_when_room
from ..exceptions import ChannelFull
from .dispatcher import BridgeLayer, ReplyDispatcher

logger = logging.getLogger("channels.bridge")


class SendBacklog:
    """Sends each message it is given as soon as its channel has room, in order."""

    #: Seconds a message may wait for room before it is dropped (and logged).
    #: Generous: a burst of disconnects only has to outlast the workers' backlog.
    timeout = 120.0

    def __init__(self, layer: BridgeLayer) -> None:
        self.layer = layer
        self.pending: deque[tuple[str, dict[str, Any], float]] = deque()
        #: Messages dropped since the last one that was sent (for the log).
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Send *message* now if *channel* has room and none are waiting, else queue it."""
        if not self.pending:
            try:
                await self.layer.asend(channel, message)
                return
            except ChannelFull:
                pass
            except Exception as exc:  # the layer is down: the outage is reported elsewhere
                logger.debug("Could not send %s (%s)", channel, exc)
                return
        self.pending.append((channel, message, time.monotonic() + self.timeout))
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            while self.pending:
                channel, message, deadline = self.pending[0]
                try:
                    await asend_when_room(
                        partial(self.layer.asend, channel, message),
                        max(0.0, deadline - time.monotonic()),
                    )
                except ChannelFull:
                    self._drop(channel, "its channel stayed full")
                except Exception as exc:
                    self._drop(channel, f"the layer failed ({exc})")
                else:
                    if self.dropped:
                        logger.warning("Sent %s again, after %d dropped", channel, self.dropped)
                    self.dropped = 0
                self.pending.popleft()
        except asyncio.CancelledError:  # the server is shutting down
            if self.pending:
                logger.warning("Lost %d waiting disconnect messages at shutdown", len(self.pending))
            raise

    def _drop(self, channel: str, why: str) -> None:
        self.dropped += 1
        if self.dropped == 1:  # once per run of drops: a full channel drops many
            logger.warning(
                "Dropped a %s message after %g s: %s. Its consumer will not run, so its "
                "socket's group memberships and channel session stay behind: start more "
                "workers, or raise the layer's capacity. Further drops are not logged "
                "until one is sent again.",
                channel,
                self.timeout,
                why,
            )


_backlogs: weakref.WeakKeyDictionary[ReplyDispatcher, SendBacklog] = weakref.WeakKeyDictionary()


def backlog_for(dispatcher: ReplyDispatcher) -> SendBacklog:
    """Return the backlog that goes with *dispatcher* (one per layer and event loop)."""
    backlog = _backlogs.get(dispatcher)
    if backlog is None:
        backlog = _backlogs[dispatcher] = SendBacklog(dispatcher.layer)
    return backlog
