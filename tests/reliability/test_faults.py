"""Faults and bad input against real processes: nothing crashes, nothing hangs."""

from __future__ import annotations

import os
import signal
import socket
import threading
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.interface import (
    close_code,
    http,
    masked_frame,
    raw_websocket,
    start_daphne,
    wait_for_port,
)
from tests.processes import project_env
from tests.waiting import wait_until

ROUTING = "tests.project.sockets.channel_routing"


def test_a_worker_killed_mid_consumer(deployments) -> None:
    """The other worker carries on; the orphaned request gets 503 after the timeout."""
    server = deployments(
        "daphne", ROUTING, worker_flags=("-v", "2"), CHANNELS_TEST_HTTP_TIMEOUT="3"
    )
    daphne, *workers = server.processes
    result: dict[str, Any] = {}
    slow = threading.Thread(
        target=lambda: result.update(status=http(server.url + "/slow/?seconds=60")[0])
    )
    slow.start()
    # runworker -v 2 logs "http.request -> <consumer>" for each message it takes.
    victim = wait_until(
        lambda: next((w for w in workers if any("http.request -> " in x for x in w.output)), None),
        20,
        "no worker took the request",
    )
    os.kill(victim.process.pid, signal.SIGKILL)
    slow.join(30)
    assert result["status"] == 503
    for _ in range(5):
        assert http(server.url + "/hello/")[0] == 200
    assert daphne.process.poll() is None


def test_a_daphne_restart_lets_clients_reconnect_at_once(deployments, redis_url: str) -> None:
    server = deployments("daphne", ROUTING)
    with connect(server.ws_url + "/ws/echo/", open_timeout=20) as ws:
        ws.send("before")
        assert ws.recv(timeout=20) == "before"
        daphne = server.processes[0]
        daphne.stop()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=20)
    env = project_env(
        CHANNELS_TEST_REDIS_URL=redis_url,
        CHANNELS_TEST_PREFIX=server.layer.prefix,
        CHANNELS_TEST_ROUTING=ROUTING,
    )
    server.processes[0] = start_daphne(env, server.port)
    wait_for_port(server.port)
    with connect(server.ws_url + "/ws/echo/", open_timeout=20) as ws:
        ws.send("after")
        assert ws.recv(timeout=20) == "after"


def test_bad_frames_close_the_socket_and_nothing_else(deployments) -> None:
    server = deployments("daphne", ROUTING)
    server.layer.flush()
    with raw_websocket(server.port, "/ws/echo/") as sock:
        sock.sendall(masked_frame(0x1, b"\xff\xfe not utf-8"))
        assert close_code(sock) in (1007, None)  # autobahn may close or just drop it
    with connect(server.ws_url + "/ws/echo/", open_timeout=20, max_size=None) as ws:

        def send_ten_megabytes() -> None:
            ws.send("x" * (10 * 1024 * 1024))
            ws.recv(timeout=30)

        with pytest.raises(ConnectionClosed) as closed:  # daphne's limit is 1 MiB
            send_ten_megabytes()
        assert closed.value.rcvd is None or closed.value.rcvd.code == 1009
    assert server.layer.receive(["websocket.receive"]) == (None, None)  # nothing got through
    with connect(server.ws_url + "/ws/echo/", open_timeout=20) as ws:
        ws.send("still serving")
        assert ws.recv(timeout=20) == "still serving"


def test_malformed_http_gets_400_and_the_server_carries_on(deployments) -> None:
    server = deployments("daphne", ROUTING)
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")
    assert http(server.url + "/hello/")[0] == 200


def test_an_oversized_request_body_gets_413(deployments) -> None:
    server = deployments("daphne", ROUTING, CHANNELS_TEST_MAX_BODY_SIZE=str(1024 * 1024))
    status, _, _ = http(
        server.url + "/upload/",
        data=b"x" * (3 * 1024 * 1024),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status == 413
    status, _, body = http(
        server.url + "/upload/", data=b"y" * 1000, headers={"Content-Type": "text/plain"}
    )
    assert status == 200
    assert b'"size": 1000' in body


def test_a_redis_restart_during_traffic(deployments, redis_server) -> None:
    """In-flight requests fail fast (503 / 1011), no process exits, all recovers in seconds."""
    server = deployments("daphne", ROUTING, redis_url=redis_server.url)
    statuses: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            statuses.append(http(server.url + "/hello/", timeout=30)[0])

    with connect(server.ws_url + "/ws/echo/", open_timeout=20) as ws:
        ws.send("before")
        assert ws.recv(timeout=20) == "before"
        client = threading.Thread(target=traffic)
        client.start()
        wait_until(lambda: statuses.count(200) >= 5, 30, "no traffic flowed")
        redis_server.stop()
        with pytest.raises(ConnectionClosed) as closed:  # the open socket: 1011, no hang
            ws.recv(timeout=30)
        assert closed.value.rcvd.code == 1011
        redis_server.start()
        wait_until(  # several in a row: both workers are back
            lambda: statuses[-6:] == [200] * 6, 30, lambda: f"no recovery: {statuses[-20:]}"
        )
        stop.set()
        client.join(30)
    assert set(statuses) <= {200, 503}  # failures are quick 503s, nothing else
    assert 503 in statuses
    for _ in range(6):  # sockets work again, on every worker
        with connect(server.ws_url + "/ws/echo/", open_timeout=20) as ws:
            ws.send("after")
            assert ws.recv(timeout=20) == "after"
    assert all(process.process.poll() is None for process in server.processes)
