"""Class-based consumers: ``BaseConsumer`` and the WebSocket consumers built on it."""

from .base import AsyncBaseConsumer, BaseConsumer
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
    "JsonWebsocketConsumer",
    "WebsocketConsumer",
    "WebsocketDemultiplexer",
    "WebsocketMultiplexer",
]
