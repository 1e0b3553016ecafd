# ruff: noqa
# fmt: off
# generics.rst: the ``consumers`` module its routing samples import with
# ``from . import consumers``: ChatServer and ws_connect (context, never shown),
# and "As route"'s MyGenericConsumer (the sample).
#
# Broken in 1.x as written: '_'.join(self.group_prefix, self.group) passes join
# two arguments (TypeError). Kept: the evident '_'.join([prefix, group]).

from channels import Group
from channels.generic.websockets import WebsocketConsumer


class ChatServer(WebsocketConsumer):
    def receive(self, text=None, bytes=None, **kwargs):
        self.send(text="chat: %s" % text)


def ws_connect(message):
    message.reply_channel.send({"accept": True})
    message.reply_channel.send({"text": "ws_connect"})


# "As route":
class MyGenericConsumer(WebsocketConsumer):
    group = 'default'
    group_prefix = ''

    def connection_groups(self, **kwargs):
        return ['_'.join([self.group_prefix, self.group])]
