"""Settings of the test project that real worker and server processes run.

The tests pass the Redis URL, key prefix and database path in the environment.
"""

import os

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "tests.project.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "tests.project.chat",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHANNELS_TEST_DB", ":memory:"),
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

if os.environ.get("CHANNELS_TEST_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "asgi_redis.RedisChannelLayer",
            "CONFIG": {
                "hosts": [os.environ["CHANNELS_TEST_REDIS_URL"]],
                "prefix": os.environ.get("CHANNELS_TEST_PREFIX", "asgi:"),
            },
            "ROUTING": os.environ.get(
                "CHANNELS_TEST_ROUTING", "tests.project.routing.channel_routing"
            ),
        },
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "asgiref.inmemory.ChannelLayer",
            "ROUTING": os.environ.get(
                "CHANNELS_TEST_ROUTING", "tests.project.routing.channel_routing"
            ),
        },
    }
