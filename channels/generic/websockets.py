"""Class-based WebSocket consumers: plain, JSON, multiplexed, and their async siblings.

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

The sync and async consumers are siblings over
:class:`~channels.generic.websocket_base.WebsocketBase` (options, decorators,
groups; no I/O), so each declares its own hooks: ``AsyncWebsocketConsumer`` is
not a ``WebsocketConsumer``. The JSON consumers keep 1.x's signatures, whose
hooks take the decoded value where the plain ones take ``text``/``bytes``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from asgiref.sync import async_to_sync, iscoroutinefunction

from ..exceptions import SendNotAvailableOnDemultiplexer
from ..message import Message
from .base import AsyncBaseConsumer, BaseConsumer, ConsumerCore
from .codec import JsonCodecMixin
from .multiplexer import WebsocketMultiplexer
from .websocket_base import Close, WebsocketBase, frame

__all__ = [
    "AsyncJsonWebsocketConsumer",
    "AsyncWebsocketConsumer",
    "JsonWebsocketConsumer",
    "WebsocketConsumer",
    "WebsocketDemultiplexer",
    "WebsocketMultiplexer",
]


class WebsocketConsumer(WebsocketBase, BaseConsumer):
    """Handle a WebSocket's connect, frames and disconnect in one class.

    Override :meth:`connect` (it accepts by default), :meth:`receive` and
    :meth:`disconnect`; answer with :meth:`send` and :meth:`close`. The
    options (``http_user``, ``groups``, ordering...) are those of
    :class:`~channels.generic.websocket_base.WebsocketBase`.
    """

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
        cls._group(name).send(frame(text, bytes, close))


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

    def receive(self, content: Any, **kwargs: Any) -> None:  # type: ignore[override]  # 1.x API: the decoded value, not text/bytes
        """Called with the decoded JSON of each text frame."""

    def reject_frame(self, reason: str) -> None:
        """Tell the client a frame was not understood; the socket stays open."""
        self.send({self.error_key: reason})

    def send(self, content: Any, close: Close = False) -> None:  # type: ignore[override]  # 1.x API: a value to encode, not text/bytes
        """Send *content* as JSON (through the multiplexer, under a demultiplexer)."""
        if self.multiplexer is not None:
            self.multiplexer.send(content)
            if close:
                self.close(close)
        else:
            super().send(text=self.encode_json(content), close=close)

    @classmethod
    def group_send(cls, name: str, content: Any, close: Close = False) -> None:  # type: ignore[override]  # 1.x API: a value to encode
        """Send *content* as JSON to every socket in group *name*."""
        super().group_send(name, text=cls.encode_json(content), close=close)


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

    def receive(self, content: Any, **kwargs: Any) -> None:  # type: ignore[override]  # as JsonWebsocketConsumer's
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
        if isinstance(consumer, type) and issubclass(consumer, ConsumerCore):
            consumer = consumer.as_consumer()
        multiplexer = self.multiplexer_class(stream, self.reply_channel)
        arguments = {**kwargs, "multiplexer": multiplexer}
        if iscoroutinefunction(consumer):
            return async_to_sync(consumer)(message, **arguments)
        return consumer(message, **arguments)

    def reject_frame(self, reason: str) -> None:
        WebsocketConsumer.send(self, text=self.encode_json({self.error_key: reason}))

    def send(self, *args: Any, **kwargs: Any) -> None:
        raise SendNotAvailableOnDemultiplexer(
            "A demultiplexer has no stream to send on: send from the stream's consumer "
            "(self.send() or its multiplexer= argument), or use "
            "WebsocketMultiplexer(stream, reply_channel).send(payload)"
        )

    @classmethod
    def group_send(cls, *args: Any, **kwargs: Any) -> None:
        raise SendNotAvailableOnDemultiplexer(
            "A demultiplexer has no stream to send on: use "
            "WebsocketMultiplexer.group_send(group, stream, payload)"
        )


# Async siblings ------------------------------------------------------------


class AsyncWebsocketConsumer(WebsocketBase, AsyncBaseConsumer):
    """The coroutine sibling of :class:`WebsocketConsumer`, awaited on the worker's event loop.

    ``async def connect/receive/disconnect``; ``await self.send(...)``. While
    one socket's handler awaits, the same worker process serves other sockets.
    """

    async def raw_connect(self, message: Message, **kwargs: Any) -> None:
        for group in self._groups(message, kwargs):
            await group.aadd(self.reply_channel)
        await self.connect(message, **kwargs)

    async def raw_receive(self, message: Message, **kwargs: Any) -> None:
        await self.receive(text=message.get("text"), bytes=message.get("bytes"), **kwargs)

    async def raw_disconnect(self, message: Message, **kwargs: Any) -> None:
        for group in self._groups(message, kwargs):
            await group.adiscard(self.reply_channel)
        await self.disconnect(message, **kwargs)

    async def connect(self, message: Message, **kwargs: Any) -> None:
        """Called on ``websocket.connect``; accepts the socket unless overridden."""
        await self.accept()

    async def receive(
        self, text: str | None = None, bytes: bytes | None = None, **kwargs: Any
    ) -> None:
        """Called with each frame's text or bytes."""

    async def disconnect(self, message: Message, **kwargs: Any) -> None:
        """Called when the socket closed; ``message["code"]`` is its close code."""

    async def accept(self) -> None:
        """Accept the socket (a demultiplexer has already accepted for its streams)."""
        if self.multiplexer is None:
            await self.reply_channel.asend({"accept": True})

    async def send(
        self, text: str | None = None, bytes: bytes | None = None, close: Close = False
    ) -> None:
        """Send a text or binary frame to this socket; ``close`` closes it afterwards."""
        await self.reply_channel.asend(frame(text, bytes, close))

    async def close(self, code: Close = True) -> None:
        """Close the socket, with *code* if it is a number."""
        await self.reply_channel.asend({"close": code})

    @classmethod
    async def group_send(
        cls, name: str, text: str | None = None, bytes: bytes | None = None, close: Close = False
    ) -> None:
        """Send a frame to every socket in group *name*."""
        await cls._group(name).asend(frame(text, bytes, close))


class AsyncJsonWebsocketConsumer(JsonCodecMixin, AsyncWebsocketConsumer):
    """The coroutine sibling of :class:`JsonWebsocketConsumer`."""

    async def raw_receive(self, message: Message, **kwargs: Any) -> None:
        ok, value = self.decode_frame(message)
        if ok:
            await self.receive(value, **kwargs)
        else:
            await self.reject_frame(value)

    async def receive(self, content: Any, **kwargs: Any) -> None:  # type: ignore[override]  # 1.x API: the decoded value, not text/bytes
        """Called with the decoded JSON of each text frame."""

    async def reject_frame(self, reason: str) -> None:
        """Tell the client a frame was not understood; the socket stays open."""
        await self.send({self.error_key: reason})

    async def send(self, content: Any, close: Close = False) -> None:  # type: ignore[override]  # 1.x API: a value to encode, not text/bytes
        """Send *content* as JSON (through the multiplexer, under a demultiplexer)."""
        if self.multiplexer is not None:
            await self.multiplexer.asend(content)
            if close:
                await self.close(close)
        else:
            await super().send(text=self.encode_json(content), close=close)

    @classmethod
    async def group_send(cls, name: str, content: Any, close: Close = False) -> None:  # type: ignore[override]  # 1.x API: a value to encode
        """Send *content* as JSON to every socket in group *name*."""
        await super().group_send(name, text=cls.encode_json(content), close=close)
