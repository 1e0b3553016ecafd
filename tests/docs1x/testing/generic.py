# ruff: noqa
# fmt: off
# testing.rst, "Generic Consumers": constructing a class-based consumer with a message.
#
# Broken in 1.x as written: the message sent has no reply_channel, so
# message.reply_channel is None and the consumer's send fails. MyTests is the sample;
# IntendedTests is its evident intent, the message carrying a reply channel.

from channels import Channel
from channels.test import ChannelTestCase

from myapp.consumers import MyConsumer

class MyTests(ChannelTestCase):

    def test_a_thing(self):
        # Inject a message onto the channel to use in a consumer
        Channel("input").send({"value": 33})
        # Run the consumer with the new Message object
        message = self.get_next_message("input", require=True)
        MyConsumer(message)
        # Verify there's a reply and that it's accurate
        result = self.get_next_message(message.reply_channel.name, require=True)
        self.assertEqual(result['value'], 1089)


class IntendedTests(ChannelTestCase):

    def test_a_thing(self):
        Channel("input").send({"value": 33, "reply_channel": "test.reply.one"})
        message = self.get_next_message("input", require=True)
        MyConsumer(message)
        result = self.get_next_message(message.reply_channel.name, require=True)
        self.assertEqual(result['value'], 1089)
