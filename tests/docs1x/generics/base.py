# ruff: noqa
# fmt: off
# generics.rst, "Base": a BaseConsumer with a method_mapping.

from channels.generic import BaseConsumer

class MyConsumer(BaseConsumer):

    method_mapping = {
        "channel.name.here": "method_name",
    }

    def method_name(self, message, **kwargs):
        pass
