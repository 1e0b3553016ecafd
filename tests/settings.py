"""Django settings for the test suite."""

import os
import tempfile

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "channels.delay",
    "tests.bindingapp",
]
# A file, not :memory:: worker threads in the tests write sessions concurrently,
# and shared in-memory SQLite locks whole tables without waiting.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
        "OPTIONS": {"timeout": 20},
        "TEST": {
            "NAME": os.path.join(tempfile.gettempdir(), f"channels-tests-{os.getpid()}.sqlite3")
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
