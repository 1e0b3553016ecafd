# ruff: noqa
# fmt: off
# generics.rst, "Sessions and Users": channel_session_user on a class.

# Context: the import, and a receive to show what the message carries.
from channels.generic.websockets import WebsocketConsumer

class MyConsumer(WebsocketConsumer):

    channel_session_user = True

    # Context:
    def receive(self, text=None, bytes=None, **kwargs):
        self.message.channel_session["frames"] = self.message.channel_session.get("frames", 0) + 1
        self.send(text="%s %s" % (self.message.user.username, self.message.channel_session["frames"]))
