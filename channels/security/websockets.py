"""Origin checks for ``websocket.connect`` consumers.

Browsers send an ``Origin`` header with every WebSocket handshake but do not
enforce any same-origin rule for sockets; a server that uses cookies must
check it, or any site could open an authenticated socket to it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from ..exceptions import DenyConnection
from ..sessions import find_message

__all__ = ["AllowedHostsOnlyOriginValidator", "BaseOriginValidator", "allowed_hosts_only"]


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
        try:
            parsed = urlparse(origin)
            parsed.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
        except ValueError:  # "http://[::1" or "http://host:99999": no browser sends these
            return False
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            return False
        domain, _ = split_domain_port(parsed.netloc)
        if not domain:
            return False
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        return validate_host(domain, allowed)


allowed_hosts_only = AllowedHostsOnlyOriginValidator
