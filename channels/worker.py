"""The worker: take messages off the layer and run their consumers.

Each worker thread blocks on one receive over every routed channel (no
polling), matches the message, and runs the consumer inside an
:class:`~channels.outbox.Outbox`, so its sends go out only if it succeeds.
One raise is an answer, not a failure, and keeps the sends: a
:class:`~channels.exceptions.ChannelSocketException`, whose ``run(message)``
then acts on the socket (1.x sent a consumer's sends even when it failed; we
do so only for this). A ``websocket.connect`` consumer that fails has its
socket refused at once, not left waiting for the handshake timeout, and a
failed ``http.request`` consumer is answered with a 500 at once (Django's
debug page under ``DEBUG``), not the interface server's 503 a minute later.
``async def`` consumers run on one event loop shared by the process, so a
worker can have many of them waiting at once. Nothing a consumer does, and no
hiccup of the layer, stops the worker; :meth:`Worker.stop` ends it gracefully.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fnmatch
import functools
import logging
import threading
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async

from .exceptions import ChannelSocketException, ConsumeLater, DenyConnection
from .layers.outage import OutageReport
from .message import Message
from .outbox import Outbox
from .routing import Router
from .signals import consumer_finished, consumer_started, worker_ready
from .unanswered import ConnectWatch, answer_server_error, replied

logger = logging.getLogger("channels.worker")

Callback = Callable[[str, Message, Any], None]

#: Whether the consumer whose exception is being handled sent to its reply channel first.
_replied: ContextVar[bool] = ContextVar("channels_worker_replied", default=False)


def consumer_name(consumer: Any) -> str:
    module = getattr(consumer, "__module__", None)
    name = getattr(consumer, "__qualname__", None) or type(consumer).__qualname__
    return f"{module}.{name}" if module else name


def filter_channels(
    channels: Iterable[str],
    only: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> list[str]:
    """Keep the channels matching any ``only`` glob and no ``exclude`` glob, sorted."""
    return sorted(_filtered(channels, list(only or ()), list(exclude or ())))


def _filtered(channels: Iterable[str], only: list[str], exclude: list[str]) -> list[str]:
    return [
        channel
        for channel in channels
        if (not only or any(fnmatch.fnmatchcase(channel, glob) for glob in only))
        and not any(fnmatch.fnmatchcase(channel, glob) for glob in exclude)
    ]


def _is_async(consumer: Any) -> bool:
    try:
        return _is_async_cached(consumer)
    except TypeError:  # an unhashable callable
        return _is_async_uncached(consumer)


def _is_async_uncached(consumer: Any) -> bool:
    if isinstance(consumer, type):  # a class is called to make an instance, not awaited
        return False
    return iscoroutinefunction(consumer) or iscoroutinefunction(
        getattr(consumer, "__call__", None)  # noqa: B004 - async __call__ on instances
    )


def keeps_sends(exc: Exception) -> bool:
    """Return True if a consumer that raised *exc* still sends what it queued.

    A ``ChannelSocketException`` is how a consumer answers (an error frame,
    then a close), so its sends are part of the answer. Anything else is a
    failure, and a failed consumer sends nothing: see :mod:`channels.outbox`.
    """
    return isinstance(exc, ChannelSocketException)


# Routing is fixed for a worker's life: look each consumer up once.
_is_async_cached = functools.lru_cache(maxsize=1024)(_is_async_uncached)


class Worker:
    """Serve a channel layer's routing with *threads* receive loops."""

    #: Times ``ConsumeLater`` may put a message back before it is dropped.
    message_retries = 10
    #: Seconds one blocking receive waits; a stop request is seen within this.
    receive_timeout = 1.0
    #: Longest pause between attempts to reach a layer that is down.
    max_reconnect_delay = 2.0
    #: Take the next message in the same round trip as a sync consumer's sends
    #: (only a worker that goes on to handle it may do so).
    poll_with_sends = True

    #: False for a worker that is handed its messages (the test client's) and
    #: never listens, so it may serve a routing with no channels.
    listens = True

    def __init__(
        self,
        channel_layer: Any,
        router: Router | None = None,
        *,
        only_channels: Iterable[str] | None = None,
        exclude_channels: Iterable[str] | None = None,
        threads: int = 1,
        callback: Callback | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError("a worker needs at least one thread")
        self.channel_layer = channel_layer
        # The layer's routing with the default consumers, unless told otherwise.
        self.router = router if router is not None else Router(channel_layer.resolve_routing())
        self.only_channels = list(only_channels or ())
        self.exclude_channels = list(exclude_channels or ())
        self.channels = sorted(self.apply_channel_filters(self.router.channels))
        if not self.channels and self.listens:
            raise ValueError(
                "No channels left to listen on: check the routing and the "
                "--only-channels / --exclude-channels globs"
            )
        self.threads = threads
        self.callback = callback
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        self._async_pending: set[concurrent.futures.Future[None]] = set()
        # Idents of the threads running a sync consumer now (set ops are atomic).
        self._busy: set[int] = set()
        self._connect_watch = ConnectWatch()
        self.outage = OutageReport(logger, repr(getattr(channel_layer, "alias", channel_layer)))

    def apply_channel_filters(self, channels: Iterable[str]) -> list[str]:
        """Return the *channels* this worker's ``only``/``exclude`` globs let through, in order.

        The 1.x name; :func:`filter_channels` is the same filter, sorted.
        """
        return _filtered(channels, self.only_channels, self.exclude_channels)

    # Running and stopping ------------------------------------------------

    def run(self) -> None:
        """Receive and consume until :meth:`stop`; then let running consumers finish."""
        extra = [
            threading.Thread(target=self._receive_loop, name=f"channels-worker-{n}", daemon=True)
            for n in range(1, self.threads)
        ]
        for thread in extra:
            thread.start()
        self._receive_loop()
        for thread in extra:
            thread.join()
        concurrent.futures.wait(list(self._async_pending))
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join()
            self._loop.close()

    def stop(self) -> None:
        """Ask every receive loop to stop after the message it is handling."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def running_consumers(self) -> int:
        """How many consumers are running now (what a graceful stop waits for)."""
        return len(self._busy) + len(self._async_pending)

    def check_layer(self) -> bool:
        """Make one harmless call to the layer, reporting a failure as the receive loop would.

        Run at start, so a layer that is down or misconfigured is reported
        before the first message is waited for. Return whether it answered.
        """
        probe = getattr(self.channel_layer, "global_statistics", None)
        if probe is None or "statistics" not in getattr(self.channel_layer, "extensions", ()):
            return True
        try:
            probe()
        except Exception as exc:
            self.outage.failed(exc, self.max_reconnect_delay)
            return False
        return True

    def _receive_loop(self) -> None:
        worker_ready.send(sender=type(self), worker=self)
        delay = 0.1
        # A message taken in the same round trip as the last consumer's sends.
        taken: tuple[str | None, Any] = (None, None)
        while True:
            channel, content = taken
            taken = (None, None)
            if channel is None:
                if self._stopping.is_set():  # never with a taken message in hand
                    break
                try:
                    channel, content = self.channel_layer.receive(
                        self.channels, block=True, timeout=self.receive_timeout
                    )
                except Exception as exc:  # down, misconfigured or broken: back off, say it once
                    self.outage.failed(exc, self.max_reconnect_delay)
                    self._stopping.wait(delay)
                    delay = min(delay * 2, self.max_reconnect_delay)
                    continue
                delay = 0.1
                self.outage.succeeded()
            if channel is not None:
                try:
                    taken = self.handle(channel, content)
                except Exception:  # a worker never dies of one message
                    logger.exception("Failed to handle a message on %s", channel)

    # Handling one message ------------------------------------------------

    def handle(self, channel: str, content: dict[str, Any]) -> tuple[str | None, Any]:
        """Route one message and run (or schedule) its consumer.

        Returns the next message when a sync consumer's sends could take it
        in the same round trip, else ``(None, None)``.
        """
        message = Message(content, channel, self.channel_layer)
        found = self.router.match(message)
        if found is None:
            logger.debug("No route for a message on %s; dropped", channel)
            return None, None
        consumer, kwargs = found
        if self.callback is not None:
            self.callback(channel, message, consumer)
        if _is_async(consumer):
            future = asyncio.run_coroutine_threadsafe(
                self._run_async(consumer, message, kwargs), self._event_loop()
            )
            self._async_pending.add(future)
            future.add_done_callback(self._async_pending.discard)
            return None, None
        return self._run_sync(consumer, message, kwargs)

    def _run_sync(
        self, consumer: Any, message: Message, kwargs: dict[str, Any]
    ) -> tuple[str | None, Any]:
        consumer_started.send(sender=type(self), message=message)
        outbox = Outbox()
        taken: tuple[str | None, Any] = (None, None)
        thread = threading.get_ident()
        self._busy.add(thread)
        try:
            try:
                with outbox:
                    consumer(message, **kwargs)
            except Exception as exc:
                sent = replied(outbox, message)
                if keeps_sends(exc):
                    outbox.flush()
                else:
                    outbox.discard()
                token = _replied.set(sent)
                try:
                    self.handle_exception(exc, consumer, message)
                finally:
                    _replied.reset(token)
            else:
                if message.channel.name == "websocket.connect":
                    self._connect_watch.check(outbox, consumer_name(consumer), message)
            if self._stopping.is_set() or not self.poll_with_sends:
                outbox.flush()
            else:
                taken = outbox.flush_and_poll(self.channel_layer, self.channels)
        finally:
            self._busy.discard(thread)
            outbox.discard()  # only left over when a BaseException cut the run short
            outbox.flush()  # its callbacks still run
            try:
                consumer_finished.send(sender=type(self), message=message)
            except Exception:  # the message taken above must not be lost
                logger.exception("A consumer_finished receiver failed")
        return taken

    async def _run_async(self, consumer: Any, message: Message, kwargs: dict[str, Any]) -> None:
        await sync_to_async(consumer_started.send)(sender=type(self), message=message)
        outbox = Outbox()
        try:
            with outbox:
                await consumer(message, **kwargs)
        except Exception as exc:
            sent = replied(outbox, message)
            if keeps_sends(exc):
                await outbox.aflush()
            else:
                outbox.discard()
            token = _replied.set(sent)
            try:
                await sync_to_async(self.handle_exception)(exc, consumer, message)
            finally:
                _replied.reset(token)
        else:
            if message.channel.name == "websocket.connect":
                self._connect_watch.check(outbox, consumer_name(consumer), message)
        finally:
            await outbox.aflush()
            await sync_to_async(consumer_finished.send)(sender=type(self), message=message)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._loop_thread = threading.Thread(
                    target=self._loop.run_forever, name="channels-worker-async", daemon=True
                )
                self._loop_thread.start()
        return self._loop

    def handle_exception(self, exc: Exception, consumer: Any, message: Message) -> None:
        """Deal with an exception a consumer raised; never re-raise it."""
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
        else:
            logger.exception(
                "Error in consumer %s for a message on %s",
                consumer_name(consumer),
                channel,
                exc_info=exc,
            )
            if channel == "websocket.connect":
                self.refuse(message)
            elif channel == "http.request" and not _replied.get():
                self.answer_server_error(exc, message)

    def answer_server_error(self, exc: Exception, message: Message) -> None:
        """Answer the request of a failed ``http.request`` consumer with a 500, at once.

        Under ``DEBUG`` it is Django's technical 500 page, as a view's error
        gets; else Django's ``server_error`` page. Without this the client
        would wait for the interface server's timeout, then get a 503.
        """
        try:
            answer_server_error(exc, message)
        except Exception:
            logger.exception("Could not answer a failed http.request with a 500")

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
        outbox.add(self.channel_layer, "send", message.channel.name, content)
        outbox.flush()
