"""Test helpers: isolated layers, clients that run consumers in-process, ``apply_routes``."""

from .base import ChannelTestCase, ChannelTestMixin, TransactionChannelTestCase, apply_routes
from .client import Client, InlineWorker
from .liveserver import ChannelLiveServerTestCase
from .websocket import HttpClient, WSClient

__all__ = [
    "ChannelLiveServerTestCase",
    "ChannelTestCase",
    "ChannelTestMixin",
    "Client",
    "HttpClient",
    "InlineWorker",
    "TransactionChannelTestCase",
    "WSClient",
    "apply_routes",
]
