# ruff: noqa
# fmt: off
# testing.rst, "Applying routes".
#
# Broken in 1.x as written: send_and_consume('websocket.connect', '/new') passes
# the path as ``content`` (its second parameter; 1.x then fails calling
# '/new'.setdefault). Kept: the evident path='/new'.

# Context: the consumer the sample routes.
from channels.generic.websockets import JsonWebsocketConsumer


class MyConsumer(JsonWebsocketConsumer):
    def connect(self, message, **kwargs):
        self.message.reply_channel.send({"accept": True})
        self.send({'key': 'value'})


# The sample:
from channels.test import ChannelTestCase, WSClient, apply_routes

class MyTests(ChannelTestCase):

    def test_myconsumer(self):
        client = WSClient()

        with apply_routes([MyConsumer.as_route(path='/new')]):
            client.send_and_consume('websocket.connect', path='/new')
            self.assertEqual(client.receive(), {'key': 'value'})
