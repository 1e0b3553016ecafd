"""Class-based WebSocket consumers: plain, JSON, multiplexed, and their async twins.

::

    class Chat(WebsocketConsumer):
        http_user = True
        groups = ["chat"]

        def receive(self, text=None, bytes=None, **kwargs):
            self.group_send("chat", text=f"{self.message.user.username}: {text}")

    channel_routing = [Chat.as_route(path=r"^/chat/$")]

Each message builds a new instance: keep state in ``message.channel_session``
(``channel_session = True``), not on ``self``. Route keyword arguments reach
every hook as ``**kwargs`` and :meth:`WebsocketConsumer.connection_groups`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from asgiref.sync import async_to_sync, iscoroutinefunction
from django.core.serializers.json import DjangoJSONEncoder

from ..asgi import DEFAULT_CHANNEL_LAYER
from ..auth import (
    channel_and_http_session_user_from_http,
    channel_session_user,
    channel_session_user_from_http,
)
from ..channel import Channel, Group
from ..exceptions import SendNotAvailableOnDemultiplexer
from ..message import Message
from ..sessions import enforce_ordering
from .base import AsyncBaseConsumer, BaseConsumer, Handler

__all__ = [
    "AsyncJsonWebsocketConsumer",
    "AsyncWebsocketConsumer",
    "JsonWebsocketConsumer",
    "WebsocketConsumer",
    "WebsocketDemultiplexer",
    "WebsocketMultiplexer",
]

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


class WebsocketConsumer(BaseConsumer):
    """Handle a WebSocket's connect, frames and disconnect in one class.

    Override :meth:`connect` (it accepts by default), :meth:`receive` and
    :meth:`disconnect`; answer with :meth:`send` and :meth:`close`. Options:

    * ``http_user``: ``message.user`` from the HTTP session on connect, kept
      in the channel session for later frames.
    * ``http_user_and_session``: ``message.http_session`` and ``message.user``
      on every message (the HTTP session key is remembered from connect).
    * ``strict_ordering`` / ``slight_ordering``: run the socket's messages in
      order (see :func:`channels.sessions.enforce_ordering`).
    * ``groups`` or :meth:`connection_groups`: joined on connect, left on
      disconnect.

    Under a :class:`WebsocketDemultiplexer` every hook (and
    :meth:`connection_groups`) also gets ``multiplexer=``, the stream's
    :class:`WebsocketMultiplexer`, as in 1.x.
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
    #: The layer :meth:`group_send` uses (it has no message to take one from).
    channel_layer_alias: ClassVar[str] = DEFAULT_CHANNEL_LAYER

    @property
    def multiplexer(self) -> WebsocketMultiplexer | None:
        """The stream's multiplexer, when a :class:`WebsocketDemultiplexer` runs this consumer."""
        return self.kwargs.get("multiplexer")

    @property
    def path(self) -> str | None:
        """The path of the socket's URL, as the message gives it."""
        return self.message.content.get("path")

    @property
    def reply_channel(self) -> Channel:
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

    # Raw handlers: the method_mapping targets --------------------------------

    def raw_connect(self, message: Message, **kwargs: Any) -> None:
        for group in self._groups(message, kwargs):
            group.add(self.reply_channel)
        self.connect(message, **kwargs)

    def raw_receive(self, message: Message, **kwargs: Any) -> None:
        self.receive(text=message.get("text"), bytes=message.get("bytes"), **kwargs)

    def raw_disconnect(self, message: Message, **kwargs: Any) -> None:
        for group in self._groups(message, kwargs):
            group.discard(self.reply_channel)
        self.disconnect(message, **kwargs)

    # Hooks ----------------------------------------------------------------

    def connect(self, message: Message, **kwargs: Any) -> None:
        """Called on ``websocket.connect``; accepts the socket unless overridden."""
        self.accept()

    def receive(self, text: str | None = None, bytes: bytes | None = None, **kwargs: Any) -> None:
        """Called with each frame's text or bytes."""

    def disconnect(self, message: Message, **kwargs: Any) -> None:
        """Called when the socket closed; ``message["code"]`` is its close code."""

    # Output ---------------------------------------------------------------

    def accept(self) -> None:
        """Accept the socket (a demultiplexer has already accepted for its streams)."""
        if self.multiplexer is None:
            self.reply_channel.send({"accept": True})

    def send(
        self, text: str | None = None, bytes: bytes | None = None, close: Close = False
    ) -> None:
        """Send a text or binary frame to this socket; ``close`` closes it afterwards."""
        self.reply_channel.send(frame(text, bytes, close))

    def close(self, code: Close = True) -> None:
        """Close the socket, with *code* if it is a number."""
        self.reply_channel.send({"close": code})

    @classmethod
    def group_send(
        cls, name: str, text: str | None = None, bytes: bytes | None = None, close: Close = False
    ) -> None:
        """Send a frame to every socket in group *name*."""
        Group(name, alias=cls.channel_layer_alias).send(frame(text, bytes, close))


class JsonCodecMixin:
    """JSON in text frames; override the two classmethods to change the encoding."""

    #: What a client gets back for a frame it cannot use.
    error_key: ClassVar[str] = "error"

    @classmethod
    def decode_json(cls, text: str) -> Any:
        """Return the value of a text frame; raise ``ValueError`` if it is not JSON."""
        return json.loads(text)

    @classmethod
    def encode_json(cls, content: Any) -> str:
        return json.dumps(content, cls=DjangoJSONEncoder)

    def decode_frame(self, message: Message) -> tuple[bool, Any]:
        """Return (True, value) for a JSON text frame, else (False, what is wrong with it)."""
        text = message.get("text")
        if text is None:
            return False, "Binary frames are not accepted: send JSON in text frames"
        try:
            return True, self.decode_json(text)
        except ValueError as exc:
            return False, f"Invalid JSON: {exc}"


class JsonWebsocketConsumer(JsonCodecMixin, WebsocketConsumer):
    """A :class:`WebsocketConsumer` that talks JSON.

    :meth:`receive` gets the decoded value of each text frame. A binary frame
    or invalid JSON is answered with ``{"error": "..."}`` (see
    :meth:`reject_frame`) and does not reach :meth:`receive`. Under a
    demultiplexer, :meth:`send` goes out on the consumer's stream.
    """

    def raw_receive(self, message: Message, **kwargs: Any) -> None:
        ok, value = self.decode_frame(message)
        if ok:
            self.receive(value, **kwargs)
        else:
            self.reject_frame(value)

    def receive(self, content: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Called with the decoded JSON of each text frame."""

    def reject_frame(self, reason: str) -> None:
        """Tell the client a frame was not understood; the socket stays open."""
        self.send({self.error_key: reason})

    def send(self, content: Any, close: Close = False) -> None:  # type: ignore[override]
        """Send *content* as JSON (through the multiplexer, under a demultiplexer)."""
        if self.multiplexer is not None:
            self.multiplexer.send(content)
            if close:
                self.close(close)
        else:
            super().send(text=self.encode_json(content), close=close)

    @classmethod
    def group_send(cls, name: str, content: Any, close: Close = False) -> None:  # type: ignore[override]
        """Send *content* as JSON to every socket in group *name*."""
        super().group_send(name, text=cls.encode_json(content), close=close)


class WebsocketMultiplexer:
    """Send a stream's payloads over a shared socket as ``{"stream": s, "payload": p}``.

    Override :meth:`encode_json` (or :meth:`encode`) in a subclass and name
    it in ``WebsocketDemultiplexer.multiplexer_class`` to change the wire
    format; the demultiplexer hands each stream's consumer an instance.
    """

    def __init__(self, stream: str, reply_channel: Channel) -> None:
        self.stream = stream
        self.reply_channel = reply_channel

    @classmethod
    def encode_json(cls, content: Any) -> str:
        """Return the text of a frame holding *content* (``{"stream", "payload"}``)."""
        return json.dumps(content, cls=DjangoJSONEncoder)

    @classmethod
    def encode(cls, stream: str, payload: Any) -> dict[str, Any]:
        """Return the reply-channel message that carries *payload* on *stream*."""
        return {"text": cls.encode_json({"stream": stream, "payload": payload})}

    def send(self, payload: Any) -> None:
        """Send *payload* on this stream to this socket."""
        self.reply_channel.send(self.encode(self.stream, payload))

    async def asend(self, payload: Any) -> None:
        """Async twin of :meth:`send`."""
        await self.reply_channel.asend(self.encode(self.stream, payload))

    @classmethod
    def group_send(
        cls,
        name: str,
        stream: str,
        payload: Any,
        close: Close = False,
        alias: str = DEFAULT_CHANNEL_LAYER,
    ) -> None:
        """Send *payload* on *stream* to every socket in group *name*."""
        message = cls.encode(stream, payload)
        if close:
            message["close"] = close
        Group(name, alias=alias).send(message)


class WebsocketDemultiplexer(JsonWebsocketConsumer):
    """Serve several consumers over one socket, one per stream.

    Frames are ``{"stream": "<name>", "payload": {...}}``. ``consumers`` maps
    stream names to consumers: :class:`JsonWebsocketConsumer` subclasses (their
    ``send`` is wrapped back in the same envelope) or any consumer callable,
    such as a data binding's ``MyBinding.consumer``. Each is called as
    ``consumer(message, multiplexer=..., **route_kwargs)`` with this socket's
    message, whose ``text`` is the stream's payload as JSON; connect and
    disconnect reach every stream's consumer. A frame for an unknown stream,
    or of the wrong shape, is answered with ``{"error": "..."}`` and dropped.
    Put session and ordering options here: the streams' consumers share this
    one's sessions.

    The demultiplexer itself has no stream: its ``send`` and ``group_send``
    raise :class:`~channels.exceptions.SendNotAvailableOnDemultiplexer`.
    """

    #: ``{stream name: consumer class or callable}``.
    consumers: ClassVar[dict[str, Any]] = {}
    multiplexer_class: ClassVar[type[WebsocketMultiplexer]] = WebsocketMultiplexer

    def connect(self, message: Message, **kwargs: Any) -> None:
        self.accept()
        for stream in self.consumers:
            self.forward(stream, message, kwargs)

    def disconnect(self, message: Message, **kwargs: Any) -> None:
        for stream in self.consumers:
            self.forward(stream, message, kwargs)

    def receive(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("stream"), str):
            self.reject_frame('Frames must look like {"stream": "<name>", "payload": {...}}')
            return
        stream, payload = content["stream"], content.get("payload")
        if stream not in self.consumers:
            known = ", ".join(sorted(self.consumers)) or "none"
            self.reject_frame(f"Unknown stream {stream!r} (streams: {known})")
            return
        if not isinstance(payload, dict):
            self.reject_frame(f"The payload of stream {stream!r} must be a JSON object")
            return
        # The stream's consumer decodes this frame again, as if it came alone.
        self.message.content.pop("bytes", None)
        self.message.content["text"] = self.encode_json(payload)
        self.forward(stream, self.message, kwargs)

    def forward(self, stream: str, message: Message, kwargs: dict[str, Any]) -> Any:
        """Run the consumer of *stream* on *message*, with its ``multiplexer=``."""
        consumer = self.consumers[stream]
        if isinstance(consumer, type) and issubclass(consumer, BaseConsumer):
            consumer = consumer.as_consumer()
        multiplexer = self.multiplexer_class(stream, self.reply_channel)
        arguments = {**kwargs, "multiplexer": multiplexer}
        if iscoroutinefunction(consumer):
            return async_to_sync(consumer)(message, **arguments)
        return consumer(message, **arguments)

    def reject_frame(self, reason: str) -> None:
        WebsocketConsumer.send(self, text=self.encode_json({self.error_key: reason}))

    def send(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        raise SendNotAvailableOnDemultiplexer(
            "A demultiplexer has no stream to send on: send from the stream's consumer "
            "(self.send() or its multiplexer= argument), or use "
            "WebsocketMultiplexer(stream, reply_channel).send(payload)"
        )

    @classmethod
    def group_send(cls, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        raise SendNotAvailableOnDemultiplexer(
            "A demultiplexer has no stream to send on: use "
            "WebsocketMultiplexer.group_send(group, stream, payload)"
        )


# Async twins -------------------------------------------------------------


class AsyncWebsocketConsumer(AsyncBaseConsumer, WebsocketConsumer):
    """:class:`WebsocketConsumer` with coroutine hooks, awaited on the worker's event loop.

    ``async def connect/receive/disconnect``; ``await self.send(...)``. While
    one socket's handler awaits, the same worker process serves other sockets.
    """

    async def raw_connect(self, message: Message, **kwargs: Any) -> None:  # type: ignore[override]
        for group in self._groups(message, kwargs):
            await group.aadd(self.reply_channel)
        await self.connect(message, **kwargs)

    async def raw_receive(self, message: Message, **kwargs: Any) -> None:  # type: ignore[override]
        await self.receive(text=message.get("text"), bytes=message.get("bytes"), **kwargs)

    async def raw_disconnect(self, message: Message, **kwargs: Any) -> None:  # type: ignore[override]
        for group in self._groups(message, kwargs):
            await group.adiscard(self.reply_channel)
        await self.disconnect(message, **kwargs)

    async def connect(self, message: Message, **kwargs: Any) -> None:  # type: ignore[override]
        await self.accept()

    async def receive(  # type: ignore[override]
        self, text: str | None = None, bytes: bytes | None = None, **kwargs: Any
    ) -> None:
        """Called with each frame's text or bytes."""

    async def disconnect(self, message: Message, **kwargs: Any) -> None:  # type: ignore[override]
        """Called when the socket closed; ``message["code"]`` is its close code."""

    async def accept(self) -> None:  # type: ignore[override]
        if self.multiplexer is None:
            await self.reply_channel.asend({"accept": True})

    async def send(  # type: ignore[override]
        self, text: str | None = None, bytes: bytes | None = None, close: Close = False
    ) -> None:
        await self.reply_channel.asend(frame(text, bytes, close))

    async def close(self, code: Close = True) -> None:  # type: ignore[override]
        await self.reply_channel.asend({"close": code})

    @classmethod
    async def group_send(  # type: ignore[override]
        cls, name: str, text: str | None = None, bytes: bytes | None = None, close: Close = False
    ) -> None:
        await Group(name, alias=cls.channel_layer_alias).asend(frame(text, bytes, close))


class AsyncJsonWebsocketConsumer(JsonCodecMixin, AsyncWebsocketConsumer):
    """:class:`JsonWebsocketConsumer` with coroutine hooks."""

    async def raw_receive(self, message: Message, **kwargs: Any) -> None:  # type: ignore[override]
        ok, value = self.decode_frame(message)
        if ok:
            await self.receive(value, **kwargs)
        else:
            await self.reject_frame(value)

    async def receive(self, content: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Called with the decoded JSON of each text frame."""

    async def reject_frame(self, reason: str) -> None:
        await self.send({self.error_key: reason})

    async def send(self, content: Any, close: Close = False) -> None:  # type: ignore[override]
        if self.multiplexer is not None:
            await self.multiplexer.asend(content)
            if close:
                await self.close(close)
        else:
            await super().send(text=self.encode_json(content), close=close)

    @classmethod
    async def group_send(  # type: ignore[override]
        cls, name: str, content: Any, close: Close = False
    ) -> None:
        await super().group_send(name, text=cls.encode_json(content), close=close)
