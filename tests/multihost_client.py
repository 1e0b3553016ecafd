"""Chat users on a host of their own: log in over HTTP, talk in a room, print what arrived.

Run in a client namespace by tests/test_multihost.py (``ip netns exec NS python
-m tests.multihost_client --url http://ADDRESS:PORT --users alice bob``), since
a test process cannot enter a namespace itself. It drives the chat example
(example_project/) as its page does, and prints one JSON line::

    {"http": {"alice": [200, ...]}, "sockets": [[local, peer], ...],
     "received": {"alice": [["bob", "bob #0"], ...]}}

Standard library and ``websockets`` only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import re
import sys
import time
import urllib.parse
import urllib.request
from typing import Any

from websockets.sync.client import ClientConnection, connect

#: Seconds any one wait (a page, a socket, the messages) may take.
TIMEOUT = 20.0
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class User:
    """One person with a browser's cookie jar, logged in through the login form."""

    def __init__(self, base: str, name: str, password: str) -> None:
        self.base, self.name = base, name
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.statuses: list[int] = []
        self.login(password)

    def open(self, path: str, form: dict[str, str] | None = None) -> tuple[str, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        with self.opener.open(self.base + path, data=data, timeout=TIMEOUT) as response:
            self.statuses.append(response.status)
            return response.url, response.read().decode()

    def login(self, password: str) -> None:
        _, page = self.open("/accounts/login/")
        token = _CSRF.search(page)
        if token is None:
            raise SystemExit(f"{self.name}: no CSRF token on the login page:\n{page[:500]}")
        form = {"csrfmiddlewaretoken": token[1], "username": self.name, "password": password}
        url, _ = self.open("/accounts/login/", form)
        if url != self.base + "/":
            raise SystemExit(f"{self.name}: login did not land on the room list but on {url}")

    def websocket(self, room: str) -> ClientConnection:
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.jar)
        return connect(
            self.base.replace("http://", "ws://", 1) + f"/chat/{room}/",
            additional_headers={"Origin": self.base, "Cookie": cookie},
            open_timeout=TIMEOUT,
            close_timeout=5,
        )


def events(socket: ClientConnection, deadline: float) -> Any:
    """Yield the socket's JSON events until *deadline*."""
    while (left := deadline - time.monotonic()) > 0:
        try:
            yield json.loads(socket.recv(timeout=left))
        except TimeoutError:
            return


def await_presence(socket: ClientConnection, count: int) -> None:
    """Return once the socket hears that *count* people are in its room."""
    for event in events(socket, time.monotonic() + TIMEOUT):
        if event.get("type") == "presence" and event["count"] == count:
            return
    raise SystemExit(f"the room never had {count} people in it")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the chat's base URL, http://HOST:PORT")
    parser.add_argument("--users", nargs="+", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--room", default="lobby")
    parser.add_argument("--messages", type=int, default=5, help="messages each user sends")
    options = parser.parse_args(argv)

    users = [User(options.url, name, options.password) for name in options.users]
    for user in users:
        user.open("/")  # the room list page, rendered by a worker from the database
    sockets = []
    try:
        for user in users:
            sockets.append(user.websocket(options.room))
        # Everyone must be in the group before anyone speaks, or early messages miss someone.
        for socket in sockets:
            await_presence(socket, len(users))
        for user, socket in zip(users, sockets, strict=True):
            for number in range(options.messages):
                socket.send(json.dumps({"text": f"{user.name} #{number}"}))
        expected = len(users) * options.messages
        received: dict[str, list[list[str]]] = {}
        deadline = time.monotonic() + TIMEOUT
        for user, socket in zip(users, sockets, strict=True):
            got = received.setdefault(user.name, [])
            for event in events(socket, deadline):
                if event.get("type") == "message":
                    got.append([event["user"], event["text"]])
                    if len(got) == expected:
                        break
        endpoints = [[s.socket.getsockname()[:2], s.socket.getpeername()[:2]] for s in sockets]
    finally:
        for socket in sockets:
            socket.close()
    report = {
        "http": {user.name: user.statuses for user in users},
        "sockets": endpoints,
        "received": received,
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
