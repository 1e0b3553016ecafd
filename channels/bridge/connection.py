"""What the HTTP and WebSocket connections share: their inputs and the keys of their messages."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..typing import ConnectionKeys
from .dispatcher import BridgeLayer, ReplyDispatcher
from .events import ControlEvent, Reply
from .settings import BridgeSettings

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
    """

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

    async def run(self) -> None:
        """Serve the connection, holding a reply channel for as long as it lasts."""
        self.reply_channel = self.dispatcher.register(self.deliver, self.control)
        try:
            await self.serve()
        finally:
            self.dispatcher.forget(self.reply_channel)

    async def serve(self) -> None:
        """Relay between the client and the channel layer until the connection ends."""
        raise NotImplementedError("serve() must be implemented by a bridge connection")

    def deliver(self, reply: Reply) -> Awaitable[None] | None:
        """Take one reply from the dispatcher (called in its loop)."""
        raise NotImplementedError("deliver() must be implemented by a bridge connection")

    def control(self, event: ControlEvent) -> Awaitable[None] | None:
        """Take one of the bridge's own events (called in the dispatcher's loop)."""
        raise NotImplementedError("control() must be implemented by a bridge connection")

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
