"""Consumer atomicity: sends made inside a consumer go out only if it succeeds.

The worker opens an :class:`Outbox` around each consumer. ``Channel.send`` and
``Group.send`` find it through a context variable and queue into it; the
worker flushes it when the consumer returns and drops it when it raises.
(1.x sent the queue even then; we keep it only for a raised
``ChannelSocketException``, which is an answer rather than a failure: see
``channels.runner.keeps_sends``. A failed consumer's half-done sends would
announce work whose session changes were not saved.)
Outside a consumer (views, management commands, shells) there is no outbox
and sends go straight to the layer. A context variable, unlike a thread-local,
follows async consumers across ``await``.

Each queued message is encoded once, when the consumer sends it
(``layer.encode``: a bad message raises in the consumer, and a message changed
afterwards is not what goes out), and those bytes are what the flush hands
the layer (``send_encoded``, ``send_group_encoded``, ``send_encoded_then_poll``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from asgiref.sync import sync_to_async

from .backoff import asend_when_room, send_when_room
from .exceptions import ChannelFull
from .layers.base import ReceiveResult
from .layers.names import stats_name

logger = logging.getLogger("channels.outbox")

#: The layer methods a consumer's sends are queued for, and their encoded twins.
_ENCODED = {"send": "send_encoded", "send_group": "send_group_encoded"}
_AENCODED = {"send": "asend_encoded", "send_group": "asend_group_encoded"}

_current: ContextVar[Outbox | None] = ContextVar("channels_outbox", default=None)


def current_outbox() -> Outbox | None:
    """Return the outbox of the consumer running in this context, if any."""
    return _current.get()


def _report_failed_send(target: str, exc: Exception) -> None:
    """Log a queued send that did not go out (the worker carries on).

    Only the name's prefix is logged: a whole reply channel name keys a session.
    """
    if isinstance(exc, ChannelFull):
        logger.error("Dropped a message to %s: the channel stayed full", stats_name(target))
    else:
        logger.error("Could not send a message to %s", stats_name(target), exc_info=exc)


class Outbox:
    """Sends queued by one consumer run."""

    #: Seconds a flush keeps retrying a full channel before it gives up on that message.
    full_retry_deadline = 2.0

    def __init__(self) -> None:
        # (layer, method name, target name, the message as layer.encode() made it)
        self.pending: list[tuple[Any, str, str, bytes]] = []
        self.callbacks: list[Callable[[], None]] = []
        #: (method, target) of the sends made at once (``immediately=True``) meanwhile.
        self.sent_now: set[tuple[str, str]] = set()
        self._token: Token[Outbox | None] | None = None

    def __enter__(self) -> Outbox:
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    def add(self, layer: Any, method: str, target: str, content: dict[str, Any]) -> None:
        """Queue ``layer.<method>(target, content)``; *content* is encoded now.

        *method* is ``"send"`` or ``"send_group"``. Raise what the send would
        for a bad *content* (``TypeError``, ``MessageTooLarge``).
        """
        if method not in _ENCODED:
            raise ValueError(f"An outbox queues 'send' or 'send_group', not {method!r}")
        self.pending.append((layer, method, target, layer.encode(content)))

    def targets(self) -> set[tuple[str, str]]:
        """Return (method, target) of every send made at once or queued and not yet flushed.

        The worker reads it to tell whether a consumer answered its reply channel.
        """
        return self.sent_now | {(method, target) for _, method, target, _ in self.pending}

    def call_after_flush(self, callback: Callable[[], None]) -> None:
        """Run *callback* once the queued sends are out (or dropped): it always runs."""
        self.callbacks.append(callback)

    def discard(self) -> None:
        """Forget every queued send (the consumer raised); callbacks still run at the flush."""
        self.pending.clear()

    def run_callbacks(self) -> None:
        """Run (once) the callbacks registered so far; one that fails is logged, not raised."""
        callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logger.exception("A callback after a consumer's sends failed")

    def send_pending(self) -> None:
        """Send everything queued, retrying full channels for a bounded time; no callbacks."""
        pending, self.pending = self.pending, []
        for layer, method, target, data in pending:
            try:
                send = functools.partial(getattr(layer, _ENCODED[method]), target, data)
                send_when_room(send, self.full_retry_deadline)
            except Exception as exc:
                _report_failed_send(target, exc)

    def flush(self) -> None:
        """Send everything queued (see :meth:`send_pending`), then run the callbacks."""
        self.send_pending()
        self.run_callbacks()

    def send_and_poll(self, layer: Any, channels: list[str]) -> ReceiveResult:
        """Send everything queued, and take a message waiting on *channels* of *layer* with it.

        The worker's way to finish a consumer: when every queued send is a plain
        send on *layer*, each to a different channel, the sends and the pop
        share one round trip (see ``send_encoded_then_poll``). Returns
        ``(None, None)`` if nothing was taken (then nothing was asked for).
        Callbacks do not run.
        """
        pending = self.pending
        if (
            not pending
            or any(item[0] is not layer or item[1] != "send" for item in pending)
            # Pipelined sends are not atomic: a full channel could take a later
            # message and retry an earlier one. Several to one channel go one by one.
            or len({item[2] for item in pending}) < len(pending)
        ):
            self.send_pending()
            return None, None
        self.pending = []
        errors: list[Exception | None]
        received: ReceiveResult
        errors, received = layer.send_encoded_then_poll([item[2:] for item in pending], channels)
        for item, error in zip(pending, errors, strict=True):
            if isinstance(error, ChannelFull):
                self.pending.append(item)  # retried below, for a bounded time
            elif error is not None:
                _report_failed_send(item[2], error)
        self.send_pending()
        return received

    async def asend_pending(self) -> None:
        """Async twin of :meth:`send_pending`."""
        pending, self.pending = self.pending, []
        for layer, method, target, data in pending:
            try:
                asend = functools.partial(getattr(layer, _AENCODED[method]), target, data)
                await asend_when_room(asend, self.full_retry_deadline)
            except Exception as exc:
                _report_failed_send(target, exc)

    async def aflush(self) -> None:
        """Async twin of :meth:`flush`: the callbacks, which are sync, run in a thread."""
        await self.asend_pending()
        if self.callbacks:
            await sync_to_async(self.run_callbacks)()
