"""Sessions for consumers: per connection (``channel_session``) and from HTTP (``http_session``).

:class:`ChannelSessions` loads and saves sessions through Django's public
session API; :class:`SessionScope` is the one unit that opens the sessions a
consumer asks for on its message and closes them after it. Each decorator
below (and in :mod:`channels.auth` and :mod:`channels.ordering`) is a
:class:`SessionScope` plus, at most, a line of its own.

* ``@channel_session`` gives ``message.channel_session``: a Django session
  keyed by the reply channel (through a keyed hash, so the key reveals
  nothing), created on first use, saved after the consumer returns if it
  changed, and deleted when the socket disconnects.
* ``@http_session`` gives ``message.http_session``: the session of the
  ``SESSION_COOKIE_NAME`` cookie, or (only with ``CHANNELS_SESSION_KEY_QUERY``)
  of a ``session_key`` query parameter, or ``None``. A handshake from a
  foreign ``Origin`` is refused before any HTTP session is read (see
  :mod:`channels.security.websockets`): the browser sends the victim's
  cookies to any site's socket, so without that check any page could open
  a socket logged in as its visitor.
* ``@channel_and_http_session`` remembers the HTTP session key on connect so
  later frames, which carry no cookies, get ``message.http_session`` too.
* ``@enforce_ordering`` runs a connection's messages in their ``order``; it
  lives in :mod:`channels.ordering` and is importable from here, as in 1.x.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase
from django.core.exceptions import ImproperlyConfigured
from django.http.cookie import parse_cookie
from django.utils.crypto import salted_hmac

from .message import Message

if TYPE_CHECKING:  # at run time these come from __getattr__ below, which avoids an import cycle
    from .ordering import CONNECTED_KEY as CONNECTED_KEY
    from .ordering import NEXT_ORDER_KEY as NEXT_ORDER_KEY
    from .ordering import ORIGINAL_CHANNEL_KEY as ORIGINAL_CHANNEL_KEY
    from .ordering import RELEASE_DEADLINE as RELEASE_DEADLINE
    from .ordering import enforce_ordering as enforce_ordering
    from .ordering import wait_channel as wait_channel

Consumer = Callable[..., Any]

#: Where ``channel_and_http_session`` keeps the HTTP session key.
HTTP_SESSION_KEY = "_channels_http_session_key"

#: Channel session keys are this prefix and hex digits, 40 characters in all.
#: Django makes HTTP session keys of exactly 32 characters, so no HTTP session
#: is ever a channel session, and a key of this form is refused as an HTTP one.
CHANNEL_KEY_PREFIX = "chn"
CHANNEL_KEY_LENGTH = 40


def session_engine_path() -> str:
    engine: str = getattr(settings, "CHANNEL_SESSION_ENGINE", None) or settings.SESSION_ENGINE
    return engine


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
        store: type[SessionBase] = import_module(session_engine_path()).SessionStore
        return store

    @staticmethod
    def key_for(reply_channel: str) -> str:
        """Return the session key of *reply_channel*: stable, and not reversible."""
        digest = salted_hmac("channels.sessions", reply_channel, algorithm="sha256").hexdigest()
        return CHANNEL_KEY_PREFIX + digest[: CHANNEL_KEY_LENGTH - len(CHANNEL_KEY_PREFIX)]

    @staticmethod
    def is_channel_key(key: str) -> bool:
        """Return True if *key* has the form of a channel session key (never an HTTP one)."""
        return len(key) == CHANNEL_KEY_LENGTH and key.startswith(CHANNEL_KEY_PREFIX)

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
        """Return the HTTP session with *key* (``SESSION_ENGINE``), or None without a key.

        A channel session's key is no HTTP session key: a client that got
        hold of one must not use it to borrow that socket's session or user.
        """
        if not key or ChannelSessions.is_channel_key(key):
            return None
        store: type[SessionBase] = import_module(settings.SESSION_ENGINE).SessionStore
        return store(session_key=key)

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


def session_key_query_allowed() -> bool:
    """Return whether a ``session_key`` query parameter may name the HTTP session.

    Off unless ``CHANNELS_SESSION_KEY_QUERY = True``: a key in a URL can be
    planted by whoever writes the link (session fixation) and ends up in logs.
    """
    return bool(getattr(settings, "CHANNELS_SESSION_KEY_QUERY", False))


def session_key_from(content: dict[str, Any]) -> str | None:
    """Return the session cookie of a message, else its ``session_key`` query parameter.

    The cookie wins, so a link carrying someone else's key cannot replace
    the visitor's own session; the query parameter is only read with
    ``CHANNELS_SESSION_KEY_QUERY`` on.
    """
    for name, value in content.get("headers") or ():
        if bytes(name).lower() == b"cookie":
            cookies = parse_cookie(bytes(value).decode("latin-1"))
            key: str | None = cookies.get(settings.SESSION_COOKIE_NAME)
            if key is not None:
                return key
    if not session_key_query_allowed():
        return None
    query = content.get("query_string") or b""
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    keys: list[str] | None = parse_qs(query).get("session_key")
    return keys[0] if keys else None


def find_message(args: tuple[Any, ...]) -> Message:
    """Return the message among a consumer's first two arguments (functions or methods)."""
    for arg in args[:2]:
        if isinstance(arg, Message):
            return arg
        message = getattr(arg, "message", None)
        if isinstance(message, Message):
            return message
    raise ValueError("This decorator only works on consumers called with a Message")


def around_consumer(
    before: Callable[[Message], Any],
    after: Callable[[Message, Any, bool], None],
    runs: Callable[[Any], bool] = lambda state: True,
) -> Callable[[Consumer], Consumer]:
    """Make a decorator that runs *before* and *after* around sync or async consumers.

    *before* returns a state handed to *after*, with whether the consumer
    succeeded; if ``runs(state)`` is false the consumer (and *after*) is skipped.
    Around an ``async def`` consumer both run in ``sync_to_async``'s thread,
    as the database calls they make must.
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


class Opened(NamedTuple):
    """Which sessions one :meth:`SessionScope.open` attached (so its close closes only those)."""

    channel: bool
    http: bool


class SessionScope:
    """The sessions a consumer gets on its message: opened before it runs, closed after.

    * *channel*: ``message.channel_session``, the reply channel's session,
      saved after a consumer that succeeded if it changed, and deleted after
      ``websocket.disconnect`` (the socket is gone; so is its state).
    * *http*: ``message.http_session``, the session of the message's
      session cookie or (opt-in) ``session_key`` query parameter (or None),
      saved after a consumer that succeeded if it changed. A
      ``websocket.connect`` from a foreign ``Origin`` is refused first
      (``DenyConnection``), unless ``CHANNELS_ALLOW_CROSS_ORIGIN_SESSIONS``.
    * *remember_http* (with *channel*): the HTTP session key seen on connect
      is kept in the channel session, so later frames, which carry no
      cookies, get ``message.http_session`` too.

    A session already on the message (an outer decorator opened it) is used
    as it is and left for its opener to close, so decorators nest.
    """

    def __init__(
        self, *, channel: bool = False, http: bool = False, remember_http: bool = False
    ) -> None:
        if remember_http and not channel:
            raise ValueError(
                "remember_http keeps the HTTP session key in the channel session: "
                "pass channel=True with it"
            )
        self.channel = channel
        self.http = http or remember_http
        self.remember_http = remember_http

    def __repr__(self) -> str:
        return (
            f"SessionScope(channel={self.channel}, http={self.http}, "
            f"remember_http={self.remember_http})"
        )

    def open(self, message: Message) -> Opened:
        """Attach the sessions of this scope to *message*; return which this call opened."""
        if self.http and message.channel.name == "websocket.connect":
            # Imported here: channels.security.websockets builds on this module.
            from .security.websockets import refuse_foreign_origin

            refuse_foreign_origin(message.content)
        opened_channel = self.channel and self._open_channel(message)
        opened_http = False
        if self.http and message.http_session is None:
            if self.remember_http:
                key = session_key_from(message.content)
                if key:
                    message.channel_session[HTTP_SESSION_KEY] = key
                else:
                    key = message.channel_session.get(HTTP_SESSION_KEY)
            else:
                key = session_key_from(message.content)
            message.http_session = sessions.http_session_by_key(key)
            opened_http = message.http_session is not None
        return Opened(opened_channel, opened_http)

    @staticmethod
    def _open_channel(message: Message) -> bool:
        if message.channel_session is not None:
            return False
        if message.reply_channel is None:
            raise ValueError(
                f"channel_session needs a message with a reply_channel; {message.channel.name} "
                "messages have none"
            )
        message.channel_session = sessions.channel_session(message.reply_channel.name)
        return True

    @staticmethod
    def close(message: Message, opened: Opened, succeeded: bool) -> None:
        """Save (or, after a disconnect, delete) the sessions that :meth:`open` opened."""
        if opened.http and succeeded and message.http_session is not None:
            sessions.save(message.http_session)
        if opened.channel and message.channel_session is not None:
            if message.channel.name == "websocket.disconnect":
                message.channel_session.delete()
            elif succeeded:
                sessions.save(message.channel_session)

    def decorator(
        self, then: Callable[[Message], None] | None = None
    ) -> Callable[[Consumer], Consumer]:
        """Return a decorator giving consumers this scope; *then* runs once it is open."""

        def before(message: Message) -> Opened:
            opened = self.open(message)
            if then is not None:
                then(message)
            return opened

        return around_consumer(before, self.close)


channel_session = SessionScope(channel=True).decorator()
channel_session.__doc__ = "Give the consumer ``message.channel_session``, saved after it."

http_session = SessionScope(http=True).decorator()
http_session.__doc__ = "Give the consumer ``message.http_session`` (or None), from cookies."

channel_and_http_session = SessionScope(channel=True, remember_http=True).decorator()
channel_and_http_session.__doc__ = (
    "Give the consumer both sessions; the HTTP one is remembered from connect on."
)

#: What :mod:`channels.ordering` defines and 1.x code imports from here.
_FROM_ORDERING = {
    "CONNECTED_KEY",
    "NEXT_ORDER_KEY",
    "ORIGINAL_CHANNEL_KEY",
    "RELEASE_DEADLINE",
    "enforce_ordering",
    "wait_channel",
}


def __getattr__(name: str) -> Any:
    # channels.ordering builds on this module, so importing it here at the
    # top would be a cycle; 1.x's ``from channels.sessions import
    # enforce_ordering`` arrives here instead.
    if name in _FROM_ORDERING:
        from . import ordering

        return getattr(ordering, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
