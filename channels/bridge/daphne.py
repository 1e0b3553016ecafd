"""Everything the bridge reads from daphne's internals, each behind a feature check.

daphne 4 gives an application no way to send the server's own close codes, to
learn a WebSocket's scheme, to know its handshake timeouts, to hear that a
client has stopped reading, to abort a connection, or to drain: to stop
listening and finish what is in flight before it stops. Its ``send`` is a
``functools.partial`` of the server's reply handler bound to the
connection's Twisted protocol (an autobahn ``WebSocketServerProtocol``, or a
``twisted.web`` ``Request`` for HTTP), and that protocol has all of it. This
module is the only place that touches it. Each shim checks for the attributes
it uses and, when they are absent (another ASGI server such as uvicorn, a
wrapped ``send``, a daphne that changed), says so by returning its fallback
value; the caller then does what plain ASGI allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .flow import SendFlow


def daphne_protocol(send: Callable[..., Any]) -> object | None:
    """Return the Twisted protocol behind daphne's *send*, or None if *send* is not daphne's."""
    args = getattr(send, "args", None)
    if isinstance(args, tuple) and args:
        protocol: object = args[0]
        return protocol
    return None


def send_close_frame(protocol: object | None, code: int) -> bool:
    """Close the socket of *protocol* with *code* as daphne closes with its own 1011.

    daphne hands ``websocket.close`` to autobahn's application-level close,
    which accepts only 1000 and 3000-4999. 1011 (server error), 1013 (try
    again later) and the other codes RFC 6455 lets a server send go out as a
    close frame written on the connection. Return False, having done nothing,
    when *protocol* is not autobahn's: the caller sends ``websocket.close``.
    A socket no longer open needs no frame (True).
    """
    send_frame = getattr(protocol, "sendCloseFrame", None)
    open_state = getattr(protocol, "STATE_OPEN", None)
    if not callable(send_frame) or open_state is None:
        return False
    if getattr(protocol, "state", None) == open_state:
        send_frame(code=code, isReply=False)
    return True


def websocket_scheme(protocol: object | None) -> str:
    """Return ``"wss"`` or ``"ws"`` for a WebSocket whose scope does not say.

    daphne 4 leaves ``scheme`` out of WebSocket scopes (django/daphne#538),
    though it works it out as it does for HTTP: from ``X-Forwarded-Proto``
    when run with ``--proxy-headers``, else from the connection's transport.
    Without either, ``"ws"``.
    """
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


def handshake_opened(protocol: object | None) -> float:
    """Return when daphne received *protocol*'s handshake (``time.time()``), or now if unknown.

    On a busy server the application may see ``websocket.connect`` well after
    daphne began counting its handshake timeouts; deadlines start from here.
    """
    opened = getattr(protocol, "socket_opened", None)
    return float(opened) if isinstance(opened, int | float) else time.time()


def handshake_deadlines(protocol: object | None) -> list[float] | None:
    """Return when daphne gives up on *protocol*'s unanswered handshake; None: not daphne's.

    The times are ``time.time()`` seconds. Unanswered, daphne 4 gives up on a
    handshake twice over, silently both times: autobahn drops the connection
    after ``openHandshakeTimeout`` (runserver's ``--websocket_handshake_timeout``,
    daphne's ``--websocket_connect_timeout``), and daphne answers 403 once its
    server's ``websocket_connect_timeout`` has passed. Autobahn's timer is
    batched to whole seconds, truncated, so it fires up to a second *before*
    its nominal time: its scheduled time is read from the timer, or else
    assumed a second early. An empty list: daphne, with both timeouts off.
    """
    limit = getattr(protocol, "openHandshakeTimeout", None)
    if limit is None:
        return None
    opened = handshake_opened(protocol)
    deadlines: list[float] = []
    # txaio's _BatchedCall keeps its bucket, the wall-clock milliseconds it fires at.
    scheduled = getattr(getattr(protocol, "openHandshakeTimeoutCall", None), "_index", None)
    if isinstance(scheduled, int | float):
        deadlines.append(scheduled / 1000)
    elif isinstance(limit, int | float) and limit > 0:
        deadlines.append(opened + limit - 1.0)
    connect_limit = getattr(getattr(protocol, "server", None), "websocket_connect_timeout", None)
    if isinstance(connect_limit, int | float) and connect_limit > 0:
        deadlines.append(opened + connect_limit)
    return deadlines


def watch_writes(protocol: object | None, flow: SendFlow) -> Callable[[], None] | None:
    """Register *flow* as the producer Twisted pauses when *protocol*'s client falls behind.

    Return what unregisters it, or None, having done nothing, when
    *protocol* is not daphne's (the flow then never pauses). An HTTP
    request (a ``twisted.web`` ``Request``) takes the producer itself; its
    channel goes on managing reads. A WebSocket (autobahn's protocol) takes
    it on its transport, in place of the ``HTTPChannel`` left registered
    there by the upgrade, which does nothing more for the socket; the flow
    may then pause reading that transport as well.
    """
    if protocol is None:
        return None
    if callable(getattr(protocol, "registerProducer", None)) and hasattr(protocol, "channel"):
        return _watch_request(protocol, flow)
    transport = getattr(protocol, "transport", None)
    if hasattr(protocol, "sendCloseFrame") and callable(
        getattr(transport, "registerProducer", None)
    ):
        return _watch_transport(transport, flow)
    return None


def _watch_request(request: Any, flow: SendFlow) -> Callable[[], None] | None:
    if getattr(request, "producer", None) is not None:
        return None  # someone else's producer: leave it be
    request.registerProducer(flow, True)

    def unregister() -> None:
        # An aborted or finished request has let go of its channel, and of the producer with it.
        if request.producer is flow and getattr(request, "channel", None) is not None:
            request.unregisterProducer()

    return unregister


def _watch_transport(transport: Any, flow: SendFlow) -> Callable[[], None] | None:
    from twisted.internet.interfaces import IPushProducer
    from twisted.web.http import HTTPChannel

    current = getattr(transport, "producer", None)
    if current is not None and not isinstance(current, HTTPChannel):
        return None
    if current is not None:
        transport.unregisterProducer()
    try:
        transport.registerProducer(flow, True)
    except RuntimeError:  # a wrapping transport (TLS) that keeps its producer elsewhere
        return None
    flow.reading = IPushProducer(transport, None)

    def unregister() -> None:
        if getattr(transport, "producer", None) is flow:
            transport.unregisterProducer()

    return unregister


def abort_connection(protocol: object | None) -> bool:
    """Drop *protocol*'s connection at once (TCP reset), whatever is still unsent.

    For a response that cannot be completed: closing it cleanly would write
    the chunked terminator and make it look whole. Return False, having done
    nothing, when *protocol* is not daphne's; the caller then raises, so the
    server aborts the connection itself. (Under daphne the caller must not
    raise: daphne answers an application's exception with a 500 page even
    after the response started, which raises inside its application checker
    and stops that checker for the rest of the process's life.)
    """
    channel = getattr(protocol, "channel", None)
    transport = getattr(channel, "transport", None) or getattr(protocol, "transport", None)
    abort = getattr(transport, "abortConnection", None)
    if not callable(abort):
        return False
    abort()
    return True


def _loop_reactor() -> Any | None:
    """Return the Twisted reactor that drives the running event loop (daphne's), or None."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if getattr(reactor, "_asyncioEventloop", None) is not asyncio.get_running_loop():
        return None
    return reactor


def before_server_shutdown(shutdown: Callable[[], Awaitable[None]]) -> bool:
    """Have the Twisted reactor that runs this event loop (daphne's) await *shutdown* as it stops.

    daphne's own shutdown cancels every application and waits for them, and
    a cancelled connection says goodbye; but that step fails with a
    ``KeyError`` whenever daphne tracks a connection without an application
    (a request upgraded to a WebSocket in the last second, before its
    cleanup pass), and then daphne cancels nothing and exits at once. So
    the bridge also asks the reactor itself, which waits for what a
    ``"before"`` shutdown trigger returns. Return False, having done
    nothing, when no Twisted reactor drives the running loop (another
    server: it cancels its applications, and they say goodbye then).
    """
    reactor = _loop_reactor()
    add_trigger = getattr(reactor, "addSystemEventTrigger", None)
    if add_trigger is None:
        return False
    from twisted.internet.defer import Deferred

    def stopping() -> Deferred[None]:
        return Deferred.fromFuture(asyncio.ensure_future(shutdown()))

    add_trigger("before", "shutdown", stopping)
    return True


def on_terminate(begin: Callable[[], None]) -> bool:
    """Have the first ``SIGTERM`` call *begin* in this loop instead of stopping daphne at once.

    daphne runs its reactor with Twisted's signal handlers, whose ``SIGTERM``
    stops the reactor there and then: listening, in-flight responses and
    sockets all end together. The bridge drains first (it calls
    :func:`stop_server` when done), so it takes ``SIGTERM`` over, and gives
    it back as it was: a second ``SIGTERM`` stops the server at once, as
    the first did before (``SIGINT`` always does). Return False, having done
    nothing, off the main thread (runserver's autoreloader), under another
    server, or when ``SIGTERM`` is not the reactor's to take (daphne run
    without signal handlers, or a handler of the project's).
    """
    reactor = _loop_reactor()
    if reactor is None or threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGTERM)
    if getattr(previous, "__self__", None) is not reactor or not callable(previous):
        return False
    loop = asyncio.get_running_loop()

    def terminated(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, previous)
        loop.call_soon_threadsafe(begin)

    signal.signal(signal.SIGTERM, terminated)
    return True


def stop_server() -> bool:
    """Stop daphne's reactor, as its ``SIGTERM`` handler would; False under another server."""
    reactor = _loop_reactor()
    if reactor is None:
        return False
    from twisted.internet.error import ReactorNotRunning

    with contextlib.suppress(ReactorNotRunning):  # already stopping: a second signal came first
        reactor.stop()
    return True


def daphne_server(protocol: object | None) -> object | None:
    """Return the daphne ``Server`` that *protocol* belongs to, or None if it is not daphne's."""
    server = getattr(protocol, "server", None)
    return server if hasattr(server, "http_factory") else None


async def stop_listening(server: object | None) -> int | None:
    """Close the ports daphne's *server* listens on; return how many, or None if not daphne.

    New connections are refused from then on (a load balancer tries its next
    server); the connections already accepted go on. daphne keeps no handle
    on its ports, but every one is a reader of the reactor whose factory is
    (or, with TLS, wraps) the server's HTTP factory.
    """
    factory = getattr(server, "http_factory", None)
    reactor = _loop_reactor()
    if factory is None or reactor is None:
        return None
    from twisted.internet.defer import gatherResults, maybeDeferred
    from twisted.internet.interfaces import IListeningPort

    ports = [
        reader
        for reader in reactor.getReaders()
        if IListeningPort.providedBy(reader) and _serves(reader, factory)
    ]
    if ports:
        stopped = gatherResults([maybeDeferred(port.stopListening) for port in ports])
        await stopped.asFuture(asyncio.get_running_loop())
    return len(ports)


def _serves(port: object, factory: object) -> bool:
    current = getattr(port, "factory", None)
    while current is not None:
        if current is factory:
            return True
        current = getattr(current, "wrappedFactory", None)
    return False


def close_after_response(protocol: object | None) -> bool:
    """Have daphne close *protocol*'s HTTP connection once its response is complete.

    It says ``Connection: close`` (if its headers are not out yet) and keeps
    the connection from being reused, so a client or proxy holding it sends
    its next request to another server. Return False, having done nothing,
    when *protocol* is not a daphne request: the caller then adds the
    header, which other servers honour.
    """
    channel = getattr(protocol, "channel", None)
    headers = getattr(protocol, "responseHeaders", None)
    if channel is None or not hasattr(channel, "persistent") or headers is None:
        return False
    channel.persistent = False
    headers.setRawHeaders(b"connection", [b"close"])
    return True
