"""getting-started.rst of Channels 1.1.8, "Running with Channels": two processes, one Redis.

A project directory gets the page's Redis settings (the test's redis-server
standing in for ``localhost:6379``), the "First Consumers" echo as
``myapp/consumers.py`` and its routing as ``myproject/routing.py``, all as
written. Then the page's two commands run in two real processes:
``manage.py runserver --noworker`` and ``manage.py runworker``.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from channels.layers.redis import RedisChannelLayer
from tests.docs1x import SAMPLES, write_project
from tests.interface import http, wait_for_port
from tests.processes import ROOT, ManagedProcess, project_env
from tests.redis_server import free_port
from tests.waiting import wait_until

GETTING_STARTED = SAMPLES / "getting_started"


@dataclass
class Project:
    root: Path
    env: dict[str, str]
    layer: RedisChannelLayer

    def manage(self, *args: str, **env: str) -> ManagedProcess:
        return ManagedProcess(
            [sys.executable, "manage.py", *args], {**self.env, **env}, cwd=self.root
        )


MANAGE_PY = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""


@pytest.fixture
def project(tmp_path: Path, redis_url: str, unique_prefix: str) -> Iterator[Project]:
    host, port = re.match(r"redis://([^:/]+):(\d+)", redis_url).groups()
    settings = (GETTING_STARTED / "settings_redis.py").read_text()
    assert '"hosts": [("localhost", 6379)],' in settings
    settings = settings.replace('("localhost", 6379)', f'("{host}", {port})')
    # One Redis serves all the tests: this project's keys get a prefix of their own.
    settings = settings.replace('"hosts":', f'"prefix": "{unique_prefix}",\n            "hosts":')
    write_project(
        tmp_path, "myproject", settings, (GETTING_STARTED / "echo_routing.py").read_text()
    )
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "consumers.py").write_text(
        (GETTING_STARTED / "echo_consumers.py").read_text()
    )
    (tmp_path / "manage.py").write_text(MANAGE_PY)
    env = project_env(PYTHONPATH=f"{tmp_path}:{ROOT}")
    env.pop("DJANGO_SETTINGS_MODULE")  # manage.py sets it
    env.pop("CHANNELS_TEST_REDIS_URL", None)
    layer = RedisChannelLayer(hosts=[(host, int(port))], prefix=unique_prefix)
    try:
        yield Project(tmp_path, env, layer)
    finally:
        layer.flush()
        layer.close()


def wait_until_pending(layer: RedisChannelLayer, channel: str, timeout: float = 20) -> None:
    """Return once a message waits on *channel* in Redis (nobody has consumed it)."""
    wait_until(
        lambda: layer.channel_statistics(channel)["messages_pending"],
        timeout,
        f"no message arrived on {channel}",
    )


def in_thread(function: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_runserver_noworker_waits_for_a_runworker_in_another_process(project: Project) -> None:
    """The interface server queues requests on Redis; a separate ``runworker -v 2`` runs them."""
    port = free_port()
    server = project.manage("runserver", "--noworker", "--noreload", f"127.0.0.1:{port}")
    worker = None
    try:
        server.wait_for("Quit the server with")
        wait_for_port(port)
        # No worker anywhere yet: the request waits in Redis, unanswered.
        thread, outcome = in_thread(lambda: http(f"http://127.0.0.1:{port}/hello/"))
        wait_until_pending(project.layer, "http.request")
        assert thread.is_alive()
        worker = project.manage("runworker", "-v", "2")
        worker.wait_for("Listening on channels")
        thread.join(30)
        assert "error" not in outcome, outcome
        status, _, body = outcome["value"]
        assert (status, body) == (200, b"Hello world! You asked for /hello/")
        worker.wait_for(r"\] http\.request -> ")  # -v 2: a line per consumer run
        with connect(f"ws://127.0.0.1:{port}/chat/", open_timeout=20) as socket:
            socket.send("hello world")
            assert socket.recv(timeout=20) == "hello world"
        worker.wait_for(r"\] websocket\.receive -> myapp\.consumers\.ws_message")
    finally:
        if worker is not None:
            worker.stop()
        server.stop()


def test_runworker_serves_static_files_in_debug_mode(project: Project) -> None:
    """The page: "If Django is in debug mode (DEBUG=True), then runworker will serve static files".

    1.1.8 management/commands/runworker.py ``handle``: with ``settings.DEBUG`` and
    staticfiles installed, ``router.check_default(http_consumer=StaticFilesConsumer())``.
    The request is sent to Redis as an interface server would, so only the worker answers.
    """
    worker = project.manage("runworker", CHANNELS_TEST_DEBUG="1")
    try:
        worker.wait_for("Listening on channels")
        project.layer.send(
            "http.request",
            {
                "reply_channel": "http.response.docs1x!static",
                "http_version": "1.1",
                "method": "GET",
                "path": "/static/site.css",
                "query_string": b"",
                "headers": [[b"host", b"127.0.0.1"]],
                "body": b"",
            },
        )
        replies = []
        while not replies or replies[-1].get("more_content", False):
            channel, reply = project.layer.receive(
                ["http.response.docs1x!"], block=True, timeout=20
            )
            assert channel == "http.response.docs1x!static", "the worker did not answer"
            replies.append(reply)
        assert replies[0]["status"] == 200
        body = b"".join(reply.get("content", b"") for reply in replies)
        assert body == (ROOT / "tests" / "project" / "static" / "site.css").read_bytes()
    finally:
        worker.stop()
