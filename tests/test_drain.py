"""Draining an interface server: what is in flight finishes, sockets are told, nothing new comes.

First the bridge itself on the in-memory layer, driven through ASGI as a
server that speaks lifespan would drive it; then real processes on a real
Redis: daphne and ``runworker`` serving :mod:`tests.drain_routing`, stopped
with ``SIGTERM`` while a response is in flight and sockets are open. What is
counted is printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import http.client
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from channels.asgi import ChannelLayerWrapper
from channels.bridge import Bridge, BridgeSettings, DrainState
from channels.bridge.settings import drain_timeout_setting, health_path_setting
from channels.exceptions import ResponseIncomplete
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer
from tests.drain_routing import FIRST_PART, ROUTING, SETTINGS
from tests.fleet import Fleet, counts
from tests.interface import Deployment
from tests.processes import free_port
from tests.test_bridge import FakeServer, websocket_scope

# The bridge on the in-memory layer, under a server that speaks lifespan ------------


def http_scope(path: str = "/", method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}


class Lifespan(FakeServer):
    """A server's lifespan side: ``shutting_down`` is set once the bridge has read the shutdown."""

    def __init__(self) -> None:
        super().__init__()
        self.shutting_down = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        event = await super().receive()
        if event["type"] == "lifespan.shutdown":
            self.shutting_down.set()
        return event


async def start_lifespan(bridge: Bridge) -> tuple[asyncio.Future[None], Lifespan]:
    server = Lifespan()
    task = asyncio.ensure_future(bridge({"type": "lifespan"}, server.receive, server.send))
    await server.incoming.put({"type": "lifespan.startup"})
    assert await server.next_sent() == {"type": "lifespan.startup.complete"}
    return task, server


async def shut_down(server: Lifespan) -> None:
    """Send ``lifespan.shutdown``; return once the bridge is draining."""
    await server.incoming.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(server.shutting_down.wait(), 5)


async def open_socket(bridge: Bridge, layer: Any) -> tuple[asyncio.Future[None], FakeServer, str]:
    server = FakeServer()
    task = asyncio.ensure_future(bridge(websocket_scope(), server.receive, server.send))
    await server.incoming.put({"type": "websocket.connect"})
    _, connect = await layer.areceive(["websocket.connect"], block=True, timeout=5)
    await layer.asend(connect["reply_channel"], {"accept": True})
    assert await server.next_sent() == {"type": "websocket.accept"}
    return task, server, connect["reply_channel"]


async def start_request(
    bridge: Bridge, layer: Any, path: str = "/"
) -> tuple[asyncio.Future[None], FakeServer, str]:
    """Send a request through the bridge; return once a worker could answer it."""
    server = FakeServer()
    task = asyncio.ensure_future(bridge(http_scope(path), server.receive, server.send))
    await server.incoming.put({"type": "http.request", "body": b"", "more_body": False})
    _, request = await layer.areceive(["http.request"], block=True, timeout=5)
    return task, server, request["reply_channel"]


async def get(
    bridge: Bridge, path: str, method: str = "GET"
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Make a request the bridge answers itself (the health check); return it."""
    server = FakeServer()
    await asyncio.wait_for(bridge(http_scope(path, method), server.receive, server.send), 5)
    start, body = await server.next_sent(), await server.next_sent()
    assert body["more_body"] is False
    return start["status"], {bytes(k): bytes(v) for k, v in start["headers"]}, body["body"]


def in_memory() -> ChannelLayerWrapper:
    return ChannelLayerWrapper(InMemoryChannelLayer(), "default", None)


async def test_a_lifespan_shutdown_lets_a_response_finish_then_closes_sockets_with_1012() -> None:
    """The order of a drain: responses in flight finish, then sockets close, then it is complete.

    Meanwhile the health check answers 503, a new request is served but says
    its connection closes, and a new socket is sent away with 1012 before
    any consumer hears of it.
    """
    layer = in_memory()
    bridge = Bridge(layer, BridgeSettings(drain_timeout=30, health_path="/healthz"))
    lifespan_task, lifespan = await start_lifespan(bridge)
    sockets = [await open_socket(bridge, layer) for _ in range(3)]
    slow_task, slow, slow_reply = await start_request(bridge, layer, "/slow/")
    await layer.asend(slow_reply, {"status": 200, "content": b"first ", "more_content": True})
    assert (await slow.next_sent())["status"] == 200
    assert (await slow.next_sent())["body"] == b"first "
    assert (await get(bridge, "/healthz"))[0] == 200

    await shut_down(lifespan)
    assert bridge.dispatcher().drain.state is DrainState.DRAINING
    status, headers, body = await get(bridge, "/healthz")
    assert (status, body, headers[b"connection"]) == (503, b"draining\n", b"close")
    new_task, new, new_reply = await start_request(bridge, layer)
    await layer.asend(new_reply, {"status": 200, "content": b"served"})
    start = await new.next_sent()
    assert [b"connection", b"close"] in start["headers"]
    assert (await new.next_sent())["body"] == b"served"
    await asyncio.wait_for(new_task, 5)
    late = FakeServer()
    late_task = asyncio.ensure_future(bridge(websocket_scope(), late.receive, late.send))
    await late.incoming.put({"type": "websocket.connect"})
    assert await late.next_sent() == {"type": "websocket.accept"}
    assert await late.next_sent() == {"type": "websocket.close", "code": 1012}
    await asyncio.wait_for(late_task, 5)
    assert await layer.areceive(["websocket.connect"]) == (None, None)
    for _, server, _ in sockets:  # the response in flight holds the sockets open
        assert server.sent.empty()
    assert lifespan.sent.empty()

    await layer.asend(slow_reply, {"content": b"last", "more_content": False})
    assert await slow.next_sent() == {
        "type": "http.response.body",
        "body": b"last",
        "more_body": False,
    }
    await asyncio.wait_for(slow_task, 5)
    for _, server, _ in sockets:
        assert await server.next_sent() == {"type": "websocket.close", "code": 1012}
    assert await lifespan.next_sent() == {"type": "lifespan.shutdown.complete"}
    await asyncio.wait_for(lifespan_task, 5)
    # Every disconnect was out before the shutdown was complete.
    disconnects = [(await layer.areceive(["websocket.disconnect"]))[1] for _ in sockets]
    assert sorted(d["reply_channel"] for d in disconnects) == sorted(s[2] for s in sockets)
    assert {d["code"] for d in disconnects} == {1012}
    await asyncio.wait_for(asyncio.gather(*(task for task, _, _ in sockets)), 10)


async def test_past_the_drain_timeout_responses_are_aborted_and_sockets_still_told() -> None:
    """A response under way is aborted (never ended cleanly); one not begun gets a 503."""
    layer = in_memory()
    bridge = Bridge(layer, BridgeSettings(drain_timeout=0.2))
    lifespan_task, lifespan = await start_lifespan(bridge)
    socket_task, socket_server, _ = await open_socket(bridge, layer)
    started_task, started, started_reply = await start_request(bridge, layer)
    await layer.asend(started_reply, {"status": 200, "content": b"half", "more_content": True})
    assert (await started.next_sent())["status"] == 200
    waiting_task, waiting, _ = await start_request(bridge, layer)

    await shut_down(lifespan)
    start = await waiting.next_sent()
    assert start["status"] == 503
    assert [b"connection", b"close"] in start["headers"]
    await asyncio.wait_for(waiting_task, 5)
    # Not daphne: the bridge raises, so that the server drops the connection.
    with pytest.raises(ResponseIncomplete):
        await asyncio.wait_for(started_task, 5)
    sent = [started.sent.get_nowait() for _ in range(started.sent.qsize())]
    assert not any(event.get("more_body") is False for event in sent), sent
    assert await socket_server.next_sent() == {"type": "websocket.close", "code": 1012}
    assert await lifespan.next_sent() == {"type": "lifespan.shutdown.complete"}
    await asyncio.wait_for(asyncio.gather(lifespan_task, socket_task), 10)
    assert (await layer.areceive(["websocket.disconnect"]))[1]["code"] == 1012


async def test_a_handshake_still_unanswered_when_the_sockets_close_is_accepted_to_hear_1012() -> (
    None
):
    """Not a bare 403 or a dropped connection: the client is told to come back."""
    layer = in_memory()
    bridge = Bridge(layer, BridgeSettings(handshake_timeout=30))
    lifespan_task, lifespan = await start_lifespan(bridge)
    server = FakeServer()
    task = asyncio.ensure_future(bridge(websocket_scope(), server.receive, server.send))
    await server.incoming.put({"type": "websocket.connect"})
    _, connect = await layer.areceive(["websocket.connect"], block=True, timeout=5)

    await shut_down(lifespan)
    assert await server.next_sent() == {"type": "websocket.accept"}
    assert await server.next_sent() == {"type": "websocket.close", "code": 1012}
    assert await lifespan.next_sent() == {"type": "lifespan.shutdown.complete"}
    await asyncio.wait_for(asyncio.gather(lifespan_task, task), 10)
    _, disconnect = await layer.areceive(["websocket.disconnect"])
    assert (disconnect["reply_channel"], disconnect["code"]) == (connect["reply_channel"], 1012)
    # The consumer's accept, should it come now, is dropped: its reply channel is forgotten.
    assert connect["reply_channel"] not in bridge.dispatcher().connections


async def test_the_health_check_is_answered_by_the_bridge_only_where_it_is_set() -> None:
    layer = in_memory()
    assert await get(Bridge(layer, BridgeSettings(health_path="/healthz")), "/healthz") == (
        200,
        {
            b"content-type": b"text/plain; charset=utf-8",
            b"cache-control": b"no-store",
            b"content-length": b"3",
        },
        b"ok\n",
    )
    assert await layer.areceive(["http.request"]) == (None, None)  # no worker was asked
    status, headers, body = await get(
        Bridge(layer, BridgeSettings(health_path="/healthz")), "/healthz", "HEAD"
    )
    assert (status, headers[b"content-length"], body) == (200, b"3", b"")

    # Off by default: the path is the project's, like any other.
    task, server, reply = await start_request(Bridge(layer, BridgeSettings()), layer, "/healthz")
    await layer.asend(reply, {"status": 204})
    assert (await server.next_sent())["status"] == 204
    await asyncio.wait_for(task, 5)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Await *check* until it is true: the layer announces no outage, so this polls, bounded."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


async def test_the_health_check_fails_while_the_layer_cannot_be_read() -> None:
    """Nothing listens where the layer's Redis should be: the health check says so with a 503.

    The first check starts the process's reply loop, which finds the layer
    down; the checks after it answer 503.
    """
    dead = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{free_port()}"], prefix="drain-dead:")
    bridge = Bridge(ChannelLayerWrapper(dead, "default", None), BridgeSettings(health_path="/up"))
    try:
        await get(bridge, "/up")

        async def down() -> bool:
            return (await get(bridge, "/up"))[2] == b"channel layer unreachable\n"

        await eventually(down, 10, "the health check never said the layer is unreachable")
        assert (await get(bridge, "/up"))[0] == 503
    finally:
        dead.close()


def test_the_drain_settings_are_checked_where_they_are_read() -> None:
    with override_settings(CHANNELS_DRAIN_TIMEOUT=3, CHANNELS_HEALTH_PATH="/healthz"):
        settings = BridgeSettings.from_django()
    assert (settings.drain_timeout, settings.health_path) == (3.0, "/healthz")
    assert (BridgeSettings().drain_timeout, BridgeSettings().health_path) == (10.0, None)
    assert drain_timeout_setting(0) == 0.0
    with pytest.raises(ImproperlyConfigured, match=r"CHANNELS_DRAIN_TIMEOUT is -1: make it"):
        drain_timeout_setting(-1)
    with pytest.raises(ImproperlyConfigured, match=r"CHANNELS_DRAIN_TIMEOUT is '10'"):
        drain_timeout_setting("10")
    with pytest.raises(ImproperlyConfigured, match=r"CHANNELS_HEALTH_PATH is 'healthz': .*'/'"):
        health_path_setting("healthz")


# Real processes on Redis ------------------------------------------------------------


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    """WebSocket clients (:class:`tests.fleet.Fleet`), all closed afterwards."""
    clients = Fleet()
    yield clients
    clients.stop()


def drained(deployments: Any, drain_timeout: float) -> Deployment:
    """Start daphne + a runworker serving the drain routing, with the health check on."""
    deployment: Deployment = deployments(
        "daphne",
        ROUTING,
        workers=1,
        DJANGO_SETTINGS_MODULE=SETTINGS,
        CHANNELS_TEST_DRAIN_TIMEOUT=str(drain_timeout),
        CHANNELS_TEST_PROCESS_TTL="60",  # so memberships gone early went with the clean close
    )
    return deployment


def refused(port: int) -> bool:
    """Whether a new connection to *port* is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def health(connection: http.client.HTTPConnection) -> tuple[int, str | None, bytes]:
    """Ask for the health check on a kept-alive connection; return status, Connection, body."""
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    return response.status, response.getheader("connection"), response.read()


@pytest.fixture
def connections() -> Iterator[Callable[[int], http.client.HTTPConnection]]:
    """A factory of HTTP connections to a port, kept alive, all closed afterwards."""
    made: list[http.client.HTTPConnection] = []

    def connect(port: int) -> http.client.HTTPConnection:
        made.append(http.client.HTTPConnection("127.0.0.1", port, timeout=30))
        return made[-1]

    yield connect
    for connection in made:
        connection.close()


def slow_request(connection: http.client.HTTPConnection, server: Deployment) -> tuple[Any, str]:
    """Start ``/slow/``; return its response once its first part is in, and its reply channel."""
    connection.request("GET", "/slow/")
    response = connection.getresponse()
    assert response.status == 200
    assert response.read(len(FIRST_PART)) == FIRST_PART
    return response, server.event(slow=True)["reply_channel"]


def test_sigterm_drains_daphne_a_response_in_flight_finishes_then_sockets_close_with_1012(
    deployments: Any, fleet: Fleet, connections: Callable[[int], http.client.HTTPConnection]
) -> None:
    """SIGTERM with a response in flight and 40 sockets open.

    At once: new connections are refused and the health check (on a
    connection kept alive from before) answers 503. The response then
    finishes, whole; only after it does the sockets close, each with 1012,
    and each one's disconnect consumer runs with code 1012; the memberships
    are gone as daphne exits.
    """
    server = drained(deployments, drain_timeout=30)
    groups = [f"g{k}" for k in range(4)]
    clients = fleet.open(server.port, [f"/member/g{n % 4}/room/user{n}/" for n in range(40)])
    assert counts(server.layer, groups, "group_count") == [10] * 4
    checker = connections(server.port)
    assert health(checker) == (200, None, b"ok\n")
    response, reply_channel = slow_request(connections(server.port), server)

    daphne = server.processes[0]
    daphne.signal(signal.SIGTERM)
    stopping = time.monotonic()
    daphne.wait_for(r"Draining \(SIGTERM\): stopped listening on 1 port")
    assert refused(server.port)
    assert health(checker) == (503, "close", b"draining\n")
    assert not [client for client in clients if client.closed.is_set()]  # held for the response

    assert server.layer is not None
    server.layer.send(reply_channel, {"content": b"and the rest", "more_content": False})
    body = FIRST_PART + response.read()
    assert body == FIRST_PART + b"and the rest"
    daphne.wait_for(r"Drained in [\d.]+ s: 1 HTTP response finished, 0 aborted; 40 WebSockets")
    exit_code = daphne.wait(30)
    stopped = time.monotonic() - stopping
    assert counts(server.layer, groups, "group_count") == [0] * 4

    codes = fleet.wait_closed(clients)
    recorded = [server.event(30, code=1012) for _ in clients]
    assert codes == [1012] * 40
    assert {record["reply_channel"] for record in recorded} == {c.reply_channel for c in clients}
    print(
        f"\nSIGTERM drain: 1 response in flight finished ({len(body)} bytes, status 200); "
        f"a new connection refused; health 200 -> 503 while draining; {codes.count(1012)} of "
        f"{len(clients)} sockets closed with 1012, {len(recorded)} disconnect consumers ran "
        f"with code 1012; daphne exited ({exit_code}) {stopped:.2f} s after SIGTERM"
    )


def test_past_the_drain_timeout_daphne_aborts_the_response_and_still_closes_sockets_with_1012(
    deployments: Any, fleet: Fleet, connections: Callable[[int], http.client.HTTPConnection]
) -> None:
    """A response that does not finish within CHANNELS_DRAIN_TIMEOUT is cut, as a stop cuts it.

    The client sees it incomplete, never a clean end; the sockets are closed
    with 1012 and told all the same.
    """
    server = drained(deployments, drain_timeout=1)
    clients = fleet.open(server.port, [f"/member/g/room/user{n}/" for n in range(5)])
    response, _ = slow_request(connections(server.port), server)

    daphne = server.processes[0]
    daphne.signal(signal.SIGTERM)
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        response.read()
    daphne.wait_for(r"Aborted 1 HTTP response still in flight after 1 s of draining")
    daphne.wait(30)
    assert fleet.wait_closed(clients) == [1012] * 5
    assert {server.event(30, code=1012)["reply_channel"] for _ in clients} == {
        client.reply_channel for client in clients
    }


def test_a_second_sigterm_stops_a_draining_daphne_at_once_sockets_still_told(
    deployments: Any, fleet: Fleet, connections: Callable[[int], http.client.HTTPConnection]
) -> None:
    """The operator's way out of a long drain: the response is cut, the sockets still hear 1012."""
    server = drained(deployments, drain_timeout=60)
    clients = fleet.open(server.port, [f"/member/g/room/user{n}/" for n in range(5)])
    response, _ = slow_request(connections(server.port), server)

    daphne = server.processes[0]
    daphne.signal(signal.SIGTERM)
    daphne.wait_for(r"Draining \(SIGTERM\)")
    daphne.signal(signal.SIGTERM)
    daphne.wait(30)  # well before the drain timeout
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        response.read()
    assert fleet.wait_closed(clients) == [1012] * 5
    assert {server.event(30, code=1012)["reply_channel"] for _ in clients} == {
        client.reply_channel for client in clients
    }
