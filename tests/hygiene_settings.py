"""The test project's settings, with the presence grace that tests/test_group_hygiene.py sets.

``CHANNELS_TEST_PRESENCE_GRACE`` (seconds) goes to the layer's
``presence_grace``; everything else is :mod:`tests.project.settings`.
"""

import os

from tests.project.settings import *  # noqa: F403 - the project's settings, amended below
from tests.project.settings import CHANNEL_LAYERS

if "CHANNELS_TEST_PRESENCE_GRACE" in os.environ:
    CHANNEL_LAYERS["default"]["CONFIG"] = {
        **CHANNEL_LAYERS["default"].get("CONFIG", {}),
        "presence_grace": float(os.environ["CHANNELS_TEST_PRESENCE_GRACE"]),
    }
