"""The test project's settings with a layer whose ROUTING is $FIRST_HOUR_ROUTING (or unset)."""

import os

from tests.project.settings import *  # noqa: F403

CHANNEL_LAYERS = {"default": {"BACKEND": "asgiref.inmemory.ChannelLayer"}}
if os.environ.get("FIRST_HOUR_ROUTING"):
    CHANNEL_LAYERS["default"]["ROUTING"] = os.environ["FIRST_HOUR_ROUTING"]
