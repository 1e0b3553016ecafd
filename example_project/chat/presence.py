"""Who is online in a room, kept in the database so every worker agrees.

Each open socket is a :class:`~chat.models.Presence` row. A join or a leave
changes the rows and bumps ``Room.presence_version`` in one transaction, then
reads the count in that same transaction. Transactions that bump the same
room row are serialised by the database (SQLite locks the file; other
databases lock the row), so a higher version always comes with a count that
includes every earlier change. Broadcasts from different workers can still
overtake each other on the way to a browser, which is why they carry the
version and the page ignores any older than the last one it showed.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F

from .models import Presence, Room


def _snapshot(room_id: int) -> dict[str, Any]:
    """Bump the room's version and return its presence event (inside a transaction)."""
    Room.objects.filter(pk=room_id).update(presence_version=F("presence_version") + 1)
    version = Room.objects.values_list("presence_version", flat=True).get(pk=room_id)
    return {"type": "presence", "version": version, **_online(room_id)}


def _online(room_id: int) -> dict[str, Any]:
    names = Presence.objects.filter(room_id=room_id).values_list("user__username", flat=True)
    users = sorted(set(names))
    return {"count": len(users), "users": users}


def current(room: Room) -> dict[str, Any]:
    """Return the room's presence event as it stands, without bumping its version.

    A page that reconnects asks for this: the broadcast of its own join may
    come before or after, and the page keeps whichever version is newer.
    """
    with transaction.atomic():
        version = Room.objects.values_list("presence_version", flat=True).get(pk=room.pk)
        return {"type": "presence", "version": version, **_online(room.pk)}


def join(room: Room, user: Any, reply_channel: str) -> dict[str, Any]:
    """Record *reply_channel* of *user* in *room*; return the room's presence event."""
    with transaction.atomic():
        Presence.objects.update_or_create(
            reply_channel=reply_channel, defaults={"room": room, "user": user}
        )
        return _snapshot(room.pk)


def leave(reply_channel: str) -> tuple[Room, dict[str, Any]] | None:
    """Forget *reply_channel*; return its room and presence event, or None if unknown."""
    with transaction.atomic():
        presence = Presence.objects.select_related("room").filter(reply_channel=reply_channel)
        found = presence.first()
        if found is None:
            return None
        found.delete()
        return found.room, _snapshot(found.room_id)
