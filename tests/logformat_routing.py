"""Consumers whose log lines the log-format tests read."""

from channels.routing import route


def fail(message):
    """An http.request consumer with a bug: the worker logs it."""
    raise RuntimeError("the bug under test")


def echo(message):
    message.reply_channel.send({"text": message["text"]})


def forget(message):
    """A connect consumer that never answers: the interface server warns."""


channel_routing = [
    route("http.request", fail, path=r"^/fail/$"),
    route("websocket.connect", forget, path=r"^/forget/$"),
    route("websocket.receive", echo),
]
