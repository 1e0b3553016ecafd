"""Everything the bridge reads from daphne's internals, each behind a feature check.

daphne 4 gives an application no way to send the server's own close codes, to
learn a WebSocket's scheme, or to know its handshake timeouts. Its ``send`` is
a ``functools.partial`` of the server's reply handler bound to the
connection's Twisted protocol, and that protocol (an autobahn
``WebSocketServerProtocol``) has all three. This module is the only place that
touches it. Each shim checks for the attributes it uses and, when they are
absent (another ASGI server such as uvicorn, a wrapped ``send``, a daphne that
changed), says so by returning its fallback value; the caller then does what
plain ASGI allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


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


def handshake_limits(protocol: object | None) -> list[float] | None:
    """Return daphne's handshake timeouts for *protocol* (seconds), or None if it is not daphne's.

    Unanswered, daphne 4 gives up on a handshake twice over: autobahn drops
    the connection after ``openHandshakeTimeout`` (runserver's
    ``--websocket_handshake_timeout``, daphne's ``--websocket_connect_timeout``),
    and daphne itself answers 403 after its server's ``websocket_connect_timeout``,
    both silently. An empty list: daphne, with both timeouts off.
    """
    if not hasattr(protocol, "openHandshakeTimeout"):
        return None
    server = getattr(protocol, "server", None)
    return [
        float(limit)
        for limit in (
            getattr(protocol, "openHandshakeTimeout", None),
            getattr(server, "websocket_connect_timeout", None),
        )
        if isinstance(limit, int | float) and limit > 0
    ]
