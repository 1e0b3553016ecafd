"""One receive loop per process reads every reply and hands each to its connection.

Every reply channel of a process shares one process-specific prefix
(``daphne.response.<random>!<random>``), so a single blocking receive on the
prefix gets the replies of all the process's connections. A connection asks
for its reply channel with :meth:`ReplyDispatcher.register` when it starts and
gives it back with :meth:`ReplyDispatcher.forget` when it ends. While the
loop runs, so does the process's :class:`~channels.bridge.upkeep.Upkeep`: the
layer's housekeeping, and the release of closed sockets' presence. The
dispatcher also owns the process's :class:`~channels.bridge.drain.Drain`, and
the goodbyes its sockets say when the server stops (:meth:`ReplyDispatcher.shutdown`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..layers.names import new_process_channel
from ..layers.outage import OutageReport
from ..typing import ChannelLayer
from . import daphne
from .drain import Drain
from .events import Control, ControlEvent, Deliver
from .upkeep import Upkeep

logger = logging.getLogger("channels.bridge")

_T = TypeVar("_T")


#: What the bridge uses of a channel layer (or its Django wrapper): ``asend``,
#: ``areceive`` and ``new_channel`` of :class:`channels.typing.ChannelLayer`.
BridgeLayer = ChannelLayer


class ReplyDispatcher:
    """The one receive loop of a process: reads every reply and routes it to its connection.

    The loop starts with the first registration and runs for the life of the
    event loop. While the layer cannot be read, every connection gets
    :attr:`ControlEvent.LAYER_DOWN` once per failed attempt, and the loop
    retries with a pause that doubles up to :attr:`max_retry_delay`. Should
    the loop itself ever fail, it is logged and started again: a process
    whose reply loop has stopped would keep sockets open that never hear
    from a consumer again. The :attr:`upkeep` starts with the loop and stops
    when the loop is cancelled.
    """

    #: Longest pause between attempts to read from a layer that is down.
    max_retry_delay = 2.0
    #: First pause after a failed read; it doubles on each further failure.
    first_retry_delay = 0.1

    def __init__(self, layer: BridgeLayer, drain_timeout: float = 10.0) -> None:
        self.layer = layer
        self.prefix = f"daphne.response.{secrets.token_hex(6)}!"
        #: Reply channel -> what takes its replies. The bound method itself is
        #: stored so that relaying a reply allocates nothing.
        self.connections: dict[str, Deliver] = {}
        self._controls: dict[str, Control] = {}
        self._task: asyncio.Task[None] | None = None
        #: Says once that the layer is down (the process's start check shares it).
        self.outage: OutageReport = getattr(layer, "outage", None) or OutageReport(
            logger, repr(getattr(layer, "alias", layer))
        )
        #: The layer's housekeeping, run alongside the loop.
        self.upkeep = Upkeep(layer)
        #: Reply channel -> what says goodbye to its client and consumers at shutdown.
        self._farewells: dict[str, Callable[[], Awaitable[None]]] = {}
        self._watching_shutdown = False
        #: The process's shutdown: health check, listening, in-flight responses, sockets.
        self.drain = Drain(self, drain_timeout)

    def register(self, deliver: Deliver, control: Control) -> str:
        """Return a new reply channel whose replies go to *deliver*.

        The bridge's own events for the connection go to *control*. Starts the
        receive loop if it is not running.
        """
        name = new_process_channel(self.prefix)
        self.connections[name] = deliver
        self._controls[name] = control
        self.start()
        return name

    def start(self) -> None:
        """Start the receive loop (and the housekeeping) unless it is running."""
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.ensure_future(self._run())
        self._task.add_done_callback(self._ended)
        self.upkeep.start()

    def _ended(self, task: asyncio.Task[None]) -> None:
        """Restart the loop if it failed while connections wait for replies."""
        if task.cancelled():
            if self._task is task:
                self.upkeep.stop()
            return
        exc = task.exception()
        if isinstance(exc, Exception):
            logger.error("The reply loop failed; starting it again", exc_info=exc)
            task.get_loop().call_later(self.max_retry_delay, self._restart, task)

    def _restart(self, failed: asyncio.Task[None]) -> None:
        if self._task is failed and self.connections:  # unless a registration restarted it
            self.start()

    def forget(self, name: str) -> None:
        """Drop the reply channel *name*: later replies to it are discarded."""
        self.connections.pop(name, None)
        self._controls.pop(name, None)
        self._farewells.pop(name, None)

    def on_shutdown(self, name: str, farewell: Callable[[], Awaitable[None]]) -> None:
        """Have *farewell* run when the server shuts down while *name* is registered."""
        self._farewells[name] = farewell
        if not self._watching_shutdown:
            self._watching_shutdown = daphne.before_server_shutdown(self.shutdown)

    @property
    def sockets(self) -> int:
        """How many connections would say goodbye at shutdown (the open WebSockets)."""
        return len(self._farewells)

    async def shutdown(self) -> None:
        """Have every connection say goodbye, all at once; return when they all have.

        Each farewell is bounded by its connection's ``goodbye_timeout``. The
        last step of a drain, and the reactor's own shutdown hook under daphne
        (a stop that did not drain: ``SIGINT``, a second ``SIGTERM``).
        """
        farewells = list(self._farewells.values())
        if farewells:
            await asyncio.gather(*(farewell() for farewell in farewells), return_exceptions=True)

    async def _run(self) -> None:
        delay = self.first_retry_delay
        failing = self.outage.down  # the start check may have found the layer down
        while True:
            try:
                channel, message = await self.layer.areceive([self.prefix], block=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failing = True
                self.outage.failed(exc, self.max_retry_delay)
                for control in list(self._controls.values()):
                    await self._hand(control, ControlEvent.LAYER_DOWN)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)
                continue
            if failing:
                failing = False
                self.outage.succeeded()
            delay = self.first_retry_delay
            if channel is None or message is None:
                continue
            deliver = self.connections.get(channel)
            if deliver is None:
                logger.debug("Dropped a reply: its connection has gone")
            else:
                await self._hand(deliver, message)

    @staticmethod
    async def _hand(take: Callable[[_T], Awaitable[None] | None], item: _T) -> None:
        try:
            pending = take(item)
            if pending is not None:
                await pending
        except asyncio.CancelledError:
            raise
        except Exception:  # one connection's trouble never stops the loop
            logger.exception("Failed to relay a reply")
