"""Django users for consumers: ``message.user`` from the HTTP or the channel session.

``channel_session_user_from_http`` on ``websocket.connect`` copies the logged-in
user of the HTTP session (cookie, or the opt-in ``session_key`` query
parameter) into the channel session; ``channel_session_user`` on later
consumers reads it back. Every decorator here that reads the HTTP session
refuses a handshake from another site's page first (see
:func:`channels.security.websockets.refuse_foreign_origin`), as a browser
would otherwise hand any page a socket logged in as its visitor.

A channel session keeps its user under keys of its own
(:data:`CHANNEL_USER_KEYS`), never Django's ``_auth_user_*`` keys: channel
sessions live in the same session store as HTTP ones, so with Django's keys
a leaked channel session key sent as the ``sessionid`` cookie would log its
holder in on every plain Django view.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.base import SessionBase
from django.utils.crypto import constant_time_compare

from .message import Message
from .sessions import SessionScope

__all__ = [
    "CHANNEL_USER_KEYS",
    "channel_and_http_session_user_from_http",
    "channel_session_user",
    "channel_session_user_from_http",
    "http_session_user",
    "transfer_user",
    "user_from_channel_session",
    "user_from_session",
]

#: Django's keys of a logged-in HTTP session: user id, backend, password hash.
HTTP_USER_KEYS = (SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY)
#: Where a channel session keeps the same three, in the same order. Django's
#: authentication never reads these, so a channel session is nobody's login.
CHANNEL_USER_KEYS = ("_channels_user_id", "_channels_user_backend", "_channels_user_hash")


def user_from_session(session: SessionBase | None) -> Any:
    """Return the user logged in to the HTTP *session*, or ``AnonymousUser``.

    This is what ``django.contrib.auth.get_user`` does for a request, including
    the check that the password has not changed since the login.
    """
    return _user_under(session, HTTP_USER_KEYS)


def user_from_channel_session(session: SessionBase | None) -> Any:
    """Return the user a channel *session* holds (see :func:`transfer_user`), or ``AnonymousUser``.

    A channel session written by an earlier release, with Django's keys, has
    them moved to :data:`CHANNEL_USER_KEYS` here (saved with the session), so
    it stops being usable as an HTTP login from its next message on.
    """
    if session is None:
        return AnonymousUser()
    if CHANNEL_USER_KEYS[0] not in session and SESSION_KEY in session:
        transfer_user(session, session)
    return _user_under(session, CHANNEL_USER_KEYS)


def _user_under(session: SessionBase | None, keys: tuple[str, str, str]) -> Any:
    if session is None:
        return AnonymousUser()
    id_key, backend_key, hash_key = keys
    try:
        user_id = session[id_key]
        backend_path = session[backend_key]
    except KeyError:
        return AnonymousUser()
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    user = load_backend(backend_path).get_user(user_id)
    if user is None:
        return AnonymousUser()
    if hasattr(user, "get_session_auth_hash"):
        stored = session.get(hash_key) or ""
        hashes = [user.get_session_auth_hash()]
        if hasattr(user, "get_session_auth_fallback_hash"):
            hashes += list(user.get_session_auth_fallback_hash())
        if not any(constant_time_compare(stored, candidate) for candidate in hashes):
            return AnonymousUser()
    return user


def _login_of(session: SessionBase) -> tuple[Any, ...] | None:
    """Return (id, backend, hash) of the login *session* holds, under either kind of keys."""
    for keys in (HTTP_USER_KEYS, CHANNEL_USER_KEYS):
        if all(key in session for key in keys):
            return tuple(session[key] for key in keys)
    return None


def transfer_user(from_session: SessionBase | None, to_session: SessionBase) -> None:
    """Copy the login of *from_session* into the channel session *to_session*, or log it out there.

    *from_session* is an HTTP session (Django's keys) or another channel
    session. *to_session* gets the login under :data:`CHANNEL_USER_KEYS` and
    loses any of Django's keys: a channel session must never be an HTTP login.
    """
    login = _login_of(from_session) if from_session is not None else None
    for key in HTTP_USER_KEYS:
        to_session.pop(key, None)
    if login is None:
        for key in CHANNEL_USER_KEYS:
            to_session.pop(key, None)
        return
    for key, value in zip(CHANNEL_USER_KEYS, login, strict=True):
        to_session[key] = value


def _user_of_http_session(message: Message) -> None:
    message.user = user_from_session(message.http_session)


def _user_of_channel_session(message: Message) -> None:
    message.user = user_from_channel_session(message.channel_session)


def _user_from_http(message: Message) -> None:
    # Read on every message it decorates, so with the HTTP session remembered
    # (channel_and_http_session_user_from_http), logging out over HTTP makes
    # the socket's user anonymous from its next message on.
    if message.http_session is not None:
        transfer_user(message.http_session, message.channel_session)
    message.user = user_from_channel_session(message.channel_session)


http_session_user = SessionScope(http=True).decorator(_user_of_http_session)
http_session_user.__doc__ = "Give the consumer ``message.http_session`` and ``message.user``."

channel_session_user = SessionScope(channel=True).decorator(_user_of_channel_session)
channel_session_user.__doc__ = "Give the consumer ``message.channel_session`` and ``message.user``."

channel_session_user_from_http = SessionScope(channel=True, http=True).decorator(_user_from_http)
channel_session_user_from_http.__doc__ = (
    "On connect: copy the HTTP session's user into the channel session; set ``message.user``."
)

channel_and_http_session_user_from_http = SessionScope(channel=True, remember_http=True).decorator(
    _user_from_http
)
channel_and_http_session_user_from_http.__doc__ = (
    "Both sessions on every message, and ``message.user`` from the HTTP one."
)
