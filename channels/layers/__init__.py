"""Channel layer backends: pick one with ``CHANNEL_LAYERS[alias]["BACKEND"]``."""

from .base import BaseChannelLayer
from .inmemory import InMemoryChannelLayer

__all__ = ["BaseChannelLayer", "InMemoryChannelLayer"]
