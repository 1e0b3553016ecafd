"""What the sync and async WebSocket consumers share, with no I/O.

:class:`WebsocketBase` holds the options, the handler decorators they select,
the socket's groups and the shape of reply frames. The consumers that send
(:class:`~channels.generic.websockets.WebsocketConsumer` and
:class:`~channels.generic.websockets.AsyncWebsocketConsumer`) are siblings
built on it, each with its own hooks, so neither overrides a plain method with
a coroutine or the other way round.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..asgi import DEFAULT_CHANNEL_LAYER
from ..auth import (
    channel_and_http_session_user_from_http,
    channel_session_user,
    channel_session_user_from_http,
)
from ..channel import Channel, Group
from ..message import Message
from ..sessions import enforce_ordering
from .base import ConsumerCore, Handler
from .multiplexer import WebsocketMultiplexer

__all__ = ["Close", "WebsocketBase", "frame"]

#: ``True`` closes with the server's default code; an int is the close code.
Close = bool | int


def frame(
    text: str | None = None, bytes: bytes | None = None, close: Close = False
) -> dict[str, Any]:
    """Return the reply-channel message that sends a frame and/or closes the socket."""
    if text is not None and bytes is not None:
        raise ValueError("Send either text or bytes in one frame, not both")
    content: dict[str, Any] = {}
    if text is not None:
        content["text"] = text
    if bytes is not None:
        content["bytes"] = bytes
    if close:
        content["close"] = close
    if not content:
        raise ValueError("Nothing to send: pass text, bytes or close")
    return content


class WebsocketBase(ConsumerCore):
    """The options and lookups of a WebSocket consumer; subclass one of the consumers instead.

    Options:

    * ``http_user``: ``message.user`` from the HTTP session on connect, kept
      in the channel session for later frames.
    * ``http_user_and_session``: ``message.http_session`` and ``message.user``
      on every message (the HTTP session key is remembered from connect).
    * ``strict_ordering`` / ``slight_ordering``: run the socket's messages in
      order (see :func:`channels.sessions.enforce_ordering`).
    * ``groups`` or :meth:`connection_groups`: joined on connect, left on
      disconnect.

    Under a :class:`~channels.generic.websockets.WebsocketDemultiplexer`
    every hook (and :meth:`connection_groups`) also gets ``multiplexer=``,
    the stream's :class:`~channels.generic.websockets.WebsocketMultiplexer`,
    as in 1.x.
    """

    method_mapping: ClassVar[dict[str, str]] = {
        "websocket.connect": "raw_connect",
        "websocket.receive": "raw_receive",
        "websocket.disconnect": "raw_disconnect",
    }
    http_user: ClassVar[bool] = False
    http_user_and_session: ClassVar[bool] = False
    strict_ordering: ClassVar[bool] = False
    slight_ordering: ClassVar[bool] = False
    #: Groups every socket of this consumer joins on connect.
    groups: ClassVar[list[str] | None] = []
    #: The layer ``group_send`` uses (it has no message to take one from).
    channel_layer_alias: ClassVar[str] = DEFAULT_CHANNEL_LAYER

    @property
    def multiplexer(self) -> WebsocketMultiplexer | None:
        """The stream's multiplexer, when a demultiplexer runs this consumer."""
        multiplexer: WebsocketMultiplexer | None = self.kwargs.get("multiplexer")
        return multiplexer

    @property
    def path(self) -> str | None:
        """The path of the socket's URL, as the message gives it."""
        path: str | None = self.message.content.get("path")
        return path

    @property
    def reply_channel(self) -> Channel:
        """The channel of this socket's replies."""
        if self.message.reply_channel is None:
            raise ValueError(f"A {self.message.channel.name} message has no reply_channel")
        return self.message.reply_channel

    def get_handler(self, message: Message | None = None, **kwargs: Any) -> Handler:
        message = message or self.message
        handler = super().get_handler(message, **kwargs)
        if self.http_user_and_session:
            handler = channel_and_http_session_user_from_http(handler)
        elif self.http_user:
            if message.channel.name == "websocket.connect":
                handler = channel_session_user_from_http(handler)
            else:
                handler = channel_session_user(handler)
        # Under a demultiplexer the socket's messages are already in their turn.
        if self.multiplexer is None:
            if self.strict_ordering:
                handler = enforce_ordering(handler)
            elif self.slight_ordering:
                handler = enforce_ordering(handler, slight=True)
        return handler

    def connection_groups(self, **kwargs: Any) -> list[str]:
        """Return the groups this socket belongs to; *kwargs* are the route's."""
        return list(self.groups or [])

    def _groups(self, message: Message, kwargs: dict[str, Any]) -> list[Group]:
        return [
            Group(name, channel_layer=message.channel_layer)
            for name in self.connection_groups(**kwargs)
        ]

    @classmethod
    def _group(cls, name: str) -> Group:
        # group_send is a classmethod: no message to take the layer from.
        return Group(name, alias=cls.channel_layer_alias)
