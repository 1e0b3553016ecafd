# ruff: noqa
# fmt: off
# getting-started.rst, "First Consumers": the in-memory layer and its routing.

# In settings.py
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "asgiref.inmemory.ChannelLayer",
        "ROUTING": "myproject.routing.channel_routing",
    },
}
