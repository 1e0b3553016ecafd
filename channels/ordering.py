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

``from channels.sessions import enforce_ordering`` (the 1.x path) still works.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any, NamedTuple, overload

from .backoff import send_when_room
from .channel import Channel
from .exceptions import ChannelFull, ConsumeLater
from .message import Message
from .outbox import current_outbox
from .sessions import SessionScope, around_consumer, sessions

__all__ = [
    "CONNECTED_KEY",
    "NEXT_ORDER_KEY",
    "ORIGINAL_CHANNEL_KEY",
    "RELEASE_DEADLINE",
    "enforce_ordering",
    "wait_channel",
]

logger = logging.getLogger("channels.sessions")

Consumer = Callable[..., Any]

#: Channel-session key: the ``order`` of the message whose turn it is.
NEXT_ORDER_KEY = "__channels_next_order"
#: Channel-session key: set once the connect (order 0) has been consumed.
CONNECTED_KEY = "__channels_connected"
#: Content key of a parked message: the channel it goes back to.
ORIGINAL_CHANNEL_KEY = "__channels_original_channel"
#: Seconds a released message keeps trying to get back on a full channel.
RELEASE_DEADLINE = 30.0

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
    return order == session.get(NEXT_ORDER_KEY, 0), True


def _reply_name(message: Message) -> str:
    if message.reply_channel is None:  # an outer decorator gave it a channel session anyway
        raise ValueError(
            f"enforce_ordering needs a message with a reply_channel; {message.channel.name} "
            "messages have none"
        )
    return message.reply_channel.name


def _park(message: Message, slight: bool) -> None:
    """Put an early message on its wait channel."""
    content = dict(message.content)
    content[ORIGINAL_CHANNEL_KEY] = message.channel.name
    order = None if slight else message.content["order"]
    name = wait_channel(_reply_name(message), order)
    waiting = Channel(name, channel_layer=message.channel_layer)
    try:
        waiting.send(content, immediately=True)
    except ChannelFull as exc:
        # Never drop it (its turn would never come): back of its own channel instead.
        raise ConsumeLater from exc


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


def _ordered(slight: bool) -> Callable[[Consumer], Consumer]:
    def before(message: Message) -> _Turn:
        opened = _scope.open(message).channel
        run, advances = _ordering(message, slight)
        if not run:
            _park(message, slight)
            # The message before may have finished while we parked: look again.
            message.channel_session = sessions.channel_session(_reply_name(message))
            if _ordering(message, slight)[0]:
                _release_waiting(message, slight)
        return _Turn(opened, run, advances)

    def after(message: Message, turn: _Turn, succeeded: bool) -> None:
        session = message.channel_session
        disconnect = message.channel.name == "websocket.disconnect"
        if turn.advances:
            # A failed consumer still used its turn, or the socket would stall.
            session[NEXT_ORDER_KEY] = message.content["order"] + 1
            if message.content["order"] == 0:
                session[CONNECTED_KEY] = True

        def pass_the_turn() -> None:
            # Only once this message's sends are out may the next one run, or its
            # replies could overtake ours.
            if not disconnect:
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
