"""``manage.py runserver`` serves channels wherever ``"channels"`` is in INSTALLED_APPS.

Each test makes a project with ``django-admin startproject``, adds ``"channels"``
to its ``INSTALLED_APPS`` (appended after ``django.contrib.staticfiles``, as most
people do; first; or after ``daphne`` installed as an app), runs ``manage.py
runserver`` and talks to it over real sockets: a WebSocket consumer and an HTTP
consumer must both answer.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.interface import http, wait_for_port
from tests.processes import ManagedProcess
from tests.redis_server import free_port

ROUTING = textwrap.dedent(
    """
    from django.http import HttpResponse

    from channels.handler import AsgiHandler
    from channels.routing import route


    def http_consumer(message):
        response = HttpResponse("consumer saw " + message.content["path"])
        for chunk in AsgiHandler.encode_response(response):
            message.reply_channel.send(chunk)


    def ws_receive(message):
        message.reply_channel.send({"text": "echo " + message.content["text"]})


    channel_routing = [
        route("http.request", http_consumer, path=r"^/consumer/"),
        route("websocket.receive", ws_receive),
    ]
    """
)

#: How each test adds "channels" to the INSTALLED_APPS that startproject wrote.
ORDERS = {
    "appended after staticfiles": 'INSTALLED_APPS += ["channels"]\n',
    "listed first": 'INSTALLED_APPS = ["channels", *INSTALLED_APPS]\n',
    "after daphne as an app": 'INSTALLED_APPS = ["daphne", *INSTALLED_APPS, "channels"]\n',
}


def run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    process = ManagedProcess([sys.executable, *args], env, cwd=cwd)
    code = process.wait(120)
    output = "".join(process.output)
    assert code == 0, output
    return output


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


@pytest.fixture(params=list(ORDERS))
def project(request: pytest.FixtureRequest, tmp_path: Path, env: dict[str, str]) -> Path:
    run(["-m", "django", "startproject", "myproject", str(tmp_path)], env, tmp_path)
    settings = tmp_path / "myproject" / "settings.py"
    settings.write_text(
        settings.read_text()
        + "\n"
        + ORDERS[request.param]
        + 'CHANNEL_LAYERS = {"default": {"BACKEND": "asgiref.inmemory.ChannelLayer",'
        + ' "ROUTING": "myproject.routing.channel_routing"}}\n'
    )
    (tmp_path / "myproject" / "routing.py").write_text(ROUTING)
    return tmp_path


@pytest.fixture
def runserver(project: Path, env: dict[str, str]) -> Iterator[tuple[int, ManagedProcess]]:
    port = free_port()
    server = ManagedProcess(
        [
            sys.executable,
            str(project / "manage.py"),
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
        ],
        env,
        cwd=project,
    )
    try:
        server.wait_for("Quit the server with", timeout=60)
        wait_for_port(port)
        yield port, server
    finally:
        server.stop()


def test_runserver_serves_websocket_and_http_consumers_in_any_app_order(
    runserver: tuple[int, ManagedProcess],
) -> None:
    port, server = runserver
    with connect(f"ws://127.0.0.1:{port}/any/", open_timeout=20) as socket:
        socket.send("hello")
        assert socket.recv(timeout=20) == "echo hello"
    status, _, body = http(f"http://127.0.0.1:{port}/consumer/page/")
    assert (status, body) == (200, b"consumer saw /consumer/page/")
    output = "".join(server.output)
    assert "Starting ASGI/Daphne" in output
    assert "Worker threads:" in output
    assert "channels.W001" not in output


def test_manage_py_check_no_longer_warns_about_the_order(
    project: Path, env: dict[str, str]
) -> None:
    output = run([str(project / "manage.py"), "check"], env, project)
    assert "System check identified no issues" in output
