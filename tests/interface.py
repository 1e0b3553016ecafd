"""Deploy the test project for real: runserver alone, or daphne + runworker on Redis."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from channels.layers.redis import RedisChannelLayer
from tests.processes import (
    DaphneProcess,
    ManagedProcess,
    django_command,
    free_port,
    project_env,
    ready,
    start_runworker,
    wait_for_port,
)
from tests.processes import start_daphne as start_daphne_process

#: What daphne serves in these deployments: the test project's channel layer.
APPLICATION = "tests.project.asgi:channel_layer"


@dataclass
class Deployment:
    """A running server: where to reach it and, on Redis, its layer."""

    port: int
    layer: RedisChannelLayer | None = None
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        for process in self.processes:
            process.stop()
        if self.layer is not None:
            with contextlib.suppress(ConnectionError):  # a test's own Redis may be gone
                self.layer.flush()
            self.layer.close()

    def event(self, timeout: float = 20, **expected: Any) -> dict[str, Any]:
        """Return the next message consumers sent to ``test.events`` that has *expected* items.

        Events that lack them are skipped: a socket of an earlier test can
        report its disconnect after that test ended, even after a flush.
        """
        assert self.layer is not None, "events need the Redis deployment"
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            name, message = self.layer.receive(["test.events"], block=True, timeout=max(left, 0))
            assert name == "test.events", f"no event with {expected} arrived"
            if expected.items() <= message.items():
                return message


def start_daphne(env: dict[str, str], port: int = 0, *flags: str) -> DaphneProcess:
    """Start daphne serving the test project; return it once it listens.

    Port 0 (the default) lets the kernel pick, and ``.port`` says what it
    picked; pass a port to restart a server where its clients expect it.
    """
    return start_daphne_process(APPLICATION, env, *flags, port=port)


def start_runserver(env: dict[str, str], port: int, *flags: str) -> ManagedProcess:
    """Start ``runserver`` on *port*; return it once it accepts connections.

    runserver's banner prints the port it was given, not one it got, so it
    cannot start on port 0 and say where it is: the port is picked before.
    """
    server = ManagedProcess(
        django_command("runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks", *flags),
        env,
        name="runserver",
    )

    def wait() -> None:
        server.wait_for("Quit the server with")
        wait_for_port(port)  # runserver prints its banner just before daphne listens

    return ready(server, wait)


def deploy(
    kind: str,
    routing: str,
    *,
    redis_url: str | None = None,
    prefix: str = "asgi:",
    workers: int = 2,
    worker_flags: tuple[str, ...] = (),
    daphne_flags: tuple[str, ...] = (),
    **settings: str,
) -> Deployment:
    """Start the test project with *routing* as ``runserver`` or ``daphne``."""
    extra = {"CHANNELS_TEST_ROUTING": routing, **settings}
    if kind == "runserver":
        env = project_env(**extra)
        env.pop("CHANNELS_TEST_REDIS_URL", None)
        port = free_port()
        return Deployment(port, processes=[start_runserver(env, port)])
    if redis_url is None:
        raise ValueError(f"deploy({kind!r}, ...) runs on Redis: pass redis_url")
    env = project_env(CHANNELS_TEST_REDIS_URL=redis_url, CHANNELS_TEST_PREFIX=prefix, **extra)
    deployment = Deployment(0, layer=RedisChannelLayer(hosts=[redis_url], prefix=prefix))
    try:
        if kind == "runserver-noworker":  # the tutorial's "runserver --noworker" + "runworker"
            deployment.port = free_port()
            deployment.processes.append(start_runserver(env, deployment.port, "--noworker"))
        else:
            daphne = start_daphne(env, 0, *daphne_flags)
            deployment.port = daphne.port
            deployment.processes.append(daphne)
        for _ in range(workers):
            deployment.processes.append(start_runworker(env, *worker_flags))
    except BaseException:
        deployment.stop()
        raise
    return deployment


@pytest.fixture
def deployments(redis_url: str, unique_prefix: str) -> Iterator[Any]:
    """A factory: ``deployments(kind, routing, **settings)``; everything stops afterwards."""
    started: list[Deployment] = []

    def make(kind: str, routing: str, **options: Any) -> Deployment:
        options.setdefault("redis_url", redis_url)
        options.setdefault("prefix", unique_prefix)
        deployment = deploy(kind, routing, **options)
        started.append(deployment)
        return deployment

    yield make
    for deployment in started:
        deployment.stop()


def http(
    url: str,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    """Make one request; return (status, headers, body), also for error statuses."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def http_json(url: str, **kwargs: Any) -> Any:
    status, _, body = http(url, **kwargs)
    assert status == 200, (status, body[:500])
    return json.loads(body)


# Raw WebSocket clients, for what a well-behaved client never does -----------------


def raw_websocket(port: int, path: str, sock: socket.socket | None = None) -> socket.socket:
    """Complete a WebSocket handshake on a plain socket; the caller speaks frames itself.

    The response is read byte by byte, so the first frames after it stay
    unread. *sock*: a socket of the caller's (connected to *port*) to use.
    """
    if sock is None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        byte = sock.recv(1)
        assert byte, f"the server closed the connection during the handshake: {response!r}"
        response += byte
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame (clients must mask)."""
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    length = len(payload)
    if length < 126:
        header += bytes([0x80 | length])
    elif length < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", length)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_code(sock: socket.socket) -> int | None:
    """Return the server's close code, or None if it dropped the connection outright."""
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
        index = data.find(b"\x88")
        if index != -1 and len(data) >= index + 4:
            return struct.unpack("!H", data[index + 2 : index + 4])[0]


def migrated_database(path: str, *usernames: str) -> str:
    """Migrate the test project's database at *path* and add *usernames* (password "pw")."""
    env = project_env(CHANNELS_TEST_DB=path)
    subprocess.run(django_command("migrate", "-v", "0"), env=env, check=True, timeout=120)
    create = (
        "from django.contrib.auth.models import User; "
        f"[User.objects.create_user(n, password='pw') for n in {list(usernames)!r}]"
    )
    subprocess.run(django_command("shell", "-c", create), env=env, check=True, timeout=120)
    return path


def login(url: str, username: str) -> str:
    """Log *username* in through the test project's login view; return the session key."""
    status, _, body = http(
        url + "/login/",
        data=f"username={username}&password=pw".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200, body
    key: str = json.loads(body)["session_key"]
    return key
