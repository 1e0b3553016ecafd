"""The interface-server side: ASGI 3 connections in, ASGI 1 channel messages out.

daphne 4 terminates HTTP and WebSocket and calls the project's channel layer
as an ASGI 3 application (``daphne project.asgi:channel_layer``). For every
connection the :class:`Bridge` sends ``http.request`` / ``websocket.*``
messages with a fresh ``reply_channel`` and relays what consumers send there
back to the client.

The package is split as uvicorn splits its protocols:

* :mod:`~channels.bridge.settings`: limits and timeouts (``CHANNELS_*``);
* :mod:`~channels.bridge.dispatcher`: the one reply-receiving loop of a process;
* :mod:`~channels.bridge.events`: the bridge's own events to a connection;
* :mod:`~channels.bridge.http` and :mod:`~channels.bridge.websocket`: one
  state machine per kind of connection;
* :mod:`~channels.bridge.drain` and :mod:`~channels.bridge.health`: stopping
  without cutting anything off, and the health check that tells a load
  balancer so;
* :mod:`~channels.bridge.daphne`: the only code that reads daphne's internals.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, cast

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable
from asgiref.typing import Scope as ASGIScope

from .connection import Receive, Scope, Send
from .dispatcher import BridgeLayer, ReplyDispatcher
from .drain import Drain, DrainState
from .events import ControlEvent
from .health import answer_health_check
from .http import HttpConnection
from .settings import BridgeSettings, choose_subprotocol, ws_protocols_setting
from .websocket import SERVER_CLOSE_CODES, SERVICE_RESTART, WebSocketConnection, WebSocketState

__all__ = [
    "SERVER_CLOSE_CODES",
    "SERVICE_RESTART",
    "Bridge",
    "BridgeSettings",
    "ControlEvent",
    "Drain",
    "DrainState",
    "HttpConnection",
    "ReplyDispatcher",
    "WebSocketConnection",
    "WebSocketState",
    "choose_subprotocol",
    "ws_protocols_setting",
]


class Bridge:
    """The ASGI 3 application behind a channel layer wrapper.

    One per layer wrapper; it keeps one :class:`ReplyDispatcher` per event
    loop and reads its :class:`BridgeSettings` from Django on first use,
    unless given them.
    """

    def __init__(self, layer: Any, settings: BridgeSettings | None = None) -> None:
        self.layer: BridgeLayer = layer
        self._settings = settings
        self._dispatchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReplyDispatcher]
        self._dispatchers = weakref.WeakKeyDictionary()

    @property
    def settings(self) -> BridgeSettings:
        """The bridge's settings, read from Django the first time they are needed."""
        if self._settings is None:
            self._settings = BridgeSettings.from_django()
        return self._settings

    def dispatcher(self) -> ReplyDispatcher:
        """Return the reply dispatcher of the running event loop, made on first use."""
        loop = asyncio.get_running_loop()
        dispatcher = self._dispatchers.get(loop)
        if dispatcher is None:
            dispatcher = ReplyDispatcher(self.layer, self.settings.drain_timeout)
            self._dispatchers[loop] = dispatcher
        return dispatcher

    async def __call__(
        self, scope: ASGIScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.lifespan(receive, send)
            return
        connection_class: type[HttpConnection | WebSocketConnection]
        if kind == "http":
            health_path = self.settings.health_path
            if health_path is not None and scope.get("path") == health_path:
                await answer_health_check(self.dispatcher(), cast(Scope, scope), cast(Send, send))
                return
            connection_class = HttpConnection
        elif kind == "websocket":
            connection_class = WebSocketConnection
        else:
            raise ValueError(f"channels-classic cannot serve ASGI scope type {kind!r}")
        # asgiref.typing makes every key of a scope and an event required; the
        # connections read optional scope keys with .get() and send the short
        # event forms the ASGI spec allows (see channels.bridge.connection).
        connection = connection_class(
            self.layer,
            self.settings,
            self.dispatcher(),
            cast(Scope, scope),
            cast(Receive, receive),
            cast(Send, send),
        )
        await connection.run()

    async def lifespan(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        """Answer the server's lifespan events; drain before saying the shutdown is complete.

        A server that speaks lifespan (uvicorn, hypercorn; daphne does not)
        says ``lifespan.shutdown`` once it has stopped listening, often
        after it has waited for its connections itself. What is still open
        then is drained (:mod:`channels.bridge.drain`): responses get
        ``CHANNELS_DRAIN_TIMEOUT`` to finish, and sockets are closed with
        1012 and their consumers told.
        """
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await self.dispatcher().drain.run("lifespan shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
