# ruff: noqa
# fmt: off
# backends.rst, "Redis": two sharded Redis servers in ``hosts``.
# ("???" is the page's own placeholder for the project's routing.)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "asgi_redis.RedisChannelLayer",
        "ROUTING": "???",
        "CONFIG": {
            "hosts": [("redis-channel-1", 6379), ("redis-channel-2", 6379)],
        },
    },
}
