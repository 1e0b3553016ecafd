"""The chat's consumers: WebSocket frames in, a ``chat-messages`` channel, groups out.

* ``ws_connect`` (``websocket.connect``): only logged-in users on one of our
  own origins get in; the socket joins the room's group, catches up on
  messages it missed since the page was rendered, and everyone in the room
  hears the new "who is online" count.
* ``ws_receive`` (``websocket.receive``): a frame ``{"text": "..."}`` goes on
  the ``chat-messages`` channel with the room and the user.
* ``save_message`` (``chat-messages``): any worker saves it and broadcasts it
  to the room's group.
* ``ws_disconnect`` (``websocket.disconnect``): leave the group, update the count.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from django.contrib.auth import get_user_model

from channels import Channel, Group
from channels.auth import channel_session_user, channel_session_user_from_http
from channels.exceptions import DenyConnection
from channels.security.websockets import allowed_hosts_only
from channels.sessions import enforce_ordering

from . import presence
from .models import ChatMessage, Room

#: The longest message we keep, in characters.
MAX_LENGTH = 2000
#: At most this many missed messages are replayed to a socket that connects.
CATCH_UP_LIMIT = 200


def send_event(target: Channel | Group, event: dict) -> None:
    target.send({"text": json.dumps(event)})


def _after_id(message) -> int:
    """The ``?after=<message id>`` the page opened the socket with (0 if none)."""
    query = message.get("query_string") or b""
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    try:
        return max(0, int(parse_qs(query).get("after", ["0"])[0]))
    except ValueError:
        return 0


# enforce_ordering(slight=True) makes the disconnect of a socket wait for its
# connect, even on another worker: the connect's presence row is then always
# there for the disconnect to remove.
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
    # Messages saved between the page's render and now: the page drops duplicates.
    missed = room.messages.select_related("user").filter(id__gt=_after_id(message))
    for chat_message in missed[:CATCH_UP_LIMIT]:
        send_event(message.reply_channel, chat_message.as_event())
    send_event(
        Group(room.group_name), presence.join(room, message.user, message.reply_channel.name)
    )


@channel_session_user
def ws_receive(message, room):
    if not message.user.is_authenticated:
        return
    try:
        text = json.loads(message["text"])["text"]
    except (KeyError, TypeError, ValueError):
        return
    if not isinstance(text, str) or not text.strip():
        return
    Channel("chat-messages").send(
        {"room": room, "user_id": message.user.pk, "text": text.strip()[:MAX_LENGTH]}
    )


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
    left = presence.leave(message.reply_channel.name)
    if left is None:
        return  # it never got in
    room, event = left
    Group(room.group_name).discard(message.reply_channel)
    send_event(Group(room.group_name), event)
