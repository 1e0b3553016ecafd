# ruff: noqa
# fmt: off
# testing.rst, "Generic Consumers": the context module standing for myapp.consumers.

from channels.generic import BaseConsumer


class MyConsumer(BaseConsumer):
    method_mapping = {"input": "square"}

    def square(self, message, **kwargs):
        message.reply_channel.send({"value": message["value"] ** 2})
