# ruff: noqa
# fmt: off
# Channels 1.1.8 docs/binding.rst, "Getting Started": the second sample, as written.
from channels.generic.websockets import WebsocketDemultiplexer
from .binding import IntegerValueBinding

class Demultiplexer(WebsocketDemultiplexer):

    consumers = {
        "intval": IntegerValueBinding.consumer,
    }

    def connection_groups(self):
        return ["intval-updates"]
