# ruff: noqa
# fmt: off
# generics.rst, "As route": as_route with filters.

from . import consumers

channel_routing = [
    consumers.ChatServer.as_route(path=r"^/chat/"),
]
