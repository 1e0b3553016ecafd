# ruff: noqa
# fmt: off
# testing.rst, "Clients": HttpClient(ordered=True), and orders given by hand.

# Context: a test case around the fragments, and an ordered consumer to run.
from channels import Channel
from channels.routing import route
from channels.sessions import enforce_ordering
from channels.test import ChannelTestCase, HttpClient, apply_routes


@enforce_ordering
def ordered(message):
    Channel("docs.ordered").send({"text": message["text"]})


class OrderedTests(ChannelTestCase):

    def got(self):
        texts = []
        while (message := self.get_next_message("docs.ordered")) is not None:
            texts.append(message["text"])
        return texts

    @apply_routes([route("websocket.receive", ordered)])
    def test_ordered_client(self):
        # The sample:
        client = HttpClient(ordered=True)
        client.send_and_consume('websocket.receive', text='1', path='/ws')  # order = 0
        client.send_and_consume('websocket.receive', text='2', path='/ws')  # order = 1
        client.send_and_consume('websocket.receive', text='3', path='/ws')  # order = 2
        # Context:
        self.assertEqual(self.got(), ['1', '2', '3'])

    @apply_routes([route("websocket.receive", ordered)])
    def test_manual_orders(self):
        # The sample:
        # manually
        client = HttpClient()
        client.send('websocket.receive', content={'order': 0}, text='1')
        client.send('websocket.receive', content={'order': 2}, text='2')
        client.send('websocket.receive', content={'order': 1}, text='3')

        # calling consume 4 time for `waiting` message with order 1
        client.consume('websocket.receive')
        client.consume('websocket.receive')
        client.consume('websocket.receive')
        client.consume('websocket.receive')
        # Context:
        self.assertEqual(self.got(), ['1', '3', '2'])
