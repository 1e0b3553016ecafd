"""``websocket.connect`` consumers that accept, choose a subprotocol, or never answer."""

from channels.routing import route


def accept(message):
    """Accept, leaving the subprotocol to ``CHANNELS_WS_PROTOCOLS``."""
    message.reply_channel.send({"accept": True})


def choose(message):
    """Accept with the subprotocol named in the query string."""
    message.reply_channel.send({"accept": True, "subprotocol": message["query_string"].decode()})


def greet(message):
    """Accept implicitly, by sending a frame."""
    message.reply_channel.send({"text": "hello"})


def forget(message):
    """The mistake under test: a connect consumer that never accepts nor refuses."""


channel_routing = [
    route("websocket.connect", accept, path=r"^/accept/$"),
    route("websocket.connect", choose, path=r"^/choose/$"),
    route("websocket.connect", greet, path=r"^/greet/$"),
    route("websocket.connect", forget, path=r"^/forget/$"),
]
