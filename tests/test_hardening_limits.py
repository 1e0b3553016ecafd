"""What a client sends before the application sees it is bounded in time, size and framing.

Over a real daphne (and one ``runworker`` on Redis) with raw sockets: slow
request lines, headers, WebSocket handshakes and bodies are answered 408 and
closed within their bound; a body over ``CHANNELS_MAX_BODY_SIZE`` is answered
413 before daphne reads it; framing two parsers could read two ways gets 400;
well-behaved requests, uploads and WebSockets are untouched. The bounds are
short here (2 s) so that each case takes seconds.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.interface import (
    Deployment,
    deploy,
    http,
    masked_frame,
    raw_websocket,
    start_runserver,
)
from tests.processes import free_port, project_env

ROUTING = "tests.project.sockets.channel_routing"
#: The bounds the server runs with, in seconds (and bytes per second, bytes).
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
MIN_BODY_RATE = 500.0
MAX_BODY_SIZE = 4 * 1024 * 1024
#: How late a bound may fire on a loaded machine, and how often a slow client sends.
SLACK = 3.0
PACE = 0.5

LIMITS = {
    "CHANNELS_TEST_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
    "CHANNELS_TEST_BODY_TIMEOUT": str(BODY_TIMEOUT),
    "CHANNELS_TEST_MIN_BODY_RATE": str(MIN_BODY_RATE),
    "CHANNELS_TEST_MAX_BODY_SIZE": str(MAX_BODY_SIZE),
}


@pytest.fixture(scope="module")
def server(redis_url: str) -> Iterator[Deployment]:
    """daphne and one worker on Redis with the short bounds, shared by the module's tests."""
    deployment = deploy(
        "daphne", ROUTING, redis_url=redis_url, prefix="hardening-limits:", workers=1, **LIMITS
    )
    try:
        yield deployment
    finally:
        deployment.stop()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def dribble(sock: socket.socket, pieces: Iterable[bytes], limit: float) -> tuple[float, bytes]:
    """Send one piece per :data:`PACE` s until the server closes; return (seconds, answer).

    Each pause is a wait for the socket to become readable, so the close is
    seen the moment it happens. Fail if it has not happened after *limit* s.
    """
    start = time.monotonic()
    answer = b""
    pending = iter(pieces)
    sock.settimeout(1)
    while time.monotonic() - start < limit:
        readable, _, _ = select.select([sock], [], [], PACE)
        if readable:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:  # a TLS record without data (a session ticket)
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return time.monotonic() - start, answer
            answer += chunk
            continue
        piece = next(pending, None)
        if piece is not None and not answer:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(piece)
    pytest.fail(f"the server kept a slow client's connection open for {limit:g} s")


def request_lines(*lines: str) -> list[bytes]:
    return [line.encode() + b"\r\n" for line in lines]


def header_dribble() -> Iterator[bytes]:
    yield b"GET /hello/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for number in range(100):
        yield f"X-Slow-{number}: {number}\r\n".encode()


def websocket_dribble() -> list[bytes]:
    return request_lines(
        "GET /ws/echo/ HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"X-Slow-{number}: {number}" for number in range(100)),
    )


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param(lambda: (bytes([b]) for b in b"GET /hello/ HTTP/1.1\r\n"), id="request-line"),
        pytest.param(header_dribble, id="header-lines"),
        pytest.param(websocket_dribble, id="websocket-handshake"),
    ],
)
def test_a_request_whose_headers_dribble_in_is_answered_408_within_the_header_timeout(
    server: Deployment, pieces: object
) -> None:
    """A request line at 1 B per 0.5 s, headers or a handshake line by line: 408, then closed."""
    with connect(server.port) as sock:
        elapsed, answer = dribble(sock, pieces(), HEADER_TIMEOUT + SLACK)  # type: ignore[operator]
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert elapsed >= HEADER_TIMEOUT - 0.5


def test_a_connection_that_sends_nothing_is_closed_quietly_within_the_header_timeout(
    server: Deployment,
) -> None:
    """An idle connection is closed without an answer: it asked nothing."""
    with connect(server.port) as sock:
        elapsed, answer = dribble(sock, [], HEADER_TIMEOUT + SLACK)
    assert answer == b""
    assert elapsed >= HEADER_TIMEOUT - 0.5


def test_a_keep_alive_connection_is_served_then_closed_quietly_when_idle(
    server: Deployment,
) -> None:
    """Two requests on one connection are answered; idle after them, it is closed, no 408."""
    with connect(server.port) as sock:
        for _ in range(2):
            sock.sendall(b"GET /hello/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            response = b""
            while b"Hello world!" not in response:
                chunk = sock.recv(65536)
                assert chunk, response
                response += chunk
            assert response.startswith(b"HTTP/1.1 200 ")
        _, answer = dribble(sock, [], HEADER_TIMEOUT + SLACK)
    assert answer == b""


def body_request(length: int) -> bytes:
    return (
        f"POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_a_body_at_10_bytes_a_pace_is_answered_408_after_its_head_start(
    server: Deployment,
) -> None:
    """10 B per 0.5 s is far under the minimum rate: 408 once the head start is spent."""
    with connect(server.port) as sock:
        sock.sendall(body_request(100_000))
        elapsed, answer = dribble(sock, (b"x" * 10 for _ in range(1000)), BODY_TIMEOUT + SLACK)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert elapsed >= BODY_TIMEOUT - 0.5


def test_a_body_that_stops_after_a_fast_start_is_answered_408_after_the_pause_bound(
    server: Deployment,
) -> None:
    """200 kB at once earns 400 s at the minimum rate, but a pause over the bound still ends it."""
    with connect(server.port) as sock:
        sock.sendall(body_request(1_000_000) + b"x" * 200_000)
        _, answer = dribble(sock, [], BODY_TIMEOUT + SLACK)
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def read_response(sock: socket.socket, timeout: float) -> bytes:
    """Read until the server closes the connection or *timeout* passes."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_a_content_length_over_the_limit_is_answered_413_before_the_body_is_sent(
    server: Deployment,
) -> None:
    """Content-Length: 200 MB and no body yet: 413 and a close, at once."""
    with connect(server.port) as sock:
        sock.sendall(body_request(200 * 1024 * 1024))
        answer = read_response(sock, 5)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert b"Connection: close" in answer


def peak_rss_kib(pid: int) -> int:
    """Return the peak resident memory (VmHWM) of *pid*: a body held briefly still shows."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmHWM for process {pid}")


def push_chunked(sock: socket.socket, size: int, piece: int = 64 * 1024) -> bytes:
    """Send a chunked body of *size* bytes while reading; return the answer once it comes."""
    sock.sendall(b"POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (piece, b"y" * piece)
    sent = 0
    answer = b""
    sock.setblocking(False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        wanted = [sock] if sent < size else []
        readable, writable, _ = select.select([sock], wanted, [], 1)
        if readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                return answer
            if not data or b"\r\n\r\n" in answer + data:
                return answer + data
            answer += data
        elif writable:
            try:
                sent += sock.send(chunk if sent + piece < size else chunk + b"0\r\n\r\n")
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                sent = size
    pytest.fail("no answer to an over-limit chunked body within 30 s")


def test_a_chunked_body_over_the_limit_is_refused_413_without_daphne_holding_it(
    server: Deployment,
) -> None:
    """64 MB chunked against a 4 MB limit: 413, and daphne's peak memory does not grow by it."""
    daphne = server.processes[0]
    before = peak_rss_kib(daphne.pid)
    with connect(server.port) as sock:
        answer = push_chunked(sock, 64 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    grown_mib = (peak_rss_kib(daphne.pid) - before) / 1024
    assert grown_mib < 16, f"daphne grew by {grown_mib:.0f} MiB"


def framing(*headers: str, body: bytes = b"") -> bytes:
    return (
        (
            "POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(h + "\r\n" for h in headers)
        ).encode()
        + b"\r\n"
        + body
    )


@pytest.mark.parametrize(
    "request_bytes",
    [
        # What Twisted itself refuses, pinned so an upgrade that stops doing so is seen.
        pytest.param(
            framing("Content-Length: 5", "Content-Length: 6", body=b"hello"), id="twisted-two-cl"
        ),
        pytest.param(
            framing("Content-Length: 5", "Content-Length: 5", body=b"hello"),
            id="twisted-same-cl-twice",
        ),
        pytest.param(
            framing("Transfer-Encoding: chunked", "Content-Length: 5", body=b"0\r\n\r\n"),
            id="twisted-te-then-cl",
        ),
        pytest.param(
            framing("Content-Length: 5", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
            id="twisted-cl-then-te",
        ),
        pytest.param(
            framing("Transfer-Encoding: chunked, identity", body=b"0\r\n\r\n"), id="twisted-te-list"
        ),
        # What Twisted lets through and the guards refuse.
        pytest.param(
            framing("Transfer-Encoding: chunked", "Transfer-Encoding: identity", body=b"0\r\n\r\n"),
            id="two-te-chunked-identity",
        ),
        pytest.param(
            framing("Transfer-Encoding: identity", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
            id="two-te-identity-chunked",
        ),
        pytest.param(
            framing("Transfer-Encoding: identity", "Content-Length: 5", body=b"hello"),
            id="te-identity-with-cl",
        ),
        pytest.param(
            framing("Content-Length: 5", "Transfer-Encoding: identity", body=b"hello"),
            id="cl-with-te-identity",
        ),
        pytest.param(framing("Transfer-Encoding: identity"), id="te-identity-alone"),
    ],
)
def test_ambiguous_body_framing_is_answered_400(server: Deployment, request_bytes: bytes) -> None:
    """Framing that a proxy and daphne could read differently never reaches the application."""
    with connect(server.port) as sock:
        sock.sendall(request_bytes)
        answer = read_response(sock, 10)
    assert answer.startswith(b"HTTP/1.1 400 "), answer


def test_a_refusal_is_logged_once_with_the_client_address_and_nothing_it_sent(
    server: Deployment,
) -> None:
    """One line names the client's address; the path, headers and body it sent are not in it."""
    with connect(server.port) as sock:
        port = sock.getsockname()[1]
        sock.sendall(
            b"POST /upload/?token=s3cret-q HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer s3cret-h\r\nTransfer-Encoding: chunked\r\n"
            b"Transfer-Encoding: identity\r\n\r\n5\r\ns3cre\r\n0\r\n\r\n"
        )
        assert read_response(sock, 10).startswith(b"HTTP/1.1 400 ")
    line = server.processes[0].wait_for(f"Refused a request from 127.0.0.1:{port}:", timeout=10)
    assert "s3cre" not in line
    assert "two Transfer-Encoding headers" in line


def test_normal_requests_and_uploads_within_the_limits_are_served(server: Deployment) -> None:
    """A GET, a 3 MB upload, and a body sent in pieces above the minimum rate for twice the
    head start are all answered by the application."""
    status, _, body = http(server.url + "/hello/")
    assert (status, body) == (200, b"Hello world! You asked for /hello/")
    payload = os.urandom(3 * 1024 * 1024)
    status, _, body = http(
        server.url + "/upload/",
        data=payload,
        headers={"Content-Type": "application/octet-stream"},
        method="POST",
    )
    assert status == 200, body[:300]
    assert f'"size": {len(payload)}'.encode() in body
    pieces = 4 * int(BODY_TIMEOUT / PACE)
    with connect(server.port) as sock:
        sock.sendall(body_request(pieces * 3000))
        for index in range(pieces):  # 6 kB/s, twelve times the minimum rate, for 4 s
            if index:  # the pause: nothing may come back before the body is whole
                readable, _, _ = select.select([sock], [], [], PACE)
                assert not readable, sock.recv(65536)
            sock.sendall(b"z" * 3000)
        answer = b""
        sock.settimeout(10)
        while b'"size"' not in answer:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert f'"size": {pieces * 3000}'.encode() in answer


def test_an_open_websocket_outlives_the_header_and_body_bounds(server: Deployment) -> None:
    """After its handshake a socket is the WebSocket timeouts' business: it stays and echoes."""
    sock = raw_websocket(server.port, "/ws/echo/")
    with sock:
        readable, _, _ = select.select([sock], [], [], HEADER_TIMEOUT + 1)
        assert not readable, sock.recv(65536)
        sock.sendall(masked_frame(0x1, b"still here"))
        sock.settimeout(10)
        reply = b""
        while b"still here" not in reply:
            chunk = sock.recv(65536)
            assert chunk, reply
            reply += chunk


def test_runserver_bounds_request_headers_too() -> None:
    """``manage.py runserver`` serves through daphne's server: a dribbled header gets 408."""
    port = free_port()
    env = project_env(CHANNELS_TEST_ROUTING=ROUTING, **LIMITS)
    env.pop("CHANNELS_TEST_REDIS_URL", None)
    runserver = start_runserver(env, port)
    try:
        assert http(f"http://127.0.0.1:{port}/hello/")[0] == 200
        with connect(port) as sock:
            _, answer = dribble(sock, header_dribble(), HEADER_TIMEOUT + SLACK)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
    finally:
        runserver.stop()


def test_the_bounds_hold_over_daphnes_own_tls(redis_url: str, tmp_path: Path) -> None:
    """Behind ``-e ssl:...`` a dribbled header gets 408 and a large Content-Length 413."""
    pytest.importorskip("OpenSSL", reason="daphne's ssl: endpoints need twisted[tls]")
    pytest.importorskip("service_identity", reason="daphne's ssl: endpoints need twisted[tls]")
    from tests.test_tls import make_certificate, ssl_endpoint, wait_until_listening

    certificate = make_certificate(tmp_path)
    tls_port = free_port()
    deployment = deploy(
        "daphne",
        ROUTING,
        redis_url=redis_url,
        prefix="hardening-limits-tls:",
        workers=0,
        daphne_flags=("-e", ssl_endpoint(tls_port, certificate)),
        **LIMITS,
    )
    context = certificate.client_context()
    try:
        wait_until_listening(deployment.processes[0], tls_port)
        with context.wrap_socket(connect(tls_port), server_hostname="localhost") as sock:
            _, answer = dribble(sock, header_dribble(), HEADER_TIMEOUT + SLACK)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        with context.wrap_socket(connect(tls_port), server_hostname="localhost") as sock:
            sock.sendall(body_request(200 * 1024 * 1024))
            assert read_response(sock, 5).startswith(b"HTTP/1.1 413 ")
    finally:
        deployment.stop()


def test_the_guards_stay_out_of_a_process_without_daphne() -> None:
    """Making the project's channel layer under another server loads and changes no daphne."""
    code = (
        "import sys; from channels.bridge.guards import guard_daphne; "
        "import tests.project.asgi; "
        "assert 'daphne.http_protocol' not in sys.modules, 'daphne was loaded'; "
        "assert guard_daphne() is False; print('inert')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "inert", result.stderr[-2000:]


@pytest.mark.parametrize("value", [0, -1, "20", True])
def test_a_bound_that_is_not_a_positive_number_or_none_is_refused_with_the_fix(
    value: object,
) -> None:
    from channels.bridge.settings import optional_bound

    class Settings:
        CHANNELS_HEADER_TIMEOUT = value

    with pytest.raises(ImproperlyConfigured, match=r"CHANNELS_HEADER_TIMEOUT.*None to turn"):
        optional_bound(Settings(), "CHANNELS_HEADER_TIMEOUT", 20.0)


def test_none_turns_a_bound_off() -> None:
    from channels.bridge.settings import optional_bound

    class Settings:
        CHANNELS_MIN_BODY_RATE = None

    assert optional_bound(Settings(), "CHANNELS_MIN_BODY_RATE", 500.0) is None
    assert optional_bound(Settings(), "CHANNELS_BODY_TIMEOUT", 20.0) == 20.0
