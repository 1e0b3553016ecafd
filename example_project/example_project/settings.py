"""Settings for the chat example.

Everything has a development default; the environment changes it:

* ``REDIS_URL`` (e.g. ``redis://localhost:6379/0``): use the Redis channel
  layer, so daphne and ``manage.py runworker`` processes can share the work.
  Without it the layer is in memory, which is all ``runserver`` needs.
* ``REDIS_SENTINELS`` (comma-separated ``host:port``, e.g.
  ``10.0.0.5:26379,10.0.0.6:26379``): the Redis layer on the master(s) those
  Sentinels watch, found again by every process after a failover;
  ``REDIS_SENTINEL_SERVICES`` (comma-separated master names) picks which,
  every master they monitor if unset.
* ``REDIS_CLUSTER`` (comma-separated node URLs, e.g.
  ``redis://10.0.0.7:6379,redis://10.0.0.8:6379``): the Redis layer on a
  Redis Cluster; any of its nodes will do as a starting point.
  Either takes precedence over ``REDIS_URL``.
* ``DATABASE_PATH``: the SQLite file (default ``db.sqlite3`` next to manage.py).
* ``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG`` (``1``/``0``), ``DJANGO_ALLOWED_HOSTS``
  (comma-separated).
"""

import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Above staticfiles, so that "manage.py runserver" is the channels one.
    "channels",
    "django.contrib.staticfiles",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# One SQLite file shared by every process (daphne does not touch it; the
# workers do). The timeout lets concurrent workers wait for each other's
# writes instead of failing with "database is locked". A transaction that reads
# before it writes can still fail half-way when another
# worker writes first, because SQLite will not wait to upgrade a read lock;
# IMMEDIATE transactions take the write lock when they begin, so they never
# do. Django has the option from 5.1; on 4.2 run one worker process, or use
# PostgreSQL, if joins fail with "database is locked".
sqlite_options: dict[str, object] = {"timeout": 20}
if django.VERSION >= (5, 1):
    sqlite_options["transaction_mode"] = "IMMEDIATE"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DATABASE_PATH", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": sqlite_options,
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "room-list"
LOGOUT_REDIRECT_URL = "login"


def _listed(variable: str) -> list[str]:
    """The comma-separated items of environment *variable* (none if it is unset)."""
    return [item.strip() for item in os.environ.get(variable, "").split(",") if item.strip()]


def _sentinel(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"REDIS_SENTINELS: write each Sentinel as host:port, not {address!r}")
    return host, int(port)


# The channel layer: Redis (through Sentinel, on a cluster, or one server) when
# the environment names it, in memory otherwise.
CHANNEL_ROUTING = "chat.routing.channel_routing"
if _listed("REDIS_SENTINELS"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.redis.RedisSentinelChannelLayer",
            "CONFIG": {
                "hosts": [_sentinel(address) for address in _listed("REDIS_SENTINELS")],
                "services": _listed("REDIS_SENTINEL_SERVICES"),
            },
            "ROUTING": CHANNEL_ROUTING,
        },
    }
elif _listed("REDIS_CLUSTER"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.redis.RedisChannelLayer",
            "CONFIG": {"hosts": _listed("REDIS_CLUSTER"), "cluster": True},
            "ROUTING": CHANNEL_ROUTING,
        },
    }
elif os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.redis.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["REDIS_URL"]]},
            "ROUTING": CHANNEL_ROUTING,
        },
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.inmemory.InMemoryChannelLayer",
            "ROUTING": CHANNEL_ROUTING,
        },
    }
