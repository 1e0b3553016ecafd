"""Bounds on what a client may send before the application sees it, under daphne.

daphne 4 hands a request to the application only once Twisted has read all
of it, and gives no setting for how long that may take or how much it may
be: Twisted's idle timeout (12 hours under daphne) restarts on every byte, so
a client dribbling a request line, its headers, a WebSocket handshake or a
body keeps its connection for ever; a refused 200 MB body is read whole
(spooled to a file, then copied into daphne's application queue) before the
bridge can answer 413. So each HTTP/1.1 connection daphne accepts gets a
:class:`ConnectionGuard`, one timer with a phase:

* **headers**: from the moment the connection can take a request (accepted,
  or the previous response finished) to the end of the request's headers,
  at most ``CHANNELS_HEADER_TIMEOUT`` seconds. A WebSocket handshake is such
  a request. A connection that sent nothing of a request by then (an idle
  keep-alive) is closed quietly; one that sent part of it gets 408.
* **body**: a body may pause at most ``CHANNELS_BODY_TIMEOUT`` seconds, and
  must arrive at ``CHANNELS_MIN_BODY_RATE`` bytes per second on average,
  after a head start of ``CHANNELS_BODY_TIMEOUT`` seconds: the deadline is
  ``start + head start + received / rate``, so every byte buys time and a
  100 MB upload over any link faster than the rate is never cut, while a
  body at 2 bytes per second ends after the head start (Apache's
  ``mod_reqtimeout`` works the same way). The pause bound stops a client that
  earned credit early from then stalling for hours.
* **processing**: no bound here; the bridge's ``CHANNELS_HTTP_TIMEOUT`` and
  daphne's own WebSocket timeouts take over.

When the headers end, a ``Content-Length`` over ``CHANNELS_MAX_BODY_SIZE``
is answered 413 before any of the body is read, and a chunked body is
answered 413 as soon as it passes the limit. Framing that two parsers could
read two ways (request smuggling) is answered 400: Twisted itself refuses two
``Content-Length`` headers and ``chunked`` together with ``Content-Length``;
this adds a second ``Transfer-Encoding`` header (Twisted takes ``chunked``
and ignores ``identity``), ``identity`` with ``Content-Length``, and any
``Transfer-Encoding`` that is not exactly ``chunked`` (RFC 9112, 6.3).

A refusal writes a short response with ``Connection: close`` and half-closes
the connection; what the client still sends is discarded for at most
:attr:`ConnectionGuard.linger` seconds, so a client busy sending its body can
read the answer instead of a reset, and then the connection is aborted.

This module is the only code that touches daphne's and Twisted's HTTP
internals; :func:`guard_daphne` checks for each of them and, when one is
missing, leaves daphne as it is and says so. It subclasses daphne's
``WebRequest`` and wraps ``HTTPFactory.buildProtocol``, the one place daphne
picks its request class, so it changes nothing under another server.
"""

from __future__ import annotations

import logging
import sys
import time
import weakref
from dataclasses import dataclass
from typing import Any

from .settings import BridgeSettings

logger = logging.getLogger("channels.bridge")

#: What daphne's request class must have for :func:`guard_daphne` to subclass it.
REQUEST_HOOKS = ("gotLength", "handleContentChunk", "requestReceived", "finish")
#: What Twisted's HTTP/1.1 channel must have for a connection to be guarded.
CHANNEL_FEATURES = ("requests", "transport", "persistent", "clearLineBuffer", "loseConnection")

REASONS = {400: b"Bad Request", 408: b"Request Timeout", 413: b"Content Too Large"}


@dataclass(frozen=True)
class RequestLimits:
    """The bounds a :class:`ConnectionGuard` enforces; None turns one off."""

    header_timeout: float | None
    body_timeout: float | None
    min_body_rate: float | None
    max_body_size: int | None

    @classmethod
    def from_settings(cls, settings: BridgeSettings) -> RequestLimits:
        """Take the guards' bounds from the bridge's settings."""
        return cls(
            settings.header_timeout,
            settings.body_timeout,
            settings.min_body_rate,
            settings.max_body_size,
        )


_limits: RequestLimits | None = None


def current_limits() -> RequestLimits:
    """Return the limits from Django's settings, read once until a ``CHANNELS_*`` one changes."""
    global _limits
    if _limits is None:
        _limits = RequestLimits.from_settings(BridgeSettings.from_django())
    return _limits


def _drop_limits(*, setting: str, **kwargs: Any) -> None:
    global _limits
    if setting.startswith("CHANNELS_"):
        _limits = None


def ambiguous_framing(transfer_encodings: list[bytes], content_lengths: list[bytes]) -> str | None:
    """Return why a request's body framing could be read two ways, or None if it cannot."""
    if len(transfer_encodings) > 1:
        return "two Transfer-Encoding headers"
    if transfer_encodings and content_lengths:
        return "Transfer-Encoding together with Content-Length"
    if transfer_encodings and transfer_encodings[0].strip().lower() != b"chunked":
        return "a Transfer-Encoding other than chunked"
    if len(set(content_lengths)) > 1:
        return "two differing Content-Length headers"
    return None


class ConnectionGuard:
    """The clock of one HTTP/1.1 connection under daphne: headers, body, processing.

    Made when daphne builds the connection's protocol; the request class
    calls :meth:`headers_received`, :meth:`body_received`,
    :meth:`body_complete` and :meth:`await_request` as the request moves on,
    and each returns False once the connection has been refused.
    """

    #: Seconds a refused connection's input is read and discarded before it is aborted.
    linger = 2.0
    #: The body's head start, in seconds, when ``CHANNELS_BODY_TIMEOUT`` is None.
    rate_head_start = 20.0

    def __init__(self, protocol: object, channel: Any, limits: RequestLimits) -> None:
        # Weak: the guard is the value of a weak-keyed map from the channel.
        self._protocol_ref = weakref.ref(protocol)
        self._channel_ref = weakref.ref(channel)
        self.limits = limits
        self.refused = False
        self._phase = "headers"
        self._timer: Any = None
        self._body_start = 0.0
        self._last_byte = 0.0
        self._received = 0

    @property
    def _channel(self) -> Any:
        return self._channel_ref()

    # Phases --------------------------------------------------------------------

    def await_request(self) -> None:
        """Start the header clock: the connection can take its next request now."""
        if self.refused:
            return
        self._phase = "headers"
        if not getattr(self._channel, "persistent", True):
            self._cancel()  # Twisted closes it once the response is written
            return
        self._schedule(self.limits.header_timeout)

    def headers_received(self, request: Any, length: int | None) -> bool:
        """Check the framing and declared size of *request*; start the body clock."""
        if self.refused:
            return False
        headers = request.requestHeaders
        why = ambiguous_framing(
            headers.getRawHeaders(b"transfer-encoding") or [],
            headers.getRawHeaders(b"content-length") or [],
        )
        if why is not None:
            headers.removeHeader(b"expect")  # no "100 Continue" after the refusal
            self.refuse(400, f"ambiguous body framing ({why})", logging.WARNING)
            return False
        limit = self.limits.max_body_size
        if length is not None and limit is not None and length > limit:
            headers.removeHeader(b"expect")
            self.refuse(
                413,
                f"Content-Length {length} is over CHANNELS_MAX_BODY_SIZE ({limit})",
                logging.INFO,
            )
            return False
        if length == 0:  # Twisted hands it to daphne next
            return self.body_complete()
        self._phase = "body"
        self._body_start = self._last_byte = time.monotonic()
        self._received = 0
        limits = self.limits
        if limits.body_timeout is None and limits.min_body_rate is None:
            self._cancel()
        else:
            self._schedule(self._body_deadline() - self._body_start)
        return True

    def body_received(self, size: int) -> bool:
        """Count *size* bytes of body; refuse a body that passes the size limit."""
        if self.refused:
            return False
        self._received += size
        self._last_byte = time.monotonic()
        limit = self.limits.max_body_size
        if limit is not None and self._received > limit:
            self.refuse(
                413,
                f"its chunked body passed CHANNELS_MAX_BODY_SIZE ({limit} bytes)",
                logging.INFO,
            )
            return False
        return True

    def body_complete(self) -> bool:
        """Stop the clocks: the request goes to the application."""
        if self.refused:
            return False
        self._phase = "processing"
        self._cancel()
        return True

    # The clock -------------------------------------------------------------------

    def _body_deadline(self) -> float:
        limits = self.limits
        deadline = float("inf")
        if limits.body_timeout is not None:
            deadline = self._last_byte + limits.body_timeout
        if limits.min_body_rate is not None:
            head_start = limits.body_timeout or self.rate_head_start
            earned = self._received / limits.min_body_rate
            deadline = min(deadline, self._body_start + head_start + earned)
        return deadline

    def _schedule(self, delay: float | None) -> None:
        self._cancel()
        if delay is None:
            return
        self._timer = _call_later(max(delay, 0.0), self._expire)

    def _cancel(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _gone(self) -> bool:
        """Return True if the connection is closing, or no longer this guard's to watch."""
        channel = self._channel
        if channel is None:
            return True
        if getattr(self._protocol_ref(), "_channel", channel) is not channel:
            return True  # switched to another protocol (HTTP/2)
        transport = channel.transport
        return (
            transport is None
            or bool(getattr(transport, "disconnecting", False))
            or not getattr(transport, "connected", True)
        )

    def _expire(self) -> None:
        self._timer = None
        if self._gone():
            return
        if self._phase == "headers":
            if self._channel.requests or getattr(self._channel, "_buffer", b""):
                timeout = self.limits.header_timeout
                self.refuse(
                    408,
                    f"its request headers took over {timeout:g} s (CHANNELS_HEADER_TIMEOUT)",
                    logging.INFO,
                )
            else:
                logger.debug("Closed the idle connection of %s", self.peer())
                self._channel.loseConnection()
        elif self._phase == "body":
            now = time.monotonic()
            deadline = self._body_deadline()
            if deadline > now:  # bytes arrived since the timer was set
                self._schedule(deadline - now)
                return
            self.refuse(
                408,
                f"its request body stopped or came too slowly ({self._received} bytes in "
                f"{now - self._body_start:.1f} s; CHANNELS_BODY_TIMEOUT, CHANNELS_MIN_BODY_RATE)",
                logging.INFO,
            )

    # Refusing ------------------------------------------------------------------

    def peer(self) -> str:
        """Return the client's address as ``host:port`` (never anything it sent)."""
        transport = self._channel.transport
        peer = transport.getPeer() if transport is not None else None
        host, port = getattr(peer, "host", None), getattr(peer, "port", None)
        return f"{host}:{port}" if host is not None else str(peer)

    def refuse(self, status: int, why: str, level: int) -> None:
        """Answer *status*, stop reading the request and close the connection."""
        self.refused = True
        self._cancel()
        if self._gone():
            return
        channel = self._channel
        transport = channel.transport
        logger.log(level, "Refused a request from %s: %s; answered %d", self.peer(), why, status)
        reason = REASONS[status]
        body = b"%d %s\n" % (status, reason)
        transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (status, reason, len(body), body)
        )
        # Twisted's own way to stop parsing a connection (HTTPChannel.lineReceived).
        channel.dataReceived = _discard
        channel.clearLineBuffer()
        # Looked up on the class: a TLS wrapper hands unknown names to the raw TCP transport.
        if callable(getattr(type(transport), "loseWriteConnection", None)):
            transport.loseWriteConnection()
        else:
            channel.loseConnection()
        _call_later(self.linger, _abort, transport)


def _call_later(delay: float, function: Any, *args: Any) -> Any:
    """Schedule *function* on daphne's reactor (typed as a zope interface, hence Any)."""
    from twisted.internet import reactor

    scheduler: Any = reactor
    return scheduler.callLater(delay, function, *args)


def _discard(data: bytes) -> None:
    """Read and drop what a refused client still sends."""


def _abort(transport: Any) -> None:
    if getattr(transport, "connected", False):
        transport.abortConnection()


# Installing ----------------------------------------------------------------------

_guards: weakref.WeakKeyDictionary[Any, ConnectionGuard] = weakref.WeakKeyDictionary()


def _guard_of(request: Any) -> ConnectionGuard | None:
    channel = getattr(request, "channel", None)
    return _guards.get(channel) if channel is not None else None


def _guarded_request_class(base: type) -> type:
    """Return daphne's request class with each step reported to the connection's guard."""

    class GuardedRequest(base):  # type: ignore[misc]
        """daphne's ``WebRequest``, bounded by its connection's :class:`ConnectionGuard`."""

        def gotLength(self, length: int | None) -> None:
            guard = _guard_of(self)
            if guard is not None and not guard.headers_received(self, length):
                super().gotLength(0)  # a small buffer that nothing will fill
                return
            super().gotLength(length)

        def handleContentChunk(self, data: bytes) -> None:
            guard = _guard_of(self)
            if guard is not None and not guard.body_received(len(data)):
                return
            super().handleContentChunk(data)

        def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
            guard = _guard_of(self)
            if guard is not None and not guard.body_complete():
                return  # refused: never reaches daphne's process() or the application
            super().requestReceived(command, path, version)

        def finish(self) -> None:
            guard = _guard_of(self)
            if guard is not None:
                # Before Twisted parses pipelined requests, which finish() may do.
                guard.await_request()
            super().finish()

    GuardedRequest.__name__ = GuardedRequest.__qualname__ = "Guarded" + base.__name__
    return GuardedRequest


def _attach(protocol: Any, request_class: type) -> None:
    """Guard the connection of *protocol*, daphne's newly built HTTP protocol."""
    channel = getattr(protocol, "_channel", protocol)
    if not all(hasattr(channel, name) for name in CHANNEL_FEATURES):
        logger.debug("daphne's HTTP channel %r is not Twisted's HTTP/1.1 one: not guarded", channel)
        return
    protocol.requestFactory = request_class
    guard = ConnectionGuard(protocol, channel, current_limits())
    _guards[channel] = guard
    guard.await_request()


def guard_daphne() -> bool:
    """Bound request headers, bodies and framing in this process's daphne; idempotent.

    Called when a channel layer wrapper is made (before daphne's command
    line or ``runserver`` starts listening, so every connection is covered)
    and again when the wrapper first serves a connection, for a daphne
    loaded after the wrapper was made (connections made before are not
    covered). It does nothing unless daphne's HTTP protocol module is
    already loaded: under another ASGI server nothing changes. Return True
    if daphne's server is guarded.
    """
    module = sys.modules.get("daphne.http_protocol")
    if module is None:
        return False
    factory = getattr(module, "HTTPFactory", None)
    request = getattr(module, "WebRequest", None)
    if getattr(factory, "_channels_guarded", False):
        return True
    missing = [
        name
        for owner, names in ((factory, ("buildProtocol",)), (request, REQUEST_HOOKS))
        for name in names
        if not callable(getattr(owner, name, None))
    ]
    if factory is None or request is None or missing:
        logger.warning(
            "This daphne's HTTP protocol has no %s: request header, body and framing bounds "
            "(CHANNELS_HEADER_TIMEOUT, ...) are off; put a reverse proxy with its own in front",
            ", ".join(missing) or "HTTPFactory/WebRequest",
        )
        return False
    current_limits()  # a bad setting stops daphne now, not at its first request
    from django.core.signals import setting_changed

    setting_changed.connect(_drop_limits, dispatch_uid="channels.bridge.guards")
    request_class = _guarded_request_class(request)
    build_protocol = factory.buildProtocol

    def buildProtocol(self: Any, addr: Any) -> Any:
        protocol = build_protocol(self, addr)
        _attach(protocol, request_class)
        return protocol

    factory.buildProtocol = buildProtocol
    factory._channels_guarded = True
    return True
