"""The bridge's limits and timeouts, and the WebSocket subprotocol choice they drive."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BridgeSettings:
    """Limits and timeouts of the bridge, from Django settings.

    Built once per :class:`~channels.bridge.Bridge`, on its first connection
    (never at import time); tests pass their own to skip Django's settings.
    """

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
    #: Seconds from a connection being ready for a request to its complete
    #: headers (then 408 and close), under daphne; None for no limit.
    header_timeout: float | None = 20.0
    #: Longest pause, in seconds, inside a request body (then 408), under daphne; None for none.
    body_timeout: float | None = 20.0
    #: Bytes per second a request body must average after a head start of
    #: ``body_timeout`` seconds (then 408), under daphne; None for no minimum.
    min_body_rate: float | None = 500.0
    #: Bytes the bridge holds for a client that is not reading (its transport
    #: is full) before it aborts the response / closes the socket with 1008;
    #: None for no limit (``CHANNELS_SEND_BUFFER_LIMIT``).
    send_buffer_limit: int | None = 4 * 1024 * 1024
    #: Bytes of an HTTP response that wait in a temporary file for a slow client
    #: once ``send_buffer_limit`` is held in memory (then it is aborted); None
    #: for no limit, 0 to abort at the memory limit (``CHANNELS_SEND_SPOOL_LIMIT``).
    send_spool_limit: int | None = 1024 * 1024 * 1024
    #: Seconds the HTTP responses in flight when the server starts draining
    #: (``SIGTERM``, lifespan shutdown) have to finish before they are aborted
    #: and the WebSockets are closed with 1012 (``CHANNELS_DRAIN_TIMEOUT``).
    drain_timeout: float = 10.0
    #: The path the bridge answers itself, without a worker, for load balancers:
    #: 200 while serving, 503 while draining or while the layer cannot be read;
    #: None for no health check (``CHANNELS_HEALTH_PATH``).
    health_path: str | None = None

    @classmethod
    def from_django(cls) -> BridgeSettings:
        """Read the ``CHANNELS_*`` settings, each defaulting to the value above."""
        from django.conf import settings

        return cls(
            ws_protocols=ws_protocols_setting(getattr(settings, "CHANNELS_WS_PROTOCOLS", None)),
            http_timeout=getattr(settings, "CHANNELS_HTTP_TIMEOUT", cls.http_timeout),
            body_chunk_size=getattr(settings, "CHANNELS_BODY_CHUNK_SIZE", cls.body_chunk_size),
            max_body_size=getattr(settings, "CHANNELS_MAX_BODY_SIZE", cls.max_body_size),
            receive_full_timeout=getattr(
                settings, "CHANNELS_RECEIVE_FULL_TIMEOUT", cls.receive_full_timeout
            ),
            send_buffer_limit=getattr(
                settings, "CHANNELS_SEND_BUFFER_LIMIT", cls.send_buffer_limit
            ),
            send_spool_limit=getattr(settings, "CHANNELS_SEND_SPOOL_LIMIT", cls.send_spool_limit),
            header_timeout=optional_bound(settings, "CHANNELS_HEADER_TIMEOUT", cls.header_timeout),
            body_timeout=optional_bound(settings, "CHANNELS_BODY_TIMEOUT", cls.body_timeout),
            min_body_rate=optional_bound(settings, "CHANNELS_MIN_BODY_RATE", cls.min_body_rate),
            drain_timeout=drain_timeout_setting(
                getattr(settings, "CHANNELS_DRAIN_TIMEOUT", cls.drain_timeout)
            ),
            health_path=health_path_setting(getattr(settings, "CHANNELS_HEALTH_PATH", None)),
        )


def optional_bound(settings: object, name: str, default: float | None) -> float | None:
    """Return setting *name* as a positive number, or None (its bound is off); reject the rest."""
    value = getattr(settings, name, default)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"{name} is {value!r}: make it a positive number of seconds (bytes per second "
        "for CHANNELS_MIN_BODY_RATE), or None to turn the bound off"
    )


def drain_timeout_setting(value: object) -> float:
    """Return ``CHANNELS_DRAIN_TIMEOUT`` as seconds; reject what is not a number >= 0."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"CHANNELS_DRAIN_TIMEOUT is {value!r}: make it the number of seconds the HTTP "
        "responses in flight at shutdown may take to finish (0 to abort them at once)"
    )


def health_path_setting(value: object) -> str | None:
    """Return ``CHANNELS_HEALTH_PATH``, a path such as ``"/healthz"``, or None (off)."""
    if value is None or (isinstance(value, str) and value.startswith("/")):
        return value
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"CHANNELS_HEALTH_PATH is {value!r}: make it a path starting with '/', such as "
        '"/healthz", or None to answer no health checks'
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
