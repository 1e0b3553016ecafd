"""Routings of our benchmark deployments.

``worker_routing``: the worker benchmark's channels. ``websocket_routing``:
the test project's group chat under ``/ws/chat/`` plus its socket routing
(``/ws/echo/`` echoes; HTTP goes to the Django views), so one deployment
serves both the echo and the fan-out measurements.
"""

from channels.routing import include, route
from tests.project import sockets
from tests.project.tutorial import chat

from . import consumers

worker_routing = [
    route("bench-count", consumers.count),
    route("bench-count-async", consumers.count_async),
    route("bench-reply", consumers.reply),
    route("bench-reply-async", consumers.reply_async),
]

websocket_routing = [
    include(chat.channel_routing, path=r"^/ws/chat/"),
    *sockets.channel_routing,
]
