"""Deploy new code without dropping a socket: restart every worker under load, lose nothing.

The interface server (daphne) holds the connections; workers only run
consumers. So restarting the workers one by one must be invisible to
clients: a worker told to stop (``SIGTERM``) finishes every message it took,
the other worker and the new one take the rest. Real processes throughout:
daphne and two ``runworker`` on a real Redis, HTTP clients on keep-alive
connections and WebSocket clients, all on loopback.
"""

from __future__ import annotations

import http.client
import re
import signal
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from websockets.sync.client import connect

from tests.interface import Deployment
from tests.processes import ManagedProcess, project_env, start_runworker
from tests.restart_routing import ROUTING
from tests.waiting import WaitTimeout

#: Clients of each kind; each has one request (HTTP) or WS_WINDOW messages (WebSocket) in flight.
HTTP_CLIENTS = 3
WS_CLIENTS = 3
WS_WINDOW = 4
#: Replies the clients get between two steps of the restart: traffic really flows.
PROGRESS = 150
#: What one reply may take at worst, a restart going on (daphne answers 503 after 60 s).
REPLY_TIMEOUT = 30


class Progress:
    """Count replies as they come, so the test waits for traffic rather than for seconds."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.replies = 0

    def add(self) -> None:
        with self._changed:
            self.replies += 1
            self._changed.notify_all()

    def wait_for_more(self, count: int, timeout: float = 60) -> None:
        with self._changed:
            target = self.replies + count
            if not self._changed.wait_for(lambda: self.replies >= target, timeout):
                raise WaitTimeout(f"only {self.replies} of {target} replies within {timeout} s")


@dataclass
class ClientResult:
    """What one client saw: its sends, the replies to each, and anything that went wrong."""

    name: str
    sent: int = 0
    replies: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    pids: Counter[int] = field(default_factory=Counter)

    def note_reply(self, text: str, progress: Progress) -> None:
        client, n, pid = text.split(":")
        if client != self.name:
            self.failures.append(f"a reply for {client} came to {self.name}: {text!r}")
        self.replies[int(n)] += 1
        self.pids[int(pid)] += 1
        progress.add()

    def problems(self) -> list[str]:
        """Every failure, and every message not answered exactly once."""
        wrong = [
            f"{self.name}:{n} answered {self.replies[n]} times"
            for n in range(self.sent)
            if self.replies[n] != 1
        ]
        return self.failures + wrong


def http_client(result: ClientResult, port: int, stop: threading.Event, progress: Progress) -> None:
    """GET ``/echo/<name>/<n>/`` again and again on one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REPLY_TIMEOUT)
    try:
        while not stop.is_set():
            n = result.sent
            result.sent += 1
            try:
                connection.request("GET", f"/echo/{result.name}/{n}/")
                response = connection.getresponse()
                body = response.read().decode()
            except (OSError, http.client.HTTPException) as exc:
                result.failures.append(f"request {n}: {exc!r}")
                connection.close()  # a fresh connection for the next one
                continue
            if response.status != 200:
                result.failures.append(f"request {n}: {response.status} {body[:200]!r}")
                continue
            result.note_reply(body, progress)
    finally:
        connection.close()


def ws_client(result: ClientResult, url: str, stop: threading.Event, progress: Progress) -> None:
    """Send numbered messages, WS_WINDOW in flight, until *stop*; then wait for every echo."""
    try:
        with connect(url, open_timeout=REPLY_TIMEOUT, close_timeout=REPLY_TIMEOUT) as socket:
            answered = 0
            while True:
                while not stop.is_set() and result.sent - answered < WS_WINDOW:
                    socket.send(f"{result.name}:{result.sent}")
                    result.sent += 1
                if answered == result.sent:
                    break
                text = socket.recv(timeout=REPLY_TIMEOUT)
                assert isinstance(text, str), text
                result.note_reply(text, progress)
                answered += 1
    except Exception as exc:  # the socket dropped, or an echo never came
        result.failures.append(f"socket: {exc!r}")


def in_flight(worker: ManagedProcess) -> int:
    """How many consumers the worker said it waited for when it was told to stop."""
    line = worker.wait_for(r"Stopping: ", timeout=20)
    found = re.search(r"waiting for (\d+) running", line)
    return int(found[1]) if found else 0


def test_restarting_both_workers_one_by_one_drops_nothing(
    deployments: Callable[..., Deployment],
    redis_url: str,
    unique_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployment = deployments("daphne", ROUTING, workers=0)
    env = project_env(
        CHANNELS_TEST_REDIS_URL=redis_url,
        CHANNELS_TEST_PREFIX=unique_prefix,
        CHANNELS_TEST_ROUTING=ROUTING,
    )

    def start_worker() -> ManagedProcess:
        worker = start_runworker(env, "--threads", "2")
        deployment.processes.append(worker)  # stopped with the deployment, whatever happens
        worker.wait_for(r"Ready: worker \d+ listening", timeout=30)
        return worker

    workers = [start_worker(), start_worker()]
    first_pids = {worker.pid for worker in workers}
    stop = threading.Event()
    progress = Progress()
    results = [ClientResult(f"h{n}") for n in range(HTTP_CLIENTS)]
    results += [ClientResult(f"w{n}") for n in range(WS_CLIENTS)]
    clients = [
        threading.Thread(target=http_client, args=(result, deployment.port, stop, progress))
        for result in results[:HTTP_CLIENTS]
    ]
    clients += [
        threading.Thread(
            target=ws_client, args=(result, f"{deployment.ws_url}/echo/", stop, progress)
        )
        for result in results[HTTP_CLIENTS:]
    ]
    for client in clients:
        client.start()
    held: list[int] = []
    try:
        progress.wait_for_more(PROGRESS)
        for index, old in enumerate(list(workers)):
            old.signal(signal.SIGTERM)
            held.append(in_flight(old))
            workers[index] = start_worker()
            assert old.wait(60) == 0, old.tail()
            output = "".join(old.output)
            assert "Cut short" not in output, output
            assert "Traceback" not in output, output
            progress.wait_for_more(PROGRESS)
    finally:
        stop.set()
        for client in clients:
            client.join(2 * REPLY_TIMEOUT)
    assert not any(client.is_alive() for client in clients)

    problems = [problem for result in results for problem in result.problems()]
    requests = sum(result.sent for result in results[:HTTP_CLIENTS])
    messages = sum(result.sent for result in results[HTTP_CLIENTS:])
    pids = sum((result.pids for result in results), Counter[int]())
    with capsys.disabled():
        print(
            f"\nrolling restart: 2 restarts; {requests} HTTP requests, {WS_CLIENTS} sockets, "
            f"{messages} WebSocket messages; {len(problems)} failed, dropped or lost; "
            f"consumers in flight at each SIGTERM: {held}; replies per worker pid: {dict(pids)}"
        )
    assert problems == []
    assert requests > 0
    assert messages > 0
    # The new workers took over: after the second restart only they were running.
    assert set(pids) - first_pids
