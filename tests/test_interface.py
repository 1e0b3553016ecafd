"""The interface server for real: daphne (or runserver), workers, HTTP and WebSocket clients."""

from __future__ import annotations

import hashlib
import socket
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.interface import Deployment, http, http_json

BOTH = pytest.mark.parametrize("kind", ["runserver", "daphne"])


# The getting-started tutorial, up to "Running with Channels" --------------


@BOTH
def test_tutorial_hello_world_http_consumer(deployments, kind: str) -> None:
    server = deployments(kind, "tests.project.tutorial.http_hello.channel_routing")
    status, _, body = http(server.url + "/any/path/")
    assert status == 200
    assert body == b"Hello world! You asked for /any/path/"


@BOTH
def test_tutorial_echo(deployments, kind: str) -> None:
    server = deployments(kind, "tests.project.tutorial.echo.channel_routing")
    with connect(server.ws_url + "/chat/", open_timeout=20) as socket_:
        socket_.send("hello world")
        assert socket_.recv(timeout=20) == "hello world"


@pytest.mark.parametrize("kind", ["runserver", "daphne", "runserver-noworker"])
def test_tutorial_group_chat_across_two_clients(deployments, kind: str) -> None:
    server = deployments(kind, "tests.project.tutorial.chat.channel_routing")
    with (
        connect(server.ws_url + "/chat/", open_timeout=20) as first,
        connect(server.ws_url + "/chat/", open_timeout=20) as second,
    ):
        first.send("hello world")
        assert first.recv(timeout=20) == "[user] hello world"
        assert second.recv(timeout=20) == "[user] hello world"
        second.send("hi back")
        assert first.recv(timeout=20) == "[user] hi back"
        assert second.recv(timeout=20) == "[user] hi back"


# Django views through the bridge ----------------------------------------


@pytest.fixture(scope="module")
def views_server(redis_url: str) -> Deployment:
    from tests.interface import deploy

    server = deploy(
        "daphne", "tests.project.sockets.channel_routing", redis_url=redis_url, prefix="views:"
    )
    yield server
    server.stop()


def test_get_and_post_form(views_server: Deployment) -> None:
    got = http_json(views_server.url + "/form/?x=1&y=%C3%A9", headers={"Cookie": "k=v; a=b"})
    assert got["method"] == "GET"
    assert got["get"] == {"x": ["1"], "y": ["é"]}
    assert got["cookies"] == {"k": "v", "a": "b"}
    posted = http_json(
        views_server.url + "/form/",
        data=b"name=ada&name=grace&x=%F0%9F%98%80",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert posted["method"] == "POST"
    assert posted["post"] == {"name": ["ada", "grace"], "x": ["😀"]}


def test_a_five_megabyte_upload_streams_through_a_body_channel(views_server: Deployment) -> None:
    data = hashlib.sha256(b"seed").digest() * (5 * 1024 * 1024 // 32)
    got = http_json(
        views_server.url + "/upload/",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert got == {"size": len(data), "sum": sum(data) % 65536}


def test_cookies_are_set(views_server: Deployment) -> None:
    status, headers, _ = http(views_server.url + "/cookie/")
    assert status == 200
    assert "flavour=oatmeal" in headers["Set-Cookie"]


def test_streaming_response(views_server: Deployment) -> None:
    status, _, body = http(views_server.url + "/stream/")
    assert status == 200
    assert body == b"".join(b"chunk %d\n" % n for n in range(5))


def test_not_found_and_server_error(views_server: Deployment) -> None:
    assert http(views_server.url + "/missing/")[0] == 404
    assert http(views_server.url + "/boom/")[0] == 500
    assert http(views_server.url + "/hello/")[0] == 200  # the worker carried on


def test_a_client_vanishing_mid_request_sends_http_disconnect(views_server: Deployment) -> None:
    views_server.layer.flush()
    with socket.create_connection(("127.0.0.1", views_server.port), timeout=10) as sock:
        sock.sendall(b"GET /slow/?seconds=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert views_server.event() == {"http.disconnect": "/slow/"}
    assert http(views_server.url + "/hello/")[0] == 200


@BOTH
def test_static_files_are_served_in_debug(deployments, kind: str) -> None:
    server = deployments(kind, "tests.project.sockets.channel_routing", CHANNELS_TEST_DEBUG="1")
    status, _, body = http(server.url + "/static/site.css")
    assert status == 200
    assert body == b"body { color: teal; }\n"
    assert http(server.url + "/static/missing.css")[0] == 404


# WebSocket handshakes, frames and closes --------------------------------


def test_handshake_accept_reject_and_implicit_accept(views_server: Deployment) -> None:
    with connect(views_server.ws_url + "/ws/accept/", open_timeout=20) as ws:
        ws.send("ping")
        assert ws.recv(timeout=20) == "ping"
    with pytest.raises(InvalidStatus) as rejected:
        connect(views_server.ws_url + "/ws/reject/", open_timeout=20)
    assert rejected.value.response.status_code == 403
    with connect(views_server.ws_url + "/ws/implicit/", open_timeout=20) as ws:
        assert ws.recv(timeout=20) == "hello before accept"


def test_frames_keep_their_order_and_type(views_server: Deployment) -> None:
    with connect(views_server.ws_url + "/ws/echo/", open_timeout=20) as ws:
        ws.send(b"\x00\x01binary")
        assert ws.recv(timeout=20) == b"yranib\x01\x00"
        big = "x" * 1_000_000
        ws.send(big)
        assert ws.recv(timeout=20) == big


@pytest.mark.parametrize(
    ("asked", "sent"),
    [(4001, 4001), (1011, 1011), (1013, 1013), (1006, 1000)],
    ids=["private", "server-error", "try-again", "not-sendable"],
)
def test_consumer_close_codes_reach_the_client(
    views_server: Deployment, asked: int, sent: int
) -> None:
    # daphne passes only 1000 and 3000-4999 on; the server's own codes go too.
    views_server.layer.flush()
    with connect(views_server.ws_url + "/ws/echo/", open_timeout=20) as ws:
        ws.send(f"close {asked}")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=20)
    assert closed.value.rcvd.code == sent
    # Its disconnect comes third (connect, the frame, the disconnect).
    views_server.event(path="/ws/echo/", order=2)


def test_disconnect_message_has_code_path_and_order(views_server: Deployment) -> None:
    views_server.layer.flush()
    with connect(views_server.ws_url + "/ws/echo/", open_timeout=20) as ws:
        for n in range(3):
            ws.send(f"m{n}")
            assert ws.recv(timeout=20) == f"m{n}"
        ws.close(code=4321)
    assert views_server.event(disconnect=4321) == {
        "disconnect": 4321,
        "path": "/ws/echo/",
        "order": 4,
    }


def test_a_reply_with_both_text_and_bytes_is_ignored_not_fatal(views_server: Deployment) -> None:
    with connect(views_server.ws_url + "/ws/echo/", open_timeout=20) as ws:
        ws.send("both")
        assert ws.recv(timeout=20) == "after both"


# Backpressure, timeouts and faults --------------------------------------


def test_a_full_request_channel_answers_503(deployments) -> None:
    server = deployments(
        "daphne", "tests.project.sockets.channel_routing", workers=0, CHANNELS_TEST_CAPACITY="1"
    )
    server.layer.send("http.request", {"filler": True})
    status, _, body = http(server.url + "/hello/")
    assert status == 503
    assert b"queue full" in body


def test_no_worker_reply_within_the_http_timeout_answers_503(deployments) -> None:
    server = deployments(
        "daphne", "tests.project.sockets.channel_routing", workers=0, CHANNELS_TEST_HTTP_TIMEOUT="1"
    )
    started = time.monotonic()
    status, _, body = http(server.url + "/hello/")
    assert status == 503
    assert b"failed to respond" in body
    assert time.monotonic() - started < 30


def test_a_view_raising_response_later_is_answered_by_another_consumer(
    views_server: Deployment,
) -> None:
    status, _, body = http(views_server.url + "/later/")
    assert status == 200
    assert body == b"answered later"
