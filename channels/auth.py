"""Django users for consumers: ``message.user`` from the HTTP or the channel session.

``channel_session_user_from_http`` on ``websocket.connect`` copies the logged-in
user of the HTTP session (cookie, or the opt-in ``session_key`` query
parameter) into the channel session; ``channel_session_user`` on later
consumers reads it back. Every decorator here that reads the HTTP session
refuses a handshake from another site's page first (see
:func:`channels.security.websockets.refuse_foreign_origin`), as a browser
would otherwise hand any page a socket logged in as its visitor.
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
    "channel_and_http_session_user_from_http",
    "channel_session_user",
    "channel_session_user_from_http",
    "http_session_user",
    "transfer_user",
    "user_from_session",
]


def user_from_session(session: SessionBase | None) -> Any:
    """Return the user logged in to *session*, or ``AnonymousUser``.

    This is what ``django.contrib.auth.get_user`` does for a request, including
    the check that the password has not changed since the login.
    """
    if session is None:
        return AnonymousUser()
    try:
        user_id = session[SESSION_KEY]
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    user = load_backend(backend_path).get_user(user_id)
    if user is None:
        return AnonymousUser()
    if hasattr(user, "get_session_auth_hash"):
        stored = session.get(HASH_SESSION_KEY) or ""
        hashes = [user.get_session_auth_hash()]
        if hasattr(user, "get_session_auth_fallback_hash"):
            hashes += list(user.get_session_auth_fallback_hash())
        if not any(constant_time_compare(stored, candidate) for candidate in hashes):
            return AnonymousUser()
    return user


def transfer_user(from_session: SessionBase | None, to_session: SessionBase) -> None:
    """Copy the logged-in user of *from_session* into *to_session*, or log it out there."""
    keys = (SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY)
    if from_session is not None and all(key in from_session for key in keys):
        for key in keys:
            to_session[key] = from_session[key]
    else:
        for key in keys:
            to_session.pop(key, None)


def _user_of_http_session(message: Message) -> None:
    message.user = user_from_session(message.http_session)


def _user_of_channel_session(message: Message) -> None:
    message.user = user_from_session(message.channel_session)


def _user_from_http(message: Message) -> None:
    # Read on every message it decorates, so with the HTTP session remembered
    # (channel_and_http_session_user_from_http), logging out over HTTP makes
    # the socket's user anonymous from its next message on.
    if message.http_session is not None:
        transfer_user(message.http_session, message.channel_session)
    message.user = user_from_session(message.channel_session)


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
