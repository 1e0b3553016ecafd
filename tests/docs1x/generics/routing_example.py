# ruff: noqa
# fmt: off
# generics.rst, introduction: route_class next to route.

from . import consumers  # context: the module the sample's names come from

from channels import route, route_class

channel_routing = [
    route_class(consumers.ChatServer, path=r"^/chat/"),
    route("websocket.connect", consumers.ws_connect, path=r"^/$"),
]
