"""Settings of the Channels 4 anchor project; Redis URL, prefix and capacity come from env.

Kept like the test project our stack is measured with: no middleware, an
in-memory SQLite database that the benchmarked code never queries.
"""

import os

SECRET_KEY = "benchmarks-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "modern.urls"
INSTALLED_APPS = ["channels"]
MIDDLEWARE: list[str] = []
ASGI_APPLICATION = "modern.asgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 reads with a 5 s socket timeout by default, which breaks the
            # layer's blocking receives (channels_redis issue #422): turn it off.
            "hosts": [
                {
                    "address": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                    "socket_timeout": None,
                }
            ],
            "prefix": os.environ.get("BENCH_PREFIX", "asgi"),
            "capacity": int(os.environ.get("BENCH_CAPACITY", "100")),
        },
    },
}
