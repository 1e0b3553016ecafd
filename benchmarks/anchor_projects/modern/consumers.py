"""Channels 4 consumers: WebSocket echo and group chat; worker-channel count and reply.

The worker consumers mirror ``benchmarks/bench_project/consumers.py``: a
``bench.count`` message is counted (the one marked ``last`` gets an ack with
the count and the seconds from the first message to it), a ``bench.request``
is answered on its ``reply_channel``.
"""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import async_to_sync

from channels.consumer import AsyncConsumer, SyncConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

CHAT_GROUP = "chat"


class EchoConsumer(AsyncWebsocketConsumer):
    """Accept, and send every text frame back."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            await self.send(text_data=text_data)


class ChatConsumer(AsyncWebsocketConsumer):
    """Every socket joins one group; each text received is broadcast as ``[user] <text>``."""

    async def connect(self) -> None:
        await self.channel_layer.group_add(CHAT_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(CHAT_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.channel_layer.group_send(
            CHAT_GROUP, {"type": "chat.message", "text": f"[user] {text_data}"}
        )

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


class _Counter:
    """Counts ``bench.count`` messages; returns the ack for the last one."""

    def __init__(self) -> None:
        self.count = 0
        self.first = 0.0
        self.first_cpu = 0.0

    def tick(self, message: dict[str, Any]) -> dict[str, Any] | None:
        now = time.perf_counter()
        if self.count == 0:
            self.first, self.first_cpu = now, time.process_time()
        self.count += 1
        if not message.get("last"):
            return None
        ack = {
            "type": "bench.ack",
            "count": self.count,
            "seconds": now - self.first,
            "cpu_seconds": time.process_time() - self.first_cpu,
        }
        self.count = 0
        return ack


_async_counter = _Counter()
_sync_counter = _Counter()


class CountConsumer(AsyncConsumer):
    async def bench_count(self, message: dict[str, Any]) -> None:
        ack = _async_counter.tick(message)
        if ack is not None:
            await self.channel_layer.send(message["reply_channel"], ack)


class SyncCountConsumer(SyncConsumer):
    def bench_count(self, message: dict[str, Any]) -> None:
        ack = _sync_counter.tick(message)
        if ack is not None:
            async_to_sync(self.channel_layer.send)(message["reply_channel"], ack)


class ReplyConsumer(AsyncConsumer):
    async def bench_request(self, message: dict[str, Any]) -> None:
        await self.channel_layer.send(
            message["reply_channel"], {"type": "bench.reply", "n": message["n"]}
        )


class SyncReplyConsumer(SyncConsumer):
    def bench_request(self, message: dict[str, Any]) -> None:
        async_to_sync(self.channel_layer.send)(
            message["reply_channel"], {"type": "bench.reply", "n": message["n"]}
        )
