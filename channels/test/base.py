"""Test cases with isolated in-memory channel layers, and ``apply_routes``."""

from __future__ import annotations

import contextlib
import functools
import inspect
import unittest
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from django.test import TestCase, TransactionTestCase

from ..asgi import DEFAULT_CHANNEL_LAYER, ChannelLayerWrapper, channel_layers
from ..layers.inmemory import InMemoryChannelLayer
from ..message import Message

__all__ = ["ChannelTestCase", "ChannelTestMixin", "TransactionChannelTestCase", "apply_routes"]

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:  # what the mixin is mixed into, for the type checker's eyes only
    _TestCase = unittest.TestCase
else:
    _TestCase = object


def isolated_layer(alias: str) -> ChannelLayerWrapper:
    """Return a fresh in-memory layer for *alias*, with the project's routing for it."""
    entry = channel_layers.configs.get(alias) or {}
    return ChannelLayerWrapper(InMemoryChannelLayer(), alias, entry.get("ROUTING"))


class ChannelTestMixin(_TestCase):
    """Give each test its own in-memory layer for every alias in ``test_channel_aliases``.

    ``Channel(...).send()`` in the code under test lands there, and
    :meth:`get_next_message` reads it back; the layers are put back after.
    """

    test_channel_aliases: list[str] = [DEFAULT_CHANNEL_LAYER]

    def run(self, result: Any = None) -> Any:
        with self._isolated_layers():
            return super().run(result)

    def debug(self) -> None:
        with self._isolated_layers():
            super().debug()

    @contextlib.contextmanager
    def _isolated_layers(self) -> Iterator[None]:
        replaced = {
            alias: channel_layers.set(alias, isolated_layer(alias))
            for alias in self.test_channel_aliases
        }
        try:
            yield
        finally:
            for alias, old in replaced.items():
                channel_layers.set(alias, old)

    def get_next_message(
        self, channel: str, alias: str = DEFAULT_CHANNEL_LAYER, require: bool = False
    ) -> Message | None:
        """Return the next message on *channel*, or None; with *require*, fail if none."""
        layer = channel_layers[alias]
        name, content = layer.receive([channel], block=False)
        if name is None:
            if require:
                self.fail(f"Expected a message on {channel!r} (layer {alias!r}); none was sent")
            return None
        return Message(content, name, layer)


class ChannelTestCase(ChannelTestMixin, TestCase):
    """A Django ``TestCase`` (each test in a transaction) with isolated channel layers."""


class TransactionChannelTestCase(ChannelTestMixin, TransactionTestCase):
    """A Django ``TransactionTestCase`` with isolated channel layers.

    Use it when consumers touch the database from other threads, such as
    async consumers run by a real :class:`~channels.worker.Worker`.
    """


class apply_routes:  # lower case: it is used like a function, as in 1.x
    """Serve *routes* on each of *aliases* for the duration of a test.

    A context manager, a function decorator, or a ``TestCase`` class
    decorator (the routes then apply to each test, after its layers are set
    up)::

        with apply_routes([route("a.b", consumer)]):
            ...

        with apply_routes(route("a.b", consumer)):  # a single route
            ...

        @apply_routes([Chat.as_route(path=r"^/chat/$")], aliases=["default", "other"])
        class ChatTests(ChannelTestCase): ...
    """

    def __init__(self, routes: Any, aliases: Iterable[str] = (DEFAULT_CHANNEL_LAYER,)) -> None:
        # A routing (list, dict, dotted path), or one route on its own, as 1.x took.
        self.routes = routes if isinstance(routes, list | tuple | dict | str) else [routes]
        self.aliases = list(aliases)
        self._saved: list[list[tuple[ChannelLayerWrapper, Any]]] = []

    def __enter__(self) -> apply_routes:
        saved = []
        for alias in self.aliases:
            layer = channel_layers[alias]
            saved.append((layer, layer.routing))
            layer.routing = self.routes
        self._saved.append(saved)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for layer, routing in self._saved.pop():
            layer.routing = routing

    @overload
    def __call__(self, target: C) -> C: ...

    @overload
    def __call__(self, target: F) -> F: ...

    def __call__(self, target: Any) -> Any:
        if isinstance(target, type):
            return self._decorate_class(target)
        if inspect.iscoroutinefunction(target):
            raise TypeError("apply_routes cannot decorate async functions; use it with `with`")
        func: Callable[..., Any] = target

        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return inner

    def _decorate_class(self, cls: C) -> C:
        if not hasattr(cls, "setUp") or not hasattr(cls, "addCleanup"):
            raise TypeError("apply_routes decorates test functions and TestCase classes")
        set_up = cls.setUp
        routes, aliases = self.routes, self.aliases

        # setUp runs once the test's layers are in place; cleanups run after tearDown.
        def setUp(test: Any) -> None:
            applied = apply_routes(routes, aliases).__enter__()
            test.addCleanup(applied.__exit__, None, None, None)
            set_up(test)

        cls.setUp = setUp
        return cls
