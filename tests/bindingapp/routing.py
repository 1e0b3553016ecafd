"""Sockets that watch one board's items, and the 1.x docs sample under /binding/."""

from channels import include
from channels.generic.websockets import WebsocketDemultiplexer
from tests.bindingapp.bindings import ItemBinding, TaggedBinding


class Boards(WebsocketDemultiplexer):
    """One socket per board: item changes come in, requests go out, on stream "items"."""

    http_user = True
    consumers = {"items": ItemBinding.consumer, "tagged": TaggedBinding.consumer}

    def connection_groups(self, board, **kwargs):
        return [f"board-{board}"]


channel_routing = [
    Boards.as_route(path=r"^/items/(?P<board>\w+)/$"),
    include("tests.bindingapp.docsample.routing.channel_routing"),
]
