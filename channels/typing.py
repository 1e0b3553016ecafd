"""Types for what travels through a channel layer, and for the layer itself.

:class:`ChannelLayer` is the part of a layer that the worker, the bridge and
the test toolkit use: both backends (subclasses of
:class:`~channels.layers.base.BaseChannelLayer`) and the Django wrapper
(:class:`~channels.asgi.ChannelLayerWrapper`) have it, so code typed against
it takes any of them.

The ``TypedDict``\\ s describe the ASGI 1 messages as :doc:`/asgi-spec` states
them: what the interface server sends (``http.request``, ``websocket.connect``
...) and what consumers answer on a ``reply_channel``. A consumer receives
them as the ``content`` of a :class:`~channels.message.Message`; the types
are for reading that content, and for building replies, with a type checker's
help. Layers carry plain dicts: pass a typed message as ``{**message}`` where a
``dict[str, Any]`` is wanted.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypedDict

__all__ = [
    "Address",
    "ChannelLayer",
    "ConnectionKeys",
    "Headers",
    "HttpDisconnect",
    "HttpRequest",
    "HttpRequestBodyChunk",
    "HttpResponse",
    "HttpResponseChunk",
    "ReceiveResult",
    "WebsocketConnect",
    "WebsocketDisconnect",
    "WebsocketReceive",
    "WebsocketReply",
]

#: What ``receive`` returns: a channel name and its message, or ``(None, None)``.
ReceiveResult = tuple[str, dict[str, Any]] | tuple[None, None]
#: ``[name, value]`` pairs of ``bytes``, names in lower case, in their order.
Headers = list[list[bytes]]
#: ``[host, port]``, or ``None`` where the server does not know it (a Unix socket).
Address = list[Any] | None


class ChannelLayer(Protocol):
    """The members of a channel layer that channels-classic itself calls.

    The ASGI 1 core (``send``, ``receive``, ``new_channel``, ``extensions``),
    the ``"groups"`` and ``"presence"`` extensions, ``maintain``, and the
    ``async`` twins. A layer that does not offer an extension still has its
    methods (they raise ``NotImplementedError``): check ``extensions`` before
    calling them. ``maintain`` is there on every layer (a no-op by default).
    """

    @property
    def extensions(self) -> Sequence[str]:
        """The optional parts the layer offers.

        ``"groups"``, ``"flush"``, ``"statistics"``, ``"presence"``.
        """
        ...

    def send(self, channel: str, message: dict[str, Any]) -> None: ...

    def receive(
        self, channels: Iterable[str], block: bool = False, *, timeout: float | None = None
    ) -> ReceiveResult: ...

    def new_channel(self, pattern: str) -> str: ...

    async def asend(self, channel: str, message: dict[str, Any]) -> None: ...

    async def areceive(
        self, channels: Iterable[str], block: bool = False, *, timeout: float | None = None
    ) -> ReceiveResult: ...

    def group_add(self, group: str, channel: str) -> None: ...

    def group_discard(self, group: str, channel: str) -> None: ...

    def send_group(self, group: str, message: dict[str, Any]) -> None: ...

    async def agroup_add(self, group: str, channel: str) -> None: ...

    async def agroup_discard(self, group: str, channel: str) -> None: ...

    async def asend_group(self, group: str, message: dict[str, Any]) -> None: ...

    def group_count(self, group: str) -> int: ...

    async def agroup_count(self, group: str) -> int: ...

    def presence_track(
        self,
        presence: str,
        channel: str,
        key: str,
        meta: dict[str, Any] | None = None,
        notify: str | None = None,
    ) -> None: ...

    def presence_untrack(self, presence: str, channel: str) -> None: ...

    def presence_release(self, channel: str) -> None: ...

    def presence_list(self, presence: str) -> dict[str, list[dict[str, Any]]]: ...

    def presence_count(self, presence: str) -> int: ...

    async def apresence_track(
        self,
        presence: str,
        channel: str,
        key: str,
        meta: dict[str, Any] | None = None,
        notify: str | None = None,
    ) -> None: ...

    async def apresence_untrack(self, presence: str, channel: str) -> None: ...

    async def apresence_release(self, channel: str) -> None: ...

    async def apresence_list(self, presence: str) -> dict[str, list[dict[str, Any]]]: ...

    async def apresence_count(self, presence: str) -> int: ...

    def maintain(self) -> None: ...

    async def amaintain(self) -> None: ...


# Sent by the interface server ------------------------------------------------


class ConnectionKeys(TypedDict):
    """The keys that ``http.request`` and ``websocket.connect`` share."""

    reply_channel: str
    #: ``"http"``/``"https"``, or ``"ws"``/``"wss"``.
    scheme: str
    #: Percent-decoded.
    path: str
    #: The raw bytes after the ``?``.
    query_string: bytes
    #: The prefix the application is mounted under, ``""`` if none.
    root_path: str
    headers: Headers
    client: Address
    server: Address


class _HttpRequest(ConnectionKeys):
    #: ``"1.0"``, ``"1.1"`` or ``"2"``.
    http_version: str
    #: Upper case.
    method: str
    #: The body, or its first part when ``body_channel`` is set.
    body: bytes


class HttpRequest(_HttpRequest, total=False):
    """``http.request``: a request, with its body or the first part of it."""

    #: A single-reader channel carrying the rest of the body.
    body_channel: str
    #: UNIX time (``time.time()``) after which the server no longer waits for
    #: the first reply (it answered 503): a worker need not start the request.
    deadline: float


class HttpRequestBodyChunk(TypedDict, total=False):
    """A message on a request's ``body_channel``."""

    content: bytes
    #: The request is abandoned (the client left, or the body was too large).
    closed: bool
    more_content: bool


class HttpDisconnect(TypedDict):
    """``http.disconnect``: the client left before its response was complete."""

    reply_channel: str
    path: str


class WebsocketConnect(ConnectionKeys):
    """``websocket.connect``: a handshake, open until a consumer answers it."""

    #: Always 0.
    order: int


class _WebsocketReceive(TypedDict):
    reply_channel: str
    path: str
    #: 1 for the first frame, then 2 and so on.
    order: int


class WebsocketReceive(_WebsocketReceive, total=False):
    """``websocket.receive``: one frame; exactly one of ``text`` and ``bytes`` is set."""

    text: str
    bytes: builtins.bytes


class WebsocketDisconnect(TypedDict):
    """``websocket.disconnect``: sent once for every socket whose connect was sent."""

    reply_channel: str
    path: str
    #: The close code the client's side reports (1006 if none).
    code: int
    #: One more than the ``order`` of the last frame.
    order: int


# Sent by consumers, on a reply_channel ---------------------------------------


class HttpResponseChunk(TypedDict, total=False):
    """A later part of a response; the response ends with one whose ``more_content`` is false."""

    content: bytes
    more_content: bool


class HttpResponse(HttpResponseChunk, total=False):
    """The first reply to an ``http.request``; ``status`` is required in it."""

    status: int
    #: ``str`` names and values are accepted too, and encoded as Latin-1.
    headers: Sequence[Sequence[builtins.bytes | str]]


class WebsocketReply(TypedDict, total=False):
    """A reply to a socket: a frame, a close, an accept, or several of these."""

    #: At most one of ``text`` and ``bytes``.
    text: str
    bytes: builtins.bytes
    #: ``True`` (code 1000) or a close code a server may send.
    close: bool | int
    #: The answer to the handshake.
    accept: bool
    #: With ``accept: True``: the subprotocol to answer with, one the client offered.
    subprotocol: str
