"""backends.rst of Channels 1.1.8 (and deploying.rst's backends): each settings sample, for real.

The Redis sample's two ``hosts`` become two real redis-servers (only the
addresses are replaced); its layers shard between them. The in-memory
sample runs under a real ``runworker``, which must refuse it. The IPC and
RabbitMQ samples name backends we do not provide: they must fail with our
settings check's error, which says what to use instead.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from channels.asgi import channel_layers
from channels.exceptions import InvalidChannelLayerError
from tests.docs1x import SAMPLES, sample_project, write_project
from tests.docs1x.backends import inmemory, rabbitmq, redis_hosts
from tests.docs1x.deploying import ipc_settings, rabbitmq_settings
from tests.processes import ROOT, project_env
from tests.redis_server import RedisServer

#: The page's ``"ROUTING": "???"`` placeholder, filled in.
ROUTING = "tests.docs1x.getting_started.echo_routing.channel_routing"


@pytest.fixture(scope="module")
def two_redis_servers() -> Iterator[list[RedisServer]]:
    """Stand-ins for the page's ``redis-channel-1`` and ``redis-channel-2``."""
    servers = [RedisServer().start() for _ in range(2)]
    try:
        yield servers
    finally:
        for server in servers:
            server.cleanup()


def sample_layers(servers: list[RedisServer]) -> dict[str, Any]:
    """The sample's CHANNEL_LAYERS, its two hosts being *servers*."""
    entry = dict(redis_hosts.CHANNEL_LAYERS["default"])
    assert entry["CONFIG"]["hosts"] == [("redis-channel-1", 6379), ("redis-channel-2", 6379)]
    entry["CONFIG"] = {"hosts": [(server.host, server.port) for server in servers]}
    entry["ROUTING"] = ROUTING
    return {"default": entry}


def stored_keys(server: RedisServer) -> set[bytes]:
    client = redis.Redis(host=server.host, port=server.port)
    try:
        # Not the stats, nor the record of which receiving processes are alive
        # (asgi:alive:..., asgi:seen:..., their registry asgi:hygiene:...) and which
        # sockets closed (asgi:presence-released:...), which expire by themselves.
        housekeeping = (b"asgi:alive:", b"asgi:seen:", b"asgi:hygiene:", b"asgi:presence-released:")
        return {
            key
            for key in client.keys("asgi:*")
            if key != b"asgi:stats" and not key.startswith(housekeeping)
        }
    finally:
        client.close()


def test_the_two_hosts_sample_shards_channels_over_both_servers(
    two_redis_servers: list[RedisServer],
) -> None:
    """An interface server and a worker built from the same settings share every message.

    Normal channels and reply channels are spread over both servers, and a
    layer built separately (another process's) finds each one where it was put.
    """
    with override_settings(CHANNEL_LAYERS=sample_layers(two_redis_servers)):
        interface = channel_layers.make_backend("default")
        worker = channel_layers.make_backend("default")
    try:
        normal = [f"docs1x.shard{n}" for n in range(20)]
        # Reply channels as daphne names them: one "process!" prefix per server.
        replies = [f"daphne.response.server{n}!{n}" for n in range(20)]
        for channel in normal + replies:
            interface.send(channel, {"to": channel})
        placed = [stored_keys(server) for server in two_redis_servers]
        assert all(placed), f"a server holds nothing: {placed}"
        assert not placed[0] & placed[1]
        for channel in normal:
            assert worker.receive([channel], block=True, timeout=5) == (channel, {"to": channel})
        for channel in replies:  # a process receives on its prefix, from one server
            prefix = channel.split("!")[0] + "!"
            assert interface.receive([prefix], block=True, timeout=5) == (
                channel,
                {"to": channel},
            )
        assert [stored_keys(server) for server in two_redis_servers] == [set(), set()]
    finally:
        interface.flush()
        interface.close()
        worker.close()


def test_the_two_hosts_sample_is_the_default_layer_of_a_project(
    two_redis_servers: list[RedisServer],
) -> None:
    consumers = {"myapp.consumers": "tests.docs1x.getting_started.echo_consumers"}
    with (
        override_settings(CHANNEL_LAYERS=sample_layers(two_redis_servers)),
        sample_project(consumers),
    ):
        layer = channel_layers["default"]
        assert [shard for shard in layer.hosts] == [
            (server.host, server.port) for server in two_redis_servers
        ]
        call_command("check", "--fail-level", "ERROR")  # no channels.E001/E002


def run_manage(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = project_env(PYTHONPATH=f"{root}:{ROOT}", DJANGO_SETTINGS_MODULE="my_project.settings")
    env.pop("CHANNELS_TEST_REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_runworker_exits_on_the_in_memory_layer(tmp_path: Path) -> None:
    """The page: "If you try and use this channel layer with runworker, it will exit"."""
    routing = (SAMPLES / "getting_started" / "echo_routing.py").read_text()
    routing = routing.replace(
        "from myapp.consumers", "from tests.docs1x.getting_started.echo_consumers"
    )
    write_project(
        tmp_path, "my_project", (SAMPLES / "backends" / "inmemory.py").read_text(), routing
    )
    result = run_manage(tmp_path, "runworker")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "in-memory and cannot reach other processes" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Listening on channels" not in result.stdout
    assert inmemory.CHANNEL_LAYERS["default"]["BACKEND"] == "asgiref.inmemory.ChannelLayer"


@pytest.mark.parametrize(
    ("sample", "package"),
    [
        (rabbitmq, "asgi_rabbitmq"),  # backends.rst
        (ipc_settings, "asgi_ipc"),  # deploying.rst
        (rabbitmq_settings, "asgi_rabbitmq"),  # deploying.rst
    ],
    ids=["backends-rabbitmq", "deploying-ipc", "deploying-rabbitmq"],
)
def test_backends_we_do_not_provide_fail_the_check_saying_what_to_use(
    sample: Any, package: str
) -> None:
    """Not provided (docs/migrating.rst): ``check`` reports channels.E001 naming our layers."""
    with override_settings(CHANNEL_LAYERS=sample.CHANNEL_LAYERS):
        with pytest.raises(SystemCheckError) as checked:
            call_command("check")
        with pytest.raises(InvalidChannelLayerError) as built:
            channel_layers["default"]
    for message in (str(checked.value), str(built.value)):
        assert sample.CHANNEL_LAYERS["default"]["BACKEND"] in message
        assert f"No module named '{package}'" in message
        assert "'channels.layers.redis.RedisChannelLayer'" in message
    assert "channels.E001" in str(checked.value)
