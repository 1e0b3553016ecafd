"""Build layers of a parametrized backend for a test, and flush and close them after it.

The layer suites parametrize a ``make_layer`` fixture over backend names; each
fixture is one line over :func:`layers_of`, so every suite builds its layers
the same way, with a key space of its own on the test's Redis server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from channels.layers.base import BaseChannelLayer
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer, RedisSentinelChannelLayer

MakeLayer = Callable[..., BaseChannelLayer]

#: Options a backend name adds, beyond the backend itself. Redis has two group-send
#: paths: one script call for the whole group, and, with capacity rules (or several
#: servers), members first and then pushes. ``redis-cluster`` is a layer on a real
#: 3-master Redis Cluster (its keys hash-tagged per bucket, calls routed by slot).
VARIANTS: dict[str, dict[str, Any]] = {
    "redis-with-capacity-rules": {"channel_capacity": {"unrelated.*": 7}},
}


async def layers_of(request: pytest.FixtureRequest) -> AsyncIterator[MakeLayer]:
    """Yield a factory of layers of the backend ``request.param`` names."""
    made: list[BaseChannelLayer] = []
    backend: str = request.param

    def make(**options: Any) -> BaseChannelLayer:
        for name, value in VARIANTS.get(backend, {}).items():
            options.setdefault(name, value)
        if backend == "redis-sentinel":  # a master found through Sentinel (tests.redis_sentinel)
            layer: BaseChannelLayer = RedisSentinelChannelLayer(
                hosts=request.getfixturevalue("sentinel_set").hosts,
                services=["channels-a"],
                prefix=request.getfixturevalue("unique_prefix"),
                **options,
            )
        elif backend == "redis-cluster":
            layer = RedisChannelLayer(
                hosts=request.getfixturevalue("redis_cluster_urls")[:1],
                prefix=request.getfixturevalue("unique_prefix"),
                cluster=True,
                **options,
            )
        elif backend.startswith("redis"):
            layer = RedisChannelLayer(
                hosts=[request.getfixturevalue("redis_url")],
                prefix=request.getfixturevalue("unique_prefix"),
                **options,
            )
        else:
            layer = InMemoryChannelLayer(**options)
        made.append(layer)
        return layer

    yield make
    for layer in made:
        await layer.aflush()
        await layer.aclose()
