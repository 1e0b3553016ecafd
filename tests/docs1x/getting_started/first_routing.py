# ruff: noqa
# fmt: off
# getting-started.rst, "First Consumers": routing http.request to it by import path.

# In routing.py
from channels.routing import route
channel_routing = [
    route("http.request", "myapp.consumers.http_consumer"),
]
