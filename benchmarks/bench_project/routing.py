"""Routings of our benchmark deployments.

``worker_routing``: the worker benchmark's channels. ``websocket_routing``:
the tutorial's echo consumer under ``/ws/echo/`` (it replies with the text
alone, as Channels 4's echo does), the tutorial's group chat under
``/ws/chat/``, then the test project's socket routing (which accepts the
sockets; HTTP goes to the Django views), so one deployment serves both the
echo and the fan-out measurements.
"""

from channels.routing import include, route
from tests.project import sockets
from tests.project.tutorial import chat, echo

from . import consumers

worker_routing = [
    route("bench-count", consumers.count),
    route("bench-count-async", consumers.count_async),
    route("bench-reply", consumers.reply),
    route("bench-reply-async", consumers.reply_async),
]

websocket_routing = [
    include(echo.channel_routing, path=r"^/ws/echo/"),
    include(chat.channel_routing, path=r"^/ws/chat/"),
    *sockets.channel_routing,
]
