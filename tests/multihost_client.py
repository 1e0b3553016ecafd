"""Chat users on a host of their own: log in over HTTP, talk in a room, print what arrived.

Run in a client namespace by tests/test_multihost.py (``ip netns exec NS python
-m tests.multihost_client --url http://ADDRESS:PORT --users alice bob``), since
a test process cannot enter a namespace itself. It drives the chat example
(example_project/) as its page does, and prints one JSON line::

    {"http": {"alice": [200, ...]}, "sockets": [[local, peer], ...],
     "received": {"alice": [["bob", "bob #0"], ...]}}

With ``--chatter`` (tests/test_multihost_failover.py) it keeps talking instead:
each user sends a numbered message every ``--interval`` seconds, and a socket
the server closes (1011 while the channel layer is unreachable) is opened
again, as the page's WebSocketBridge does, with a ``sync`` for what it missed.
It prints ``flowing`` once every user's messages reach everyone, takes SIGUSR1
as "the Redis master is being killed now", prints ``recovered <seconds>`` once
a message sent after that reached everyone, talks on for ``--after`` seconds,
and prints one JSON line of raw facts with ``time.monotonic()`` stamps (the
clock every namespace shares), for the test to count with::

    {"mark": t, "recovered": t, "members": {"alice": {
        "sent": [[n, t, connection], ...], "unsent": k,
        "connections": [[opened, closed, close code, sync answered], ...], "failed_opens": k,
        "received": [[sender, n, message id, t, connection, during sync], ...]}}}

Standard library and ``websockets`` only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import json
import random
import re
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

from websockets.exceptions import ConnectionClosed, WebSocketException
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

    def websocket(self, room: str, open_timeout: float = TIMEOUT) -> ClientConnection:
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.jar)
        return connect(
            self.base.replace("http://", "ws://", 1) + f"/chat/{room}/",
            additional_headers={"Origin": self.base, "Cookie": cookie},
            open_timeout=open_timeout,
            close_timeout=5,
        )


def events(socket: ClientConnection, deadline: float) -> Any:
    """Yield the socket's JSON events until *deadline*."""
    while (left := deadline - time.monotonic()) > 0:
        try:
            yield json.loads(socket.recv(timeout=left))
        except TimeoutError:
            return


def online_after(event: dict[str, Any], online: set[str]) -> set[str]:
    """Return who is online after *event*: the list a socket gets on connect, or a diff."""
    if event.get("type") == "online":
        return set(event["users"])
    if "presence" in event:
        return (online - set(event["leaves"])) | set(event["joins"])
    return online


def await_presence(socket: ClientConnection, count: int) -> None:
    """Return once the socket hears that *count* people are in its room."""
    online: set[str] = set()
    for event in events(socket, time.monotonic() + TIMEOUT):
        online = online_after(event, online)
        if len(online) == count:
            return
    raise SystemExit(f"the room never had {count} people in it")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the chat's base URL, http://HOST:PORT")
    parser.add_argument("--users", nargs="+", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--room", default="lobby")
    parser.add_argument("--messages", type=int, default=5, help="messages each user sends")
    parser.add_argument("--chatter", action="store_true", help="talk on across a failover")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between sends")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds before 'flowing'")
    parser.add_argument("--after", type=float, default=3.0, help="seconds after 'recovered'")
    options = parser.parse_args(argv)
    if options.chatter:
        chatter(options)
    else:
        exchange(options)


def exchange(options: argparse.Namespace) -> None:
    """Send ``--messages`` messages per user once everyone is in; report what arrived."""
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


#: Seconds a WebSocket handshake may take before it counts as failed (the bridge's default).
OPEN_TIMEOUT = 4.0
#: Reconnection pauses: the first, the growth per failed attempt, the longest. Shorter
#: than the bridge's (1.5 s, x1.3, 10 s), so the outage measured is the system's, not ours.
FIRST_RETRY, RETRY_GROWTH, LONGEST_RETRY = 0.1, 1.5, 1.0
#: Seconds a socket's ``sync`` may take to be answered; after that what comes is live.
SYNC_WINDOW = 2.0
#: Seconds the drain waits for one more message before it gives up on the rest.
QUIET = 2.0
_NUMBERED = re.compile(r"^(?P<user>\S+) #(?P<n>\d+)$")


class Member:
    """One user in a room for a long while: sends numbered messages, reopens a closed socket.

    Two threads: one owns the socket (opens it, sends ``sync``, reads it,
    reopens it after a close), the other sends a message every interval
    while the socket is open. What happened is recorded in :attr:`record`
    (the JSON the test counts with); :attr:`talk` is the room's shared state.
    """

    def __init__(self, user: User, room: str, talk: Talk) -> None:
        self.user, self.room, self.talk = user, room, talk
        self.socket: ClientConnection | None = None
        self.connection = -1  # index in record["connections"] of the open socket
        self.syncing = False
        self.sync_until = 0.0
        self.online: set[str] = set()  # who is in the room, as last heard
        self.last_id = 0
        self.record: dict[str, Any] = {
            "sent": [], "unsent": 0, "connections": [], "failed_opens": 0, "received": [],
        }  # fmt: skip
        self.threads = [
            threading.Thread(target=self._read, daemon=True, name=f"{user.name}-read"),
            threading.Thread(target=self._send, daemon=True, name=f"{user.name}-send"),
        ]

    def _open(self) -> ClientConnection | None:
        try:
            socket = self.user.websocket(self.room, open_timeout=OPEN_TIMEOUT)
        except (OSError, TimeoutError, WebSocketException):
            self.record["failed_opens"] += 1
            return None
        with self.talk.lock:
            self.record["connections"].append([time.monotonic(), None, None, None])
            self.connection = len(self.record["connections"]) - 1
            self.syncing = True
            self.sync_until = time.monotonic() + SYNC_WINDOW
        # What the page sends each time its socket opens; a close is seen by the read.
        with contextlib.suppress(ConnectionClosed):
            socket.send(json.dumps({"type": "sync", "after": self.last_id}))
        self.socket = socket
        return socket

    def _read(self) -> None:
        attempt = 0
        while not self.talk.closing.is_set():
            socket = self._open()
            if socket is None:
                self.talk.closing.wait(_retry(attempt))
                attempt += 1
                continue
            code, answered = self._read_until_closed(socket)
            with self.talk.lock:
                self.socket = None
                self.record["connections"][self.connection][1:3] = [time.monotonic(), code]
            if self.talk.closing.is_set():
                return
            # A socket that was answered worked: start the pauses again from the shortest.
            attempt = 0 if answered else attempt + 1
            self.talk.closing.wait(_retry(attempt))

    def _read_until_closed(self, socket: ClientConnection) -> tuple[int | None, bool]:
        """Read events until the socket closes; return its close code (None: closed by us)
        and whether anything came on it."""
        answered = False
        while True:
            try:
                event = json.loads(socket.recv())
            except ConnectionClosed as exc:
                if self.talk.closing.is_set():
                    return None, answered
                return (exc.rcvd.code if exc.rcvd is not None else 1006), answered
            answered = True
            now = time.monotonic()
            if self.syncing and now > self.sync_until:
                self.syncing = False  # its reply was lost: what comes now is live
            if event.get("type") == "message":
                found = _NUMBERED.match(event.get("text", ""))
                with self.talk.lock:
                    self.last_id = max(self.last_id, int(event["id"]))
                    if found is not None:
                        sender, n = found["user"], int(found["n"])
                        self.record["received"].append(
                            [sender, n, event["id"], now, self.connection, self.syncing]
                        )
                        self.talk.heard(sender, n, self.user.name, now)
            elif event.get("type") == "online" or "presence" in event:
                self.online = online_after(event, self.online)
                self.talk.changed()
            elif event.get("stream") == "rooms" and self.syncing:
                self.syncing = False  # the last reply to "sync": catching up is over
                self.record["connections"][self.connection][3] = now

    def _send(self) -> None:
        self.talk.talking.wait()
        number = 0
        next_at = time.monotonic()
        while not self.talk.silence.is_set():
            socket = self.socket
            if socket is None:
                self.record["unsent"] += 1  # the page's composer is off while disconnected
            else:
                now = time.monotonic()
                try:
                    socket.send(json.dumps({"text": f"{self.user.name} #{number}"}))
                except ConnectionClosed:
                    self.record["unsent"] += 1
                else:
                    with self.talk.lock:
                        self.record["sent"].append([number, now, self.connection])
                        self.talk.spoke(self.user.name, number, now)
                    number += 1
            next_at += self.talk.interval
            self.talk.silence.wait(max(0.0, next_at - time.monotonic()))

    def close(self) -> None:
        socket = self.socket
        if socket is not None:
            socket.close()


def _retry(attempt: int) -> float:
    """Seconds before reconnection attempt *attempt*, with a little jitter, as the bridge."""
    ceiling = min(LONGEST_RETRY, FIRST_RETRY * RETRY_GROWTH**attempt)
    return ceiling * (1 - 0.3 * random.random())


class Talk:
    """What the members of one room share: who heard what, and the phases of the run."""

    def __init__(self, users: list[str], interval: float) -> None:
        self.users = frozenset(users)
        self.interval = interval
        self.lock = threading.Lock()
        self.news = threading.Condition(self.lock)
        self.talking = threading.Event()  # the senders may start
        self.silence = threading.Event()  # the senders stop
        self.closing = threading.Event()  # the readers stop
        self.sent_at: dict[tuple[str, int], float] = {}
        self.heard_by: dict[tuple[str, int], set[str]] = {}
        #: When each message (sender, n) had reached everyone.
        self.everyone_at: dict[tuple[str, int], float] = {}
        self.mark: float | None = None

    def spoke(self, sender: str, n: int, at: float) -> None:
        self.sent_at[sender, n] = at

    def heard(self, sender: str, n: int, listener: str, at: float) -> None:
        """Note (holding :attr:`lock`) that *listener* got message *n* of *sender*."""
        heard = self.heard_by.setdefault((sender, n), set())
        heard.add(listener)
        if heard == self.users and (sender, n) not in self.everyone_at:
            self.everyone_at[sender, n] = at
        self.news.notify_all()

    def changed(self) -> None:
        with self.lock:
            self.news.notify_all()

    def wait(self, predicate: Any, timeout: float) -> bool:
        """Wait until *predicate()* holds (checked under :attr:`lock`) or *timeout* passes."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.news.wait(min(left, 0.2))  # short: SIGUSR1 sets the mark from outside
        return True

    def recovered_at(self) -> float | None:
        """When a message sent after :attr:`mark` first reached everyone (None: none yet)."""
        mark = self.mark
        if mark is None:
            return None
        times = [t for key, t in self.everyone_at.items() if self.sent_at.get(key, 0) > mark]
        return min(times) if times else None


def chatter(options: argparse.Namespace) -> None:
    """Talk in the room across a failover; print the phases, then the JSON record."""
    users = [User(options.url, name, options.password) for name in options.users]
    talk = Talk(options.users, options.interval)

    def marked(signum: int, frame: Any) -> None:
        talk.mark = time.monotonic()  # no lock here: the main thread may hold it

    signal.signal(signal.SIGUSR1, marked)
    members = [Member(user, options.room, talk) for user in users]
    for member in members:
        member.threads[0].start()
    try:
        if not talk.wait(lambda: all(len(m.online) >= len(members) for m in members), TIMEOUT):
            raise SystemExit(f"the room never had {len(members)} people in it")
        talk.talking.set()
        for member in members:
            member.threads[1].start()
        started = time.monotonic()
        every = set(options.users)
        if not talk.wait(
            lambda: (
                time.monotonic() - started >= options.warmup
                and {sender for sender, _ in talk.everyone_at} == every
            ),
            TIMEOUT,
        ):
            raise SystemExit("messages did not reach everyone before the failover")
        print("flowing", flush=True)
        if not talk.wait(lambda: talk.mark is not None, TIMEOUT * 2):
            raise SystemExit("no SIGUSR1 (the kill) came")
        print("marked", flush=True)
        if talk.wait(lambda: talk.recovered_at() is not None, TIMEOUT * 2):
            print(f"recovered {(talk.recovered_at() or 0) - (talk.mark or 0):.2f}", flush=True)
            end = time.monotonic() + options.after
            talk.wait(lambda: time.monotonic() >= end, options.after + 1)
        else:
            print("not recovered", flush=True)
        talk.silence.set()
        for member in members:
            member.threads[1].join(TIMEOUT)
        # Drain: until everything sent reached everyone, or nothing more comes.
        deadline = time.monotonic() + TIMEOUT / 2
        while time.monotonic() < deadline:
            count = len(talk.everyone_at)
            if talk.wait(lambda: len(talk.everyone_at) >= len(talk.sent_at), QUIET):
                break
            if len(talk.everyone_at) == count:
                break
    finally:
        talk.silence.set()
        talk.closing.set()
        for member in members:
            member.close()
        for member in members:
            member.threads[0].join(10)
    report = {
        "mark": talk.mark,
        "recovered": talk.recovered_at(),
        "members": {member.user.name: member.record for member in members},
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
