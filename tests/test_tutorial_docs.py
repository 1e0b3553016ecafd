"""Follow docs/getting-started.rst step by step, with its code blocks as written.

The test makes a project with ``startproject`` and ``startapp``, puts each
Python block where the tutorial says, and after each step does what the
tutorial's console and JavaScript blocks do: run the server, fetch a page,
open sockets. If the tutorial gains or loses a block, this test fails until it
is taught the new step.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.interface import http, wait_for_port
from tests.processes import ROOT, ManagedProcess
from tests.redis_server import free_port

TUTORIAL = ROOT / "docs" / "getting-started.rst"


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """Return (language, code) for every ``.. code-block::`` of an rST file."""
    blocks = []
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        found = re.match(r"\.\. code-block:: (\w+)", line)
        if not found:
            continue
        body = []
        for following in lines[index + 1 :]:
            if following.strip() and not following.startswith("   "):
                break
            body.append(following)
        blocks.append((found.group(1), textwrap.dedent("\n".join(body)).strip() + "\n"))
    return blocks


class Project:
    """A project made the way the tutorial makes it."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.port = free_port()
        self.processes: list[ManagedProcess] = []

    def run(self, *args: str) -> None:
        process = ManagedProcess([sys.executable, *args], self.env, cwd=self.root)
        process.process.wait(120)
        assert process.wait(10) == 0, "".join(process.output)

    def write(self, name: str, code: str) -> None:
        (self.root / name).write_text(code)

    def settings(self, change: str) -> None:
        path = self.root / "myproject" / "settings.py"
        path.write_text(path.read_text() + "\n" + change)

    def start(self, *args: str, ready: str) -> None:
        process = ManagedProcess(
            [sys.executable, *args], {**self.env, "PYTHONPATH": str(self.root)}
        )
        self.processes.append(process)
        process.wait_for(ready)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()
        self.processes = []

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    import os

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    made = Project(tmp_path, env)
    # $ django-admin startproject myproject .   /   $ python manage.py startapp myapp
    # $ python manage.py migrate
    made.run("-m", "django", "startproject", "myproject", str(tmp_path))
    made.run(str(tmp_path / "manage.py"), "startapp", "myapp")
    made.run(str(tmp_path / "manage.py"), "migrate", "-v", "0")
    yield made
    made.stop()


def runserver(project: Project) -> None:
    project.stop()
    manage = str(project.root / "manage.py")
    project.start(manage, "runserver", project.url, "--noreload", ready="Quit the server with")
    wait_for_port(project.port)


def check_rooms(project: Project) -> None:
    ws = f"ws://{project.url}"
    with (
        connect(ws + "/chat/lobby/", open_timeout=20) as first,
        connect(ws + "/chat/lobby/", open_timeout=20) as second,
        connect(ws + "/chat/kitchen/", open_timeout=20) as other,
    ):
        first.send("hello world")
        assert first.recv(timeout=20) == "[lobby] hello world"
        assert second.recv(timeout=20) == "[lobby] hello world"
        other.send("just us")
        assert other.recv(timeout=20) == "[kitchen] just us"


def test_the_getting_started_tutorial(project: Project, redis_url: str) -> None:
    python = [code for language, code in code_blocks(TUTORIAL) if language == "python"]
    assert len(python) == 12, "the tutorial's steps changed: update this test"
    (
        installed_apps, layers, http_consumer, http_routing, echo, echo_routing,
        chat, chat_routing, rooms, rooms_routing, redis_layers, asgi,
    ) = python  # fmt: skip

    # Settings: INSTALLED_APPS as shown, then CHANNEL_LAYERS at the end.
    settings = project.root / "myproject" / "settings.py"
    text = settings.read_text()
    text = re.sub(r"INSTALLED_APPS = \[.*?\]\n", installed_apps, text, flags=re.S)
    settings.write_text(text + "\n" + layers)

    # A first consumer: every HTTP request answered by it.
    project.write("myapp/consumers.py", http_consumer)
    project.write("myproject/routing.py", http_routing)
    runserver(project)
    status, _, body = http(f"http://{project.url}/hello/")  # $ curl .../hello/
    assert (status, body) == (200, b"Hello world! You asked for /hello/")

    # An echo server (the JavaScript console snippet, as a client).
    project.write("myapp/consumers.py", echo)
    project.write("myproject/routing.py", echo_routing)
    runserver(project)
    with connect(f"ws://{project.url}/chat/", open_timeout=20) as socket:
        socket.send("hello world")
        assert socket.recv(timeout=20) == "hello world"
    # HTTP is back with Django's views (the start page of a new project).
    assert b"Hello world" not in http(f"http://{project.url}/")[2]

    # A chat room with groups: two tabs.
    project.write("myapp/consumers.py", chat)
    project.write("myproject/routing.py", chat_routing)
    runserver(project)
    with (
        connect(f"ws://{project.url}/chat/", open_timeout=20) as first,
        connect(f"ws://{project.url}/chat/", open_timeout=20) as second,
    ):
        first.send("hello world")
        assert first.recv(timeout=20) == "[user] hello world"
        assert second.recv(timeout=20) == "[user] hello world"

    # One room per URL.
    project.write("myapp/consumers.py", rooms)
    project.write("myproject/routing.py", rooms_routing)
    runserver(project)
    check_rooms(project)

    # Switching to Redis (the test's own server stands in for localhost:6379).
    host, port = re.match(r"redis://([^:]+):(\d+)", redis_url).groups()
    project.settings(redis_layers.replace('("localhost", 6379)', f'("{host}", {port})'))
    runserver(project)
    check_rooms(project)

    # Separate processes: daphne myproject.asgi:channel_layer, and runworker.
    project.stop()
    project.write("myproject/asgi.py", asgi)
    project.start(
        "-m", "daphne", "-p", str(project.port), "myproject.asgi:channel_layer",
        ready="Listening on TCP address",
    )  # fmt: skip
    project.start(str(project.root / "manage.py"), "runworker", ready="Listening on channels")
    check_rooms(project)
