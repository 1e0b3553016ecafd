"""Fixtures for workers: in-process on a fresh default layer, and the project's database."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from channels.asgi import ChannelLayerWrapper, channel_layers
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer
from channels.routing import Router
from channels.worker import Worker
from tests.processes import django_command, project_env

RunWorker = Callable[..., Worker]


@pytest.fixture
def layer() -> Iterator[ChannelLayerWrapper]:
    """A fresh in-memory layer, installed as the default one that Channel() uses."""
    layer = ChannelLayerWrapper(InMemoryChannelLayer(), "default", None)
    old = channel_layers.set("default", layer)
    yield layer
    channel_layers.set("default", old)


@pytest.fixture
def redis_layer(redis_url: str, unique_prefix: str) -> Iterator[ChannelLayerWrapper]:
    """A Redis layer installed as the default one (the worker takes messages with its sends)."""
    layer = ChannelLayerWrapper(
        RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix), "default", None
    )
    old = channel_layers.set("default", layer)
    yield layer
    channel_layers.set("default", old)
    layer.flush()
    layer.close()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """The test project's SQLite file, migrated, for runworker processes (CHANNELS_TEST_DB)."""
    path = tmp_path / "db.sqlite3"
    subprocess.run(
        django_command("migrate", "-v", "0"),
        env=project_env(CHANNELS_TEST_DB=str(path)),
        check=True,
        timeout=120,
    )
    return path


@pytest.fixture
def run_worker(layer: ChannelLayerWrapper) -> Iterator[RunWorker]:
    """Start a worker on *routing* in a background thread; stop it after the test."""
    running: list[tuple[Worker, threading.Thread]] = []

    def start(routing: list[Any], **options: Any) -> Worker:
        worker = Worker(layer, Router(routing), **options)
        worker.receive_timeout = 0.1
        thread = threading.Thread(target=worker.run)
        thread.start()
        running.append((worker, thread))
        return worker

    yield start
    for worker, thread in running:
        worker.stop()
        thread.join(10)
        assert not thread.is_alive()


def expect(layer: ChannelLayerWrapper, channel: str, timeout: float = 10) -> dict[str, Any]:
    name, message = layer.receive([channel], block=True, timeout=timeout)
    assert name == channel, f"nothing arrived on {channel}"
    return message
