# ruff: noqa
# fmt: off
# generics.rst, "Applying Decorators": wrapping get_handler.

# Context: the import, a decorator, and a receive it wraps.
import functools

from channels.generic.websockets import WebsocketConsumer


def your_decorator(handler):
    @functools.wraps(handler)
    def inner(message, *args, **kwargs):
        message.reply_channel.send({"text": "decorated %s" % message.channel.name})
        return handler(message, *args, **kwargs)
    return inner


class MyConsumer(WebsocketConsumer):

    def get_handler(self, *args, **kwargs):
        handler = super(MyConsumer, self).get_handler(*args, **kwargs)
        return your_decorator(handler)

    # Context:
    def receive(self, text=None, bytes=None, **kwargs):
        self.send(text=text)
