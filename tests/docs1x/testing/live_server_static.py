# ruff: noqa
# fmt: off
# testing.rst, "Live Server Test Case": turning static file serving off.

from channels.test import ChannelLiveServerTestCase

class IntegrationTest(ChannelLiveServerTestCase):

    serve_static = False

    def test_websocket_message(self):
        # JS and CSS are not available in this test.
        ...
