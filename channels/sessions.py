"""Sessions for consumers: per connection (``channel_session``) and from HTTP (``http_session``).

One unit, :class:`ChannelSessions`, loads and saves sessions through Django's
public session API; the decorators below are thin layers over it.

* ``@channel_session`` gives ``message.channel_session``: a Django session
  keyed by the reply channel (through a keyed hash, so the key reveals
  nothing), created on first use, saved after the consumer returns if it
  changed, and deleted when the socket disconnects.
* ``@http_session`` gives ``message.http_session``: the session of the
  ``SESSION_COOKIE_NAME`` cookie, or of a ``session_key`` query parameter
  (sockets on another domain), or ``None``.
* ``@channel_and_http_session`` remembers the HTTP session key on connect so
  later frames, which carry no cookies, get ``message.http_session`` too.
* ``@enforce_ordering`` runs a connection's messages in their ``order``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import logging
from collections.abc import Callable
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase
from django.core.exceptions import ImproperlyConfigured
from django.http.cookie import parse_cookie
from django.utils.crypto import salted_hmac

from .backoff import send_when_room
from .channel import Channel
from .exceptions import ChannelFull, ConsumeLater
from .message import Message
from .outbox import current_outbox

logger = logging.getLogger("channels.sessions")

Consumer = Callable[..., Any]

#: Where ``channel_and_http_session`` keeps the HTTP session key.
HTTP_SESSION_KEY = "_channels_http_session_key"


def session_engine_path() -> str:
    return getattr(settings, "CHANNEL_SESSION_ENGINE", None) or settings.SESSION_ENGINE


def check_session_engine() -> None:
    """Raise ``ImproperlyConfigured`` if the channel session engine cannot store sessions."""
    path = session_engine_path()
    if path == "django.contrib.sessions.backends.signed_cookies":
        raise ImproperlyConfigured(
            "Channel sessions cannot use the signed_cookies session engine: only HTTP "
            "responses can set cookies. Set CHANNEL_SESSION_ENGINE to a server-side engine "
            "such as 'django.contrib.sessions.backends.db' or '...backends.cache'."
        )


class ChannelSessions:
    """Load and save the sessions consumers use."""

    def store_class(self) -> type[SessionBase]:
        check_session_engine()
        return import_module(session_engine_path()).SessionStore

    @staticmethod
    def key_for(reply_channel: str) -> str:
        """Return the session key of *reply_channel*: stable, and not reversible."""
        digest = salted_hmac("channels.sessions", reply_channel, algorithm="sha256").hexdigest()
        return "chn" + digest[:29]

    def channel_session(self, reply_channel: str) -> SessionBase:
        """Return the session of *reply_channel*, creating it if it does not exist."""
        key = self.key_for(reply_channel)
        session = self.store_class()(session_key=key)
        if not session.exists(key):
            # An empty session with exactly this key; CreateError means another
            # worker created it just now, which is as good.
            with contextlib.suppress(CreateError):
                session.save(must_create=True)
        return session

    def http_session(self, content: dict[str, Any]) -> SessionBase | None:
        """Return the HTTP session named by a message's query string or cookies, if any."""
        return self.http_session_by_key(session_key_from(content))

    @staticmethod
    def http_session_by_key(key: str | None) -> SessionBase | None:
        """Return the HTTP session with *key* (``SESSION_ENGINE``), or None without a key."""
        if not key:
            return None
        return import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)

    @staticmethod
    def save(session: SessionBase) -> None:
        if session.modified:
            session.save()


sessions = ChannelSessions()


def session_for_reply_channel(reply_channel: str) -> SessionBase:
    """Return the channel session of the socket with *reply_channel* (the 1.x name).

    It is the session ``@channel_session`` gives that socket's consumers,
    created if it does not exist yet; save it after changing it.
    """
    return sessions.channel_session(reply_channel)


def session_key_from(content: dict[str, Any]) -> str | None:
    """Return the ``session_key`` query parameter, else the session cookie, of a message."""
    query = content.get("query_string") or b""
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    keys = parse_qs(query).get("session_key")
    if keys:
        return keys[0]
    for name, value in content.get("headers") or ():
        if bytes(name).lower() == b"cookie":
            cookies = parse_cookie(bytes(value).decode("latin-1"))
            if settings.SESSION_COOKIE_NAME in cookies:
                return cookies[settings.SESSION_COOKIE_NAME]
    return None


def find_message(args: tuple[Any, ...]) -> Message:
    """Return the message among a consumer's first two arguments (functions or methods)."""
    for arg in args[:2]:
        if isinstance(arg, Message):
            return arg
        message = getattr(arg, "message", None)
        if isinstance(message, Message):
            return message
    raise ValueError("This decorator only works on consumers called with a Message")


def _consumer_decorator(
    before: Callable[[Message], Any],
    after: Callable[[Message, Any, bool], None],
    runs: Callable[[Any], bool] = lambda state: True,
) -> Callable[[Consumer], Consumer]:
    """Make a decorator that runs *before* and *after* around sync or async consumers.

    *before* returns a state handed to *after*, with whether the consumer
    succeeded; if ``runs(state)`` is false the consumer (and *after*) is skipped.
    """

    def decorator(func: Consumer) -> Consumer:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_inner(*args: Any, **kwargs: Any) -> Any:
                message = find_message(args)
                state = await sync_to_async(before)(message)
                if not runs(state):
                    return None
                try:
                    result = await func(*args, **kwargs)
                except BaseException:
                    await sync_to_async(after)(message, state, False)
                    raise
                await sync_to_async(after)(message, state, True)
                return result

            return async_inner

        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            message = find_message(args)
            state = before(message)
            if not runs(state):
                return None
            try:
                result = func(*args, **kwargs)
            except BaseException:
                after(message, state, False)
                raise
            after(message, state, True)
            return result

        return inner

    return decorator


def _open_channel_session(message: Message) -> bool:
    """Attach the channel session; return True if this call opened it (and must close it)."""
    if message.channel_session is not None:
        return False
    if message.reply_channel is None:
        raise ValueError(
            f"channel_session needs a message with a reply_channel; {message.channel.name} "
            "messages have none"
        )
    message.channel_session = sessions.channel_session(message.reply_channel.name)
    return True


def _close_channel_session(message: Message, opened: bool, succeeded: bool) -> None:
    if not opened or message.channel_session is None:
        return
    if message.channel.name == "websocket.disconnect":
        message.channel_session.delete()  # the socket is gone; so is its state
    elif succeeded:
        sessions.save(message.channel_session)


channel_session = _consumer_decorator(_open_channel_session, _close_channel_session)
channel_session.__doc__ = "Give the consumer ``message.channel_session``, saved after it."


def _open_http_session(message: Message) -> bool:
    if message.http_session is not None:
        return False
    message.http_session = sessions.http_session(message.content)
    return True


def _close_http_session(message: Message, opened: bool, succeeded: bool) -> None:
    if opened and succeeded and message.http_session is not None:
        sessions.save(message.http_session)


http_session = _consumer_decorator(_open_http_session, _close_http_session)
http_session.__doc__ = "Give the consumer ``message.http_session`` (or None), from cookies."


def _open_both(message: Message) -> tuple[bool, bool]:
    opened_channel = _open_channel_session(message)
    opened_http = False
    if message.http_session is None:
        key = session_key_from(message.content)
        if key:
            message.channel_session[HTTP_SESSION_KEY] = key
        else:
            key = message.channel_session.get(HTTP_SESSION_KEY)
        message.http_session = sessions.http_session_by_key(key)
        opened_http = message.http_session is not None
    return opened_channel, opened_http


def _close_both(message: Message, opened: tuple[bool, bool], succeeded: bool) -> None:
    _close_http_session(message, opened[1], succeeded)
    _close_channel_session(message, opened[0], succeeded)


channel_and_http_session = _consumer_decorator(_open_both, _close_both)
channel_and_http_session.__doc__ = (
    "Give the consumer both sessions; the HTTP one is remembered from connect on."
)


# Ordering ------------------------------------------------------------------

NEXT_ORDER_KEY = "__channels_next_order"
CONNECTED_KEY = "__channels_connected"
ORIGINAL_CHANNEL_KEY = "__channels_original_channel"


def wait_channel(reply_channel: str, order: int | None = None) -> str:
    """Return where a connection's early messages wait for their turn.

    Under strict ordering each waits on a channel of its own order, so passing
    the turn takes exactly the next message; under slight ordering all of a
    connection's early messages wait together for its connect.
    """
    name = "channels.wait." + hashlib.sha256(reply_channel.encode()).hexdigest()[:40]
    return name if order is None else f"{name}.{order}"


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


def _wait_channel_of(message: Message, slight: bool) -> str:
    return wait_channel(message.reply_channel.name, None if slight else message.content["order"])


def _park(message: Message, slight: bool) -> None:
    """Put an early message on its wait channel."""
    content = dict(message.content)
    content[ORIGINAL_CHANNEL_KEY] = message.channel.name
    waiting = Channel(_wait_channel_of(message, slight), channel_layer=message.channel_layer)
    try:
        waiting.send(content, immediately=True)
    except ChannelFull as exc:
        # Never drop it (its turn would never come): back of its own channel instead.
        raise ConsumeLater from exc


#: Seconds a released message keeps trying to get back on a full channel.
RELEASE_DEADLINE = 30.0


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
        waiting = wait_channel(message.reply_channel.name)
    else:
        next_order = message.channel_session.get(NEXT_ORDER_KEY, 0)
        waiting = wait_channel(message.reply_channel.name, next_order)
    while True:
        channel, content = layer.receive([waiting])
        if channel is None:
            return
        _resend(layer, waiting, content)
        if not slight:
            return


def enforce_ordering(func: Consumer | None = None, *, slight: bool = False) -> Any:
    """Run a connection's messages in ``order``, whichever worker takes them.

    A message that comes early waits on a per-connection wait channel and is
    sent back when the message before it has been consumed; nothing spins.
    With ``slight=True`` only ``websocket.connect`` goes first; the rest run
    in any order after it. Put it on the connect consumer too.
    """

    def before(message: Message) -> tuple[bool, bool, bool]:
        opened = _open_channel_session(message)
        run, advances = _ordering(message, slight)
        if not run:
            _park(message, slight)
            # The message before may have finished while we parked: look again.
            message.channel_session = sessions.channel_session(message.reply_channel.name)
            if _ordering(message, slight)[0]:
                _release_waiting(message, slight)
        return opened, run, advances

    def after(message: Message, state: tuple[bool, bool, bool], succeeded: bool) -> None:
        opened, _, advances = state
        session = message.channel_session
        disconnect = message.channel.name == "websocket.disconnect"
        if advances:
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
            if opened and disconnect:
                session.delete()

        outbox = current_outbox()
        if outbox is None:
            pass_the_turn()
        else:
            outbox.call_after_flush(pass_the_turn)

    decorator = _consumer_decorator(before, after, runs=lambda state: state[1])
    if func is not None:
        return decorator(func)
    return decorator
