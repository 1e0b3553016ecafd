"""The interface-server side: ASGI 3 connections in, ASGI 1 channel messages out.

daphne 4 terminates HTTP and WebSocket and calls the project's channel layer
as an ASGI 3 application (``daphne project.asgi:channel_layer``). For every
connection this module sends ``http.request`` / ``websocket.*`` messages with
a fresh ``reply_channel`` and relays what consumers send there back to the
client.

Every reply channel of a process shares one process-specific prefix
(``daphne.response.<random>!<random>``), so one receive loop per process,
:class:`ReplyDispatcher`, reads all replies and hands each to its connection.
WebSocket replies are written to the socket right there, in the loop: daphne's
``send`` never waits, so a hop through a per-connection task would only add
latency and CPU to every frame.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .backoff import asend_when_room
from .exceptions import ChannelFull, MessageTooLarge
from .layers.names import new_process_channel

logger = logging.getLogger("channels.bridge")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
#: What a connection registers to receive its replies; may return an awaitable.
Deliver = Callable[[dict[str, Any]], Awaitable[None] | None]

#: Put in a connection's reply queue when the layer cannot be read.
LAYER_DOWN: dict[str, Any] = {"__layer_down__": True}

#: Close codes a server may send (RFC 6455 section 7.4 and the IANA registry).
SERVER_CLOSE_CODES = frozenset((*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)))

HTTP_REPLY_KEYS = {"status", "headers", "content", "more_content"}
WEBSOCKET_REPLY_KEYS = {"accept", "close", "text", "bytes", "subprotocol"}


@dataclass
class BridgeSettings:
    """Limits and timeouts of the bridge, from Django settings."""

    #: Seconds to wait for a worker's first reply (then 503), and between chunks.
    http_timeout: float = 60.0
    #: Bytes of request body sent inside ``http.request``; the rest streams on a body channel.
    body_chunk_size: int = 256 * 1024
    #: Largest request body accepted (then 413); None for no limit.
    max_body_size: int | None = 100 * 1024 * 1024
    #: Seconds a WebSocket frame waits for room on a full ``websocket.receive``
    #: (the socket is not read meanwhile) before the socket is closed with 1013.
    receive_full_timeout: float = 10.0
    #: WebSocket subprotocols to accept when a client offers them (``CHANNELS_WS_PROTOCOLS``).
    ws_protocols: tuple[str, ...] = ()
    #: Seconds a WebSocket may wait for a consumer's accept under a server that
    #: sets no handshake timeout of its own (daphne's own, less a margin, wins).
    handshake_timeout: float = 5.0

    @classmethod
    def from_django(cls) -> BridgeSettings:
        from django.conf import settings

        return cls(
            ws_protocols=ws_protocols_setting(getattr(settings, "CHANNELS_WS_PROTOCOLS", None)),
            http_timeout=getattr(settings, "CHANNELS_HTTP_TIMEOUT", cls.http_timeout),
            body_chunk_size=getattr(settings, "CHANNELS_BODY_CHUNK_SIZE", cls.body_chunk_size),
            max_body_size=getattr(settings, "CHANNELS_MAX_BODY_SIZE", cls.max_body_size),
            receive_full_timeout=getattr(
                settings, "CHANNELS_RECEIVE_FULL_TIMEOUT", cls.receive_full_timeout
            ),
        )


def ws_protocols_setting(value: object) -> tuple[str, ...]:
    """Return ``CHANNELS_WS_PROTOCOLS`` as a tuple of names; reject what is not a list of them."""
    if value is None:
        return ()
    if isinstance(value, list | tuple) and all(isinstance(name, str) for name in value):
        return tuple(value)
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"CHANNELS_WS_PROTOCOLS is {value!r}: make it a list of WebSocket subprotocol "
        'names, even if there is only one, e.g. CHANNELS_WS_PROTOCOLS = ["graphql-ws"]'
    )


def choose_subprotocol(
    offered: list[str], supported: tuple[str, ...], requested: object = None
) -> str | None:
    """Return the subprotocol to accept a WebSocket with, or None for none.

    A consumer's explicit choice (``{"accept": True, "subprotocol": name}``)
    wins if the client offered it: RFC 6455 lets a server pick only from the
    client's list, and clients fail a handshake that answers with another.
    Otherwise, as daphne 1.x did with ``--ws-protocol``, the first offered one
    that ``CHANNELS_WS_PROTOCOLS`` lists.
    """
    if isinstance(requested, str) and requested in offered:
        return requested
    return next((name for name in offered if name in supported), None)


class ReplyDispatcher:
    """The one receive loop of a process: reads every reply and routes it to its connection."""

    #: Longest pause between attempts to read from a layer that is down.
    max_retry_delay = 2.0

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.prefix = f"daphne.response.{secrets.token_hex(6)}!"
        self.connections: dict[str, Deliver] = {}
        self._task: asyncio.Task[None] | None = None

    def register(self, deliver: Deliver) -> str:
        """Return a new reply channel whose messages go to *deliver*."""
        name = new_process_channel(self.prefix)
        self.connections[name] = deliver
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        return name

    def forget(self, name: str) -> None:
        self.connections.pop(name, None)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                channel, message = await self.layer.areceive([self.prefix], block=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("Cannot read replies from the channel layer (%s)", exc)
                for deliver in list(self.connections.values()):
                    await self._deliver(deliver, LAYER_DOWN)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)
                continue
            delay = 0.1
            if channel is None:
                continue
            deliver = self.connections.get(channel)
            if deliver is None:
                logger.debug("Dropped a reply: its connection has gone")
            else:
                await self._deliver(deliver, message)

    @staticmethod
    async def _deliver(deliver: Deliver, message: dict[str, Any]) -> None:
        try:
            pending = deliver(message)
            if pending is not None:
                await pending
        except asyncio.CancelledError:
            raise
        except Exception:  # one connection's trouble never stops the loop
            logger.exception("Failed to relay a reply")


class Bridge:
    """The ASGI 3 application behind a channel layer wrapper."""

    def __init__(self, layer: Any, settings: BridgeSettings | None = None) -> None:
        self.layer = layer
        self._settings = settings
        self._dispatchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReplyDispatcher]
        self._dispatchers = weakref.WeakKeyDictionary()

    @property
    def settings(self) -> BridgeSettings:
        if self._settings is None:
            self._settings = BridgeSettings.from_django()
        return self._settings

    def dispatcher(self) -> ReplyDispatcher:
        loop = asyncio.get_running_loop()
        dispatcher = self._dispatchers.get(loop)
        if dispatcher is None:
            dispatcher = self._dispatchers[loop] = ReplyDispatcher(self.layer)
        return dispatcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await HttpConnection(self, scope, receive, send).run()
        elif kind == "websocket":
            await WebSocketConnection(self, scope, receive, send).run()
        elif kind == "lifespan":
            await _lifespan(receive, send)
        else:
            raise ValueError(f"channels-classic cannot serve ASGI scope type {kind!r}")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _common_keys(scope: Scope, reply_channel: str) -> dict[str, Any]:
    return {
        "reply_channel": reply_channel,
        "scheme": scope.get("scheme", "http"),
        "path": scope["path"],
        "query_string": scope.get("query_string", b""),
        "root_path": scope.get("root_path", ""),
        "headers": [[bytes(name), bytes(value)] for name, value in scope.get("headers", [])],
        "client": list(scope["client"]) if scope.get("client") else None,
        "server": list(scope["server"]) if scope.get("server") else None,
    }


class _Connection:
    def __init__(self, bridge: Bridge, scope: Scope, receive: Receive, send: Send) -> None:
        self.bridge = bridge
        self.layer = bridge.layer
        self.scope = scope
        self.receive = receive
        self.send = send
        self.dispatcher = bridge.dispatcher()
        self.reply_channel = self.dispatcher.register(self.deliver)
        # Logs name the connection by path: a reply channel keys its sessions.
        self.label = f"{scope.get('type')} {scope.get('path')}"
        self._warned: set[str] = set()

    def deliver(self, reply: dict[str, Any]) -> Awaitable[None] | None:
        """Take one reply from the dispatcher (called in its loop)."""
        raise NotImplementedError

    def warn_unknown_keys(self, reply: dict[str, Any], known: set[str]) -> None:
        unknown = set(reply) - known - self._warned
        if unknown:
            self._warned |= unknown
            logger.warning("Ignored unknown reply keys %s to %s", sorted(unknown), self.label)


class HttpConnection(_Connection):
    """One HTTP request: send ``http.request``, relay the response chunks."""

    def __init__(self, bridge: Bridge, scope: Scope, receive: Receive, send: Send) -> None:
        # Before the base registers the reply channel: replies go to this queue.
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        super().__init__(bridge, scope, receive, send)

    def deliver(self, reply: dict[str, Any]) -> None:
        self.replies.put_nowait(reply)

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self.dispatcher.forget(self.reply_channel)

    async def _run(self) -> None:
        settings = self.bridge.settings
        body, more_body, disconnected = await self._read_first_part(settings.body_chunk_size)
        if disconnected:
            return
        message = {
            **_common_keys(self.scope, self.reply_channel),
            "http_version": self.scope.get("http_version", "1.1"),
            "method": self.scope["method"],
            "body": body,
        }
        body_channel = None
        if more_body:
            body_channel = self.layer.new_channel("http.request.body?")
            message["body_channel"] = body_channel
        try:
            await self.layer.asend("http.request", message)
        except ChannelFull:
            await self.error(503, "Request queue full.")
            return
        except MessageTooLarge:
            await self.error(413, "Request headers too large.")
            return
        except ConnectionError:
            logger.warning("Channel layer unreachable: answered 503")
            await self.error(503, "Service unavailable.")
            return
        disconnect = asyncio.ensure_future(
            self._stream_body(body_channel, len(body)) if body_channel else self._wait_disconnect()
        )
        try:
            await self._relay(disconnect)
        finally:
            disconnect.cancel()

    async def _read_first_part(self, limit: int) -> tuple[bytes, bool, bool]:
        parts: list[bytes] = []
        size = 0
        while True:
            event = await self.receive()
            if event["type"] == "http.disconnect":
                return b"", False, True
            chunk = event.get("body", b"")
            parts.append(chunk)
            size += len(chunk)
            more = event.get("more_body", False)
            if not more or size >= limit:
                return b"".join(parts), more, False

    async def _stream_body(self, body_channel: str, sent: int) -> None:
        """Send the rest of the body to *body_channel*, then watch for a disconnect."""
        limit = self.bridge.settings.max_body_size
        while True:
            event = await self.receive()
            if event["type"] == "http.disconnect":
                await self._send_chunk(body_channel, {"closed": True})
                await self._disconnected()
                return
            chunk = event.get("body", b"")
            sent += len(chunk)
            if limit is not None and sent > limit:
                await self._send_chunk(body_channel, {"closed": True})
                self.replies.put_nowait({"__too_large__": True})
                return
            more = event.get("more_body", False)
            await self._send_chunk(body_channel, {"content": chunk, "more_content": more})
            if not more:
                break
        await self._wait_disconnect()

    async def _send_chunk(self, body_channel: str, chunk: dict[str, Any]) -> None:
        # A body channel is read by one worker at its own pace: wait while it is full.
        await asend_when_room(
            lambda: self.layer.asend(body_channel, chunk), self.bridge.settings.http_timeout
        )

    async def _wait_disconnect(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        await self._disconnected()

    async def _disconnected(self) -> None:
        self.replies.put_nowait({"__disconnected__": True})
        try:
            await self.layer.asend(
                "http.disconnect", {"reply_channel": self.reply_channel, "path": self.scope["path"]}
            )
        except Exception:  # the client is gone; nothing else to tell
            logger.debug("Could not send http.disconnect for %s", self.label)

    async def _relay(self, disconnect: asyncio.Future[None]) -> None:
        started = False
        timeout = self.bridge.settings.http_timeout
        while True:
            try:
                reply = await asyncio.wait_for(self.replies.get(), timeout)
            except asyncio.TimeoutError:
                if started:
                    logger.warning("Response to %s stalled; closing it", self.label)
                    await self.send({"type": "http.response.body", "body": b"", "more_body": False})
                else:
                    await self.error(503, "Worker server failed to respond within time limit.")
                return
            if "__disconnected__" in reply:
                return
            if reply is LAYER_DOWN or "__too_large__" in reply:
                if not started:
                    too_large = "__too_large__" in reply
                    await self.error(
                        413 if too_large else 503,
                        "Request body too large." if too_large else "Service unavailable.",
                    )
                else:  # end what was started rather than leave the client waiting
                    await self.send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            self.warn_unknown_keys(reply, HTTP_REPLY_KEYS)
            if not started:
                if "status" not in reply:
                    logger.error("The first reply to %s has no status", self.label)
                    await self.error(500, "Internal server error.")
                    return
                await self.send(
                    {
                        "type": "http.response.start",
                        "status": int(reply["status"]),
                        "headers": [
                            [_to_bytes(name), _to_bytes(value)]
                            for name, value in reply.get("headers", [])
                        ],
                    }
                )
                started = True
            more = bool(reply.get("more_content", False))
            await self.send(
                {"type": "http.response.body", "body": reply.get("content", b""), "more_body": more}
            )
            if not more:
                return

    async def error(self, status: int, text: str) -> None:
        body = f"<html><body><h1>{status}</h1><p>{text}</p></body></html>".encode()
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [[b"content-type", b"text/html; charset=utf-8"]],
            }
        )
        await self.send({"type": "http.response.body", "body": body})


def _daphne_protocol(send: Send) -> Any:
    """The Twisted protocol of a daphne connection, or None under another server.

    daphne's ``send`` is a partial of its server's reply handler, bound to the
    connection's protocol.
    """
    args = getattr(send, "args", ())
    return args[0] if args else None


def _websocket_scheme(send: Send) -> str:
    """``"wss"`` or ``"ws"`` for a WebSocket scope that does not say.

    daphne 4 leaves ``scheme`` out of WebSocket scopes (django/daphne#538),
    though it works it out as it does for HTTP: from ``X-Forwarded-Proto``
    when run with ``--proxy-headers``, else from the connection's transport.
    """
    protocol = _daphne_protocol(send)
    forwarded = getattr(protocol, "client_scheme", None)
    if forwarded in ("https", "wss"):
        return "wss"
    if forwarded in ("http", "ws"):
        return "ws"
    transport = getattr(protocol, "transport", None)
    if transport is not None:
        from twisted.internet.interfaces import ISSLTransport

        if ISSLTransport(transport, None) is not None:
            return "wss"
    return "ws"


def _to_bytes(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


class WebSocketConnection(_Connection):
    """One WebSocket: ``websocket.connect``/``receive``/``disconnect`` out, frames back."""

    #: Seconds to wait for the client to see a server-side close before giving up on it.
    close_timeout = 10.0
    #: Seconds before the server's own handshake timeout at which the bridge
    #: refuses an unanswered handshake itself: with a 403 and a log line that
    #: names the fix, where autobahn would drop the connection without either.
    handshake_margin = 1.0

    def __init__(self, bridge: Bridge, scope: Scope, receive: Receive, send: Send) -> None:
        super().__init__(bridge, scope, receive, send)
        self.order = 0
        self.path = scope["path"]
        self.open = False
        self.disconnect_sent = False
        self.muted = False
        #: Resolved once a reply has finished the socket (a close or a rejection).
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.offered: list[str] = [str(name) for name in scope.get("subprotocols") or ()]

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self.dispatcher.forget(self.reply_channel)

    async def deliver(self, reply: dict[str, Any]) -> None:
        if self.finished.done():
            return  # the socket is finished; later replies are dropped quietly
        if not await self._reply(reply):
            self.finished.set_result(None)

    async def _run(self) -> None:
        handshake_timeout = self._handshake_timeout()
        started = asyncio.get_running_loop().time()
        event = await self.receive()
        if event["type"] != "websocket.connect":
            return
        message = {**_common_keys(self.scope, self.reply_channel), "order": 0}
        message["scheme"] = self.scope.get("scheme") or _websocket_scheme(self.send)
        try:
            await self.layer.asend("websocket.connect", message)
        except ChannelFull:
            # daphne cannot answer a handshake with 503: accept, then "try again later".
            await self._accept()
            await self._close(1013)
            return
        except ConnectionError:
            # As with a full queue: accept so the client sees 1011, not a bare 403.
            await self._accept()
            await self._close(1011)
            return
        client = asyncio.ensure_future(self._client_events())
        deadline = None
        if handshake_timeout is not None:
            remaining = handshake_timeout - (asyncio.get_running_loop().time() - started)
            deadline = asyncio.ensure_future(self._refuse_unanswered(remaining, handshake_timeout))
        try:
            await asyncio.wait({self.finished, client}, return_when=asyncio.FIRST_COMPLETED)
            # However the socket ended, consumers hear of it once, so they can
            # leave their groups: wait for the client's side of the close.
            await asyncio.wait({client}, timeout=self.close_timeout)
        finally:
            if deadline is not None:
                deadline.cancel()
            if not self.finished.done():
                self.finished.set_result(None)
            client.cancel()
            if not self.disconnect_sent:
                await self._send_disconnect(1006)

    def _handshake_timeout(self) -> float | None:
        """Return how long a handshake may wait for a consumer, or None for as long as it likes.

        Unanswered, daphne 4 gives up on a handshake twice over: autobahn drops
        the connection after ``openHandshakeTimeout`` (runserver's
        ``--websocket_handshake_timeout``, daphne's ``--websocket_connect_timeout``),
        and daphne itself answers 403 after ``websocket_connect_timeout``, both
        silently. The bridge answers a margin before the sooner of the two.
        """
        protocol = _daphne_protocol(self.send)
        if protocol is None or not hasattr(protocol, "openHandshakeTimeout"):
            return self.bridge.settings.handshake_timeout
        server = getattr(protocol, "server", None)
        limits = [
            limit
            for limit in (
                getattr(protocol, "openHandshakeTimeout", None),
                getattr(server, "websocket_connect_timeout", None),
            )
            if isinstance(limit, int | float) and limit > 0
        ]
        if not limits:
            return None
        limit = min(limits)
        return max(limit - self.handshake_margin, limit / 2)

    async def _refuse_unanswered(self, delay: float, timeout: float) -> None:
        """Refuse the handshake with 403 if no consumer has answered it after *delay* seconds."""
        await asyncio.sleep(delay)
        if self.open or self.finished.done():
            return
        logger.warning(
            "No consumer accepted the WebSocket to %s within %.1f s, so it was refused with 403. "
            'Send message.reply_channel.send({"accept": True}) in the websocket.connect '
            'consumer (or {"close": True} to refuse it).',
            self.path,
            timeout,
        )
        self.finished.set_result(None)
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
        subprotocol = choose_subprotocol(self.offered, self.bridge.settings.ws_protocols, requested)
        accept: dict[str, Any] = {"type": "websocket.accept"}
        if subprotocol is not None:
            accept["subprotocol"] = subprotocol
        await self.send(accept)

    async def _send_frame(self, message: dict[str, Any]) -> None:
        """Send one frame's message, waiting (not reading more frames) while the channel is full."""
        await asend_when_room(
            lambda: self.layer.asend("websocket.receive", message),
            self.bridge.settings.receive_full_timeout,
        )

    async def _close_muted(self, code: int) -> None:
        self.muted = True
        await self._close(code)

    async def _close(self, code: int) -> None:
        """Close the open socket with *code*, including the server's own codes.

        daphne hands ``websocket.close`` to autobahn's application-level close,
        which accepts only 1000 and 3000-4999. 1011 (server error), 1013 (try
        again later) and the other codes RFC 6455 lets a server send go out as
        daphne sends its own 1011: as a close frame on the connection.
        """
        if code == 1000 or 3000 <= code <= 4999:
            await self.send({"type": "websocket.close", "code": code})
            return
        protocol = _daphne_protocol(self.send)
        if protocol is None or not hasattr(protocol, "sendCloseFrame"):
            await self.send({"type": "websocket.close", "code": code})  # another server
        elif protocol.state == protocol.STATE_OPEN:
            protocol.sendCloseFrame(code=code, isReply=False)

    async def _send_disconnect(self, code: int) -> None:
        self.disconnect_sent = True
        try:
            await self.layer.asend(
                "websocket.disconnect",
                {
                    "reply_channel": self.reply_channel,
                    "path": self.path,
                    "code": code,
                    "order": self.order + 1,
                },
            )
        except Exception:
            logger.debug("Could not send websocket.disconnect for %s", self.label)

    async def _reply(self, reply: dict[str, Any]) -> bool:
        """Relay one reply to the client; return False once the socket is finished."""
        if reply is LAYER_DOWN:
            await self._close(1011)
            return False
        self.warn_unknown_keys(reply, WEBSOCKET_REPLY_KEYS)
        text, data = reply.get("text"), reply.get("bytes")
        if text is not None and data is not None:
            logger.warning("Ignored a reply with both text and bytes to %s", self.label)
            return True
        close = reply.get("close")
        if not self.open:
            if reply.get("accept") is False or (close and text is None and data is None):
                await self.send({"type": "websocket.close", "code": 403})
                return False
            if reply.get("accept") or text is not None or data is not None:
                await self._accept(reply.get("subprotocol"))
                self.open = True
        if text is not None:
            await self.send({"type": "websocket.send", "text": text})
        elif data is not None:
            await self.send({"type": "websocket.send", "bytes": data})
        if close:
            await self._close(self._close_code(close))
            return False
        return True

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
        while True:
            event = await self.receive()
            kind = event["type"]
            if kind == "websocket.receive":
                if self.muted:  # closed by us; only the disconnect is still of interest
                    continue
                self.order += 1
                message = {
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
                    await self._close_muted(1013)
                except MessageTooLarge:
                    await self._close_muted(1009)
                except ConnectionError:
                    await self._close_muted(1011)
            elif kind == "websocket.disconnect":
                await self._send_disconnect(event.get("code", 1000))
                return
