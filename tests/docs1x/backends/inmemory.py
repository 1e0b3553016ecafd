# ruff: noqa
# fmt: off
# backends.rst, "In-memory": "Its path is ``asgiref.inmemory.ChannelLayer``" (as a
# settings entry; the page gives only the path).

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "asgiref.inmemory.ChannelLayer",
        "ROUTING": "my_project.routing.channel_routing",
    },
}
