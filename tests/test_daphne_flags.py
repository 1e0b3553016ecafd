"""daphne's own flags work unchanged with ``daphne project.asgi:channel_layer``."""

from __future__ import annotations

import contextlib
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from websockets.sync.client import connect

from tests.interface import http, http_json, raw_websocket, wait_for_port
from tests.processes import ManagedProcess, django_command, project_env
from tests.redis_server import free_port
from tests.waiting import wait_until

ROUTING = "tests.project.sockets.channel_routing"


def test_root_path(deployments) -> None:
    server = deployments("daphne", ROUTING, daphne_flags=("--root-path", "/mounted"))
    got = http_json(server.url + "/mounted/form/")
    assert got["script_name"] == "/mounted"
    assert got["path_info"] == "/form/"


def test_proxy_headers(deployments) -> None:
    server = deployments("daphne", ROUTING, daphne_flags=("--proxy-headers",))
    got = http_json(
        server.url + "/form/",
        headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
    )
    assert got["remote"] == "203.0.113.7"
    assert got["secure"] is True
    plain = deployments("daphne", ROUTING)
    got = http_json(plain.url + "/form/", headers={"X-Forwarded-For": "203.0.113.7"})
    assert got["remote"] == "127.0.0.1"  # not trusted without the flag


def connect_message(server, headers: dict[str, str]) -> dict:
    """Open a socket with *headers* on a worker-less server; return its ``websocket.connect``."""

    def open_and_close() -> None:
        with connect(server.ws_url + "/ws/raw/", additional_headers=headers, open_timeout=20):
            pass

    with ThreadPoolExecutor(1) as pool:
        opening = pool.submit(open_and_close)
        name, message = server.layer.receive(["websocket.connect"], block=True, timeout=20)
        assert name == "websocket.connect", "no websocket.connect arrived"
        server.layer.send(message["reply_channel"], {"accept": True})
        opening.result(20)
    return message


def test_proxy_headers_give_websockets_their_scheme_and_client(deployments) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    server = deployments("daphne", ROUTING, workers=0, daphne_flags=("--proxy-headers",))
    message = connect_message(server, forwarded)
    assert message["scheme"] == "wss"
    assert message["client"][0] == "203.0.113.7"
    plain = deployments("daphne", ROUTING, workers=0)
    message = connect_message(plain, forwarded)
    assert message["scheme"] == "ws"  # not trusted without the flag
    assert message["client"][0] == "127.0.0.1"


def test_unix_socket(deployments, tmp_path: Path) -> None:
    path = str(tmp_path / "daphne.sock")
    deployments("daphne", ROUTING, daphne_flags=("-u", path))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(20)
        sock.connect(path)
        sock.sendall(b"GET /hello/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200")
    assert b"Hello world! You asked for /hello/" in response


def test_runserver_noasgi_is_djangos_own_server() -> None:
    port = free_port()
    env = project_env(CHANNELS_TEST_ROUTING=ROUTING)
    env.pop("CHANNELS_TEST_REDIS_URL", None)
    server = ManagedProcess(
        django_command("runserver", f"127.0.0.1:{port}", "--noreload", "--noasgi"), env
    )
    try:
        server.wait_for("Quit the server with")
        wait_for_port(port)
        status, headers, body = http(f"http://127.0.0.1:{port}/hello/")
        assert status == 200
        assert "daphne" not in headers.get("Server", "").lower()
        assert body == b"Hello world! You asked for /hello/"
    finally:
        server.stop()


def wait_for_text(path: Path, text: str, timeout: float = 20) -> str:
    """Return the file's contents once *text* is in it (daphne writes each line as it goes)."""

    def contents() -> str:
        return path.read_text() if path.exists() else ""

    wait_until(lambda: text in contents(), timeout, lambda: f"{text!r} never reached {path}")
    return contents()


def test_access_log(deployments, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = deployments("daphne", ROUTING, daphne_flags=("--access-log", str(log)))
    assert http(server.url + "/hello/")[0] == 200
    with connect(server.ws_url + "/ws/echo/", open_timeout=20) as ws:
        ws.send("logged")
        assert ws.recv(timeout=20) == "logged"
    contents = wait_for_text(log, '"WSDISCONNECT /ws/echo/"')
    assert '"GET /hello/" 200' in contents
    assert '"WSCONNECT /ws/echo/"' in contents
    assert not any("GET /hello/" in line for line in server.processes[0].output)


def test_ping_interval_and_timeout(deployments) -> None:
    server = deployments(
        "daphne", ROUTING, daphne_flags=("--ping-interval", "1", "--ping-timeout", "1")
    )
    server.layer.flush()
    with connect(server.ws_url + "/ws/echo/", open_timeout=20) as polite:  # answers pings
        with raw_websocket(server.port, "/ws/echo/") as silent:  # never answers
            received = b""
            with contextlib.suppress(ConnectionResetError):  # dropped, or reset
                while chunk := silent.recv(4096):
                    received += chunk
        assert received.startswith(b"\x89")  # a ping came first
        assert server.event()["path"] == "/ws/echo/"  # the consumer heard it leave
        polite.send("still here")  # the client that answered its pings stays connected
        assert polite.recv(timeout=20) == "still here"


def test_verbosity_zero_keeps_warnings_only(deployments) -> None:
    server = deployments("daphne", ROUTING, daphne_flags=("-v", "0"))
    daphne = server.processes[0]
    assert http(server.url + "/hello/")[0] == 200
    with connect(server.ws_url + "/ws/echo/", open_timeout=20) as ws:
        ws.send("warn")  # this echo replies with an extra key: a warning is logged
        assert ws.recv(timeout=20) == "warn"
    daphne.wait_for("WARNING .*Ignored unknown reply keys")
    # Output arrives in order: an access-log line for the request would be here by now.
    assert not any("/hello/" in line for line in daphne.output)
