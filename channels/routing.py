"""Channel routing: which consumer handles which message.

A routing is a list (or, in the old style, a dict) of routes::

    channel_routing = [
        route("websocket.connect", ws_connect, path=r"^/chat/(?P<room>\\w+)/$"),
        route("websocket.receive", "myapp.consumers.ws_message"),
        include("myapp.routing.http_routing", path=r"^/api"),
    ]

Keyword filters are regular expressions matched with ``re.match`` against the
message's keys; named groups become keyword arguments of the consumer. The
first matching route wins. Mistakes are ``ImproperlyConfigured`` errors when
the routing is built, naming the route, not when the first message arrives.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .layers.names import require_valid_channel_name

Consumer = Callable[..., Any]
Match = tuple[Consumer, dict[str, Any]]


def _compile_filters(owner: str, filters: dict[str, Any]) -> dict[str, re.Pattern[str]]:
    compiled = {}
    for key, pattern in filters.items():
        if isinstance(pattern, bytes):
            pattern = pattern.decode("ascii")
        try:
            regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        except re.error as exc:
            raise ImproperlyConfigured(
                f"{owner}: invalid regex for {key}={pattern!r}: {exc}"
            ) from exc
        if not isinstance(regex, re.Pattern):
            raise ImproperlyConfigured(f"{owner}: the filter {key}= must be a regex string")
        if regex.groups != len(regex.groupindex):
            raise ImproperlyConfigured(
                f"{owner}: the filter {key}={regex.pattern!r} has positional groups; use named "
                "groups like (?P<room>...), they become the consumer's keyword arguments"
            )
        compiled[key] = regex
    return compiled


def _match_filters(
    filters: dict[str, re.Pattern[str]], content: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """Return (kwargs, {key: unmatched rest}) if every filter matches *content*."""
    kwargs: dict[str, Any] = {}
    rests: dict[str, str] = {}
    for key, regex in filters.items():
        value = content.get(key)
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return None
        if not isinstance(value, str):
            return None
        found = regex.match(value)
        if found is None:
            return None
        kwargs.update(found.groupdict())
        rests[key] = value[found.end() :]
    return kwargs, rests


class Route:
    """Send messages on *channels* that pass every filter to *consumer*."""

    def __init__(self, channels: str | Iterable[str], consumer: Any, **filters: Any) -> None:
        names = [channels] if isinstance(channels, str) else list(channels)
        self.description = f"route({names if len(names) != 1 else names[0]!r}, {consumer!r})"
        try:
            self.channels = {require_valid_channel_name(name) for name in names}
        except TypeError as exc:
            raise ImproperlyConfigured(f"{self.description}: {exc}") from exc
        if not self.channels:
            raise ImproperlyConfigured(f"{self.description}: name at least one channel")
        self.consumer = self._resolve(consumer)
        self.filters = _compile_filters(self.description, filters)

    def _resolve(self, consumer: Any) -> Consumer:
        if isinstance(consumer, str):
            try:
                consumer = import_string(consumer)
            except ImportError as exc:
                raise ImproperlyConfigured(
                    f"{self.description}: cannot import the consumer: {exc}"
                ) from exc
        if not callable(consumer):
            raise ImproperlyConfigured(f"{self.description}: the consumer is not callable")
        resolved: Consumer = consumer
        return resolved

    def __repr__(self) -> str:
        return self.description

    def channel_names(self) -> set[str]:
        return set(self.channels)

    def match(self, message: Any) -> Match | None:
        if message.channel.name not in self.channels:
            return None
        matched = _match_filters(self.filters, message.content)
        return None if matched is None else (self.consumer, matched[0])


class RouteClass(Route):
    """Route to a class-based consumer; its channels come from ``channel_names()``.

    A class with an ``as_consumer()`` classmethod is run through the callable
    it returns (a coroutine function for async consumers, so the worker awaits
    it); any other class is called with the message, as in 1.x.
    """

    def __init__(self, consumer: Any, **filters: Any) -> None:
        self.description = f"route_class({consumer!r})"
        self.consumer_class = self._resolve(consumer)
        names = getattr(self.consumer_class, "channel_names", None)
        if names is None:
            raise ImproperlyConfigured(f"{self.description}: the class has no channel_names()")
        entry_point = getattr(self.consumer_class, "as_consumer", None)
        target = entry_point() if callable(entry_point) else self.consumer_class
        super().__init__(list(names()), target, **filters)
        self.description = f"route_class({consumer!r})"


class Include:
    """Try the routes of another routing, after matching (and cutting off) a prefix."""

    def __init__(self, routing: Any, **filters: Any) -> None:
        self.description = f"include({routing!r})"
        if isinstance(routing, str):
            try:
                routing = import_string(routing)
            except ImportError as exc:
                raise ImproperlyConfigured(f"{self.description}: cannot import: {exc}") from exc
        self.routes = [_as_route(entry, self.description) for entry in _entries(routing)]
        self.filters = _compile_filters(self.description, filters)

    def __repr__(self) -> str:
        return self.description

    def channel_names(self) -> set[str]:
        return set().union(*(route.channel_names() for route in self.routes))

    def match(self, message: Any) -> Match | None:
        matched = _match_filters(self.filters, message.content)
        if matched is None:
            return None
        outer, rests = matched
        if rests:
            message = _Chopped(message, rests)
        for route in self.routes:
            found = route.match(message)
            if found is not None:
                return found[0], {**outer, **found[1]}
        return None


class _Chopped:
    """A view of a message with some keys replaced, for routes inside an include."""

    def __init__(self, message: Any, replaced: dict[str, str]) -> None:
        self.channel = message.channel
        self.content = {**message.content, **replaced}


def _entries(routing: Any) -> list[Any]:
    if isinstance(routing, dict):
        return [route(channel, consumer) for channel, consumer in routing.items()]
    if isinstance(routing, list | tuple):
        return list(routing)
    raise ImproperlyConfigured(
        f"A routing must be a list of routes (or a dict of channel: consumer), not {routing!r}"
    )


def _as_route(entry: Any, where: str) -> Any:
    if isinstance(entry, list | tuple | dict):
        return Include(entry)
    if callable(getattr(entry, "match", None)) and callable(getattr(entry, "channel_names", None)):
        return entry
    raise ImproperlyConfigured(
        f"{where}: {entry!r} is not a route; use route(), route_class() or include()"
    )


def route(channels: str | Iterable[str], consumer: Any, **filters: Any) -> Route:
    """Route *channels* to *consumer* (a callable or a dotted path), with filters."""
    return Route(channels, consumer, **filters)


def route_class(consumer: Any, **filters: Any) -> RouteClass:
    """Route a class-based consumer on the channels it names."""
    return RouteClass(consumer, **filters)


def include(routing: Any, **filters: Any) -> Include:
    """Include another routing (a list, a dict or a dotted path), with prefix filters."""
    return Include(routing, **filters)


#: What unrouted messages on the standard channels go to.
DEFAULT_CONSUMERS = {
    "http.request": "channels.handler.view_consumer",
    "websocket.connect": "channels.consumers.accept_connection",
    "websocket.receive": "channels.consumers.ignore",
    "websocket.disconnect": "channels.consumers.ignore",
}


class Router:
    """The routing a worker serves, with defaults for the standard channels."""

    def __init__(
        self, routing: Any, defaults: bool = True, http_consumer: Consumer | None = None
    ) -> None:
        self.root = Include(routing)
        self.defaults: dict[str, Consumer] = {}
        if defaults:
            self.defaults = {
                channel: import_string(path) for channel, path in DEFAULT_CONSUMERS.items()
            }
            if http_consumer is not None:
                self.defaults["http.request"] = http_consumer

    @property
    def channels(self) -> set[str]:
        """Every channel a worker must listen on."""
        return self.root.channel_names() | set(self.defaults)

    def match(self, message: Any) -> Match | None:
        found = self.root.match(message)
        if found is None and message.channel.name in self.defaults:
            return self.defaults[message.channel.name], {}
        return found
