"""The room list, kept live in every open page by a data binding on ``Room``.

Whenever a room is created, renamed or deleted (from the room list's form,
the admin, or any code that saves a ``Room``), :class:`RoomBinding` sends the
change, once it is committed, on the ``rooms`` stream to the group
:data:`ROOM_LIST_GROUP`. Every open room list (``consumers.RoomList``) and
every open room page (``consumers.ws_connect``) is in that group, so their
lists change without a reload.

The stream is read-only: clients cannot change rooms through it.
"""

from __future__ import annotations

from typing import Any

from channels.binding.websockets import WebsocketBinding

from .models import Room

#: The group of every socket that shows the list of rooms. Room groups are
#: ``chat-<slug>``, so no room's group can be named this.
ROOM_LIST_GROUP = "room-list"
#: The payload action of :func:`room_list_snapshot` on the binding's stream.
SNAPSHOT = "snapshot"


class RoomBinding(WebsocketBinding):
    """Send every change to a room (its slug and title) to the open room lists."""

    model = Room
    stream = "rooms"
    fields = ["slug", "title"]

    @classmethod
    def group_names(cls, instance: Room) -> list[str]:
        return [ROOM_LIST_GROUP]

    def has_permission(self, user: Any, action: str, pk: Any) -> bool:
        # Rooms change over HTTP (the form, the admin), never from a socket.
        return False


def room_list_snapshot() -> dict[str, Any]:
    """Return every room as one payload on the ``rooms`` stream.

    A socket gets this when it connects: the changes the binding sends are
    only those made while it is connected, so a page that was rendered
    earlier, or lost its connection for a while, starts again from this.
    """
    rooms = [
        {"pk": room.pk, "slug": room.slug, "title": room.title}
        for room in Room.objects.order_by("title")
    ]
    return {"action": SNAPSHOT, "rooms": rooms}
