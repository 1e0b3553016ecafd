# ruff: noqa
# fmt: off
# deploying.rst, "Setting up a channel backend": the IPC backend.

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "asgi_ipc.IPCChannelLayer",
        "ROUTING": "my_project.routing.channel_routing",
        "CONFIG": {
            "prefix": "mysite",
        },
    },
}
