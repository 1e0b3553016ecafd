"""The chat's consumers: WebSocket frames in, a ``chat-messages`` channel, groups out.

The room page's socket (``/chat/<room>/``) speaks JSON events:

* ``ws_connect`` (``websocket.connect``): only logged-in users on one of our
  own origins get in; the socket joins the room's group and the room list's
  group, is tracked in the room's :class:`~channels.Presence` under its
  user's name, and gets the room's "who is online" list.
* ``ws_receive`` (``websocket.receive``): a frame ``{"text": "..."}`` goes on
  the ``chat-messages`` channel with the room and the user. The page sends
  ``{"type": "sync", "after": <last message id>}`` each time its socket
  opens, the first time and after every reconnection, and gets back what it
  missed: the messages after that id, and the rooms.
* ``save_message`` (``chat-messages``): any worker saves it and broadcasts it
  to the room's group.
* ``ws_disconnect`` (``websocket.disconnect``): leave the groups.

Who is online is the room's presence, ``Presence(room.group_name,
notify=True)``: the socket's page starts from the list it gets on connect,
then the layer sends the room's group a diff, ``{"presence": "chat-<room>",
"joins": {...}, "leaves": {...}}``, about once a second while people come
and go. When a socket closes, the interface server releases its entry after
a few seconds' grace (a reloading page does not flicker out and in), and
when an interface server dies, any live process does, so nobody is left
online by a lost disconnect.

The room list's socket (``/``) is a :class:`RoomList` demultiplexer with
one stream, ``rooms``, fed by :class:`~chat.bindings.RoomBinding`. Room
pages get the same stream's frames (``{"stream": "rooms", ...}``) beside
their chat events, for their sidebar and title.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from django.contrib.auth import get_user_model

from channels import Channel, Group, Presence
from channels.auth import channel_session_user, channel_session_user_from_http
from channels.exceptions import DenyConnection
from channels.generic.websockets import WebsocketDemultiplexer, WebsocketMultiplexer
from channels.message import Message
from channels.security.websockets import allowed_hosts_only
from channels.sessions import enforce_ordering

from .bindings import ROOM_LIST_GROUP, RoomBinding, room_list_snapshot
from .models import ChatMessage, Room

#: The longest message we keep, in characters.
MAX_LENGTH = 2000
#: At most this many missed messages are replayed to a socket that connects.
CATCH_UP_LIMIT = 200


def send_event(target: Channel | Group, event: dict) -> None:
    target.send({"text": json.dumps(event)})


def who_is_online(room: Room) -> Presence:
    """Return the room's presence: its sockets by username, diffs to the room's group."""
    return Presence(room.group_name, notify=True)


def _after_id(message) -> int | None:
    """The ``?after=<message id>`` the socket was opened with (None if none, or not a number)."""
    query = message.get("query_string") or b""
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    return _message_id(parse_qs(query).get("after", [None])[0])


def _message_id(value) -> int | None:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return None


def send_missed(reply_channel: Channel, room: Room, after: int) -> None:
    """Send *reply_channel* the messages of *room* after id *after* (the page drops duplicates)."""
    missed = room.messages.select_related("user").filter(id__gt=after)
    for chat_message in missed[:CATCH_UP_LIMIT]:
        send_event(reply_channel, chat_message.as_event())


# enforce_ordering(slight=True) makes every other message of a socket wait
# for its connect, even on another worker: a frame sent as soon as the page
# hears "online" finds the connect's session saved (and so its user), and
# the connect's group adds always come before the disconnect's discards.
@enforce_ordering(slight=True)
@allowed_hosts_only
@channel_session_user_from_http
def ws_connect(message, room):
    if not message.user.is_authenticated:
        raise DenyConnection("Log in first")
    room = Room.objects.filter(slug=room).first()
    if room is None:
        raise DenyConnection("No such room")
    message.reply_channel.send({"accept": True})
    Group(room.group_name).add(message.reply_channel)
    Group(ROOM_LIST_GROUP).add(message.reply_channel)
    # Clients that are not our page ask for the messages they missed in the URL.
    after = _after_id(message)
    if after is not None:
        send_missed(message.reply_channel, room, after)
    # Read the list once the socket is in the room's group: every change from
    # then on reaches the page as a diff, and every earlier one is in the list.
    online = who_is_online(room)
    username = message.user.get_username()
    online.track(message.reply_channel, key=username, meta={"name": username})
    send_event(message.reply_channel, {"type": "online", "users": online.list()})


@enforce_ordering(slight=True)
@channel_session_user
def ws_receive(message, room):
    if not message.user.is_authenticated:
        return
    try:
        frame = json.loads(message["text"])
    except (KeyError, TypeError, ValueError):
        return
    if not isinstance(frame, dict):
        return
    if frame.get("type") == "sync":
        sync(message.reply_channel, room, _message_id(frame.get("after")) or 0)
        return
    text = frame.get("text")
    if not isinstance(text, str) or not text.strip():
        return
    Channel("chat-messages").send(
        {"room": room, "user_id": message.user.pk, "text": text.strip()[:MAX_LENGTH]}
    )


def sync(reply_channel: Channel, slug: str, after: int) -> None:
    """Bring a (re)connected room page up to date: the messages it missed, the rooms."""
    room = Room.objects.filter(slug=slug).first()
    if room is None:
        return
    send_missed(reply_channel, room, after)
    WebsocketMultiplexer(RoomBinding.stream, reply_channel).send(room_list_snapshot())


def save_message(message):
    room = Room.objects.filter(slug=message["room"]).first()
    user = get_user_model().objects.filter(pk=message["user_id"]).first()
    if room is None or user is None:
        return
    chat_message = ChatMessage.objects.create(room=room, user=user, text=message["text"])
    send_event(Group(room.group_name), chat_message.as_event())


@enforce_ordering(slight=True)
@channel_session_user
def ws_disconnect(message, room):
    Group(ROOM_LIST_GROUP).discard(message.reply_channel)
    Group(Room.group_name_of(room)).discard(message.reply_channel)
    # Nothing to untrack: the interface server has released the socket's
    # presence, which leaves the list once the grace period is over.


class RoomList(WebsocketDemultiplexer):
    """The room list page's socket: the ``rooms`` stream of :class:`~chat.bindings.RoomBinding`.

    Only logged-in users on our own origins get in. On connect the socket
    joins the room list's group, which the binding sends every change to,
    and gets the whole list (a ``snapshot`` payload) to start from.
    """

    http_user = True
    slight_ordering = True
    groups = [ROOM_LIST_GROUP]
    consumers = {RoomBinding.stream: RoomBinding.consumer}

    @allowed_hosts_only
    def raw_connect(self, message: Message, **kwargs) -> None:
        if not message.user.is_authenticated:
            raise DenyConnection("Log in first")
        super().raw_connect(message, **kwargs)
        WebsocketMultiplexer(RoomBinding.stream, self.reply_channel).send(room_list_snapshot())
