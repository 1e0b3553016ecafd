"""Settings of the test project that real worker and server processes run.

The tests pass the Redis URL, key prefix and database path in the environment.
"""

import os

SECRET_KEY = "tests-only-not-secret"
DEBUG = os.environ.get("CHANNELS_TEST_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("CHANNELS_TEST_ALLOWED_HOSTS", "*").split(",")
USE_TZ = True
ROOT_URLCONF = "tests.project.urls"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "channels.delay",
    "django.contrib.staticfiles",
    "tests.project.chat",
]
STATIC_URL = "/static/"
STATICFILES_DIRS = [os.path.join(os.path.dirname(__file__), "static")]
CHANNELS_SESSION_KEY_QUERY = os.environ.get("CHANNELS_TEST_SESSION_KEY_QUERY") == "1"
CHANNELS_HTTP_TIMEOUT = float(os.environ.get("CHANNELS_TEST_HTTP_TIMEOUT", "60"))
CHANNELS_ORDERING_TIMEOUT = float(os.environ.get("CHANNELS_TEST_ORDERING_TIMEOUT", "60"))
CHANNELS_MAX_BODY_SIZE = int(os.environ.get("CHANNELS_TEST_MAX_BODY_SIZE", 100 * 1024 * 1024))
CHANNELS_SEND_BUFFER_LIMIT = int(os.environ.get("CHANNELS_TEST_SEND_BUFFER_LIMIT", 4 * 1024 * 1024))
CHANNELS_SEND_SPOOL_LIMIT = int(os.environ.get("CHANNELS_TEST_SEND_SPOOL_LIMIT", 2**30))
# Short request-time bounds for tests/test_hardening_limits.py.
for _bound in ("HEADER_TIMEOUT", "BODY_TIMEOUT", "MIN_BODY_RATE"):
    if "CHANNELS_TEST_" + _bound in os.environ:
        globals()["CHANNELS_" + _bound] = float(os.environ["CHANNELS_TEST_" + _bound])
# A daphne stopped with a response in flight drains for this long: short, so the
# harness's stop (SIGKILL after 10 s) never races it.
CHANNELS_DRAIN_TIMEOUT = float(os.environ.get("CHANNELS_TEST_DRAIN_TIMEOUT", "3"))
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
_CONFIG = {"capacity": int(os.environ.get("CHANNELS_TEST_CAPACITY", "100"))}
if os.environ.get("CHANNELS_TEST_ENCRYPTION_KEY"):  # tests/test_hardening_crypto.py
    _CONFIG["symmetric_encryption_keys"] = [os.environ["CHANNELS_TEST_ENCRYPTION_KEY"]]
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
                **_CONFIG,
                "hosts": [os.environ["CHANNELS_TEST_REDIS_URL"]],
                "prefix": os.environ.get("CHANNELS_TEST_PREFIX", "asgi:"),
                "process_ttl": float(os.environ.get("CHANNELS_TEST_PROCESS_TTL", "10")),
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
            "CONFIG": _CONFIG,
            "ROUTING": os.environ.get(
                "CHANNELS_TEST_ROUTING", "tests.project.routing.channel_routing"
            ),
        },
    }

if os.environ.get("CHANNELS_TEST_SENTINELS"):  # "host:port,...": a Sentinel-managed layer
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "asgi_redis.RedisSentinelChannelLayer",
            "CONFIG": {
                **_CONFIG,
                "hosts": [
                    (host, int(port))
                    for host, port in (
                        entry.rsplit(":", 1)
                        for entry in os.environ["CHANNELS_TEST_SENTINELS"].split(",")
                    )
                ],
                "services": [  # empty: every master the Sentinels monitor
                    name
                    for name in os.environ.get("CHANNELS_TEST_SENTINEL_SERVICES", "").split(",")
                    if name
                ],
                "prefix": os.environ.get("CHANNELS_TEST_PREFIX", "asgi:"),
            },
            "ROUTING": os.environ.get(
                "CHANNELS_TEST_ROUTING", "tests.project.routing.channel_routing"
            ),
        },
    }
