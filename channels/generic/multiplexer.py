"""``WebsocketMultiplexer``: one stream's side of a socket shared by several consumers."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from ..asgi import DEFAULT_CHANNEL_LAYER
from ..channel import Channel, Group

__all__ = ["WebsocketMultiplexer"]


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
        close: bool | int = False,
        alias: str = DEFAULT_CHANNEL_LAYER,
    ) -> None:
        """Send *payload* on *stream* to every socket in group *name*."""
        message = cls.encode(stream, payload)
        if close:
            message["close"] = close
        Group(name, alias=alias).send(message)
