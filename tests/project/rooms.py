"""A minimal multi-room chat for the soak test: every frame goes to its room's group."""

from channels import Group
from channels.routing import route


def connect(message, room):
    message.reply_channel.send({"accept": True})
    Group(f"room-{room}").add(message.reply_channel)


def receive(message, room):
    Group(f"room-{room}").send({"text": message["text"]})


def disconnect(message, room):
    Group(f"room-{room}").discard(message.reply_channel)


ROOM = r"^/room/(?P<room>\w+)/$"

channel_routing = [
    route("websocket.connect", connect, path=ROOM),
    route("websocket.receive", receive, path=ROOM),
    route("websocket.disconnect", disconnect, path=ROOM),
]
