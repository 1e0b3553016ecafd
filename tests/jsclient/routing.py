"""WebSocket routing of the browser tests (``CHANNELS_TEST_ROUTING``).

``/`` is where ``bridge.connect()`` without a URL goes (1.x's default), so the
demultiplexed streams of the 1.x docs' sample live there.

The data binding round trip runs on ``tests.bindingapp``'s routing instead
(its URLs include the test project's, so these pages are served there too).
"""

from tests.jsclient.consumers import Echo, Mute, Streams

channel_routing = [
    Echo.as_route(path=r"^/ws/$"),
    Mute.as_route(path=r"^/ws/mute/$"),
    Streams.as_route(path=r"^/$"),
]
