# ruff: noqa
# fmt: off
# getting-started.rst, "First Consumers": hooking the echo up to websocket.receive.

# In routing.py
from channels.routing import route
from myapp.consumers import ws_message

channel_routing = [
    route("websocket.receive", ws_message),
]
