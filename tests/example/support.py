"""Run the chat example (example_project/) for real, and talk to it like a browser."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from websockets.sync.client import ClientConnection, connect

from tests.interface import wait_for_port
from tests.processes import ROOT, ManagedProcess, project_env
from tests.redis_server import free_port

EXAMPLE = ROOT / "example_project"
MANAGE = str(EXAMPLE / "manage.py")
PASSWORD = "example-test-password"
USERS = ("alice", "bob", "carol")
#: The example runs on its own Redis database, emptied before and after.
REDIS_DB = 7


def example_env(database: Path, redis_url: str | None = None) -> dict[str, str]:
    env = project_env(
        PYTHONPATH=str(EXAMPLE),
        DJANGO_SETTINGS_MODULE="example_project.settings",
        DATABASE_PATH=str(database),
        DJANGO_DEBUG="1",
    )
    env.pop("REDIS_URL", None)
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env


def example_redis_url(redis_url: str) -> str:
    return urllib.parse.urlsplit(redis_url)._replace(path=f"/{REDIS_DB}").geturl()


def flush(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()


@dataclass
class Example:
    port: int
    env: dict[str, str] = field(default_factory=dict)
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def stop_daphne(self) -> None:
        """Stop the interface server (daphne + runworker only); the workers stay."""
        self.processes[0].stop()

    def start_daphne(self) -> None:
        """Start daphne again, on the same port, and wait until it listens."""
        self.processes[0] = start_daphne(self.env, self.port)
        wait_for_port(self.port)

    def output(self) -> str:
        return "\n".join("".join(process.output) for process in self.processes)


def setup_database(env: dict[str, str]) -> None:
    """What the README says to run first: migrate, then create the users."""
    for command in (["migrate", "-v0"], ["seed_users", "--password", PASSWORD, *USERS]):
        subprocess.run(
            [sys.executable, MANAGE, *command], env=env, cwd=ROOT, check=True, timeout=120,
            capture_output=True,
        )  # fmt: skip


def start_daphne(env: dict[str, str], port: int) -> ManagedProcess:
    daphne = ManagedProcess(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "example_project.asgi:channel_layer"],
        env,
    )  # fmt: skip
    daphne.wait_for("Listening on TCP address")
    return daphne


@contextlib.contextmanager
def run_example(kind: str, database: Path, redis_url: str | None = None) -> Iterator[Example]:
    """Start the example as ``runserver`` (in memory) or daphne + 2 runworkers (Redis)."""
    if kind == "runserver":
        env = example_env(database)
    else:
        assert redis_url is not None
        redis_url = example_redis_url(redis_url)
        flush(redis_url)
        env = example_env(database, redis_url)
    setup_database(env)
    example = Example(free_port(), env)
    try:
        if kind == "runserver":
            server = ManagedProcess(
                [sys.executable, MANAGE, "runserver", f"127.0.0.1:{example.port}", "--noreload"],
                env,
            )
            example.processes.append(server)
            server.wait_for("Quit the server with")
        else:
            example.processes.append(start_daphne(env, example.port))
            for _ in range(2):
                worker = ManagedProcess(
                    [sys.executable, MANAGE, "runworker", "--threads", "2"], env
                )
                example.processes.append(worker)
                worker.wait_for("Listening on channels")
        wait_for_port(example.port)
        yield example
    finally:
        example.stop()
        if redis_url is not None:
            flush(redis_url)


class Browser:
    """An HTTP client with a cookie jar: logs in like the login form does."""

    def __init__(self, example: Example) -> None:
        self.example = example
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str, str]:
        """Return (status, final URL, body)."""
        with self.opener.open(self.example.url + path, timeout=30) as response:
            return response.status, response.url, response.read().decode()

    def post(self, path: str, data: dict[str, str]) -> tuple[int, str, str]:
        """POST a form to *path* with the CSRF token; return (status, final URL, body)."""
        token = next((c.value for c in self.jar if c.name == "csrftoken"), None)
        if token is None:
            self.get(path)  # a page with a form sets the CSRF cookie
            token = next(c.value for c in self.jar if c.name == "csrftoken")
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **data}).encode()
        request = urllib.request.Request(self.example.url + path, data=form)
        with self.opener.open(request, timeout=30) as response:
            return response.status, response.url, response.read().decode()

    def login(self, username: str, password: str = PASSWORD) -> None:
        _, _, page = self.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, page
        form = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token.group(1), "username": username, "password": password}
        ).encode()
        request = urllib.request.Request(self.example.url + "/accounts/login/", data=form)
        with self.opener.open(request, timeout=30) as response:
            body = response.read().decode()
        assert response.url == self.example.url + "/", (response.url, body[:500])
        assert f'<strong id="username">{username}</strong>' in body

    @property
    def cookie(self) -> str:
        return "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.jar)

    def websocket(
        self, room: str | None, origin: str | None = None, after: int | None = 0
    ) -> ClientConnection:
        """Open the socket of *room* (``?after=`` unless None), or the room list's if None."""
        headers = {"Origin": origin or self.example.url}
        if self.cookie:
            headers["Cookie"] = self.cookie
        path = "/" if room is None else f"/chat/{room}/"
        if room is not None and after is not None:
            path += f"?after={after}"
        return connect(
            self.example.ws_url + path,
            additional_headers=headers,
            open_timeout=20,
            close_timeout=5,
        )


def next_event(
    socket: ClientConnection, matches: Callable[[dict[str, Any]], bool], timeout: float = 20
) -> dict[str, Any]:
    """Return the first event from *socket* that *matches*, skipping others."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching event within {timeout}s; saw {seen}")
        try:
            event = json.loads(socket.recv(timeout=remaining))
        except TimeoutError:
            continue
        if matches(event):
            return event
        seen.append(event)


def online(*users: str) -> Callable[[dict[str, Any]], bool]:
    """Match the "who is online" list a room's socket gets on connect, if it lists *users*."""
    return lambda event: event.get("type") == "online" and sorted(event["users"]) == sorted(users)


def is_diff(event: dict[str, Any]) -> bool:
    """Whether *event* is a presence diff frame (``{"presence", "joins", "leaves"}``)."""
    return "presence" in event


def joined(user: str) -> Callable[[dict[str, Any]], bool]:
    """Match a presence diff in which *user* came online."""
    return lambda event: is_diff(event) and user in event["joins"]


def left(user: str) -> Callable[[dict[str, Any]], bool]:
    """Match a presence diff in which *user* went offline."""
    return lambda event: is_diff(event) and user in event["leaves"]


def chat_message(user: str, text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: (
        event.get("type") == "message" and (event["user"], event["text"]) == (user, text)
    )


def on_rooms_stream(action: str, **data: Any) -> Callable[[dict[str, Any]], bool]:
    """Match a frame of the ``rooms`` stream with *action* whose data includes *data*."""

    def matches(event: dict[str, Any]) -> bool:
        payload = event.get("payload") or {}
        return (
            event.get("stream") == "rooms"
            and payload.get("action") == action
            and data.items() <= (payload.get("data") or {}).items()
        )

    return matches


def room_titles(snapshot: dict[str, Any]) -> list[str]:
    """The titles in a ``snapshot`` frame of the ``rooms`` stream."""
    return [room["title"] for room in snapshot["payload"]["rooms"]]


def is_snapshot(event: dict[str, Any]) -> bool:
    return event.get("stream") == "rooms" and event["payload"].get("action") == "snapshot"
