# ruff: noqa
# fmt: off
# getting-started.rst, "Routing": includes with path prefixes, and method filters.

# Context the fragment takes for granted: the routing helpers and three consumers.
from channels import Channel
from channels.handler import AsgiHandler
from channels.routing import include, route
from django.http import HttpResponse


def poll_consumer(message):
    for chunk in AsgiHandler.encode_response(HttpResponse("polled")):
        message.reply_channel.send(chunk)


def chat_connect(message, **kwargs):
    message.reply_channel.send({"accept": True})
    message.reply_channel.send({"text": "room %s" % kwargs["room_name"]})


def chat_disconnect(message, **kwargs):
    Channel("docs.disconnected").send({"path": message["path"], "kwargs": kwargs})


# The sample:
http_routing = [
    route("http.request", poll_consumer, path=r"^/poll/$", method=r"^POST$"),
]

chat_routing = [
    route("websocket.connect", chat_connect, path=r"^/(?P<room_name>[a-zA-Z0-9_]+)/$"),
    route("websocket.disconnect", chat_disconnect),
]

routing = [
    # You can use a string import path as the first argument as well.
    include(chat_routing, path=r"^/chat"),
    include(http_routing),
]
