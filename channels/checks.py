"""System checks: set-up mistakes are reported by ``manage.py check`` with ids.

* ``channels.E001``: a ``CHANNEL_LAYERS`` entry cannot be built (backend, CONFIG).
* ``channels.E002``: a layer's ``ROUTING`` cannot be imported, or a route in it is wrong.
* ``channels.W001`` is retired: ``runserver`` is ours wherever ``channels`` is
  listed (see :mod:`channels.management.precedence`).
* ``channels.E003`` / ``channels.W002``: channel sessions would use signed cookies.
* ``channels.W003``: a route names an ``http.*`` / ``websocket.*`` channel that
  no interface server sends (a typo such as ``websocket.recieve``).
* ``channels.W004`` (``check --deploy``): the in-memory layer with ``DEBUG`` off.
* ``channels.W005``: ``CHANNELS_ALLOW_CROSS_ORIGIN_SESSIONS`` is on, so any
  site's page can open a socket logged in as its visitor.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .asgi import channel_layers
from .exceptions import InvalidChannelLayerError
from .routing import Include, Route, Router

#: The channels interface servers send to; a routed ``http.*`` / ``websocket.*``
#: name outside this set never gets a message.
ASGI_CHANNELS = (
    "http.request",
    "http.disconnect",
    "websocket.connect",
    "websocket.receive",
    "websocket.disconnect",
)


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
            router = Router(layer.resolve_routing())
        except ImproperlyConfigured as exc:
            errors.append(
                checks.Error(str(exc), obj=f"CHANNEL_LAYERS[{alias!r}]", id="channels.E002")
            )
        else:
            errors += check_channel_names(router, alias)
        finally:
            layer.close()
    return errors


def _routed(entry: Any) -> Iterator[tuple[str, str]]:
    """Yield (route description, channel) for every route under *entry*."""
    if isinstance(entry, Include):
        for child in entry.routes:
            yield from _routed(child)
    elif isinstance(entry, Route):
        for channel in sorted(entry.channels):
            yield entry.description, channel
    else:  # a route object of the project's own
        for channel in sorted(entry.channel_names()):
            yield repr(entry), channel


def check_channel_names(router: Router, alias: str) -> list[checks.CheckMessage]:
    """Warn about routed ``http.*`` / ``websocket.*`` channels no server sends to."""
    warnings: list[checks.CheckMessage] = []
    for description, channel in _routed(router.root):
        if not channel.startswith(("http.", "websocket.")) or channel in ASGI_CHANNELS:
            continue
        close = difflib.get_close_matches(channel, ASGI_CHANNELS, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        warnings.append(
            checks.Warning(
                f"{description} in the routing of channel layer {alias!r} listens on "
                f"{channel!r}, which interface servers never send to, so it never runs.",
                hint=f"{hint}The channels they send to are {', '.join(ASGI_CHANNELS)}.",
                obj=f"CHANNEL_LAYERS[{alias!r}]",
                id="channels.W003",
            )
        )
    return warnings


@checks.register("channels", deploy=True)
def check_deploy_layers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The in-memory layer cannot carry messages between processes: not for production."""
    from django.conf import settings

    if settings.DEBUG:
        return []
    warnings: list[checks.CheckMessage] = []
    try:
        configs = channel_layers.configs
    except InvalidChannelLayerError:
        return []  # channels.E001 says so
    for alias in configs:
        try:
            local = channel_layers[alias].local_only()
        except InvalidChannelLayerError:
            continue
        if local:
            warnings.append(
                checks.Warning(
                    f"Channel layer {alias!r} is the in-memory layer, which only reaches "
                    "consumers in its own process: daphne and runworker processes cannot "
                    "talk through it.",
                    hint="Use 'channels.layers.redis.RedisChannelLayer' in production.",
                    obj=f"CHANNEL_LAYERS[{alias!r}]",
                    id="channels.W004",
                )
            )
    return warnings


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


@checks.register("channels", checks.Tags.security)
def check_cross_origin_sessions(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Opting out of the origin check of HTTP-session sockets reopens socket hijacking."""
    from django.conf import settings

    if not getattr(settings, "CHANNELS_ALLOW_CROSS_ORIGIN_SESSIONS", False):
        return []
    return [
        checks.Warning(
            "CHANNELS_ALLOW_CROSS_ORIGIN_SESSIONS is on: a page on any site can open a "
            "WebSocket that the HTTP session decorators log in as the visitor "
            "(cross-site WebSocket hijacking).",
            hint=(
                "Remove the setting and list the origins of your own pages in "
                "CSRF_TRUSTED_ORIGINS (or their hosts in ALLOWED_HOSTS) instead."
            ),
            id="channels.W005",
        )
    ]
