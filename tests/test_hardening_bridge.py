"""The bridge per connection on a bad day: nothing lost, nothing truncated, no client grows it.

Every test runs real processes: daphne and ``runworker`` on a real Redis,
with real clients on loopback (``http.client``, ``websockets``, plain sockets
for the clients that misbehave).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import signal
import socket
import time
from typing import Any

import pytest
import redis
from websockets.sync.client import connect

from channels.asgi import ChannelLayerWrapper
from channels.backoff import send_when_room
from channels.bridge import Bridge, BridgeSettings
from channels.layers.inmemory import InMemoryChannelLayer
from channels.routing import route
from tests.interface import Deployment, raw_websocket
from tests.processes import rss_kib
from tests.test_bridge import FakeServer
from tests.waiting import wait_until

#: What the slow readers are sent: 320 chunks (or frames) of 64 KiB, 20 MiB in all.
CHUNK = 64 * 1024
CHUNKS = 320
DATA_SIZE = CHUNK * CHUNKS
#: CHANNELS_SEND_BUFFER_LIMIT of the slow-reader tests: 1 MiB.
SEND_BUFFER_LIMIT = 1024 * 1024
#: CHANNELS_SEND_SPOOL_LIMIT of the tests whose clients never read: 2 MiB.
SPOOL_LIMIT = 2 * 1024 * 1024
#: How much daphne may grow while a client does not read DATA_SIZE: half of it, which
#: leaves room for the allocator's noise on a busy machine and still fails if it is held.
GROWTH_LIMIT_KIB = DATA_SIZE // 2 // 1024


def _send(reply: Any, content: dict[str, Any]) -> None:
    send_when_room(lambda: reply.send(content, immediately=True), 20)


def _disconnected_key() -> str:
    return os.environ["CHANNELS_TEST_PREFIX"] + "disconnected"


def _streamed_key() -> str:
    return os.environ["CHANNELS_TEST_PREFIX"] + "streamed"


def ws_connect(message: Any) -> None:
    message.reply_channel.send({"accept": True})


def ws_receive(message: Any) -> None:
    text = message.content.get("text") or ""
    if text.startswith("echo:"):
        message.reply_channel.send({"text": text})
    if text == "flood":
        for _ in range(CHUNKS):
            _send(message.reply_channel, {"text": "x" * CHUNK})
        _mark_streamed()


def ws_disconnect(message: Any) -> None:
    time.sleep(0.01)  # a consumer that does some work: leaves its groups, saves a session
    client = redis.Redis.from_url(os.environ["CHANNELS_TEST_REDIS_URL"])
    try:
        client.sadd(_disconnected_key(), message["path"])
    finally:
        client.close()


def http_request(message: Any) -> None:
    path = message["path"]
    reply = message.reply_channel
    if path == "/deadline/":
        body = json.dumps({"deadline": message.content.get("deadline"), "now": time.time()})
        _send(reply, {"status": 200, "content": body.encode()})
        return
    start = {"status": 200, "headers": [[b"content-type", b"text/plain"]], "more_content": True}
    _send(reply, start)
    if path == "/cut/":  # as if the worker died mid-response: the rest never comes
        for _ in range(3):
            _send(reply, {"content": b"x" * 1000, "more_content": True})
        return
    if path == "/endless/":  # until the test kills this worker, which it names first
        client = redis.Redis.from_url(os.environ["CHANNELS_TEST_REDIS_URL"])
        try:
            client.set(os.environ["CHANNELS_TEST_PREFIX"] + "endless", os.getpid())
        finally:
            client.close()
        while True:
            _send(reply, {"content": b"x" * CHUNK, "more_content": True})
    for index in range(CHUNKS):
        _send(reply, {"content": b"x" * CHUNK, "more_content": index < CHUNKS - 1})
    _mark_streamed()


def _mark_streamed() -> None:
    """Say that everything was sent: it is all on its way to daphne."""
    client = redis.Redis.from_url(os.environ["CHANNELS_TEST_REDIS_URL"])
    try:
        client.set(_streamed_key(), 1)
    finally:
        client.close()


#: The routing daphne + runworker serve in these tests.
routing = [
    route("websocket.connect", ws_connect),
    route("websocket.receive", ws_receive),
    route("websocket.disconnect", ws_disconnect),
    route("http.request", http_request),
]
ROUTING = "tests.test_hardening_bridge.routing"


def _daphne_kib(server: Deployment) -> int:
    return rss_kib(server.processes[0].pid)


def _small_buffer_socket(port: int) -> socket.socket:
    """A connected socket with small kernel buffers, so what it does not read stays in daphne."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", port))
    return sock


def _handshake(sock: socket.socket, path: str) -> None:
    raw_websocket(sock.getpeername()[1], path, sock)


def _unmasked_text(payload: bytes) -> bytes:
    """One client text frame under a zero mask key (valid, and cheap for large floods)."""
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def _read_until_closed(sock: socket.socket) -> int:
    """Read until the server has closed the connection; return the bytes read."""
    total = 0
    while True:
        try:
            chunk = sock.recv(256 * 1024)
        except ConnectionResetError:
            return total
        if not chunk:
            return total
        total += len(chunk)


# 1. A disconnect always reaches its consumer --------------------------------------


def test_every_disconnect_of_sockets_closed_at_once_reaches_its_consumer(
    deployments: Any, redis_url: str, unique_prefix: str
) -> None:
    """150 sockets closed together, websocket.disconnect of capacity 5: all 150 consumers run."""
    server = deployments("daphne", ROUTING, CHANNELS_TEST_CAPACITY="5")
    sockets = []
    for index in range(150):  # one at a time: websocket.connect never fills
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        _handshake(sock, f"/sock/{index}/")
        sockets.append(sock)
    client = redis.Redis.from_url(redis_url)
    key = unique_prefix + "disconnected"
    try:
        assert client.scard(key) == 0
        for sock in sockets:
            sock.close()
        wait_until(
            lambda: client.scard(key) == 150,
            25,
            lambda: f"only {client.scard(key)} of 150 disconnect consumers ran",
        )
    finally:
        client.close()


# 2. A response cut short is never made to look complete -----------------------------


@pytest.fixture
def short_timeout_server(deployments: Any) -> Deployment:
    server: Deployment = deployments("daphne", ROUTING, CHANNELS_TEST_HTTP_TIMEOUT="2")
    return server


def test_a_response_whose_worker_stops_sending_is_aborted_not_ended(
    short_timeout_server: Deployment,
) -> None:
    """The reply stops after 3 KB: the client sees an incomplete response, not a clean 200."""
    connection = http.client.HTTPConnection("127.0.0.1", short_timeout_server.port, timeout=20)
    try:
        connection.request("GET", "/cut/")
        response = connection.getresponse()
        assert response.status == 200
        with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
            response.read()
    finally:
        connection.close()
    daphne = short_timeout_server.processes[0]
    daphne.wait_for("stalled for 2 s", timeout=10)
    assert "Exception inside application" not in "".join(daphne.output)


def test_a_response_whose_worker_is_killed_mid_way_arrives_incomplete(
    short_timeout_server: Deployment, redis_url: str, unique_prefix: str
) -> None:
    """SIGKILL the worker streaming a response: the client reads an incomplete one, not a 200."""
    store = redis.Redis.from_url(redis_url)
    connection = http.client.HTTPConnection("127.0.0.1", short_timeout_server.port, timeout=20)
    try:
        connection.request("GET", "/endless/")
        response = connection.getresponse()
        assert response.status == 200
        assert len(response.read(CHUNK)) == CHUNK  # the stream is under way
        pid = wait_until(lambda: store.get(unique_prefix + "endless"), 10, "no worker streams")
        os.kill(int(pid), signal.SIGKILL)
        with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
            _read_to_end(response)
    finally:
        connection.close()
        store.close()


def _read_to_end(response: http.client.HTTPResponse) -> None:
    while response.read(CHUNK):
        pass


def test_a_malformed_entry_in_daphnes_reply_list_leaves_its_other_sockets_open(
    deployments: Any, redis_url: str, unique_prefix: str
) -> None:
    """Garbage pushed onto a daphne's process list is dropped: its 20 sockets all still echo."""
    server = deployments("daphne", ROUTING, workers=1)
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(connect(f"{server.ws_url}/echo/{index}/", open_timeout=20))
            for index in range(20)
        ]
        store = stack.enter_context(contextlib.closing(redis.Redis.from_url(redis_url)))
        for index, ws in enumerate(sockets):  # every socket works, so daphne reads its list
            ws.send(f"echo:{index}")
            assert ws.recv(timeout=20) == f"echo:{index}"
        # The process list is empty (deleted) between replies; its name is in the alive key.
        (alive,) = store.scan_iter(match=unique_prefix + "alive:*")
        process = alive.decode().partition("alive:")[2]
        store.rpush(unique_prefix + process, b"99999999999999|\xff\xfe|garbage")
        for index, ws in enumerate(sockets):
            ws.send(f"echo:again:{index}")
            assert ws.recv(timeout=20) == f"echo:again:{index}"
        server.processes[0].wait_for("undecodable local parts", timeout=10)


async def test_under_another_server_a_stalled_response_raises_so_the_server_aborts() -> None:
    """Without daphne's transport to abort, the bridge raises rather than end the response."""
    from channels.exceptions import ResponseIncomplete  # new with this behaviour

    layer = ChannelLayerWrapper(InMemoryChannelLayer(), "default", None)
    server = FakeServer()
    bridge = Bridge(layer, BridgeSettings(http_timeout=0.5))
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    task = asyncio.ensure_future(bridge(scope, server.receive, server.send))
    await server.incoming.put({"type": "http.request", "body": b"", "more_body": False})
    _, message = await layer.areceive(["http.request"], block=True, timeout=5)
    await layer.asend(message["reply_channel"], {"status": 200, "more_content": True})
    with pytest.raises(ResponseIncomplete):
        await asyncio.wait_for(task, 5)
    sent = [server.sent.get_nowait() for _ in range(server.sent.qsize())]
    assert not any(event.get("more_body") is False for event in sent), sent


# 4. Every request says until when its client waits ----------------------------------


def test_http_request_carries_the_time_after_which_no_one_waits(
    short_timeout_server: Deployment,
) -> None:
    """``deadline`` is the UNIX time of the request plus CHANNELS_HTTP_TIMEOUT."""
    before = time.time()
    connection = http.client.HTTPConnection("127.0.0.1", short_timeout_server.port, timeout=20)
    try:
        connection.request("GET", "/deadline/")
        answer = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    assert isinstance(answer["deadline"], float)
    assert before + 2 <= answer["deadline"] <= answer["now"] + 2


def test_a_finished_response_leaves_twisted_nothing_to_complain_of(deployments: Any) -> None:
    """The flow control lets go of the request before its last part, not after daphne finished it.

    Twisted logs "Producer was not unregistered" (at CRITICAL) for a request
    finished with a producer still registered; two responses on one
    keep-alive connection show the second is served normally too.
    """
    server: Deployment = deployments("daphne", ROUTING, daphne_flags=("-v", "2"))
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        for _ in range(2):
            connection.request("GET", "/deadline/")
            assert connection.getresponse().read().startswith(b"{")
    finally:
        connection.close()
    daphne = server.processes[0]
    wait_until(
        lambda: "".join(daphne.output).count('"GET /deadline/" 200') == 2,
        10,
        "daphne did not log both requests",
    )
    output = "".join(daphne.output)
    assert "Producer was not unregistered" not in output
    assert "Exception inside application" not in output


# 3. A client that does not read cannot grow the server ------------------------------


@pytest.fixture
def server(deployments: Any) -> Deployment:
    server: Deployment = deployments(
        "daphne",
        ROUTING,
        workers=1,
        CHANNELS_TEST_SEND_BUFFER_LIMIT=str(SEND_BUFFER_LIMIT),
        CHANNELS_TEST_SEND_SPOOL_LIMIT=str(SPOOL_LIMIT),
    )
    return server


def test_an_http_client_that_never_reads_is_aborted_without_growing_daphne(
    server: Deployment,
) -> None:
    """A 20 MiB response to a client that reads none of it: daphne holds a few MiB, then aborts."""
    daphne = server.processes[0]
    before = _daphne_kib(server)
    sock = _small_buffer_socket(server.port)
    try:
        sock.sendall(b"GET /stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        daphne.wait_for("Aborted the response to http /stream/: its client stopped", timeout=25)
        growth = _daphne_kib(server) - before
        assert growth < GROWTH_LIMIT_KIB, f"daphne grew by {growth} KiB"
        assert _read_until_closed(sock) < DATA_SIZE
        assert "Exception inside application" not in "".join(daphne.output)
    finally:
        sock.close()


def test_a_slow_http_client_gets_all_of_a_response_that_waits_on_disk_not_in_daphne(
    deployments: Any, redis_url: str, unique_prefix: str
) -> None:
    """A client that reads nothing until the worker is done still gets all 20 MiB.

    Past CHANNELS_SEND_BUFFER_LIMIT (1 MiB here) the response waits in a
    temporary file, so daphne does not grow by it and the download is not
    cut off: its client was only slow.
    """
    server = deployments(
        "daphne", ROUTING, workers=1, CHANNELS_TEST_SEND_BUFFER_LIMIT=str(SEND_BUFFER_LIMIT)
    )
    daphne = server.processes[0]
    store = redis.Redis.from_url(redis_url)
    streamed = unique_prefix + "streamed"
    before = _daphne_kib(server)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    connection.sock = _small_buffer_socket(server.port)
    try:
        connection.request("GET", "/stream/")
        daphne.wait_for("reads slower than its replies come", timeout=20)
        wait_until(lambda: store.exists(streamed), 30, "the worker did not finish its response")
        growth = _daphne_kib(server) - before
        assert growth < GROWTH_LIMIT_KIB, f"daphne grew by {growth} KiB"
        response = connection.getresponse()
        assert response.status == 200
        assert len(response.read()) == DATA_SIZE
    finally:
        connection.close()
        store.close()


def test_a_slow_websocket_client_gets_every_frame_that_waits_on_disk_not_in_daphne(
    deployments: Any, redis_url: str, unique_prefix: str
) -> None:
    """A socket that reads nothing until the worker is done still gets all 20 MiB of frames."""
    server = deployments(
        "daphne", ROUTING, workers=1, CHANNELS_TEST_SEND_BUFFER_LIMIT=str(SEND_BUFFER_LIMIT)
    )
    daphne = server.processes[0]
    store = redis.Redis.from_url(redis_url)
    before = _daphne_kib(server)
    sock = _small_buffer_socket(server.port)
    try:
        _handshake(sock, "/flood/")
        sock.sendall(_unmasked_text(b"flood"))
        daphne.wait_for("reads slower than its replies come", timeout=20)
        streamed = unique_prefix + "streamed"
        wait_until(lambda: store.exists(streamed), 30, "the worker did not send every frame")
        growth = _daphne_kib(server) - before
        assert growth < GROWTH_LIMIT_KIB, f"daphne grew by {growth} KiB"
        assert _read_frames(sock, CHUNKS) == DATA_SIZE
    finally:
        sock.close()
        store.close()


def _read_frames(sock: socket.socket, count: int) -> int:
    """Read *count* unmasked server frames; return the bytes of their payloads."""
    total = 0
    for _ in range(count):
        head = _read_exactly(sock, 2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(_read_exactly(sock, 2), "big")
        elif length == 127:
            length = int.from_bytes(_read_exactly(sock, 8), "big")
        total += len(_read_exactly(sock, length))
    return total


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the server closed the socket"
        data += chunk
    return bytes(data)


def test_a_websocket_client_that_never_reads_is_closed_without_growing_daphne(
    server: Deployment,
) -> None:
    """20 MiB of frames to a socket that reads none: daphne holds a few MiB, then closes it."""
    daphne = server.processes[0]
    before = _daphne_kib(server)
    sock = _small_buffer_socket(server.port)
    try:
        _handshake(sock, "/flood/")
        sock.sendall(_unmasked_text(b"flood"))
        daphne.wait_for("Closed the WebSocket to /flood/ with 1008", timeout=25)
        growth = _daphne_kib(server) - before
        assert growth < GROWTH_LIMIT_KIB, f"daphne grew by {growth} KiB"
        assert _read_until_closed(sock) < DATA_SIZE
    finally:
        sock.close()


def test_a_ping_flood_whose_pongs_are_never_read_stops_being_read(server: Deployment) -> None:
    """Pings sent without reading the pongs: daphne stops reading them and does not grow."""
    before = _daphne_kib(server)
    sock = _small_buffer_socket(server.port)
    ping = bytes([0x89, 0x80 | 125]) + b"\0\0\0\0" + b"p" * 125
    block = memoryview(ping * (1024 * 1024 // len(ping)))
    sent = 0
    try:
        _handshake(sock, "/pings/")
        sock.settimeout(3)
        try:
            while sent < DATA_SIZE:  # whole frames: a partial send goes on where it stopped
                sent += sock.send(block[sent % len(block) :])
        except TimeoutError:
            pass  # daphne stopped reading: the kernel buffers are full
        assert sent < DATA_SIZE, "daphne read every ping without the pongs being read"
        growth = _daphne_kib(server) - before
        assert growth < GROWTH_LIMIT_KIB, f"daphne grew by {growth} KiB"
    finally:
        sock.close()


def test_clients_that_read_get_all_of_a_large_response_and_of_many_frames(
    deployments: Any,
) -> None:
    """Under the default limit, a reading client gets all 20 MiB, by HTTP and WebSocket.

    (The limit bounds how far a client may fall behind the worker, so a
    client slower than the worker by more than it is cut: see
    ``CHANNELS_SEND_BUFFER_LIMIT``.)
    """
    server = deployments("daphne", ROUTING, workers=1)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        connection.request("GET", "/stream/")
        response = connection.getresponse()
        assert response.status == 200
        assert len(response.read()) == DATA_SIZE
    finally:
        connection.close()
    with connect(f"{server.ws_url}/reader/", open_timeout=20) as ws:
        ws.send("flood")
        received = sum(len(ws.recv(timeout=20)) for _ in range(CHUNKS))
    assert received == DATA_SIZE
