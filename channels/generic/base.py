"""``BaseConsumer`` and ``AsyncBaseConsumer``: class-based consumers, one instance per message.

A class-based consumer names the channels it serves in ``method_mapping`` and
is routed with ``route_class(MyConsumer, path=...)`` (or
``MyConsumer.as_route(path=...)``)::

    class Counter(BaseConsumer):
        method_mapping = {"counter.add": "add"}
        channel_session = True

        def add(self, message, **kwargs):
            message.channel_session["n"] = message.channel_session.get("n", 0) + 1

The router asks the class for its entry point with ``as_consumer()``; the
worker calls it as ``consumer(message, **kwargs)``.

The two flavours are siblings over :class:`ConsumerCore`, which holds what
they share and does no I/O: the channels, the routes, and the lookup of a
message's handler with its session decorators. Only running differs. As in
1.x, building a :class:`BaseConsumer` handles the message: ``MyConsumer(message)``
runs :meth:`~BaseConsumer.dispatch`, so 1.x tests that construct consumers
keep working, and the entry point returns the instance, so the test client
can hand it back. An :class:`AsyncBaseConsumer` cannot run in a constructor:
building one only keeps the message, and its entry point, a coroutine function
(which is how the worker knows to await it), awaits :meth:`~AsyncBaseConsumer.run`.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from ..auth import channel_session_user
from ..message import Message
from ..routing import RouteClass, route_class
from ..sessions import channel_session

__all__ = ["AsyncBaseConsumer", "BaseConsumer", "ConsumerCore"]

Handler = Callable[..., Any]
C = TypeVar("C", bound=Callable[..., Any])


class ConsumerCore:
    """What sync and async class-based consumers share: routing and handler lookup, no I/O.

    Subclass :class:`BaseConsumer` or :class:`AsyncBaseConsumer`, not this.
    Override :meth:`get_handler` to wrap the handlers in more decorators;
    subclasses call ``super().get_handler(message, **kwargs)`` and wrap what
    it returns. To route in another way, override :meth:`channel_names` (the
    channels must not change while a worker runs) and ``dispatch``.
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
    def as_route(cls, attrs: dict[str, Any] | None = None, **filters: Any) -> RouteClass:
        """Return a route to this consumer on its channels, with routing *filters*.

        *attrs* (a dict, also accepted positionally as in 1.x) gives the route
        a subclass with those class attributes, so one consumer class can be
        routed twice with different options.
        """
        target: type[ConsumerCore] = cls
        if attrs is not None:
            if not isinstance(attrs, dict):
                raise TypeError(
                    f"{cls.__name__}.as_route(attrs=...) takes a dict of class attributes, "
                    f"not {type(attrs).__name__}; pass routing filters as keyword arguments"
                )
            if attrs:
                body = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, **attrs}
                target = types.new_class(cls.__name__, (cls,), exec_body=lambda ns: ns.update(body))
        return route_class(target, **filters)

    @classmethod
    def as_consumer(cls) -> Handler:
        """Return the callable the worker runs: ``consumer(message, **kwargs)``."""
        raise NotImplementedError(
            "as_consumer() must be implemented by a consumer class: subclass BaseConsumer "
            "or AsyncBaseConsumer, not ConsumerCore"
        )

    def get_handler(self, message: Message | None = None, **kwargs: Any) -> Handler:
        """Return the method for *message*'s channel, wrapped in the session decorators.

        Override it to add decorators: call ``super().get_handler(message,
        **kwargs)`` and wrap what it returns (1.x overrides that take
        ``*args, **kwargs`` work unchanged).
        """
        handler: Handler = getattr(self, self._handler_name(message or self.message))
        if self.channel_session_user:
            handler = channel_session_user(handler)
        elif self.channel_session:
            handler = channel_session(handler)
        return handler

    def _handler_name(self, message: Message) -> str:
        # Private: "method_name" is a name users give their own handlers (1.x docs).
        try:
            return self.method_mapping[message.channel.name]
        except KeyError:
            raise ValueError(
                f"{type(self).__name__} has no method for {message.channel.name!r} in its "
                "method_mapping"
            ) from None


class BaseConsumer(ConsumerCore):
    """Dispatch each message to the method ``method_mapping`` names for its channel.

    Constructing one handles the message, as in 1.x. Override
    :meth:`dispatch` to route in another way.
    """

    def __init__(self, message: Message, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.run()

    @classmethod
    def as_consumer(cls) -> Callable[..., BaseConsumer]:
        """Return the callable the worker runs: ``consumer(message, **kwargs)``.

        It returns the instance that handled the message.
        """

        def consumer(message: Message, **kwargs: Any) -> BaseConsumer:
            return cls(message, **kwargs)  # constructing it handles the message

        return _named_after(consumer, cls)

    def run(self) -> Any:
        """Handle ``self.message`` with ``self.kwargs``."""
        return self.dispatch(self.message, **self.kwargs)

    def dispatch(self, message: Message, **kwargs: Any) -> Any:
        """Call the handler :meth:`get_handler` returns for *message*."""
        return self.get_handler(message, **kwargs)(message, **kwargs)


class AsyncBaseConsumer(ConsumerCore):
    """A class-based consumer whose handlers are coroutines, awaited on the worker's loop.

    Use ``Channel.asend``/``Group.asend`` in handlers, and ``sync_to_async``
    for the ORM. Many instances wait at once in one worker process.
    Constructing one only keeps the message: the entry point awaits :meth:`run`.
    """

    @classmethod
    def as_consumer(cls) -> Callable[..., Awaitable[AsyncBaseConsumer]]:
        """Return the coroutine function the worker awaits: ``consumer(message, **kwargs)``.

        It returns the instance that handled the message.
        """

        async def consumer(message: Message, **kwargs: Any) -> AsyncBaseConsumer:
            instance = cls(message, **kwargs)
            await instance.run()
            return instance

        return _named_after(consumer, cls)

    async def run(self) -> Any:
        """Handle ``self.message`` with ``self.kwargs``."""
        return await self.dispatch(self.message, **self.kwargs)

    async def dispatch(self, message: Message, **kwargs: Any) -> Any:
        """Await the handler :meth:`get_handler` returns for *message*."""
        return await self.get_handler(message, **kwargs)(message, **kwargs)


def _named_after(consumer: C, cls: type) -> C:
    # The worker logs errors under the consumer's name: make it the class's.
    consumer.__module__ = cls.__module__
    consumer.__qualname__ = cls.__qualname__
    consumer.__name__ = cls.__name__
    consumer.__doc__ = cls.__doc__
    return consumer
