"""``BaseConsumer``: class-based consumers, one instance per message.

A class-based consumer names the channels it serves in ``method_mapping`` and
is routed with ``route_class(MyConsumer, path=...)`` (or
``MyConsumer.as_route(path=...)``)::

    class Counter(BaseConsumer):
        method_mapping = {"counter.add": "add"}
        channel_session = True

        def add(self, message, **kwargs):
            message.channel_session["n"] = message.channel_session.get("n", 0) + 1

The router asks the class for its entry point with :meth:`as_consumer`; the
worker calls it as ``consumer(message, **kwargs)``. It builds a new instance
for the message and runs the handler that :meth:`get_handler` returns, so
session and ordering decorators wrap the dispatch exactly as they wrap
function consumers. :class:`AsyncBaseConsumer`'s entry point is a coroutine
function, which is how the worker knows to await it on its event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from ..auth import channel_session_user
from ..message import Message
from ..routing import RouteClass, route_class
from ..sessions import channel_session

__all__ = ["AsyncBaseConsumer", "BaseConsumer"]

Handler = Callable[..., Any]


class BaseConsumer:
    """Dispatch each message to the method ``method_mapping`` names for its channel.

    Override :meth:`get_handler` to wrap the dispatch in more decorators;
    subclasses call ``super().get_handler()`` and wrap what it returns.
    """

    #: ``{channel name: method name}``; the channels this consumer is routed on.
    method_mapping: ClassVar[dict[str, str]] = {}
    #: Give handlers ``message.channel_session``.
    channel_session: ClassVar[bool] = False
    #: Give handlers ``message.channel_session`` and ``message.user`` from it.
    channel_session_user: ClassVar[bool] = False

    def __init__(self, message: Message, **kwargs: Any) -> None:
        self.message = message
        self.kwargs = kwargs

    @classmethod
    def channel_names(cls) -> set[str]:
        """Return the channels this consumer serves (the keys of ``method_mapping``)."""
        return set(cls.method_mapping)

    @classmethod
    def as_route(cls, **filters: Any) -> RouteClass:
        """Return a route to this consumer on its channels, with routing *filters*."""
        return route_class(cls, **filters)

    @classmethod
    def as_consumer(cls) -> Handler:
        """Return the callable the worker runs: ``consumer(message, **kwargs)``."""

        def consumer(message: Message, **kwargs: Any) -> Any:
            return cls(message, **kwargs).run()

        return _named_after(consumer, cls)

    def run(self) -> Any:
        """Handle ``self.message`` through the decorated handler."""
        return self.get_handler()(self.message, **self.kwargs)

    def get_handler(self) -> Handler:
        """Return :meth:`dispatch` wrapped in the session decorators the options ask for."""
        handler: Handler = self.dispatch
        if self.channel_session_user:
            handler = channel_session_user(handler)
        elif self.channel_session:
            handler = channel_session(handler)
        return handler

    def method_name(self, message: Message) -> str:
        """Return the name of the method that handles *message*."""
        try:
            return self.method_mapping[message.channel.name]
        except KeyError:
            raise ValueError(
                f"{type(self).__name__} has no method for {message.channel.name!r} in its "
                "method_mapping"
            ) from None

    def dispatch(self, message: Message, **kwargs: Any) -> Any:
        """Call the method ``method_mapping`` names for the message's channel."""
        return getattr(self, self.method_name(message))(message, **kwargs)


class AsyncBaseConsumer(BaseConsumer):
    """A :class:`BaseConsumer` whose handlers are coroutines, awaited on the worker's loop.

    Use ``Channel.asend``/``Group.asend`` in handlers, and ``sync_to_async``
    for the ORM. Many instances wait at once in one worker process.
    """

    @classmethod
    def as_consumer(cls) -> Callable[..., Awaitable[Any]]:
        async def consumer(message: Message, **kwargs: Any) -> Any:
            return await cls(message, **kwargs).run()

        return _named_after(consumer, cls)

    async def run(self) -> Any:  # type: ignore[override]
        return await self.get_handler()(self.message, **self.kwargs)

    async def dispatch(self, message: Message, **kwargs: Any) -> Any:  # type: ignore[override]
        return await getattr(self, self.method_name(message))(message, **kwargs)


def _named_after(consumer: Handler, cls: type) -> Handler:
    # The worker logs errors under the consumer's name: make it the class's.
    consumer.__module__ = cls.__module__
    consumer.__qualname__ = cls.__qualname__
    consumer.__name__ = cls.__name__
    consumer.__doc__ = cls.__doc__
    return consumer
