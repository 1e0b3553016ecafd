"""Reply channels are unguessable, and only their own connection hears them."""

from __future__ import annotations

import asyncio
import re

from channels.asgi import ChannelLayerWrapper
from channels.bridge import Bridge, BridgeSettings
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.names import new_process_channel
from tests.test_bridge import FakeServer, websocket_scope


def test_reply_channel_names_are_random_and_long() -> None:
    names = {new_process_channel("daphne.response.abc!") for _ in range(2000)}
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


def test_no_secret_session_key_or_reply_channel_is_logged(deployments) -> None:
    """At default verbosity, with warnings provoked, the logs hold none of them."""

    from websockets.sync.client import connect

    from tests.interface import http

    server = deployments("daphne", "tests.project.sockets.channel_routing")
    status, _, _ = http(
        server.url + "/login/",
        data=b"username=nobody&password=wrong",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status in (403, 500)  # no such user: logged-in flows are in other tests
    with connect(
        server.ws_url + "/ws/echo/", additional_headers={"Cookie": "sessionid=abcdefgh12345678"}
    ) as ws:
        ws.send("both")  # provokes "Ignored a reply with both text and bytes"
        assert ws.recv(timeout=20) == "after both"  # and an unknown reply key
        ws.send("x")
        assert ws.recv(timeout=20) == "x"
    output = "".join(line for process in server.processes for line in process.output)
    assert "Ignored" in output  # the warnings were logged...
    assert "tests-only-not-secret" not in output  # ...without the SECRET_KEY,
    assert "abcdefgh12345678" not in output  # the session cookie,
    assert not re.search(r"daphne\.response\.\w+![\w-]{8,}", output)  # or a reply channel
