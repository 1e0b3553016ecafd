"""System checks: set-up mistakes are reported by ``manage.py check`` with ids.

* ``channels.E001``: a ``CHANNEL_LAYERS`` entry cannot be built (backend, CONFIG).
* ``channels.E002``: a layer's ``ROUTING`` cannot be imported, or a route in it is wrong.
* ``channels.W001`` is retired: ``runserver`` is ours wherever ``channels`` is
  listed (see :mod:`channels.management.precedence`).
* ``channels.E003`` / ``channels.W002``: channel sessions would use signed cookies.
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .asgi import channel_layers
from .exceptions import InvalidChannelLayerError
from .routing import Router


def check_channel_layers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Build every configured layer once, and import its routing."""
    errors: list[checks.CheckMessage] = []
    try:
        aliases = list(channel_layers.configs)
    except InvalidChannelLayerError as exc:
        return [checks.Error(str(exc), id="channels.E001")]
    for alias in aliases:
        try:
            layer = channel_layers.make_backend(alias)
        except InvalidChannelLayerError as exc:
            errors.append(
                checks.Error(str(exc), obj=f"CHANNEL_LAYERS[{alias!r}]", id="channels.E001")
            )
            continue
        try:
            Router(layer.resolve_routing())
        except ImproperlyConfigured as exc:
            errors.append(
                checks.Error(str(exc), obj=f"CHANNEL_LAYERS[{alias!r}]", id="channels.E002")
            )
        finally:
            layer.close()
    return errors


SIGNED_COOKIES = "django.contrib.sessions.backends.signed_cookies"


def check_session_engine(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Channel sessions need a server-side store; signed cookies cannot be written by sockets."""
    from django.conf import settings

    hint = (
        "Set CHANNEL_SESSION_ENGINE to a server-side engine, such as "
        "'django.contrib.sessions.backends.db' or 'django.contrib.sessions.backends.cache'."
    )
    if getattr(settings, "CHANNEL_SESSION_ENGINE", None) == SIGNED_COOKIES:
        return [
            checks.Error(
                "CHANNEL_SESSION_ENGINE cannot be the signed_cookies engine: only HTTP "
                "responses can set cookies, so channel sessions could never be saved.",
                hint=hint,
                id="channels.E003",
            )
        ]
    if (
        getattr(settings, "CHANNEL_SESSION_ENGINE", None) is None
        and settings.SESSION_ENGINE == SIGNED_COOKIES
    ):
        return [
            checks.Warning(
                "SESSION_ENGINE is signed_cookies and CHANNEL_SESSION_ENGINE is not set: "
                "consumers using channel_session (and enforce_ordering, and the "
                "channel_session_user decorators) will fail.",
                hint=hint,
                id="channels.W002",
            )
        ]
    return []
