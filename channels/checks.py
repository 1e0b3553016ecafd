"""System checks: set-up mistakes are reported by ``manage.py check`` with ids.

* ``channels.E001``: a ``CHANNEL_LAYERS`` entry cannot be built (backend, CONFIG).
* ``channels.E002``: a layer's ``ROUTING`` cannot be imported, or a route in it is wrong.
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
