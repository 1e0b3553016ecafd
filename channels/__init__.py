"""channels-classic: the Django Channels 1.x programming model on today's stack."""

from .asgi import DEFAULT_CHANNEL_LAYER, channel_layers

__version__ = "1.0.0.dev0"

__all__ = ["DEFAULT_CHANNEL_LAYER", "channel_layers"]
