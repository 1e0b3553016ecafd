"""channels-classic: the Django Channels 1.x programming model on today's stack."""

from .asgi import DEFAULT_CHANNEL_LAYER, channel_layers
from .channel import Channel, Group
from .presence import Presence
from .routing import include, route, route_class

__version__ = "1.0.0.dev0"

__all__ = [
    "DEFAULT_CHANNEL_LAYER",
    "Channel",
    "Group",
    "Presence",
    "channel_layers",
    "include",
    "route",
    "route_class",
]
