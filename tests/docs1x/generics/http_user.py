# ruff: noqa
# fmt: off
# generics.rst, "Sessions and Users": http_user on a class.

# Context: the import, and a connect to show what the message carries.
from channels.generic.websockets import WebsocketConsumer

class MyConsumer(WebsocketConsumer):

    http_user = True

    # Context:
    def connect(self, message, **kwargs):
        self.message.reply_channel.send({"accept": True})
        self.send(text="hello %s" % message.user.username)
