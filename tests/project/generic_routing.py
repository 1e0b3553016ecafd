"""Routing of the class-based consumers, for the end-to-end tests."""

from tests.sample.generic_consumers import Api, Chat, Demux, Slow

channel_routing = [
    Chat.as_route(path=r"^/chat/(?P<room>\w+)/$"),
    Slow.as_route(path=r"^/slow/$"),
    Demux.as_route(path=r"^/demux/$"),
    Api.as_route(path=r"^/api/$"),
]
