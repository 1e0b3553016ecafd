"""delay.rst of Channels 1.1.8: install the app, migrate, rundelay, then delay a message.

A project gets the page's ``INSTALLED_APPS`` (its ``...`` being the test
project's other apps); ``migrate`` and ``rundelay`` run as the page says, as
real processes on a real Redis. The "Delaying Messages" sample runs as
written, in this process, on the same layer.
"""

from __future__ import annotations

import runpy
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from channels.layers.redis import RedisChannelLayer
from tests.docs1x import SAMPLES, write_project
from tests.processes import ROOT, ManagedProcess, project_env

SAMPLE = SAMPLES / "delay"

#: The page's "..." in INSTALLED_APPS: the rest of the project's apps.
OTHER_APPS = "    *[app for app in INSTALLED_APPS if not app.startswith('channels')],\n"


@pytest.fixture
def env(tmp_path: Path, redis_url: str, unique_prefix: str) -> dict[str, str]:
    settings = (SAMPLE / "settings.py").read_text()
    assert "    ...\n" not in settings  # the page's "...", already left out of the sample
    settings = settings.replace("INSTALLED_APPS = (\n", "INSTALLED_APPS = (\n" + OTHER_APPS)
    write_project(tmp_path, "my_project", settings)
    return project_env(
        PYTHONPATH=f"{tmp_path}:{ROOT}",
        DJANGO_SETTINGS_MODULE="my_project.settings",
        CHANNELS_TEST_REDIS_URL=redis_url,
        CHANNELS_TEST_PREFIX=unique_prefix,
        CHANNELS_TEST_DB=str(tmp_path / "db.sqlite3"),
    )


@pytest.fixture
def layer(redis_url: str, unique_prefix: str) -> Iterator[RedisChannelLayer]:
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix)
    yield layer
    layer.flush()
    layer.close()


def test_the_delay_sample_arrives_on_its_channel_ten_seconds_later(
    env: dict[str, str], layer: RedisChannelLayer, redis_url: str, unique_prefix: str
) -> None:
    # python manage.py migrate
    migrate = subprocess.run(
        [sys.executable, "-m", "django", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    # 1.x's app label was "channels.delay", which Django no longer accepts.
    assert "Applying channels_delay.0001_initial... OK" in migrate.stdout
    # python manage.py rundelay
    server = ManagedProcess([sys.executable, "-m", "django", "rundelay"], env)
    try:
        server.wait_for("Delay server running")
        project_layer = {
            "BACKEND": "asgi_redis.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": unique_prefix},
        }
        with override_settings(CHANNEL_LAYERS={"default": project_layer}):
            sent = time.monotonic()
            runpy.run_path(str(SAMPLE / "delaying.py"))
        assert layer.receive(["example_channel"], block=True, timeout=25) == (
            "example_channel",
            {"x": 1},
        )
        assert time.monotonic() - sent >= 10 - 0.05  # "delayed 10 seconds by the server"
        assert layer.receive(["example_channel"], block=False) == (None, None)  # once
    finally:
        server.stop()
