"""The test project's settings with the health check on, for tests/test_drain.py.

``CHANNELS_HEALTH_PATH`` is ``/healthz``; ``CHANNELS_TEST_DRAIN_TIMEOUT``
(seconds) sets ``CHANNELS_DRAIN_TIMEOUT``. Everything else is
:mod:`tests.project.settings`.
"""

import os

from tests.project.settings import *  # noqa: F403 - the project's settings, amended below

CHANNELS_HEALTH_PATH = "/healthz"
CHANNELS_DRAIN_TIMEOUT = float(os.environ.get("CHANNELS_TEST_DRAIN_TIMEOUT", "10"))
