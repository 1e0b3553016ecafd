"""Origin checks for ``websocket.connect`` consumers.

Browsers send an ``Origin`` header with every WebSocket handshake but do not
enforce any same-origin rule for sockets; a server that uses cookies must
check it, or any site could open an authenticated socket to it.
"""

from __future__ import annotations

import functools
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
        origin = self.origin_of(message.content)
        if origin is None or not self.validate_origin(message, origin):
            raise DenyConnection(f"Origin {origin!r} is not allowed")
        return self.func(*args, **kwargs)

    @staticmethod
    def origin_of(content: dict[str, Any]) -> str | None:
        for name, value in content.get("headers") or ():
            if bytes(name).lower() == b"origin":
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
        parsed = urlparse(origin)
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
