"""Class-based consumers the generic-consumer tests (and the test project) route to."""

from __future__ import annotations

from typing import Any

from channels import Channel
from channels.generic import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    BaseConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
    WebsocketDemultiplexer,
)

#: Where consumers report what happened that a client cannot see.
EVENTS = "sample.events"
#: What the slow async consumer waits for.
RELEASE = "sample.release"


class Counter(BaseConsumer):
    """A plain BaseConsumer on two custom channels, with a channel session."""

    method_mapping = {"counter.add": "add", "counter.read": "read"}
    channel_session = True

    def add(self, message, **kwargs):
        message.channel_session["n"] = message.channel_session.get("n", 0) + message["by"]

    def read(self, message, **kwargs):
        message.reply_channel.send({"n": message.channel_session.get("n", 0), "kwargs": kwargs})


class Chat(WebsocketConsumer):
    """A room chat: the user comes from the HTTP session; the room from the path."""

    http_user = True

    def connection_groups(self, room: str, **kwargs: Any) -> list[str]:
        return [f"chat-{room}"]

    def connect(self, message, room, **kwargs):
        if message.user.is_anonymous:
            self.close()
        else:
            self.accept()

    def receive(self, text=None, bytes=None, room="", **kwargs):
        self.group_send(f"chat-{room}", text=f"{self.message.user.username}: {text}")

    def disconnect(self, message, room="", **kwargs):
        Channel(EVENTS).send({"left": room, "user": message.user.username, "code": message["code"]})


class Api(JsonWebsocketConsumer):
    """A JSON API: a running total kept in the channel session."""

    channel_session = True

    def receive(self, content, **kwargs):
        session = self.message.channel_session
        if not isinstance(content, dict) or content.get("action") not in ("add", "total"):
            self.send({"error": "unknown action"})
            return
        if content["action"] == "add":
            session["total"] = session.get("total", 0) + content["value"]
        self.send({"total": session.get("total", 0)}, close=content.get("close", False))


class EchoStream(JsonWebsocketConsumer):
    """A stream that says hello on connect and echoes payloads."""

    def connect(self, message, **kwargs):
        self.send({"hello": "echo"})

    def receive(self, content, **kwargs):
        self.send({"echo": content})

    def disconnect(self, message, **kwargs):
        Channel(EVENTS).send({"disconnected": "echo", "code": message["code"]})


class CounterStream(JsonWebsocketConsumer):
    """A stream that counts its payloads in the socket's (shared) channel session."""

    def receive(self, content, **kwargs):
        session = self.message.channel_session
        session["count"] = session.get("count", 0) + content.get("by", 1)
        self.send({"count": session["count"]})

    def disconnect(self, message, **kwargs):
        Channel(EVENTS).send({"disconnected": "counter", "code": message["code"]})


class Demux(WebsocketDemultiplexer):
    channel_session = True
    consumers = {"echo": EchoStream, "counter": CounterStream}


class Slow(AsyncWebsocketConsumer):
    """Answers "wait" only once something arrives on RELEASE; answers "ping" at once."""

    groups = ["slow"]

    async def receive(self, text=None, bytes=None, **kwargs):
        if text == "wait":
            # Sent at once, not when the handler returns, so the test knows it waits.
            await self.reply_channel.asend({"text": "waiting"}, immediately=True)
            _, released = await self.message.channel_layer.areceive(
                [RELEASE], block=True, timeout=20
            )
            await self.send(text=f"released {released and released['n']}")
        else:
            await self.send(text=f"pong {text}")

    async def disconnect(self, message, **kwargs):
        await Channel(EVENTS).asend({"disconnected": "slow", "code": message["code"]})


class AsyncApi(AsyncJsonWebsocketConsumer):
    """The JSON API's async twin, with a session and group sends."""

    channel_session = True
    groups = ["api"]

    async def receive(self, content, **kwargs):
        if content.get("broadcast"):
            await self.group_send("api", {"broadcast": content["broadcast"]})
        else:
            await self.send({"got": content})
