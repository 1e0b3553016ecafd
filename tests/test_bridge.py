"""The bridge's WebSocket and HTTP state machines, driven through ASGI 3 directly."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.asgi import ChannelLayerWrapper
from channels.bridge import Bridge, BridgeSettings
from channels.layers.inmemory import InMemoryChannelLayer


class FakeServer:
    """What daphne gives an application: a receive queue and a list of sent events."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send(self, event: dict[str, Any]) -> None:
        await self.sent.put(event)

    async def next_sent(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.sent.get(), 5)


def websocket_scope(path: str = "/ws/") -> dict[str, Any]:
    return {"type": "websocket", "path": path, "headers": [], "query_string": b""}


async def start(layer: ChannelLayerWrapper, settings: BridgeSettings) -> tuple[Any, FakeServer]:
    server = FakeServer()
    bridge = Bridge(layer, settings)
    task = asyncio.ensure_future(bridge(websocket_scope(), server.receive, server.send))
    await server.incoming.put({"type": "websocket.connect"})
    _, connect = await layer.areceive(["websocket.connect"], block=True, timeout=5)
    await layer.asend(connect["reply_channel"], {"accept": True})
    assert await server.next_sent() == {"type": "websocket.accept"}
    return task, server


async def test_a_full_receive_channel_waits_then_closes_with_1013() -> None:
    layer = ChannelLayerWrapper(InMemoryChannelLayer(capacity=1), "default", None)
    task, server = await start(layer, BridgeSettings(receive_full_timeout=0.2))
    for text in ("one", "two", "three"):
        await server.incoming.put({"type": "websocket.receive", "text": text})
    assert await server.next_sent() == {"type": "websocket.close", "code": 1013}
    await server.incoming.put({"type": "websocket.disconnect", "code": 1013})
    await asyncio.wait_for(task, 5)
    assert (await layer.areceive(["websocket.receive"]))[1]["text"] == "one"
    _, disconnect = await layer.areceive(["websocket.disconnect"])
    assert disconnect["code"] == 1013


async def test_a_full_receive_channel_that_drains_in_time_loses_nothing() -> None:
    layer = ChannelLayerWrapper(InMemoryChannelLayer(capacity=1), "default", None)
    task, server = await start(layer, BridgeSettings(receive_full_timeout=10))
    for n in range(5):
        await server.incoming.put({"type": "websocket.receive", "text": str(n)})
    received = []
    while len(received) < 5:
        _, message = await layer.areceive(["websocket.receive"], block=True, timeout=5)
        received.append((message["text"], message["order"]))
    assert received == [(str(n), n + 1) for n in range(5)]
    await server.incoming.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 5)
