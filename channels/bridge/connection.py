"""What the HTTP and WebSocket connections share: their inputs, the keys of their messages,
and the flow control that keeps a slow client from growing the server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..typing import ConnectionKeys
from . import daphne
from .dispatcher import BridgeLayer, ReplyDispatcher
from .events import ControlEvent, Reply
from .flow import SendFlow
from .settings import BridgeSettings
from .spool import SendSpool

logger = logging.getLogger("channels.bridge")

#: An ASGI scope as the bridge reads it: servers and tests leave optional keys out.
Scope = dict[str, Any]
#: ``receive`` and ``send`` as the bridge uses them. asgiref.typing's event
#: TypedDicts make every key required, where the ASGI spec makes
#: ``subprotocol``, ``headers``, ``trailers`` and one of ``text``/``bytes``
#: optional; the bridge sends the short forms, so it types the events loosely.
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Connection:
    """One client connection, run by :meth:`run` from its first event to its last.

    The constructor only stores what it is given; :meth:`run` asks the
    dispatcher for the reply channel and gives it back when the connection
    ends. Subclasses take replies in :meth:`deliver` and the bridge's own
    events in :meth:`control`, both called from the dispatcher's loop.

    A server that is told to stop drains first (:mod:`channels.bridge.drain`).
    A server that shuts down cancels its applications (daphne's
    ``kill_all_applications``); a WebSocket's :meth:`serve` then says goodbye
    to the client and the consumers, within :attr:`goodbye_timeout` (as it
    does when the dispatcher's shutdown hook asks first), and :meth:`run`
    ends normally rather than cancelled. It must: daphne waits for its
    applications with one ``asyncio.gather``, which gives up on all of them
    as soon as one ends with an exception, and would exit with the other
    goodbyes still unsent.

    What goes to the client goes through :attr:`flow` (held while the client
    is behind, up to ``send_buffer_limit`` in memory) and, past that,
    :attr:`spool` (a temporary file, up to ``send_spool_limit``); past both
    the subclass's :meth:`overflowed` ends the connection.
    """

    #: Seconds a connection may take to say goodbye when the server shuts down.
    goodbye_timeout = 5.0

    def __init__(
        self,
        layer: BridgeLayer,
        settings: BridgeSettings,
        dispatcher: ReplyDispatcher,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        self.layer = layer
        self.settings = settings
        self.dispatcher = dispatcher
        self.scope = scope
        self.receive = receive
        self.send = send
        #: Named by :meth:`run` when it registers with the dispatcher.
        self.reply_channel = ""
        # Logs name the connection by path: a reply channel keys its sessions.
        self.label = f"{scope.get('type')} {scope.get('path')}"
        self._warned: set[str] = set()
        #: daphne's Twisted protocol behind *send*, or None under another server.
        self.protocol = daphne.daphne_protocol(send)
        self.flow = SendFlow(settings.send_buffer_limit, self.overflowed)
        self.spool = SendSpool(settings.send_spool_limit)
        self._unwatch: Callable[[], None] | None = None

    async def run(self) -> None:
        """Serve the connection, holding a reply channel for as long as it lasts."""
        self.reply_channel = self.dispatcher.register(self.deliver, self.control)
        self.dispatcher.drain.watch(self.protocol)
        self._unwatch = daphne.watch_writes(self.protocol, self.flow)
        try:
            await self.serve()
        except asyncio.CancelledError:
            # The server is shutting down, and what serve() had to say is said: end
            # as finished (see the class docstring), so the server waits for the rest.
            uncancel = getattr(asyncio.current_task(), "uncancel", None)  # Python 3.11+
            if uncancel is not None:
                uncancel()
        finally:
            self.flow.stop()
            self.spool.close()
            self.unwatch()
            self.dispatcher.forget(self.reply_channel)

    def unwatch(self) -> None:
        """Stop :attr:`flow` from watching the client's writes (idempotent).

        An HTTP response unwatches before its last part: Twisted finishes the
        request on it, and logs a failure for a producer still registered then.
        """
        unwatch, self._unwatch = self._unwatch, None
        if unwatch is not None:
            unwatch()

    async def serve(self) -> None:
        """Relay between the client and the channel layer until the connection ends."""
        raise NotImplementedError("serve() must be implemented by a bridge connection")

    def deliver(self, reply: Reply) -> Awaitable[None] | None:
        """Take one reply from the dispatcher (called in its loop)."""
        raise NotImplementedError("deliver() must be implemented by a bridge connection")

    def control(self, event: ControlEvent) -> Awaitable[None] | None:
        """Take one of the bridge's own events (called in the dispatcher's loop)."""
        raise NotImplementedError("control() must be implemented by a bridge connection")

    def overflowed(self, held: int) -> None:
        """End the connection of a client *held* bytes behind, past both limits."""
        raise NotImplementedError("overflowed() must be implemented by a bridge connection")

    def spools(self, size: int) -> bool:
        """Return whether a write of *size* bytes should wait in the spool, not in memory.

        It should when holding it in memory would pass ``send_buffer_limit``
        and the spool has room: a client that reads, only slower than its
        worker sends, is then not cut off. Said once per connection.
        """
        if not (self.flow.would_overflow(size) and self.spool.has_room(size)):
            return False
        if not self.spool.used:
            logger.info(
                "The client of %s reads slower than its replies come: the rest waits in a "
                "temporary file (CHANNELS_SEND_SPOOL_LIMIT)",
                self.label,
            )
        return True

    def common_keys(self) -> ConnectionKeys:
        """Return the keys that ``http.request`` and ``websocket.connect`` share."""
        scope = self.scope
        return {
            "reply_channel": self.reply_channel,
            "scheme": scope.get("scheme", "http"),
            "path": scope["path"],
            "query_string": scope.get("query_string", b""),
            "root_path": scope.get("root_path", ""),
            "headers": [[bytes(name), bytes(value)] for name, value in scope.get("headers", [])],
            "client": list(scope["client"]) if scope.get("client") else None,
            "server": list(scope["server"]) if scope.get("server") else None,
        }

    def warn_unknown_keys(self, reply: Reply, known: frozenset[str]) -> None:
        """Log, once per key and connection, reply keys the bridge does not understand."""
        if known.issuperset(reply):  # the usual case, checked without building a set
            return
        unknown = reply.keys() - known - self._warned
        if unknown:
            self._warned |= unknown
            logger.warning("Ignored unknown reply keys %s to %s", sorted(unknown), self.label)
