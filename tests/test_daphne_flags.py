"""daphne's own flags work unchanged with ``daphne project.asgi:channel_layer``."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.interface import http, http_json, wait_for_port
from tests.processes import ManagedProcess, django_command, project_env
from tests.redis_server import free_port

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
