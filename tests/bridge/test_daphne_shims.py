"""Without daphne's internals (another server, a wrapped send), the bridge falls back to ASGI.

daphne's internals cannot be taken away from a running daphne, so these tests
stand an object without them in for daphne's protocol; the shims' daphne path
is exercised over real daphne by tests/test_interface.py.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from channels.asgi import ChannelLayerWrapper
from channels.bridge import Bridge, BridgeSettings
from channels.bridge import daphne as shims
from channels.layers.inmemory import InMemoryChannelLayer
from tests.test_bridge import FakeServer, websocket_scope


class NotAutobahn:
    """What a server other than daphne might bind into its send: none of autobahn's attributes."""


async def plain_send(event: dict[str, Any]) -> None:
    """An ASGI send that is no partial at all, as uvicorn's is."""


@pytest.mark.parametrize(
    "send", [plain_send, functools.partial(plain_send), functools.partial(print, NotAutobahn())]
)
def test_every_shim_falls_back_when_send_is_not_daphnes(send: Any) -> None:
    protocol = shims.daphne_protocol(send)
    assert shims.send_close_frame(protocol, 1011) is False
    assert shims.websocket_scheme(protocol) == "ws"
    assert shims.handshake_deadlines(protocol) is None


async def test_a_websocket_under_another_server_closes_with_1011_through_asgi() -> None:
    layer = ChannelLayerWrapper(InMemoryChannelLayer(), "default", None)
    server = FakeServer()
    send = functools.partial(FakeServer.send, server)  # a partial, but not bound to autobahn
    bridge = Bridge(layer, BridgeSettings())
    task = asyncio.ensure_future(bridge(websocket_scope(), server.receive, send))
    await server.incoming.put({"type": "websocket.connect"})
    _, connect = await layer.areceive(["websocket.connect"], block=True, timeout=5)
    assert connect["scheme"] == "ws"
    await layer.asend(connect["reply_channel"], {"accept": True})
    assert await server.next_sent() == {"type": "websocket.accept"}
    await layer.asend(connect["reply_channel"], {"close": 1011})
    assert await server.next_sent() == {"type": "websocket.close", "code": 1011}
    await server.incoming.put({"type": "websocket.disconnect", "code": 1011})
    await asyncio.wait_for(task, 5)


async def test_a_handshake_under_another_server_is_refused_after_the_bridges_own_timeout() -> None:
    layer = ChannelLayerWrapper(InMemoryChannelLayer(), "default", None)
    server = FakeServer()
    bridge = Bridge(layer, BridgeSettings(handshake_timeout=0.2))
    task = asyncio.ensure_future(bridge(websocket_scope(), server.receive, server.send))
    await server.incoming.put({"type": "websocket.connect"})
    await layer.areceive(["websocket.connect"], block=True, timeout=5)  # nobody answers it
    assert await server.next_sent() == {"type": "websocket.close", "code": 403}
    await server.incoming.put({"type": "websocket.disconnect", "code": 1006})
    await asyncio.wait_for(task, 5)
