"""Hardening of the worker: no stale work, no stalled socket, no silent failure, no leak.

Over real processes (daphne and ``runworker`` on a real Redis) wherever the
finding is about them; the leak is measured on an in-process worker, where
the structures that grew can be counted.
"""

from __future__ import annotations

import gc
import os
import re
import signal
import socket
import threading
import time
import tracemalloc
from http.client import HTTPConnection
from typing import Any

import pytest
import redis
from django.core.exceptions import SuspiciousOperation
from django.http import HttpResponse
from websockets.sync.client import connect

from channels import Channel, Group
from channels.asgi import ChannelLayerWrapper
from channels.handler import AsgiHandler, view_consumer
from channels.layers.names import new_process_channel
from channels.layers.redis import RedisChannelLayer
from channels.routing import Router, route
from channels.sessions import enforce_ordering
from channels.worker import Worker
from tests.interface import Deployment, http, migrated_database
from tests.waiting import wait_until

#: A whole process-specific name: its prefix, ``!`` and a local part.
WHOLE_REPLY_NAME = re.compile(r"daphne\.response\.[\w.-]*![\w-]+")


def record(message: Any) -> None:
    """Say that this request's view ran (a Redis write), then answer it."""
    Channel("test.events").send({"ran": message["path"]})
    for reply in AsgiHandler.encode_response(HttpResponse("ran")):
        message.reply_channel.send(reply)


def fail(message: Any) -> None:
    raise RuntimeError("this consumer fails on purpose")


def suspicious(message: Any) -> None:
    raise SuspiciousOperation("this consumer finds the request suspicious on purpose")


@enforce_ordering
def ordered_connect(message: Any) -> None:
    message.reply_channel.send({"accept": True})


@enforce_ordering
def ordered_receive(message: Any) -> None:
    """Say which order ran; on "block", say so at once and hang until this worker is killed."""
    if message["text"] == "block":
        Channel("test.events").send({"blocking": os.getpid()}, immediately=True)
        threading.Event().wait(60)
    Channel("test.events").send({"ran": message["order"]})
    message.reply_channel.send({"text": str(message["order"])})


@enforce_ordering
def ordered_disconnect(message: Any) -> None:
    Channel("test.events").send({"disconnected": message["order"]})


http_routing = [
    route("http.request", record, path=r"^/record/"),
    route("http.request", fail, path=r"^/fail/"),
    route("http.request", suspicious, path=r"^/suspicious/"),
    route("http.request", view_consumer),
]
#: What daphne + runworker serve in these tests.
routing = [
    *http_routing,
    route("websocket.connect", ordered_connect, path=r"^/ordered/"),
    route("websocket.receive", ordered_receive, path=r"^/ordered/"),
    route("websocket.disconnect", ordered_disconnect, path=r"^/ordered/"),
]
ROUTING = "tests.test_hardening_worker.routing"


def next_event(server: Deployment, timeout: float = 20) -> dict[str, Any]:
    assert server.layer is not None
    name, message = server.layer.receive(["test.events"], block=True, timeout=timeout)
    assert name == "test.events", f"no event within {timeout} s"
    return message


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database the workers share, for the channel sessions that hold the turn."""
    return migrated_database(str(tmp_path_factory.mktemp("db") / "db.sqlite3"))


# A request no one waits for is not run -------------------------------------------


def events_until(server: Deployment, path: str, timeout: float = 20) -> list[dict[str, Any]]:
    """Return every ``test.events`` message up to the one saying *path* ran."""
    assert server.layer is not None
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not seen or seen[-1].get("ran") != path:
        left = max(deadline - time.monotonic(), 0)
        name, message = server.layer.receive(["test.events"], block=True, timeout=left)
        assert name == "test.events", f"{path} never ran; events so far: {seen}"
        seen.append(message)
    return seen


def test_a_request_answered_503_while_its_worker_was_stopped_never_runs(deployments) -> None:
    """SIGSTOP the only worker past the HTTP timeout: the 503'd request is skipped on SIGCONT."""
    server = deployments("daphne", ROUTING, workers=1, CHANNELS_TEST_HTTP_TIMEOUT="2")
    _daphne, worker = server.processes
    assert http(server.url + "/record/warm/")[0] == 200  # the worker is up and routing
    events_until(server, "/record/warm/")
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        status, _, _ = http(server.url + "/record/stale/", timeout=20)
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    assert status == 503
    assert http(server.url + "/record/after/")[0] == 200
    # One worker thread takes them in order: once "after" ran, "stale" was handled.
    assert [e.get("ran") for e in events_until(server, "/record/after/")] == ["/record/after/"]
    line = worker.wait_for("Skipped an http.request", timeout=5)
    assert not WHOLE_REPLY_NAME.search(line), line


def test_the_backlog_of_a_killed_interface_server_is_skipped_not_answered(
    deployments, redis_url: str, unique_prefix: str
) -> None:
    """Requests queued by a daphne that is then killed run no view once it reads as gone.

    Their deadline is far off (CHANNELS_HTTP_TIMEOUT is 60 s), so only the
    interface server's liveness can tell the worker that no one waits.
    """
    settings = {"CHANNELS_TEST_PROCESS_TTL": "3"}
    doomed = deployments("daphne", ROUTING, workers=0, **settings)
    live = deployments("daphne", ROUTING, workers=1, **settings)
    worker = live.processes[1]
    for server in (doomed, live):  # a daphne announces itself from its first connection on
        assert http(server.url + "/record/warm/")[0] == 200
        events_until(live, "/record/warm/")
    store = redis.Redis.from_url(redis_url)
    alive_keys = unique_prefix + "alive:*"
    wait_until(lambda: len(store.keys(alive_keys)) == 2, 10, "both daphnes announced themselves")
    os.kill(worker.pid, signal.SIGSTOP)
    clients = []
    try:
        for index in range(20):
            sock = socket.create_connection(("127.0.0.1", doomed.port), timeout=20)
            sock.sendall(f"GET /record/dead-{index}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            clients.append(sock)
        assert live.layer is not None
        # (The stopped worker's pending BLPOP may already hold one of them.)
        wait_until(
            lambda: live.layer.channel_statistics("http.request")["messages_pending"] >= 19,
            10,
            "the doomed daphne queued its 20 requests",
        )
        os.kill(doomed.processes[0].pid, signal.SIGKILL)
        wait_until(lambda: len(store.keys(alive_keys)) == 1, 10, "the killed daphne's key expired")
    finally:
        os.kill(worker.pid, signal.SIGCONT)
        for sock in clients:
            sock.close()
        store.close()
    assert http(live.url + "/record/after/")[0] == 200
    assert [e.get("ran") for e in events_until(live, "/record/after/")] == ["/record/after/"]
    output = "".join(worker.output)
    assert output.count("its interface server is gone") == 20, output[-2000:]


def test_a_request_past_its_deadline_is_skipped_without_reading_its_body(deployments) -> None:
    """An ``http.request`` whose deadline passed runs no view, reads no body, sends nothing."""
    server = deployments("daphne", ROUTING, workers=1)
    layer = server.layer
    assert layer is not None
    reply = new_process_channel("daphne.response.stale!")
    body_channel = layer.new_channel("http.request.body?")
    layer.send(body_channel, {"content": b"rest", "more_content": False})
    stale = {
        "reply_channel": reply,
        "http_version": "1.1",
        "method": "POST",
        "path": "/record/stale/",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "body": b"start",
        "body_channel": body_channel,
        "deadline": time.time() - 1,
    }
    layer.send("http.request", stale)
    layer.send("http.request", {**stale, "path": "/record/fresh/", "deadline": time.time() + 60})
    assert [e.get("ran") for e in events_until(server, "/record/fresh/")] == ["/record/fresh/"]
    worker = server.processes[1]
    line = worker.wait_for("Skipped an http.request", timeout=5)
    assert "daphne.response.stale!" in line
    assert not WHOLE_REPLY_NAME.search(line), line
    assert layer.receive([body_channel], block=False)[0] == body_channel  # never read
    replies = []
    while (taken := layer.receive(["daphne.response.stale!"], block=False))[0] is not None:
        replies.append(taken[1])
    assert [r["content"] for r in replies] == [b"ran"]  # the fresh one's only


# A failure is answered at once ---------------------------------------------------


def raw_get(port: int, path: str, timeout: float = 30) -> tuple[int, float]:
    """GET *path* exactly as given (no client-side normalising); return (status, seconds)."""
    started = time.monotonic()
    connection = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        connection.close()


def test_a_static_path_traversal_under_debug_is_answered_400_at_once(deployments) -> None:
    """``/static/../../etc/passwd`` gets 400 well within the bridge timeout; the worker goes on."""
    server = deployments(
        "daphne", ROUTING, workers=1, CHANNELS_TEST_DEBUG="1", CHANNELS_TEST_HTTP_TIMEOUT="30"
    )
    for path, expected in (("/static/../../etc/passwd", {400}), ("/static/..%2f..%2f", {400, 404})):
        status, seconds = raw_get(server.port, path)
        assert (status in expected, seconds < 10) == (True, True), (path, status, seconds)
    assert raw_get(server.port, "/static/site.css")[0] == 200
    assert http(server.url + "/record/after/")[0] == 200


def test_a_consumer_that_raises_is_answered_at_once_as_django_would(deployments) -> None:
    """A raising ``http.request`` consumer gets 400 (SuspiciousOperation) or 500 at once."""
    server = deployments("daphne", ROUTING, workers=1, CHANNELS_TEST_HTTP_TIMEOUT="30")
    for path, expected in (("/suspicious/", 400), ("/fail/", 500), ("/suspicious/", 400)):
        status, seconds = raw_get(server.port, path)
        assert (status, seconds < 10) == (expected, True), (path, status, seconds)
    assert http(server.url + "/record/after/")[0] == 200


# A turn whose worker died is declared lost -----------------------------------------


def test_frames_after_one_whose_worker_was_killed_run_in_order_after_the_bound(
    deployments, database: str
) -> None:
    """SIGKILL the worker running frame 2: frames 3, 4 and the disconnect run in order after it."""
    bound = 3.0
    server = deployments(
        "daphne",
        ROUTING,
        CHANNELS_TEST_DB=database,
        CHANNELS_TEST_ORDERING_TIMEOUT=str(bound),
    )
    workers = server.processes[1:]
    with connect(server.ws_url + "/ordered/", open_timeout=20) as ws:
        ws.send("one")
        assert ws.recv(timeout=20) == "1"
        assert next_event(server) == {"ran": 1}
        ws.send("block")
        blocking = next_event(server)["blocking"]
        stalled_at = time.monotonic()
        (victim,) = [w for w in workers if w.pid == blocking]
        ws.send("three")
        ws.send("four")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
    after = [next_event(server, timeout=bound + 20) for _ in range(3)]
    waited = time.monotonic() - stalled_at
    assert after == [{"ran": 3}, {"ran": 4}, {"disconnected": 5}]
    assert waited >= bound - 0.5, f"the turn was declared lost after {waited:.1f} s only"
    (survivor,) = [w for w in workers if w is not victim]
    survivor.wait_for("declared lost", timeout=5)
    assert sum("declared lost" in line for line in survivor.output) == 1


# Connections leave nothing behind in a worker --------------------------------------


def join_lobby(message: Any) -> None:
    message.reply_channel.send({"accept": True})
    Group("lobby").add(message.reply_channel)


def leave_lobby(message: Any) -> None:
    Group("lobby").discard(message.reply_channel)


#: Bytes a connect/disconnect cycle may leave allocated by channels code: a
#: cache entry per connection's reply channel name was 280-440 bytes.
MAX_GROWTH_PER_CYCLE = 50


def test_connect_disconnect_cycles_leave_no_memory_behind_in_a_worker(
    redis_url: str, unique_prefix: str
) -> None:
    """After warm-up, 500 socket lifetimes through a worker keep channels' memory flat."""
    raw = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix)
    layer = ChannelLayerWrapper(raw, "default", None)
    lifetimes = [route("websocket.connect", join_lobby), route("websocket.disconnect", leave_lobby)]
    worker = Worker(layer, Router(lifetimes))
    worker.poll_with_sends = False
    process = "daphne.response.cycles!"

    def cycles(count: int) -> None:
        for _ in range(count):
            reply = new_process_channel(process)
            socket = {"reply_channel": reply, "path": "/", "query_string": b"", "headers": []}
            worker.handle("websocket.connect", {**socket, "order": 0})
            worker.handle("websocket.disconnect", {**socket, "order": 1, "code": 1000})
            assert layer.receive([process], block=True, timeout=5)[0] == reply

    def channels_bytes() -> int:
        gc.collect()
        ours = tracemalloc.Filter(True, "*/channels/*")
        snapshot = tracemalloc.take_snapshot().filter_traces([ours])
        return sum(stat.size for stat in snapshot.statistics("filename"))

    tracemalloc.start()
    try:
        cycles(100)  # imports, connections, scripts: allocated once
        before = channels_bytes()
        cycles(500)
        growth = channels_bytes() - before
    finally:
        tracemalloc.stop()
        raw.flush()
        raw.close()
    assert growth / 500 < MAX_GROWTH_PER_CYCLE, f"{growth / 500:.0f} bytes left per cycle"
