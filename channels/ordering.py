"""``enforce_ordering``: run a connection's messages in ``order``, whichever worker takes them.

Interface servers number a socket's messages (``order``: connect is 0), but
workers take them in parallel, so a ``receive`` can reach a worker before its
``connect`` has been consumed. The state of a connection's turn lives in its
channel session (``NEXT_ORDER_KEY``, ``CONNECTED_KEY``), opened by the same
:class:`~channels.sessions.SessionScope` as ``@channel_session``'s.

A message that comes early is parked on a wait channel of its connection,
never spun on: strict ordering gives each order its own wait channel, so
passing the turn releases exactly the next message; slight ordering
(``slight=True``) parks everything that precedes the connect together, and
the connect releases them all. The turn passes only once the message's sends
are out (an outbox callback), so a later message's replies cannot overtake.

A turn that never passes (the worker running it was killed) would stall the
socket forever, as it did in 1.x. So the channel session also keeps when the
current turn began (``TURN_SINCE_KEY``), and a parked message carries when it
was parked: once the turn has been held for ``CHANNELS_ORDERING_TIMEOUT``
seconds, the missing order is declared lost (a warning) and the lowest order
that waits runs next. That is checked when a later message arrives, and,
for a socket whose messages have all arrived, by one alarm thread per
process that wakes when a parked message's wait is due (never polling).

``from channels.sessions import enforce_ordering`` (the 1.x path) still works.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple, overload

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from .backoff import send_when_room
from .channel import Channel
from .exceptions import ChannelFull, ConsumeLater
from .layers.names import stats_name
from .message import Message
from .outbox import current_outbox
from .sessions import SessionScope, around_consumer, sessions

__all__ = [
    "CONNECTED_KEY",
    "NEXT_ORDER_KEY",
    "ORIGINAL_CHANNEL_KEY",
    "RELEASE_DEADLINE",
    "TURN_SINCE_KEY",
    "enforce_ordering",
    "ordering_timeout",
    "wait_channel",
]

logger = logging.getLogger("channels.sessions")

Consumer = Callable[..., Any]

#: Channel-session key: the ``order`` of the message whose turn it is.
NEXT_ORDER_KEY = "__channels_next_order"
#: Channel-session key: set once the connect (order 0) has been consumed.
CONNECTED_KEY = "__channels_connected"
#: Channel-session key: UNIX time at which the current turn began.
TURN_SINCE_KEY = "__channels_turn_since"
#: Content key of a parked message: the channel it goes back to.
ORIGINAL_CHANNEL_KEY = "__channels_original_channel"
#: Seconds a released message keeps trying to get back on a full channel.
RELEASE_DEADLINE = 30.0
#: Default of ``CHANNELS_ORDERING_TIMEOUT``: as long as a request waits for a
#: worker (``CHANNELS_HTTP_TIMEOUT``), so only a consumer that is surely dead,
#: never one that is merely slow, has its turn taken from it.
DEFAULT_ORDERING_TIMEOUT = 60.0


def ordering_timeout() -> float:
    """Return ``CHANNELS_ORDERING_TIMEOUT``: how long a turn may be held before it is lost."""
    value = getattr(settings, "CHANNELS_ORDERING_TIMEOUT", DEFAULT_ORDERING_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ImproperlyConfigured(
            f"CHANNELS_ORDERING_TIMEOUT must be a positive number of seconds, not {value!r}"
        )
    return float(value)


_scope = SessionScope(channel=True)


def wait_channel(reply_channel: str, order: int | None = None) -> str:
    """Return where a connection's early messages wait for their turn.

    Under strict ordering each waits on a channel of its own order, so passing
    the turn takes exactly the next message; under slight ordering all of a
    connection's early messages wait together for its connect.
    """
    name = "channels.wait." + hashlib.sha256(reply_channel.encode()).hexdigest()[:40]
    return name if order is None else f"{name}.{order}"


class _Turn(NamedTuple):
    """What ``before`` found: the sessions it opened, and whether the message runs now."""

    opened_channel: bool
    runs: bool
    advances: bool
    started: float  # time.monotonic() when it began to run


def _ordering(message: Message, slight: bool) -> tuple[bool, bool]:
    """Return (run it now, this run advances the order)."""
    order = message.content.get("order")
    if order is None:
        raise ValueError(
            f"enforce_ordering needs messages with an 'order' key; {message.channel.name} "
            "messages have none"
        )
    session = message.channel_session
    if slight:
        if order == 0:
            return True, True
        return bool(session.get(CONNECTED_KEY)), False
    next_order = session.get(NEXT_ORDER_KEY, 0)
    if order < next_order:  # its turn was declared lost, and yet here it is
        logger.warning(
            "%s order %d of a socket of %s came after its turn was declared lost: it runs "
            "late, out of order",
            message.channel.name,
            order,
            stats_name(_reply_name(message)),
        )
    return order <= next_order, True


def _reply_name(message: Message) -> str:
    if message.reply_channel is None:  # an outer decorator gave it a channel session anyway
        raise ValueError(
            f"enforce_ordering needs a message with a reply_channel; {message.channel.name} "
            "messages have none"
        )
    return message.reply_channel.name


def _park(message: Message, slight: bool) -> float:
    """Put an early message on its wait channel; return when (UNIX time)."""
    content = dict(message.content)
    content[ORIGINAL_CHANNEL_KEY] = message.channel.name
    order = None if slight else message.content["order"]
    name = wait_channel(_reply_name(message), order)
    waiting = Channel(name, channel_layer=message.channel_layer)
    parked_at = time.time()
    try:
        waiting.send(content, immediately=True)
    except ChannelFull as exc:
        # Never drop it (its turn would never come): back of its own channel instead.
        raise ConsumeLater from exc
    return parked_at


def _resend(layer: Any, waiting: str, content: dict[str, Any]) -> None:
    """Put a released message back on its own channel, waiting while that is full."""
    original = content.pop(ORIGINAL_CHANNEL_KEY)
    try:
        send_when_room(lambda: layer.send(original, content), RELEASE_DEADLINE)
    except ChannelFull:
        logger.error("%s stayed full: a released message waits again", original)
        layer.send(waiting, {**content, ORIGINAL_CHANNEL_KEY: original})


def _release_waiting(message: Message, slight: bool) -> None:
    """Send the message whose turn it is (slight: every parked one) back to its channel."""
    layer = message.channel_layer
    if slight:
        waiting = wait_channel(_reply_name(message))
    else:
        next_order = message.channel_session.get(NEXT_ORDER_KEY, 0)
        waiting = wait_channel(_reply_name(message), next_order)
    while True:
        channel, content = layer.receive([waiting])
        if channel is None:
            return
        _resend(layer, waiting, content)
        if not slight:
            return


def _stored(reply_name: str, key: str, default: Any) -> Any:
    """Return *key* of the channel session of *reply_name* as stored now (None: no session)."""
    store = sessions.store_class()
    session_key = sessions.key_for(reply_name)
    session = store(session_key=session_key)
    if not session.exists(session_key):
        return None
    return session.get(key, default)


class _Stall(NamedTuple):
    """A parked message, and what to do if the turn it waits for never passes."""

    layer: Any
    reply_name: str
    order: int | None  # None under slight ordering: it waits for the connect
    parked_at: float  # UNIX time

    def check(self) -> None:
        """Recover the socket's turn if it has been held too long; else look again when due."""
        wait = self.recover()
        if wait is not None:
            _alarm.at(time.monotonic() + wait, self.check)

    def recover(self) -> float | None:
        """Declare a turn held past the bound lost; return seconds until it is due, or None."""
        store = sessions.store_class()
        session_key = sessions.key_for(self.reply_name)
        session = store(session_key=session_key)
        if not session.exists(session_key):
            return None  # the socket is gone and cleaned up
        if self.order is None:
            if session.get(CONNECTED_KEY):
                return None
            since = self.parked_at
        else:
            next_order = session.get(NEXT_ORDER_KEY, 0)
            if next_order >= self.order:
                return None  # the turn moved on: it reaches this message as usual
            since = session.get(TURN_SINCE_KEY, self.parked_at)
        due = since + ordering_timeout() - time.time()
        if due > 0:
            return due
        if self.order is None:
            session[CONNECTED_KEY] = True
            session.save()
            self._lost("the connect")
            self._release(wait_channel(self.reply_name))
            return None
        # The lowest order that waits is next; the ones before it are lost.
        for order in range(next_order, self.order + 1):
            waiting = wait_channel(self.reply_name, order)
            channel, content = self.layer.receive([waiting])
            if channel is not None:
                break
        else:
            return None  # this message was released meanwhile
        session[NEXT_ORDER_KEY] = order
        session[TURN_SINCE_KEY] = time.time()
        session.save()
        if order > next_order:
            lost = f"order {next_order}" + (f" to {order - 1}" if order - 1 > next_order else "")
            self._lost(lost)
        _resend(self.layer, waiting, content)
        return None

    def _lost(self, what: str) -> None:
        logger.warning(
            "A socket of %s: %s never finished within CHANNELS_ORDERING_TIMEOUT (%g s), "
            "so it is declared lost and the next message runs",
            stats_name(self.reply_name),
            what,
            ordering_timeout(),
        )

    def _release(self, waiting: str) -> None:
        while True:
            channel, content = self.layer.receive([waiting])
            if channel is None:
                return
            _resend(self.layer, waiting, content)


class _Alarm:
    """One daemon thread that runs callbacks when they are due, sleeping until then.

    It waits on a condition until the earliest due time (or a new, earlier
    one), so a process with nothing parked does nothing at all.
    """

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._count = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def at(self, when: float, callback: Callable[[], None]) -> None:
        """Run *callback* at *when* (``time.monotonic()``) on the alarm thread."""
        with self._changed:
            heapq.heappush(self._due, (when, next(self._count), callback))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="channels-ordering-alarm", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def __len__(self) -> int:
        return len(self._due)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._changed.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _when, _n, callback = heapq.heappop(self._due)
            try:
                callback()
            except Exception:
                logger.exception("Could not check a stalled socket's ordering")
            finally:
                connections.close_all()  # this thread's own connections only


_alarm = _Alarm()


def _ordered(slight: bool) -> Callable[[Consumer], Consumer]:
    def before(message: Message) -> _Turn:
        opened = _scope.open(message).channel
        run, advances = _ordering(message, slight)
        if not run:
            parked_at = _park(message, slight)
            # The message before may have finished while we parked: look again.
            message.channel_session = sessions.channel_session(_reply_name(message))
            if _ordering(message, slight)[0]:
                _release_waiting(message, slight)
            else:
                order = None if slight else message.content["order"]
                _Stall(message.channel_layer, _reply_name(message), order, parked_at).check()
        return _Turn(opened, run, advances, time.monotonic())

    def after(message: Message, turn: _Turn, succeeded: bool) -> None:
        session = message.channel_session
        disconnect = message.channel.name == "websocket.disconnect"
        if turn.advances:
            # A failed consumer still used its turn, or the socket would stall.
            next_order = max(message.content["order"] + 1, session.get(NEXT_ORDER_KEY, 0))
            if time.monotonic() - turn.started >= ordering_timeout():
                # Its turn may have been declared lost meanwhile: never move it back.
                next_order = max(next_order, _stored(_reply_name(message), NEXT_ORDER_KEY, 0) or 0)
            session[NEXT_ORDER_KEY] = next_order
            if message.content["order"] == 0:
                session[CONNECTED_KEY] = True

        def pass_the_turn() -> None:
            # Only once this message's sends are out may the next one run, or its
            # replies could overtake ours.
            if not disconnect:
                session[TURN_SINCE_KEY] = time.time()
                session.save()
            _release_waiting(message, slight)
            if turn.opened_channel and disconnect:
                session.delete()

        outbox = current_outbox()
        if outbox is None:
            pass_the_turn()
        else:
            outbox.call_after_flush(pass_the_turn)

    return around_consumer(before, after, runs=lambda turn: turn.runs)


@overload
def enforce_ordering(func: Consumer, *, slight: bool = False) -> Consumer: ...
@overload
def enforce_ordering(
    func: None = None, *, slight: bool = False
) -> Callable[[Consumer], Consumer]: ...
def enforce_ordering(
    func: Consumer | None = None, *, slight: bool = False
) -> Consumer | Callable[[Consumer], Consumer]:
    """Run a connection's messages in ``order``, whichever worker takes them.

    A message that comes early waits on a per-connection wait channel and is
    sent back when the message before it has been consumed; nothing spins.
    With ``slight=True`` only ``websocket.connect`` goes first; the rest run
    in any order after it. Put it on the connect consumer too.
    """
    decorator = _ordered(slight)
    if func is not None:
        return decorator(func)
    return decorator
