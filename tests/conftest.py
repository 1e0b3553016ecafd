from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from channels.layers.redis import RedisChannelLayer
from tests.browser import BROWSER_MARKER, chromium  # noqa: F401 - chromium: a fixture
from tests.interface import deployments  # noqa: F401 - a fixture for every test module
from tests.redis_cluster import RedisClusterServers
from tests.redis_sentinel import sentinel_set  # noqa: F401 - a fixture
from tests.redis_server import RedisServer
from tests.workers import database, layer, redis_layer, run_worker  # noqa: F401 - fixtures


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", BROWSER_MARKER)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis: $CHANNELS_TEST_REDIS_URL, or a throwaway redis-server."""
    external = os.environ.get("CHANNELS_TEST_REDIS_URL")
    if external:
        yield external
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture
def redis_layers(redis_url: str, unique_prefix: str) -> Iterator[Callable[..., RedisChannelLayer]]:
    """A factory of Redis layers (of *layer_class*) on the test's Redis and prefix.

    Each is flushed and closed after the test.
    """
    made: list[RedisChannelLayer] = []

    def make(layer_class: type[RedisChannelLayer] = RedisChannelLayer, **options: Any) -> Any:
        options.setdefault("hosts", [redis_url])
        options.setdefault("prefix", unique_prefix)
        new = layer_class(**options)
        made.append(new)
        return new

    yield make
    for made_layer in made:
        made_layer.flush()
        made_layer.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which the test may stop and restart."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis_shard_urls() -> Iterator[list[str]]:
    """Three real Redis servers for sharding tests."""
    servers = [RedisServer().start() for _ in range(3)]
    try:
        yield [server.url for server in servers]
    finally:
        for server in servers:
            server.cleanup()


@pytest.fixture(scope="session")
def redis_cluster_urls() -> Iterator[list[str]]:
    """Seed-node URLs of a real 3-master Redis Cluster started for the session."""
    cluster = RedisClusterServers(masters=3).start()
    try:
        yield cluster.urls
    finally:
        cluster.cleanup()


@pytest.fixture
def unique_prefix() -> str:
    """A key prefix no other test uses, so tests share a Redis without interfering."""
    return f"test-{uuid.uuid4().hex[:12]}:"
