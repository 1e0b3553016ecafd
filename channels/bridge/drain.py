"""Drain an interface server before it stops: nothing in flight is cut, every socket is told.

A deploy replaces interface servers one by one behind a load balancer. Stopped
at once, a server would cut the responses it is sending and drop its sockets
without a word. Drained, on ``SIGTERM`` under daphne (see
:func:`channels.bridge.daphne.on_terminate`) or on the ASGI lifespan
``shutdown`` under another server, it goes through its :class:`DrainState`:

1. **Draining.** The health check (``CHANNELS_HEALTH_PATH``) answers 503 at
   once, daphne stops listening (new connections are refused, so the load
   balancer sends them elsewhere), and HTTP responses still in flight carry
   on, each closing its connection when done. A WebSocket that opens now is
   closed with 1012 at once.
2. After at most ``CHANNELS_DRAIN_TIMEOUT`` seconds the responses that have
   not finished are aborted (503 if they had not begun), and every WebSocket
   is closed with 1012 ("service restart": clients reconnect, to another
   server, after a random pause) and its ``websocket.disconnect`` is sent
   (:meth:`~channels.bridge.dispatcher.ReplyDispatcher.shutdown`).
3. **Drained.** Under daphne the reactor is stopped, as its own ``SIGTERM``
   would have; the layer's close then reaps the process's group memberships.

One drain per process and event loop, owned by its
:class:`~channels.bridge.dispatcher.ReplyDispatcher`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from typing import TYPE_CHECKING

from . import daphne
from .events import Control, ControlEvent

if TYPE_CHECKING:
    from .dispatcher import ReplyDispatcher

logger = logging.getLogger("channels.bridge")


class DrainState(enum.Enum):
    """Where a process is in its shutdown; it only ever moves down this list."""

    #: Serving as usual.
    SERVING = "serving"
    #: The health check fails, nothing new is accepted, responses in flight finish.
    DRAINING = "draining"
    #: Responses finished or aborted, sockets closed and their consumers told.
    DRAINED = "drained"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class Drain:
    """The shutdown of one process's connections, run once by :meth:`begin` or :meth:`run`."""

    def __init__(self, dispatcher: ReplyDispatcher, timeout: float) -> None:
        self.dispatcher = dispatcher
        #: Seconds responses in flight may take to finish once draining starts.
        self.timeout = timeout
        self.state = DrainState.SERVING
        #: The HTTP connections in flight: reply channel -> (control, daphne's protocol).
        self._requests: dict[str, tuple[Control, object | None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        #: HTTP connections that ended while draining.
        self._finished = 0
        self._server: object | None = None
        self._watching = False
        self._task: asyncio.Task[None] | None = None

    @property
    def draining(self) -> bool:
        """Whether the process has started to drain (and accepts nothing new)."""
        return self.state is not DrainState.SERVING

    def watch(self, protocol: object | None) -> None:
        """Note the server behind *protocol*, and have its ``SIGTERM`` drain it (once)."""
        if self._watching:
            return
        self._server = daphne.daphne_server(protocol)
        if self._server is not None:  # the first daphne connection takes SIGTERM over
            self._watching = True
            daphne.on_terminate(self._terminated)

    def _terminated(self) -> None:
        self.begin("SIGTERM", stop_server=True)

    def track(self, name: str, control: Control, protocol: object | None) -> None:
        """Count the HTTP connection with reply channel *name* as in flight until :meth:`forget`."""
        self._requests[name] = (control, protocol)
        self._idle.clear()

    def forget(self, name: str) -> None:
        """The HTTP connection *name* has ended."""
        if self._requests.pop(name, None) is not None and self.draining:
            self._finished += 1
        if not self._requests:
            self._idle.set()

    def begin(self, why: str, *, stop_server: bool = False) -> asyncio.Task[None]:
        """Start draining (unless it has started); return the task that drains.

        *stop_server*: stop daphne's reactor once drained (the ``SIGTERM``
        path; a lifespan shutdown leaves stopping to its server).
        """
        if self._task is None:
            self.state = DrainState.DRAINING
            self._task = asyncio.ensure_future(self._drain(why, stop_server))
        return self._task

    async def run(self, why: str) -> None:
        """Drain, or wait for the drain under way; return once drained."""
        await asyncio.shield(self.begin(why))

    async def _drain(self, why: str, stop_server: bool) -> None:
        try:
            await self._steps(why)
        except Exception:  # the process must stop all the same
            logger.exception("Draining failed; stopping")
        finally:
            self.state = DrainState.DRAINED
            if stop_server:
                daphne.stop_server()

    async def _steps(self, why: str) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            ports = await daphne.stop_listening(self._server)
        except Exception:  # draining goes on: the reactor's stop closes them anyway
            logger.exception("Could not stop listening while draining")
            ports = None
        for _, protocol in self._requests.values():
            daphne.close_after_response(protocol)
        logger.info(
            "Draining (%s)%s. Waiting up to %g s (CHANNELS_DRAIN_TIMEOUT) for %s in flight, "
            "then closing %s with 1012",
            why,
            "" if ports is None else f": stopped listening on {_plural(ports, 'port')}",
            self.timeout,
            _plural(len(self._requests), "HTTP response"),
            _plural(self.dispatcher.sockets, "WebSocket"),
        )
        aborted = await self._finish_requests()
        sockets = self.dispatcher.sockets
        await self.dispatcher.shutdown()
        logger.info(
            "Drained in %.2f s: %s finished, %d aborted; %s closed with 1012",
            loop.time() - started,
            _plural(self._finished, "HTTP response"),
            aborted,
            _plural(sockets, "WebSocket"),
        )

    async def _finish_requests(self) -> int:
        """Wait for the responses in flight, within the timeout; abort the rest; return how many."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        # A request may still come on a connection kept alive from before: wait for it too.
        while self._requests and loop.time() < deadline:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), deadline - loop.time())
        late = list(self._requests.values())
        if late:
            logger.warning(
                "Aborted %s still in flight after %g s of draining (CHANNELS_DRAIN_TIMEOUT)",
                _plural(len(late), "HTTP response"),
                self.timeout,
            )
        for control, _ in late:
            try:
                pending = control(ControlEvent.SHUTDOWN)
                if pending is not None:
                    await pending
            except Exception:  # one connection's trouble never stops the drain
                logger.exception("Failed to abort a response while draining")
        return len(late)
