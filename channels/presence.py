"""``Presence``: who is here, in the 1.x style of ``Group``.

``Presence("room-1").track(message.reply_channel, key=user.username)``
records a socket under a key; ``list()`` and ``count()`` say who is here
across every process using the layer. The layer keeps the set clean: the
interface server releases a socket's entries when it closes (they go after
the layer's ``presence_grace``, so a reconnect does not flicker) and, on
Redis, a live process releases those of a process that died.

The layer is found as ``Group`` finds it (an explicit layer, an alias, the
layer of the message being consumed, else the default). Unlike
``Group.send()``, every call reaches the layer at once, even inside a
consumer: the list a consumer reads already has the socket it just tracked.
"""

from __future__ import annotations

from typing import Any

from .channel import CONTEXTUAL_ALIAS, Channel, Group, _channel_name, _Named
from .layers.names import require_valid_group_name
from .layers.presence import Listing, require_presence_name

__all__ = ["Presence"]


def _notify_group(name: str, notify: object) -> str | None:
    """Return the group that gets *name*'s diffs, from ``Presence``'s *notify* argument."""
    if notify is None or notify is False:
        return None
    if notify is True:
        return name
    if isinstance(notify, Group):
        return notify.name
    if isinstance(notify, str):
        try:
            return require_valid_group_name(notify)
        except TypeError as exc:
            raise TypeError(f"notify must name a group: {exc}") from None
    raise TypeError(
        "notify must be False (no diffs), True (diffs to Group(name)), a group name or a "
        f"Group, not {notify!r}"
    )


class Presence(_Named):
    """The presence set *name* on a layer found as :class:`~channels.Group` finds it.

    *notify* says where join/leave diffs go: ``False`` nowhere, ``True`` to
    ``Group(name)``, or the group named (a str or a :class:`~channels.Group`).
    """

    def __init__(
        self,
        name: str | bytes,
        alias: str = CONTEXTUAL_ALIAS,
        channel_layer: Any = None,
        notify: bool | str | Group = False,
    ) -> None:
        if isinstance(name, bytes):
            name = name.decode("ascii")
        super().__init__(require_presence_name(name), alias, channel_layer)
        #: The group that gets the diffs, or None.
        self.notify = _notify_group(self.name, notify)

    def track(self, channel: Channel | str, key: str, meta: dict[str, Any] | None = None) -> None:
        """Record that *channel* (usually ``message.reply_channel``) is *key*, with *meta*.

        *meta* is a dict ``json.dumps`` accepts, at most 4096 bytes encoded.
        Tracking the channel again replaces its key and meta.
        """
        self.channel_layer.presence_track(self.name, _channel_name(channel), key, meta, self.notify)

    def untrack(self, channel: Channel | str) -> None:
        """Remove *channel*'s entry now, without grace; no error if it has none."""
        self.channel_layer.presence_untrack(self.name, _channel_name(channel))

    def list(self) -> Listing:
        """Return ``{key: [meta, ...]}``, each key's metas in the order they were tracked."""
        listed: Listing = self.channel_layer.presence_list(self.name)
        return listed

    def count(self) -> int:
        """Return the number of distinct keys: one user with three tabs counts once."""
        count: int = self.channel_layer.presence_count(self.name)
        return count

    async def atrack(
        self, channel: Channel | str, key: str, meta: dict[str, Any] | None = None
    ) -> None:
        """Async twin of :meth:`track`."""
        await self.channel_layer.apresence_track(
            self.name, _channel_name(channel), key, meta, self.notify
        )

    async def auntrack(self, channel: Channel | str) -> None:
        """Async twin of :meth:`untrack`."""
        await self.channel_layer.apresence_untrack(self.name, _channel_name(channel))

    async def alist(self) -> Listing:
        """Async twin of :meth:`list`."""
        listed: Listing = await self.channel_layer.apresence_list(self.name)
        return listed

    async def acount(self) -> int:
        """Async twin of :meth:`count`."""
        count: int = await self.channel_layer.apresence_count(self.name)
        return count
