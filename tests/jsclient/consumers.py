"""The consumers the browser tests talk to: JSON echo, a mute socket, demultiplexed streams."""

from __future__ import annotations

from typing import Any

from channels.generic.websockets import JsonWebsocketConsumer, WebsocketDemultiplexer

#: The heartbeat frame the bridge sends by default (its ``heartbeatMessage``).
HEARTBEAT = {"type": "heartbeat"}


class Echo(JsonWebsocketConsumer):
    """Answer each frame with ``{"echo": frame}``; ``{"close": code}`` closes with *code*.

    A heartbeat is answered with itself, as the docs tell a server to.
    """

    def receive(self, content: Any, **kwargs: Any) -> None:
        if content == HEARTBEAT:
            self.send(content)
        elif isinstance(content, dict) and "close" in content:
            self.close(content["close"])
        else:
            self.send({"echo": content})


class Mute(JsonWebsocketConsumer):
    """Accept, then never answer: what a half-open connection looks like to the page."""


class EchoStream(JsonWebsocketConsumer):
    """A stream that answers each payload with ``{"echo": payload}`` on the same stream."""

    def receive(self, content: Any, **kwargs: Any) -> None:
        self.send({"echo": content})


class GreetStream(JsonWebsocketConsumer):
    """A stream that greets each new socket, so a page sees a frame it did not ask for."""

    def connect(self, message: Any, **kwargs: Any) -> None:
        self.send({"greeting": "hello"})


class Streams(WebsocketDemultiplexer):
    """The streams of the 1.x docs' demultiplex sample."""

    consumers = {"mystream": EchoStream, "myotherstream": GreetStream}
