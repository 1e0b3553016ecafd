# ruff: noqa
# fmt: off
# deploying.rst, "Setting up a channel backend": a remote Redis, and
# "Run interface servers": the WebSocket subprotocols to accept.

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "asgi_redis.RedisChannelLayer",
        "CONFIG": {
            "hosts": [("redis-server-name", 6379)],
        },
        "ROUTING": "my_project.routing.channel_routing",
    },
}

CHANNELS_WS_PROTOCOLS = ["graphql-ws", ]
