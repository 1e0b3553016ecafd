"""Class-based consumers: ``BaseConsumer``, ``AsyncBaseConsumer`` and the WebSocket consumers."""

from .base import AsyncBaseConsumer, BaseConsumer, ConsumerCore
from .websockets import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
    WebsocketDemultiplexer,
    WebsocketMultiplexer,
)

__all__ = [
    "AsyncBaseConsumer",
    "AsyncJsonWebsocketConsumer",
    "AsyncWebsocketConsumer",
    "BaseConsumer",
    "ConsumerCore",
    "JsonWebsocketConsumer",
    "WebsocketConsumer",
    "WebsocketDemultiplexer",
    "WebsocketMultiplexer",
]
