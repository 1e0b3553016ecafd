"""Fixtures that run a Worker in-process on a fresh in-memory default layer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from channels.asgi import ChannelLayerWrapper, channel_layers
from channels.layers.inmemory import InMemoryChannelLayer
from channels.routing import Router
from channels.worker import Worker

RunWorker = Callable[..., Worker]


@pytest.fixture
def layer() -> Iterator[ChannelLayerWrapper]:
    """A fresh in-memory layer, installed as the default one that Channel() uses."""
    layer = ChannelLayerWrapper(InMemoryChannelLayer(), "default", None)
    old = channel_layers.set("default", layer)
    yield layer
    channel_layers.set("default", old)


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
