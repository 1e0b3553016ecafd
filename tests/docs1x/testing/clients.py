# ruff: noqa
# fmt: off
# testing.rst, "Clients": send_and_consume then receive.

# Context: the project's routing the sample relies on (ROUTING points here).
from channels.routing import route


def internal(message):
    message.reply_channel.send({'all is': 'done'})


channel_routing = [route('my_internal_channel', internal)]

# The sample:
from channels.test import ChannelTestCase, Client

class MyTests(ChannelTestCase):

    def test_my_consumer(self):
        client = Client()
        client.send_and_consume('my_internal_channel', {'value': 'my_value'})
        self.assertEqual(client.receive(), {'all is': 'done'})
