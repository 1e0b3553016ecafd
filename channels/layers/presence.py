"""The ``"presence"`` extension: the rules every layer's presence shares.

A presence set is a name (valid as a group name) holding entries: a channel,
usually a socket's reply channel, tracked under a *key* (a username, say)
with a small JSON *meta*. Both built-in layers check their arguments with
:func:`check_track` (so a mistake fails the same way on each) and store meta
as the compact JSON text :func:`encode_meta` returns (so what ``list`` gives
back is the same JSON round trip on each). Join/leave diffs go to a notify
group as :func:`diff_frame` builds them.

:class:`PresenceExtension` holds the defaults of a layer without presence:
:class:`~channels.layers.base.BaseChannelLayer` inherits them, so a third
party backend fails with a message that says which layers have it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from ..exceptions import MessageTooLarge
from .names import require_valid_channel_name, require_valid_group_name

__all__ = [
    "MAX_META_BYTES",
    "Listing",
    "PresenceExtension",
    "check_track",
    "diff_frame",
    "encode_meta",
    "require_presence_name",
    "send_diff",
]

logger = logging.getLogger("channels.presence")

#: The largest meta, in bytes of compact UTF-8 JSON: presence is for who is here,
#: not for their profile (put an id in meta, and the rest in the database).
MAX_META_BYTES = 4096

#: What ``presence_list`` returns: ``{key: [meta of each channel, in track order]}``.
Listing = dict[str, list[dict[str, Any]]]

#: The layers that offer presence, for the message of a layer that does not.
_LAYERS_WITH_PRESENCE = (
    "channels.layers.inmemory.InMemoryChannelLayer, channels.layers.redis.RedisChannelLayer "
    "or channels.layers.redis.RedisSentinelChannelLayer"
)


def require_presence_name(name: object) -> str:
    """Return *name* if it can name a presence set (as a group name can), else raise TypeError."""
    try:
        return require_valid_group_name(name)
    except TypeError as exc:
        raise TypeError(f"A presence set is named as a group is: {exc}") from None


def encode_meta(meta: object) -> str:
    """Return *meta* (a JSON-serialisable dict, None for ``{}``) as compact JSON text.

    Raise ``TypeError`` for anything ``json.dumps`` refuses (NaN included, as
    JSON has none) and ``ValueError`` for a meta over :data:`MAX_META_BYTES`.
    """
    if meta is None:
        return "{}"
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict (a JSON object) or None, not {type(meta).__name__}")
    try:
        text = json.dumps(meta, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"meta must be a dict that json.dumps accepts (str keys; str, numbers, bool, None, "
            f"lists and dicts of them): {exc}"
        ) from exc
    size = len(text.encode())
    if size > MAX_META_BYTES:
        raise ValueError(
            f"meta is {size} bytes once encoded as JSON, more than the {MAX_META_BYTES} allowed: "
            "keep large data elsewhere and put its id in meta"
        )
    return text


def check_track(
    presence: object, channel: object, key: object, meta: object, notify: object
) -> tuple[str, str, str, str, str | None]:
    """Check the arguments of ``presence_track``; return them with meta as JSON text.

    Raise ``TypeError`` or ``ValueError`` saying what to pass, before the layer
    records anything.
    """
    name = require_presence_name(presence)
    channel = require_valid_channel_name(channel)
    if not isinstance(key, str):
        raise TypeError(f"key must be a str (a username, say), not {type(key).__name__}")
    if not key:
        raise ValueError("key must be a non-empty str (a username, say)")
    if notify is not None:
        try:
            notify = require_valid_group_name(notify)
        except TypeError as exc:
            raise TypeError(f"notify must be a group name or None: {exc}") from None
    return name, channel, key, encode_meta(meta), notify


def diff_frame(
    presence: str, joins: dict[str, list[Any]], leaves: dict[str, list[Any]]
) -> dict[str, str]:
    """Return the frame a notify group gets: the keys that joined and left *presence*."""
    diff = {"presence": presence, "joins": joins, "leaves": leaves}
    return {"text": json.dumps(diff, separators=(",", ":"))}


def send_diff(
    send_group: Callable[[str, dict[str, str]], None],
    group: str,
    presence: str,
    joins: dict[str, list[Any]],
    leaves: dict[str, list[Any]],
) -> None:
    """Send the diff of *presence* to *group*, over several frames if one is too large.

    A batch of many joins with large metas can outgrow the layer's
    ``max_message_size``; its keys are then split in halves until each frame
    fits, which a page applies in turn to the same result. A key whose metas
    alone outgrow the limit is dropped with a warning rather than raised:
    housekeeping must go on, and a page that lists again sees the key.
    """
    try:
        send_group(group, diff_frame(presence, joins, leaves))
    except MessageTooLarge:
        changes = [(True, k, m) for k, m in joins.items()] + [
            (False, k, m) for k, m in leaves.items()
        ]
        if len(changes) < 2:
            logger.warning(
                "Dropped the diff of presence %r to group %r: one key's metas make a frame "
                "larger than the layer's max_message_size",
                presence,
                group,
            )
            return
        half = len(changes) // 2
        for part in (changes[:half], changes[half:]):
            send_diff(
                send_group,
                group,
                presence,
                {k: m for joined, k, m in part if joined},
                {k: m for joined, k, m in part if not joined},
            )


class PresenceExtension:
    """The methods of the ``"presence"`` extension, for a layer that does not offer it.

    A backend that offers presence lists ``"presence"`` in ``extensions`` and
    overrides every method here; the ``a`` twins call the plain methods, so a
    backend whose plain methods block on I/O overrides the twins too. Every
    default raises ``NotImplementedError`` naming the layers that have presence.
    """

    def _no_presence(self, method: str) -> NotImplementedError:
        return NotImplementedError(
            f"{method}() is part of the 'presence' extension, which {type(self).__name__} does "
            f"not offer: use {_LAYERS_WITH_PRESENCE}"
        )

    def presence_track(
        self,
        presence: str,
        channel: str,
        key: str,
        meta: dict[str, Any] | None = None,
        notify: str | None = None,
    ) -> None:
        """Record that *channel* is *key*, with *meta*, in the presence set *presence*.

        Tracking the channel again in the same set replaces its key and meta.
        *notify* names a group that gets the set's join/leave diffs as frames
        (:func:`diff_frame`), sent in batches by :meth:`maintain`.
        """
        raise self._no_presence("presence_track")

    def presence_untrack(self, presence: str, channel: str) -> None:
        """Remove *channel* from the presence set *presence* now (no grace); no error if absent."""
        raise self._no_presence("presence_untrack")

    def presence_release(self, channel: str) -> None:
        """Have every entry of *channel*, a socket that is gone, leave after ``presence_grace``.

        The entries are still listed meanwhile, so a client that reconnects
        within the grace (and is tracked again under its key) never leaves.
        Releasing again does not extend the grace.
        """
        raise self._no_presence("presence_release")

    def presence_list(self, presence: str) -> Listing:
        """Return ``{key: [meta, ...]}`` of *presence*, each key's metas in track order."""
        raise self._no_presence("presence_list")

    def presence_count(self, presence: str) -> int:
        """Return how many distinct keys *presence* has (a user with three tabs counts once)."""
        raise self._no_presence("presence_count")

    async def apresence_track(
        self,
        presence: str,
        channel: str,
        key: str,
        meta: dict[str, Any] | None = None,
        notify: str | None = None,
    ) -> None:
        """Async twin of :meth:`presence_track`."""
        self.presence_track(presence, channel, key, meta, notify)

    async def apresence_untrack(self, presence: str, channel: str) -> None:
        """Async twin of :meth:`presence_untrack`."""
        self.presence_untrack(presence, channel)

    async def apresence_release(self, channel: str) -> None:
        """Async twin of :meth:`presence_release`."""
        self.presence_release(channel)

    async def apresence_list(self, presence: str) -> Listing:
        """Async twin of :meth:`presence_list`."""
        return self.presence_list(presence)

    async def apresence_count(self, presence: str) -> int:
        """Async twin of :meth:`presence_count`."""
        return self.presence_count(presence)
