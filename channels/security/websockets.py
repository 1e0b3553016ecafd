"""Origin checks for ``websocket.connect`` consumers.

Browsers send an ``Origin`` header with every WebSocket handshake but do not
enforce any same-origin rule for sockets; a server that uses cookies must
check it, or any site could open an authenticated socket to it.

Two layers use that check:

* :func:`refuse_foreign_origin`, which every decorator that reads the HTTP
  session runs on ``websocket.connect`` (``http_session``,
  ``channel_session_user_from_http``, ``WebsocketConsumer.http_user``...):
  an ``Origin`` that is not one of the site's own is refused with 403. A
  missing ``Origin`` passes: browsers always send one, so its absence means
  a client that does not carry a visitor's cookies on its own.
  ``CHANNELS_ALLOW_CROSS_ORIGIN_SESSIONS = True`` turns this off
  (system check warning ``channels.W005``).
* :func:`allowed_hosts_only` (the 1.x decorator), which also refuses a
  handshake without ``Origin``, for consumers that want only browsers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

from ..exceptions import DenyConnection
from ..sessions import find_message

__all__ = [
    "AllowedHostsOnlyOriginValidator",
    "BaseOriginValidator",
    "allowed_hosts_only",
    "is_site_origin",
    "refuse_foreign_origin",
]


class BaseOriginValidator:
    """Decorate a ``websocket.connect`` consumer to reject sockets from bad origins.

    Subclasses implement :meth:`validate_origin`. A missing or undecodable
    ``Origin`` header is rejected before it is asked. A rejected socket gets
    HTTP 403 and the consumer does not run.
    """

    def __init__(self, func: Any) -> None:
        self.func = func
        functools.update_wrapper(self, func)
        if iscoroutinefunction(func):
            markcoroutinefunction(self)

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        return self if instance is None else functools.partial(self, instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        message = find_message(args)
        if message.channel.name != "websocket.connect":
            raise ValueError(
                f"{type(self).__name__} only works on websocket.connect consumers, "
                f"not {message.channel.name}"
            )
        origin = self.get_origin(message)
        if not self.validate_origin(message, origin):
            raise DenyConnection(f"Origin {origin!r} is not allowed")
        return self.func(*args, **kwargs)

    def get_origin(self, message: Any) -> str:
        """Return the origin of *message*; raise ``DenyConnection`` if it has no usable one."""
        origin = self.origin_of(message.content)
        if origin is None:
            raise DenyConnection("The socket has no Origin header, or one that is not ASCII bytes")
        return origin

    @staticmethod
    def origin_of(content: dict[str, Any]) -> str | None:
        """Return the ``Origin`` header of *content* as text, or None if it has no usable one.

        The headers come from the client through the interface server, or
        from a test: an entry that is not a ``(name, value)`` pair is
        skipped, and an origin value that is not ASCII bytes counts as
        missing, so the socket is denied instead of the consumer crashing.
        1.x "old style" ``{name: value}`` headers are read too.
        """
        headers = content.get("headers") or ()
        if isinstance(headers, Mapping):  # 1.x "old style" {name: value} headers
            headers = headers.items()
        try:
            entries = list(headers)
        except TypeError:
            return None
        for entry in entries:
            if not isinstance(entry, list | tuple) or len(entry) != 2:
                continue
            name, value = entry
            if isinstance(name, str):  # old style dict headers have str names
                name = name.encode("latin-1", "replace")
            if not isinstance(name, bytes | bytearray) or bytes(name).lower() != b"origin":
                continue
            if not isinstance(value, bytes | bytearray):
                return None
            try:
                return bytes(value).decode("ascii")
            except UnicodeDecodeError:
                return None
        return None

    def validate_origin(self, message: Any, origin: str) -> bool:
        """Return True if a socket from *origin* may connect."""
        raise NotImplementedError(
            "validate_origin() must be implemented by an origin validator subclass"
        )


class AllowedHostsOnlyOriginValidator(BaseOriginValidator):
    """Allow origins whose host is in ``ALLOWED_HOSTS`` (Django's wildcard rules).

    With ``DEBUG`` and an empty ``ALLOWED_HOSTS``, localhost is allowed, as
    Django allows it for requests.
    """

    def validate_origin(self, message: Any, origin: str) -> bool:
        parsed = _parse_origin(origin)
        return parsed is not None and validate_host(parsed[1], _allowed_hosts())


allowed_hosts_only = AllowedHostsOnlyOriginValidator


def _parse_origin(origin: str) -> tuple[str, str, str] | None:
    """Return (scheme, domain, netloc) of a browser origin, or None if it is not one."""
    try:
        parsed = urlparse(origin)
        parsed.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError:  # "http://[::1" or "http://host:99999": no browser sends these
        return None
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return None
    domain, _ = split_domain_port(parsed.netloc)
    if not domain:
        return None
    return parsed.scheme, domain, parsed.netloc.lower()


def _allowed_hosts() -> list[str]:
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return allowed


def _host_header(content: dict[str, Any]) -> str | None:
    headers = content.get("headers") or ()
    if isinstance(headers, Mapping):  # 1.x "old style" {name: value} headers
        headers = headers.items()
    for entry in headers:
        if isinstance(entry, list | tuple) and len(entry) == 2:
            name, value = entry
            if isinstance(name, str):
                name = name.encode("latin-1", "replace")
            is_host = isinstance(name, bytes | bytearray) and bytes(name).lower() == b"host"
            if is_host and isinstance(value, bytes | bytearray):
                return bytes(value).decode("latin-1")
    return None


def is_site_origin(content: dict[str, Any], origin: str) -> bool:
    """Return True if *origin* is one of this site's own, for the handshake *content*.

    The site's origins are: the handshake's own ``Host`` (a same-origin
    page); hosts ``ALLOWED_HOSTS`` matches, with Django's wildcard rules
    except the bare ``"*"`` (which names every site, not ours); and
    ``CSRF_TRUSTED_ORIGINS`` (``"https://*.example.com"`` included), the
    origins Django already trusts to post forms with the visitor's cookies.
    """
    parsed = _parse_origin(origin)
    if parsed is None:
        return False
    scheme, domain, netloc = parsed
    host = _host_header(content)
    if host is not None and host.lower() == netloc:
        return True
    if validate_host(domain, [h for h in _allowed_hosts() if h != "*"]):
        return True
    for trusted in getattr(settings, "CSRF_TRUSTED_ORIGINS", ()):
        trusted_scheme, _, trusted_netloc = trusted.lower().partition("://")
        if trusted_scheme != scheme:
            continue
        if trusted_netloc == netloc:
            return True
        if trusted_netloc.startswith("*") and is_same_domain(netloc, trusted_netloc[1:]):
            return True
    return False


def refuse_foreign_origin(content: dict[str, Any]) -> None:
    """Raise ``DenyConnection`` if a handshake comes from a page of another site.

    Run before the HTTP session is read: a browser sends the visitor's
    cookies with a socket any page opens, so a socket that takes its user
    from those cookies must know the page is the site's own. A handshake
    without ``Origin`` passes (browsers always send it; other clients hold
    their own cookies). ``CHANNELS_ALLOW_CROSS_ORIGIN_SESSIONS = True``
    turns the check off.
    """
    if getattr(settings, "CHANNELS_ALLOW_CROSS_ORIGIN_SESSIONS", False):
        return
    origin = BaseOriginValidator.origin_of(content)
    if origin is None:  # no browser: a browser always sends an ASCII Origin
        return
    if not is_site_origin(content, origin):
        raise DenyConnection(
            f"Origin {origin!r} is not one of this site's, so its socket may not use the "
            "visitor's HTTP session. Add the origin to CSRF_TRUSTED_ORIGINS (or its host "
            "to ALLOWED_HOSTS) if it is yours."
        )
