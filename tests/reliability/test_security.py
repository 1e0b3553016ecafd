"""Reply channels are unguessable, and only their own connection hears them."""

from __future__ import annotations

import asyncio
import re

from channels.asgi import ChannelLayerWrapper
from channels.bridge import Bridge, BridgeSettings
from channels.layers.inmemory import InMemoryChannelLayer
from tests.test_bridge import FakeServer, websocket_scope


def test_reply_channel_names_are_random_and_long() -> None:
    layer = InMemoryChannelLayer()
    names = {layer.new_channel("daphne.response.abc!") for _ in range(2000)}
    assert len(names) == 2000
    for name in names:
        local = name.split("!", 1)[1]
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", local)  # 128 random bits


async def test_a_message_to_a_made_up_reply_channel_reaches_no_connection() -> None:
    layer = ChannelLayerWrapper(InMemoryChannelLayer(), "default", None)
    bridge = Bridge(layer, BridgeSettings())
    server = FakeServer()
    task = asyncio.ensure_future(bridge(websocket_scope(), server.receive, server.send))
    await server.incoming.put({"type": "websocket.connect"})
    _, connect = await layer.areceive(["websocket.connect"], block=True, timeout=5)
    real = connect["reply_channel"]
    prefix = real.split("!")[0] + "!"
    await layer.asend(real, {"accept": True})
    assert await server.next_sent() == {"type": "websocket.accept"}
    neighbour = real[:-1] + ("A" if real[-1] != "A" else "B")  # one character off
    for guess in (prefix + "guessed", neighbour):
        await layer.asend(guess, {"text": "for someone else"})
    await layer.asend(real, {"text": "for you"})
    assert await server.next_sent() == {"type": "websocket.send", "text": "for you"}
    assert server.sent.empty()
    await server.incoming.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 5)
