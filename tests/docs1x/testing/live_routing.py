# ruff: noqa
# fmt: off
# Context for testing.rst, "Live Server Test Case": the project's routing
# (the getting-started echo; HTTP goes to the project's views).

from channels.routing import route
from tests.docs1x.getting_started.echo_consumers import ws_message

channel_routing = [
    route("websocket.receive", ws_message),
]
