"""The layer suites' default backends: every one, each test with a key space of its own.

A suite that needs other backends (a variant, fewer) defines its own
``make_layer`` over :func:`tests.layers.factory.layers_of`, which overrides this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from channels.layers.base import BaseChannelLayer
from tests.layers.factory import MakeLayer, layers_of

BACKENDS = ["inmemory", "redis", "redis-sentinel", "redis-cluster"]


@pytest.fixture(params=BACKENDS)
async def make_layer(request: pytest.FixtureRequest) -> AsyncIterator[MakeLayer]:
    """Build layers of the parametrized backend; each test gets its own key space."""
    async for make in layers_of(request):
        yield make


@pytest.fixture
def layer(make_layer: MakeLayer) -> BaseChannelLayer:
    return make_layer()
