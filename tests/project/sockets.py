"""WebSocket consumers that exercise the handshake and frame rules, routed by path."""

import time

from channels import Channel
from channels.routing import include, route


def connect(message, mode):
    if mode == "accept" or mode == "echo":
        message.reply_channel.send({"accept": True})
    elif mode == "reject":
        message.reply_channel.send({"close": True})
    elif mode == "implicit":
        message.reply_channel.send({"text": "hello before accept"})
    elif mode == "slowaccept":
        time.sleep(float(message["query_string"].decode() or 0))
        message.reply_channel.send({"accept": True})


def receive(message, mode):
    if "bytes" in message.content:
        message.reply_channel.send({"bytes": message["bytes"][::-1]})
    elif message["text"].startswith("close "):
        message.reply_channel.send({"close": int(message["text"].split()[1])})
    elif message["text"] == "both":
        message.reply_channel.send({"text": "a", "bytes": b"b"})
        message.reply_channel.send({"text": "after both", "surprise": 1})
    else:
        message.reply_channel.send({"text": message["text"], "order": message["order"]})


def disconnect(message, mode):
    Channel("test.events").send(
        {"disconnect": message["code"], "path": message["path"], "order": message["order"]}
    )


def http_disconnect(message):
    Channel("test.events").send({"http.disconnect": message["path"]})


def answer(message):
    """Answer a request whose view raised ResponseLater."""
    from django.http import HttpResponse

    from channels.handler import AsgiHandler

    for chunk in AsgiHandler.encode_response(HttpResponse("answered later")):
        Channel(message["reply_channel"]).send(chunk)


socket_routing = [
    route("websocket.connect", connect),
    route("websocket.receive", receive),
    route("websocket.disconnect", disconnect),
]

channel_routing = [
    include(socket_routing, path=r"^/ws/(?P<mode>\w+)/"),
    route("http.disconnect", http_disconnect),
    route("test.later", answer),
]
