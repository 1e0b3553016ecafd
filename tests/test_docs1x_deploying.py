"""deploying.rst (and faqs.rst) of Channels 1.1.8: a real deployment made from its samples.

A project directory gets the page's ``asgi.py`` and settings as written (the
test's Redis standing in for ``redis-server-name:6379``); ``daphne`` and
``runworker`` run with the page's command lines (our port instead of 8000,
loopback instead of 0.0.0.0). One deployment serves the whole module.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.sync.client import connect

from channels.layers.redis import RedisChannelLayer
from tests.interface import http, wait_for_port
from tests.processes import ROOT, ManagedProcess, project_env
from tests.redis_server import free_port

SAMPLES = ROOT / "tests" / "docs1x" / "deploying"

ROUTING = """\
from channels.routing import route
from tests.docs1x.deploying.thumbnail_consumers import resize, thumbnail
from tests.docs1x.getting_started.echo_consumers import ws_message

channel_routing = [
    route("websocket.receive", ws_message),
    route("thumbnail", thumbnail),
    route("docs1x.resize", resize),
]
"""


@dataclass
class Project:
    root: Path
    env: dict[str, str]
    port: int
    layer: RedisChannelLayer


def write_project(root: Path, redis_url: str) -> None:
    host, port = re.match(r"redis://([^:/]+):(\d+)", redis_url).groups()
    settings = (SAMPLES / "settings.py").read_text()
    settings = settings.replace('("redis-server-name", 6379)', f'("{host}", {port})')
    for package in ("my_project", "yourproject"):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
        (root / package / "asgi.py").write_text((SAMPLES / "asgi.py").read_text())
    (root / "my_project" / "settings.py").write_text(
        "from tests.project.settings import *  # the rest of a project's settings\n\n"
        "# The sample:\n" + settings
    )
    (root / "my_project" / "routing.py").write_text(ROUTING)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("deploying")
    write_project(root, redis_url)
    env = project_env(PYTHONPATH=f"{root}:{ROOT}")
    env.pop("DJANGO_SETTINGS_MODULE")  # asgi.py sets it, as the page says
    env.pop("CHANNELS_TEST_REDIS_URL", None)
    port = free_port()
    processes = []
    try:
        # daphne -b 0.0.0.0 -p 8000 --proxy-headers my_project.asgi:channel_layer
        # (the subprotocol comes from CHANNELS_WS_PROTOCOLS; see the test of --ws-protocol)
        daphne = ManagedProcess(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "--proxy-headers", "my_project.asgi:channel_layer"],
            env, cwd=root,
        )  # fmt: skip
        processes.append(daphne)
        daphne.wait_for("Listening on TCP address")
        wait_for_port(port)
        # python manage.py runworker --only-channels=http.* --only-channels=websocket.*
        worker = ManagedProcess(
            [sys.executable, "-m", "django", "runworker", "--settings", "my_project.settings",
             "--only-channels=http.*", "--only-channels=websocket.*"],
            env, cwd=root,
        )  # fmt: skip
        processes.append(worker)
        worker.wait_for("Listening on channels")
        layer = RedisChannelLayer(hosts=[redis_url])
        yield Project(root, env, port, layer)
        layer.close()
    finally:
        for process in processes:
            process.stop()


def test_daphne_serves_the_asgi_py_channel_layer_and_workers_answer(project: Project) -> None:
    with connect(f"ws://127.0.0.1:{project.port}/chat/", open_timeout=20) as socket:
        socket.send("hello world")
        assert socket.recv(timeout=20) == "hello world"
    status, _, body = http(f"http://127.0.0.1:{project.port}/hello/")
    assert status == 200, body


def test_a_script_importing_asgi_py_sends_to_channels_and_groups(project: Project) -> None:
    """faqs.rst: ``from yourproject.asgi import channel_layer``, then Channel/Group sends."""
    project.layer.group_add("group_name", "docs1x.faq.member")
    try:
        script = ManagedProcess(
            [sys.executable, str(SAMPLES / "faq_script.py")], project.env, cwd=project.root
        )
        assert script.wait(60) == 0, "".join(script.output)
        name, message = project.layer.receive(["channel_name"], block=True, timeout=10)
        assert (name, message) == ("channel_name", {"text": "channel_text"})
        name, message = project.layer.receive(["docs1x.faq.member"], block=True, timeout=10)
        assert (name, message) == ("docs1x.faq.member", {"text": "group_text"})
    finally:
        project.layer.group_discard("group_name", "docs1x.faq.member")


def test_the_ws_protocol_flag_is_refused_and_the_setting_offers_the_subprotocol(
    project: Project,
) -> None:
    """``daphne --ws-protocol "graphql-ws" --proxy-headers my_project.asgi:channel_layer``.

    daphne 1.x had ``--ws-protocol``; daphne 4 has not (a kept divergence,
    docs/migrating.rst "Check your command lines"): the command as written
    stops at once, naming the flag, and the same command without it offers
    the subprotocol from the page's ``CHANNELS_WS_PROTOCOLS``.
    """
    command = [
        sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(free_port()),
        "--ws-protocol", "graphql-ws", "--proxy-headers", "my_project.asgi:channel_layer",
    ]  # fmt: skip
    as_written = ManagedProcess(command, project.env, cwd=project.root)
    assert as_written.wait(60) != 0
    assert "unrecognized arguments: --ws-protocol" in "".join(as_written.output)
    port = free_port()
    command[command.index("-p") + 1] = str(port)
    del command[command.index("--ws-protocol") : command.index("--ws-protocol") + 2]
    daphne = ManagedProcess(command, project.env, cwd=project.root)
    try:
        daphne.wait_for("Listening on TCP address")
        with connect(
            f"ws://127.0.0.1:{port}/chat/", subprotocols=["graphql-ws"], open_timeout=20
        ) as socket:
            assert socket.subprotocol == "graphql-ws"
    finally:
        daphne.stop()


def test_a_worker_told_to_exclude_thumbnail_serves_everything_else(project: Project) -> None:
    """``python manage.py runworker --exclude-channels=thumbnail``."""
    worker = ManagedProcess(
        [sys.executable, "-m", "django", "runworker", "--settings", "my_project.settings",
         "--exclude-channels=thumbnail"],
        project.env, cwd=project.root,
    )  # fmt: skip
    try:
        listening = worker.wait_for("Listening on channels")
        assert "docs1x.resize" in listening
        assert "http.request" in listening
        assert "thumbnail" not in listening
        project.layer.send("thumbnail", {"reply_channel": "docs1x.thumbnail.reply"})
        project.layer.send("docs1x.resize", {"reply_channel": "docs1x.resize.reply"})
        assert project.layer.receive(["docs1x.resize.reply"], block=True, timeout=20) == (
            "docs1x.resize.reply",
            {"done": "resize"},
        )
        # Nobody took the thumbnail job: it is still waiting for a thumbnail worker.
        assert project.layer.receive(["thumbnail"], block=False) == (
            "thumbnail",
            {"reply_channel": "docs1x.thumbnail.reply"},
        )
    finally:
        worker.stop()
