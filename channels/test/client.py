"""``Client``: send messages and run their consumers in the test's own thread."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from django.db import close_old_connections

from ..asgi import DEFAULT_CHANNEL_LAYER, ChannelLayerWrapper, channel_layers
from ..channel import Group
from ..exceptions import ChannelSocketException, ConsumeLater, DenyConnection
from ..message import Message
from ..runner import NOTHING_TAKEN, Runner, Taken, is_async_consumer
from ..signals import consumer_finished, consumer_started
from ..worker import Worker

__all__ = ["Client", "InlineRunner", "InlineWorker"]

Found = tuple[Any, Message] | None


class InlineRunner(Runner):
    """The worker's :class:`~channels.runner.Runner`, handing a consumer's failure to the test.

    ``ConsumeLater``, ``DenyConnection`` and ``ChannelSocketException`` are
    answered as in production (a ``ChannelSocketException`` whose ``run()``
    fails, e.g. a ``WebsocketCloseException`` outside websockets, is a
    failure); any other exception is kept in :attr:`errors` for the caller.
    """

    def __init__(self, *, sender: type = object, message_retries: int | None = None) -> None:
        super().__init__(sender=sender, message_retries=message_retries)
        self.errors: list[Exception] = []

    def handle_exception(
        self, exc: Exception, consumer: Any, message: Message, replied: bool = False
    ) -> None:
        if isinstance(exc, ChannelSocketException):
            try:
                exc.run(message)
            except Exception as failed:
                self.errors.append(failed)
        elif isinstance(exc, ConsumeLater | DenyConnection):
            super().handle_exception(exc, consumer, message, replied)
        else:
            self.errors.append(exc)


class InlineWorker(Worker):
    """A :class:`Worker` that runs one message to completion in the caller's thread.

    Async consumers run under ``async_to_sync``, so their ``sync_to_async``
    database calls come back to the test's thread and see its transaction.
    A consumer's exception (other than ``ConsumeLater``, ``DenyConnection``
    and ``ChannelSocketException``, which the worker handles) is raised to
    the caller.
    """

    #: It handles one message only: never take the next one off the layer.
    poll_with_sends = False
    listens = False
    runner_class = InlineRunner
    runner: InlineRunner

    def __init__(self, channel_layer: ChannelLayerWrapper) -> None:
        super().__init__(channel_layer, channel_layer.router)
        #: The consumer and message of the last :meth:`handle`, if one was routed.
        self.ran: Found = None
        #: What the consumer of the last :meth:`handle` returned (None if it raised).
        self.result: Any = None

    @property
    def errors(self) -> list[Exception]:
        """The failures of consumers not yet raised to the caller."""
        return self.runner.errors

    def handle(self, channel: str, content: dict[str, Any]) -> Taken:
        """Route the message and run its consumer, as ``Worker.handle`` does, then raise.

        It never takes the next message (see ``poll_with_sends``).
        """
        self.ran = None
        self.result = None
        routed = self.route(channel, content)
        if routed is None:
            return NOTHING_TAKEN
        message, consumer, kwargs = routed
        self.ran = consumer, message
        with _test_connections():
            if is_async_consumer(consumer):
                async_to_sync(self.runner.arun)(
                    self._keeping_result_async(consumer), message, kwargs
                )
            else:
                self.runner.run(self._keeping_result(consumer), message, kwargs)
        if self.errors:
            raise self.errors.pop()
        return NOTHING_TAKEN

    def _keeping_result(self, consumer: Any) -> Any:
        @functools.wraps(consumer, updated=())
        def run(message: Message, **kwargs: Any) -> Any:
            self.result = consumer(message, **kwargs)
            return self.result

        return run

    def _keeping_result_async(self, consumer: Any) -> Any:
        @functools.wraps(consumer, updated=())
        async def run(message: Message, **kwargs: Any) -> Any:
            self.result = await consumer(message, **kwargs)
            return self.result

        return run


@contextmanager
def _test_connections() -> Iterator[None]:
    # The worker closes stale database connections around each consumer; in a
    # test that would close the connection holding the test's transaction
    # (Django's test client unhooks request_started the same way).
    hooks = [(consumer_started, "channels.db"), (consumer_finished, "channels.db.finished")]
    unhooked = [(signal, uid) for signal, uid in hooks if signal.disconnect(dispatch_uid=uid)]
    try:
        yield
    finally:
        for signal, uid in unhooked:
            signal.connect(close_old_connections, dispatch_uid=uid)


class Client:
    """Talk to consumers as an interface server would, without one.

    It has a reply channel of its own (a process-specific name, so replies
    to other clients never reach it). :meth:`send` puts a message on a
    channel; :meth:`consume` takes it off and runs the routed consumer right
    here, with the worker's outbox, signals and error handling.
    """

    #: Where the reply channels of test clients start.
    reply_prefix = "test.client"

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER) -> None:
        self.alias = alias
        self.reply_prefix = f"{self.reply_prefix}.{secrets.token_hex(6)}!"
        self.reply_channel = self.reply_prefix + "reply"

    @property
    def channel_layer(self) -> ChannelLayerWrapper:
        return channel_layers[self.alias]

    def send(self, to: str, content: dict[str, Any] | None = None) -> None:
        """Send *content* to channel *to*, with this client's ``reply_channel``."""
        message = dict(content or {})
        message.setdefault("reply_channel", self.reply_channel)
        self.channel_layer.send(to, message)

    def consume(self, channel: str, fail_on_none: bool = True) -> Any:
        """Run the consumer of the next message on *channel*; return what it returned.

        A class-based consumer returns its instance, so a test can look at
        what the handler set on it.

        Raise ``AssertionError`` if there is no message, or no consumer for it,
        unless *fail_on_none* is false (then return None).
        """
        return self._consume(channel, fail_on_none)[1]

    def _consume(self, channel: str, fail_on_none: bool) -> tuple[bool, Any]:
        """Return (whether a consumer ran, what it returned)."""
        layer = self.channel_layer
        name, content = layer.receive([channel], block=False)
        if name is None:
            if fail_on_none:
                raise AssertionError(f"No message on {channel!r} to consume")
            return False, None
        worker = InlineWorker(layer)
        worker.handle(name, content)
        if worker.ran is None:
            if fail_on_none:
                raise AssertionError(f"No consumer is routed for the message on {channel!r}")
            return False, None
        return True, worker.result

    def send_and_consume(
        self, channel: str, content: dict[str, Any] | None = None, fail_on_none: bool = True
    ) -> Any:
        """:meth:`send` then :meth:`consume`; return what the consumer returned."""
        self.send(channel, content)
        return self.consume(channel, fail_on_none=fail_on_none)

    def receive(self) -> dict[str, Any] | None:
        """Return the next message sent to this client's reply channel, or None."""
        content: dict[str, Any] | None
        _, content = self.channel_layer.receive([self.reply_prefix], block=False)
        return content

    def join_group(self, name: str) -> None:
        """Add this client's reply channel to group *name*."""
        Group(name, channel_layer=self.channel_layer).add(self.reply_channel)
