"""Run one message's consumer: signals, outbox, exception policy, in that one place.

The worker (:mod:`channels.worker`) and the test client
(:class:`channels.test.InlineWorker`) both hand each routed message to a
:class:`Runner`; only where and when they call it differs. A run:

1. makes the message's layer the one that ``Channel``/``Group`` made without an
   alias use (see :data:`channels.channel.consuming`), for the whole run;
2. sends ``consumer_started``;
3. runs the consumer inside an :class:`~channels.outbox.Outbox`;
4. if it raised, drops its queued sends, unless the exception is an answer
   (:func:`keeps_sends`), and notes whether it had already replied;
5. sends what is queued (the worker's sync runs take the next message in the
   same round trip);
6. if it raised, applies the exception policy (:meth:`Runner.handle_exception`:
   ``ConsumeLater`` puts the message back, ``ChannelSocketException`` runs, a
   failed connect is refused, a failed ``http.request`` gets a 500, the rest
   are logged);
7. runs the outbox callbacks (e.g. ``enforce_ordering`` passing the turn);
8. sends ``consumer_finished``.

:meth:`Runner.run` and :meth:`Runner.arun` are the sync and async twins of
that sequence; steps 4 and 6-8 are shared helpers. An async run crosses to a
thread only for the sync parts: once for ``consumer_started`` and once for
steps 6-8 together, each skipped when it has nothing to do. Both hops use
``sync_to_async``'s thread-sensitive thread, the one the consumer's own
``sync_to_async`` database calls use, so ``close_old_connections`` (connected
to both signals) checks the connections that the consumer uses.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404

from .channel import consuming
from .exceptions import ChannelSocketException, ConsumeLater, DenyConnection
from .message import Message
from .outbox import Outbox
from .signals import consumer_finished, consumer_started
from .unanswered import ConnectWatch, replied

__all__ = [
    "Runner",
    "Taken",
    "consumer_name",
    "is_async_consumer",
    "keeps_sends",
]

logger = logging.getLogger("channels.worker")

#: A message taken off the layer with a run's sends: ``(channel, content)`` or ``(None, None)``.
Taken = tuple[str | None, Any]
NOTHING_TAKEN: Taken = (None, None)

#: Asked after a sync consumer returns: the channels to take the next message from, or None.
Poll = Callable[[], list[str] | None]

#: Exceptions Django's handler answers with a 4xx, as the client's mistake rather than a failure.
CLIENT_ERRORS = (SuspiciousOperation, BadRequest, PermissionDenied, Http404)

#: (the exception a consumer raised, whether it had sent to its reply channel first)
Failure = tuple[Exception, bool]


def consumer_name(consumer: Any) -> str:
    """Return the dotted name of *consumer*, for logs and the routing listing."""
    module = getattr(consumer, "__module__", None)
    name = getattr(consumer, "__qualname__", None) or type(consumer).__qualname__
    return f"{module}.{name}" if module else name


def keeps_sends(exc: Exception) -> bool:
    """Return True if a consumer that raised *exc* still sends what it queued.

    A ``ChannelSocketException`` is how a consumer answers (an error frame,
    then a close), so its sends are part of the answer. Anything else is a
    failure, and a failed consumer sends nothing: see :mod:`channels.outbox`.
    """
    return isinstance(exc, ChannelSocketException)


def _is_async_uncached(consumer: Any) -> bool:
    if isinstance(consumer, type):  # a class is called to make an instance, not awaited
        return False
    return iscoroutinefunction(consumer) or iscoroutinefunction(
        getattr(consumer, "__call__", None)  # noqa: B004 - async __call__ on instances
    )


# Routing is fixed for a worker's life: look each consumer up once.
_is_async_cached = functools.lru_cache(maxsize=1024)(_is_async_uncached)


def is_async_consumer(consumer: Any) -> bool:
    """Return True if *consumer* is awaited (an ``async def`` function or ``__call__``)."""
    try:
        return _is_async_cached(consumer)
    except TypeError:  # an unhashable callable
        return _is_async_uncached(consumer)


class Runner:
    """Run consumers, one message at a time per call, with the worker's policy.

    Subclass it to change what happens to a consumer's exception (the test
    client's runner hands failures to the test): override
    :meth:`handle_exception`. One runner may serve many threads and an event
    loop at once; it keeps no per-message state.
    """

    #: Times ``ConsumeLater`` may put a message back before it is dropped.
    message_retries = 10

    def __init__(self, *, sender: type = object, message_retries: int | None = None) -> None:
        #: The ``sender`` of ``consumer_started``/``consumer_finished`` (the worker's class).
        self.sender = sender
        if message_retries is not None:
            self.message_retries = message_retries
        self.connect_watch = ConnectWatch()

    # The sequence, in its two twins ----------------------------------------

    def run(
        self, consumer: Any, message: Message, kwargs: dict[str, Any], poll: Poll | None = None
    ) -> Taken:
        """Run the sync *consumer* of *message* and everything around it; never raise for it.

        If *poll* returns channels once the consumer has returned, the next
        message on them may be taken in the round trip of its sends, and is
        returned (else ``(None, None)``). An exception of a signal receiver
        ``consumer_started`` propagates, before the consumer runs.
        """
        layer = message.channel_layer
        token = consuming.set(layer)
        try:
            consumer_started.send(sender=self.sender, message=message)
            outbox = Outbox()
            failure: Failure | None = None
            taken = NOTHING_TAKEN
            try:
                try:
                    with outbox:
                        consumer(message, **kwargs)
                except Exception as exc:
                    failure = exc, self._settle_failure(outbox, exc, message)
                    outbox.send_pending()
                else:
                    if message.channel.name == "websocket.connect":
                        self._check_answered(outbox, consumer, message)
                    channels = poll() if poll is not None else None
                    if channels is None:
                        outbox.send_pending()
                    else:
                        taken = outbox.send_and_poll(layer, channels)
            finally:
                outbox.discard()  # only left over when a BaseException cut the run short
                self._finish(consumer, message, outbox, failure)
        finally:
            consuming.reset(token)
        return taken

    async def arun(self, consumer: Any, message: Message, kwargs: dict[str, Any]) -> None:
        """Async twin of :meth:`run`, for ``async def`` consumers (it takes no next message)."""
        token = consuming.set(message.channel_layer)
        try:
            if consumer_started.has_listeners(self.sender):
                await sync_to_async(consumer_started.send)(sender=self.sender, message=message)
            outbox = Outbox()
            failure: Failure | None = None
            try:
                try:
                    with outbox:
                        await consumer(message, **kwargs)
                except Exception as exc:
                    failure = exc, self._settle_failure(outbox, exc, message)
                else:
                    if message.channel.name == "websocket.connect":
                        self._check_answered(outbox, consumer, message)
                await outbox.asend_pending()
            finally:
                outbox.discard()  # only left over when a BaseException cut the run short
                if (
                    failure is not None
                    or outbox.callbacks
                    or consumer_finished.has_listeners(self.sender)
                ):
                    await sync_to_async(self._finish)(consumer, message, outbox, failure)
        finally:
            consuming.reset(token)

    # The shared steps --------------------------------------------------------

    @staticmethod
    def _settle_failure(outbox: Outbox, exc: Exception, message: Message) -> bool:
        """Drop a failed consumer's queued sends unless *exc* keeps them; return if it replied."""
        sent = replied(outbox, message)
        if not keeps_sends(exc):
            outbox.discard()
        return sent

    def _check_answered(self, outbox: Outbox, consumer: Any, message: Message) -> None:
        """Warn (once per consumer) if a ``websocket.connect`` consumer left its socket waiting."""
        self.connect_watch.check(outbox, consumer_name(consumer), message)

    def _finish(
        self, consumer: Any, message: Message, outbox: Outbox, failure: Failure | None
    ) -> None:
        """Apply the exception policy, run the outbox callbacks, send ``consumer_finished``.

        The outbox has nothing left to send: the policy sends at once.
        """
        try:
            if failure is not None:
                self.handle_exception(failure[0], consumer, message, replied=failure[1])
        finally:
            if outbox.callbacks:
                outbox.run_callbacks()
            try:
                consumer_finished.send(sender=self.sender, message=message)
            except Exception:  # a message taken with the sends must not be lost
                logger.exception("A consumer_finished receiver failed")

    # The exception policy ----------------------------------------------------

    def handle_exception(
        self, exc: Exception, consumer: Any, message: Message, replied: bool = False
    ) -> None:
        """Deal with an exception a consumer raised; never re-raise it.

        *replied* says whether the consumer sent to its reply channel (at once)
        before it raised: a failed ``http.request`` consumer that did gets no 500.
        """
        channel = message.channel.name
        if isinstance(exc, ConsumeLater):
            self.consume_later(message)
        elif isinstance(exc, ChannelSocketException):
            try:
                exc.run(message)
            except Exception:
                logger.exception(
                    "%s raised %s on %s, and its run() failed",
                    consumer_name(consumer),
                    type(exc).__name__,
                    channel,
                )
                if channel == "websocket.connect":
                    self.refuse(message)
        elif isinstance(exc, DenyConnection):
            if channel == "websocket.connect" and message.reply_channel is not None:
                message.reply_channel.send({"close": True}, immediately=True)
            else:
                logger.error(
                    "%s raised DenyConnection on %s; it only works on websocket.connect",
                    consumer_name(consumer),
                    channel,
                )
        elif channel == "http.request" and isinstance(exc, CLIENT_ERRORS):
            # The client's mistake, not the consumer's: Django logs it (django.security.*).
            logger.info(
                "%s raised %s on http.request: answered as Django would (4xx)",
                consumer_name(consumer),
                type(exc).__name__,
            )
            if not replied:
                self.answer_server_error(exc, message)
        else:
            logger.exception(
                "Error in consumer %s for a message on %s",
                consumer_name(consumer),
                channel,
                exc_info=exc,
            )
            if channel == "websocket.connect":
                self.refuse(message)
            elif channel == "http.request" and not replied:
                self.answer_server_error(exc, message)

    def answer_server_error(self, exc: Exception, message: Message) -> None:
        """Answer the request of a failed ``http.request`` consumer at once, as Django would.

        400 for a ``SuspiciousOperation`` or ``BadRequest``, 403 for
        ``PermissionDenied``, 404 for ``Http404``, else a 500: Django's
        technical 500 page under ``DEBUG``, its ``server_error`` page
        otherwise. Without this the client would wait for the interface
        server's timeout, then get a 503.
        """
        from .handler import answer_exception  # Django's view layer, loaded only when needed

        try:
            answer_exception(exc, message)
        except Exception:
            logger.exception("Could not answer a failed http.request")

    def refuse(self, message: Message) -> None:
        """Refuse the socket of a failed ``websocket.connect`` (403), or close it if open.

        Its accept, if it queued one, was dropped with its other sends; without
        this the client would wait for the handshake timeout.
        """
        if message.reply_channel is None:
            return
        try:
            message.reply_channel.send({"close": True}, immediately=True)
        except Exception:
            logger.exception("Could not refuse the socket of a failed websocket.connect")

    def consume_later(self, message: Message) -> None:
        """Put *message* back at the end of its channel, a bounded number of times."""
        content = dict(message.content)
        retries = content.get("__retries__", 0) + 1
        if retries > self.message_retries:
            logger.warning(
                "Dropped a message on %s: still ConsumeLater after %d retries",
                message.channel.name,
                self.message_retries,
            )
            return
        content["__retries__"] = retries
        outbox = Outbox()
        outbox.add(message.channel_layer, "send", message.channel.name, content)
        outbox.flush()
