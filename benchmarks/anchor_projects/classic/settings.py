"""Settings of the Channels 1.1.8 anchor project; Redis URL and prefix come from env.

Django 2.2, asgi_redis as the channel layer, no middleware, an in-memory
SQLite database that the benchmarked code never queries.
"""

import os

SECRET_KEY = "benchmarks-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["channels"]
MIDDLEWARE = []
ROOT_URLCONF = "classic.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
LOGGING_CONFIG = None

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "asgi_redis.RedisChannelLayer",
        "ROUTING": "classic.routing.channel_routing",
        "CONFIG": {
            "hosts": [os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")],
            "prefix": os.environ.get("BENCH_PREFIX", "bench-classic:"),
            "capacity": int(os.environ.get("BENCH_CAPACITY", "1000")),
        },
    }
}
