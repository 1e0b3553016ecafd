"""The test project's settings, with the subprotocols 1.x projects listed for daphne."""

from tests.project.settings import *  # noqa: F403 - the rest of the project's settings

CHANNELS_WS_PROTOCOLS = ["graphql-ws", "chat.v2"]
