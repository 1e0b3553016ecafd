# ruff: noqa
# fmt: off
# testing.rst, "ChannelTestCase": testing a consumer that squares a value.

# Context: the consumer the sample tests ("take a value and post the square
# of it to the "result" channel").
from channels import Channel


def my_consumer(message):
    Channel("result").send({"value": message["value"] ** 2})


# The sample:
from channels import Channel
from channels.test import ChannelTestCase

class MyTests(ChannelTestCase):
    def test_a_thing(self):
        # Inject a message onto the channel to use in a consumer
        Channel("input").send({"value": 33})
        # Run the consumer with the new Message object
        my_consumer(self.get_next_message("input", require=True))
        # Verify there's a result and that it's accurate
        result = self.get_next_message("result", require=True)
        self.assertEqual(result['value'], 1089)
