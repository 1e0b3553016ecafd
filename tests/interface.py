"""Deploy the test project for real: runserver alone, or daphne + runworker on Redis."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from channels.layers.redis import RedisChannelLayer
from tests.processes import ManagedProcess, django_command, project_env
from tests.redis_server import free_port


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

    def event(self, timeout: float = 20) -> dict[str, Any]:
        """Return the next message consumers sent to ``test.events``."""
        assert self.layer is not None, "events need the Redis deployment"
        name, message = self.layer.receive(["test.events"], block=True, timeout=timeout)
        assert name == "test.events", "no event arrived"
        return message


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start_daphne(env: dict[str, str], port: int, *flags: str) -> ManagedProcess:
    daphne = ManagedProcess(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *flags,
         "tests.project.asgi:channel_layer"],
        env,
    )  # fmt: skip
    daphne.wait_for("Listening on TCP address" if "-u" not in flags else "Listening on")
    return daphne


def start_runworker(env: dict[str, str], *flags: str) -> ManagedProcess:
    worker = ManagedProcess(django_command("runworker", *flags), env)
    worker.wait_for("Listening on channels")
    return worker


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
    port = free_port()
    extra = {"CHANNELS_TEST_ROUTING": routing, **settings}
    if kind == "runserver":
        env = project_env(**extra)
        env.pop("CHANNELS_TEST_REDIS_URL", None)
        server = ManagedProcess(
            django_command("runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"), env
        )
        deployment = Deployment(port, processes=[server])
        server.wait_for("Quit the server with")
        wait_for_port(port)  # runserver prints its banner just before daphne listens
        return deployment
    assert redis_url is not None
    env = project_env(CHANNELS_TEST_REDIS_URL=redis_url, CHANNELS_TEST_PREFIX=prefix, **extra)
    deployment = Deployment(port, layer=RedisChannelLayer(hosts=[redis_url], prefix=prefix))
    try:
        if kind == "runserver-noworker":  # the tutorial's "runserver --noworker" + "runworker"
            server = ManagedProcess(
                django_command(
                    "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks", "--noworker"
                ),
                env,
            )
            deployment.processes.append(server)
            server.wait_for("Quit the server with")
            wait_for_port(port)
        else:
            deployment.processes.append(start_daphne(env, port, *daphne_flags))
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
