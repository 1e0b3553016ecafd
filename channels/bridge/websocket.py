"""One WebSocket: ``websocket.connect``/``receive``/``disconnect`` out, frames back.

Replies are written to the socket right in the dispatcher's loop: daphne's
``send`` never waits, so a hop through a per-connection task would only add
latency and CPU to every frame.

When the server shuts down, every open socket is closed with 1012 ("service
restart") and its consumers get ``websocket.disconnect`` before the process
exits (:meth:`WebSocketConnection.farewell`); a socket that opens while the
server drains is closed with 1012 at once, before any consumer hears of it.
Whenever a socket ends, its presence entries are released first
(:class:`~channels.bridge.upkeep.Upkeep`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from functools import partial
from typing import Any, cast

from ..backoff import asend_when_room
from ..exceptions import ChannelFull, MessageTooLarge
from ..typing import WebsocketConnect, WebsocketDisconnect, WebsocketReceive, WebsocketReply
from . import daphne
from .backlog import backlog_for
from .connection import Connection, Receive, Scope, Send
from .dispatcher import BridgeLayer, ReplyDispatcher
from .events import ControlEvent, Reply
from .flow import Write
from .settings import BridgeSettings, choose_subprotocol

logger = logging.getLogger("channels.bridge")

#: Close codes a server may send (RFC 6455 section 7.4 and the IANA registry).
SERVER_CLOSE_CODES = frozenset((*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)))

WEBSOCKET_REPLY_KEYS = frozenset(("accept", "close", "text", "bytes", "subprotocol"))

#: The close code of a server that stops (RFC 6455's registry: "service restart"):
#: clients reconnect, after a random pause, to another server or to this one.
SERVICE_RESTART = 1012


class WebSocketState(enum.Enum):
    """Where a bridged WebSocket is in its life; it only ever moves down this list."""

    #: ``websocket.connect`` is with the consumers, who have not answered yet.
    CONNECTING = "connecting"
    #: Accepted: frames go both ways.
    OPEN = "open"
    #: The bridge has ended the socket (a reply closed or refused it, or the
    #: bridge closed it itself). Later replies are dropped; the client's
    #: frames still go to the consumers until its side of the close arrives.
    CLOSED = "closed"
    #: The consumers have been sent ``websocket.disconnect``; nothing more happens.
    DISCONNECTED = "disconnected"


_CONNECTING = WebSocketState.CONNECTING
_OPEN = WebSocketState.OPEN
_CLOSED = WebSocketState.CLOSED
_DISCONNECTED = WebSocketState.DISCONNECTED


class WebSocketConnection(Connection):
    """One WebSocket: ``websocket.connect``/``receive``/``disconnect`` out, frames back.

    The socket's :class:`WebSocketState` is in :attr:`state`. The client's
    events are read by a task of their own; replies arrive in :meth:`deliver`.
    """

    #: Seconds to wait for the client to see a server-side close before giving up on it.
    close_timeout = 10.0
    #: Seconds before daphne gives up on an unanswered handshake at which the
    #: bridge refuses it itself: with a 403 and a log line that names the fix,
    #: where autobahn would drop the connection without either.
    handshake_margin = 0.5

    def __init__(
        self,
        layer: BridgeLayer,
        settings: BridgeSettings,
        dispatcher: ReplyDispatcher,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        super().__init__(layer, settings, dispatcher, scope, receive, send)
        self.state = _CONNECTING
        #: The ``order`` of the last frame sent to ``websocket.receive``.
        self.order = 0
        self.path: str = scope["path"]
        self.handshake_opened = daphne.handshake_opened(self.protocol)
        self.offered: list[str] = [str(name) for name in scope.get("subprotocols") or ()]
        #: Resolved when the state moves to CLOSED, to wake :meth:`serve`.
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: The task reading the client's events, once ``websocket.connect`` is out.
        self._client: asyncio.Task[None] | None = None
        #: The goodbye said when the server shuts down (see :meth:`farewell`).
        self._goodbye: asyncio.Task[None] | None = None

    def _finish(self) -> None:
        """Move to CLOSED, unless the socket is already there or past it."""
        if self.state is _CONNECTING or self.state is _OPEN:
            self.state = _CLOSED
            self._closed.set_result(None)

    async def deliver(self, reply: Reply) -> None:
        state = self.state
        if state is _CLOSED or state is _DISCONNECTED:
            return  # the socket is finished; later replies are dropped quietly
        if not await self._reply(reply):
            self._finish()

    async def control(self, event: ControlEvent) -> None:
        if event is ControlEvent.LAYER_DOWN and (self.state is _CONNECTING or self.state is _OPEN):
            await self.flow.write(lambda: self._close(1011), 0)
            self._finish()

    def overflowed(self, held: int) -> None:
        """Close the socket of a client that stopped reading while its replies piled up.

        1008 (policy violation), not 1013 (try again later): the client broke
        the server's rule; 1013 says the server is busy, and here it is not.
        The close frame cannot reach a client that does not read, so autobahn
        drops the connection after its close handshake timeout.
        """
        logger.warning(
            "Closed the WebSocket to %s with 1008: its client stopped reading, and %d bytes "
            "of replies were waiting for it in memory and %d in a file "
            "(CHANNELS_SEND_BUFFER_LIMIT is %s, CHANNELS_SEND_SPOOL_LIMIT %s)",
            self.path,
            held,
            self.spool.waiting,
            self.settings.send_buffer_limit,
            self.settings.send_spool_limit,
        )
        daphne.send_close_frame(self.protocol, 1008)
        self._finish()

    async def serve(self) -> None:
        handshake_timeout = self._handshake_timeout()
        started = asyncio.get_running_loop().time()
        event = await self.receive()
        if event["type"] != "websocket.connect":
            return
        if self.dispatcher.drain.draining:  # send the client elsewhere; no consumer hears of it
            await self._refuse_open(SERVICE_RESTART)
            return
        message: WebsocketConnect = {**self.common_keys(), "order": 0}
        message["scheme"] = self.scope.get("scheme") or daphne.websocket_scheme(self.protocol)
        try:
            await self.layer.asend("websocket.connect", {**message})
        except ChannelFull:
            # daphne cannot answer a handshake with 503: accept, then "try again later".
            await self._refuse_open(1013)
            return
        except ConnectionError:
            # As with a full queue: accept so the client sees 1011, not a bare 403.
            await self._refuse_open(1011)
            return
        client = self._client = asyncio.ensure_future(self._client_events())
        self.dispatcher.on_shutdown(self.reply_channel, self.farewell)
        deadline = None
        if handshake_timeout is not None:
            remaining = handshake_timeout - (asyncio.get_running_loop().time() - started)
            deadline = asyncio.ensure_future(self._refuse_unanswered(remaining))
        try:
            await asyncio.wait({self._closed, client}, return_when=asyncio.FIRST_COMPLETED)
            # However the socket ended, consumers hear of it once, so they can
            # leave their groups: wait for the client's side of the close.
            await asyncio.wait({client}, timeout=self.close_timeout)
        except asyncio.CancelledError:  # the server is shutting down (or gave up on us)
            await self.farewell()
            raise
        finally:
            if deadline is not None:
                deadline.cancel()
            self._finish()
            client.cancel()
            if self._goodbye is not None:  # the server is stopping: the goodbye is the last word
                await asyncio.shield(self._goodbye)
            elif self.state is not _DISCONNECTED:
                await self._send_disconnect(1006)

    async def farewell(self) -> None:
        """The server is shutting down: close the socket with 1012 and tell the consumers.

        Called when the server cancels the connection (daphne's
        ``kill_all_applications``) and by the dispatcher's own shutdown hook
        (:meth:`ReplyDispatcher.shutdown`, the last step of a drain),
        whichever comes first; the goodbye is said once, and each call
        returns when it has been.
        """
        if self._goodbye is None:
            self._goodbye = asyncio.ensure_future(self._say_goodbye())
        await asyncio.shield(self._goodbye)

    async def _say_goodbye(self) -> None:
        """Close the socket with 1012 and send ``websocket.disconnect``, within the goodbye timeout.

        1012 ("service restart") tells the client to reconnect, to another
        server or to this one once it is back (1001, "going away", reads as
        a page being left to some clients). The ``websocket.disconnect``
        (with code 1012) is sent, not queued, before this returns, so it is
        out before the process exits and its layer removes the process's
        memberships.
        """
        client = self._client
        if client is None:  # not connected yet: the consumers have heard nothing
            return
        if self.state is _DISCONNECTED:  # the client left first; its disconnect is on its way
            await asyncio.wait({client}, timeout=self.goodbye_timeout)
            return
        client.cancel()
        try:
            if self.state is _CONNECTING:  # unanswered: accept, so the client hears 1012
                await self._accept()
                self.state = _OPEN
            if self.state is _OPEN:
                await self._close(SERVICE_RESTART)
        except Exception as exc:  # the server may already be past writing to it
            logger.debug("Could not close %s with 1012 at shutdown (%s)", self.label, exc)
        self._finish()
        await self._send_disconnect(SERVICE_RESTART, self.goodbye_timeout)

    async def _refuse_open(self, code: int) -> None:
        """Accept, then close with *code*: the handshake itself can only be refused with 403."""
        await self._accept()
        self.state = _OPEN
        await self._close(code)
        self._finish()

    def _handshake_timeout(self) -> float | None:
        """Return how long from now a handshake may wait for a consumer; None: as long as it likes.

        Under daphne, until a margin before the sooner of the times it gives
        up (see :func:`channels.bridge.daphne.handshake_deadlines`), which are
        counted from when the handshake arrived, not from when the bridge saw
        it; under another server, ``BridgeSettings.handshake_timeout``.
        """
        deadlines = daphne.handshake_deadlines(self.protocol)
        if deadlines is None:
            return self.settings.handshake_timeout
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.time() - self.handshake_margin)

    async def _refuse_unanswered(self, delay: float) -> None:
        """Refuse the handshake with 403 if no consumer has answered it after *delay* seconds."""
        await asyncio.sleep(delay)
        if self.state is not _CONNECTING:
            return
        logger.warning(
            "No consumer accepted the WebSocket to %s within %.1f s, so it was refused with 403 "
            "before the server's handshake timeout. "
            'Send message.reply_channel.send({"accept": True}) in the websocket.connect '
            'consumer (or {"close": True} to refuse it).',
            self.path,
            time.time() - self.handshake_opened,
        )
        self._finish()
        await self.send({"type": "websocket.close", "code": 403})

    async def _accept(self, requested: object = None) -> None:
        if requested is not None and requested not in self.offered:
            logger.warning(
                "Ignored the subprotocol %r in the accept of %s: the client offered %s; "
                "choose one of those, or leave the key out",
                requested,
                self.label,
                self.offered or "none",
            )
        subprotocol = choose_subprotocol(self.offered, self.settings.ws_protocols, requested)
        accept: dict[str, Any] = {"type": "websocket.accept"}
        if subprotocol is not None:
            accept["subprotocol"] = subprotocol
        await self.send(accept)

    async def _send_frame(self, message: WebsocketReceive) -> None:
        """Send one frame's message, waiting (not reading more frames) while the channel is full."""
        await asend_when_room(
            lambda: self.layer.asend("websocket.receive", {**message}),
            self.settings.receive_full_timeout,
        )

    async def _close(self, code: int) -> None:
        """Close the open socket with *code*, including the server's own codes (1011, 1013...).

        daphne passes only 1000 and 3000-4999 through ``websocket.close``; the
        others go out through :func:`channels.bridge.daphne.send_close_frame`,
        or through ``websocket.close`` under a server that takes them.
        """
        passed_through = code == 1000 or 3000 <= code <= 4999
        if passed_through or not daphne.send_close_frame(self.protocol, code):
            await self.send({"type": "websocket.close", "code": code})

    async def _send_disconnect(self, code: int, within: float | None = None) -> None:
        """Release the socket's presence entries, then tell the consumers it has ended.

        Released first, so a disconnect consumer finds them leaving (and one
        that untracks them ends their grace). Consumers leave their groups
        on the disconnect: it waits for room rather than being dropped, in
        the process's backlog; or, given *within* (seconds, at shutdown),
        here and now, for at most that long.
        """
        self.state = _DISCONNECTED
        message: WebsocketDisconnect = {
            "reply_channel": self.reply_channel,
            "path": self.path,
            "code": code,
            "order": self.order + 1,
        }
        if within is None:
            await self.dispatcher.upkeep.release(self.reply_channel)
            await backlog_for(self.dispatcher).send("websocket.disconnect", {**message})
            return
        try:
            await asyncio.wait_for(self._send_last(message, within), within)
        except Exception as exc:  # timed out, full or down: the process exits regardless
            logger.warning(
                "Lost the websocket.disconnect of %s at shutdown (%s): its consumer will not "
                "run; the layer still removes the socket's group memberships",
                self.label,
                exc or type(exc).__name__,
            )

    async def _send_last(self, message: WebsocketDisconnect, within: float) -> None:
        await self.dispatcher.upkeep.release(self.reply_channel)
        await asend_when_room(lambda: self.layer.asend("websocket.disconnect", {**message}), within)

    async def _reply(self, content: Reply) -> bool:
        """Relay one reply to the client; return False once the socket is finished."""
        self.warn_unknown_keys(content, WEBSOCKET_REPLY_KEYS)
        # A consumer wrote it: the keys are the documented ones, the values are checked here.
        reply = cast(WebsocketReply, content)
        text, data = reply.get("text"), reply.get("bytes")
        if text is not None and data is not None:
            logger.warning("Ignored a reply with both text and bytes to %s", self.label)
            return True
        close = reply.get("close")
        if self.state is _CONNECTING:
            if reply.get("accept") is False or (close and text is None and data is None):
                await self.send({"type": "websocket.close", "code": 403})
                return False
            if reply.get("accept") or text is not None or data is not None:
                await self._accept(reply.get("subprotocol"))
                if self.state is _CONNECTING:  # unless the client left meanwhile
                    self.state = _OPEN
        if (text is not None or data is not None) and not await self.flow.write(
            *self._frame_write(text, data)
        ):
            return False
        if close:
            code = self._close_code(close)
            await self.flow.write(lambda: self._close(code), 0)
            return False
        return True

    def _frame_write(self, text: str | None, data: bytes | None) -> tuple[Write, int]:
        """Return the write of one frame, and the bytes it holds in memory while it waits.

        A frame that would take what is held for a slow client past
        ``send_buffer_limit`` waits in the spool instead, if it has room, as
        the body of an HTTP response does: a client that reads, only slower
        than its worker sends, is not cut off.
        """
        size = len(text) if text is not None else len(data or b"")
        if self.spools(size):
            payload = text.encode() if text is not None else bytes(data or b"")
            self.spool.store(payload)
            return partial(self._send_spooled, len(payload), text is not None), 0
        if text is not None:
            return partial(self.send, {"type": "websocket.send", "text": text}), size
        return partial(self.send, {"type": "websocket.send", "bytes": data}), size

    async def _send_spooled(self, size: int, is_text: bool) -> None:
        payload = self.spool.load(size)
        if is_text:
            await self.send({"type": "websocket.send", "text": payload.decode()})
        else:
            await self.send({"type": "websocket.send", "bytes": payload})

    def _close_code(self, close: Any) -> int:
        if close is True:
            return 1000
        if isinstance(close, int) and close in SERVER_CLOSE_CODES:
            return close
        logger.warning(
            "Closed %s with 1000 instead of the close code %r: use True, 1000-1003, "
            "1007-1014 or 3000-4999",
            self.label,
            close,
        )
        return 1000

    async def _client_events(self) -> None:
        """Pass the client's frames on until its disconnect, which goes to the consumers once."""
        forwarding = True  # until the bridge closes the socket for a frame it cannot pass on
        while True:
            event = await self.receive()
            kind = event["type"]
            if kind == "websocket.receive":
                if not forwarding:  # only the disconnect is still of interest
                    continue
                self.order += 1
                message: WebsocketReceive = {
                    "reply_channel": self.reply_channel,
                    "path": self.path,
                    "order": self.order,
                }
                if event.get("text") is not None:
                    message["text"] = event["text"]
                else:
                    message["bytes"] = event.get("bytes") or b""
                try:
                    await self._send_frame(message)
                except ChannelFull:
                    code = 1013
                except MessageTooLarge:
                    code = 1009
                except ConnectionError:
                    code = 1011
                else:
                    continue
                forwarding = False
                await self.flow.write(partial(self._close, code), 0)
                self._finish()
            elif kind == "websocket.disconnect":
                await self._send_disconnect(event.get("code", 1000))
                return
