"""The presence sets of the in-memory layer, and the batch of diffs they send.

:class:`PresenceTable` is plain data with no lock of its own: the
:class:`~channels.layers.inmemory.InMemoryChannelLayer` calls it with its
lock held, so the worker threads of ``runserver`` see one consistent state.
Time is ``time.monotonic()``, passed in by the caller. Released entries wait
in a heap ordered by the moment they leave, so expiry (on every call, and in
``maintain``) costs nothing while nothing is due.

Joins and leaves are found by counting each key's entries: a key joins when
its count goes from 0 to 1 and leaves when it drops to 0. A second tab, or a
channel tracked again with new meta, changes no count and makes no diff.

A released channel is remembered for a while (the layer passes twice its
``expiry``): a socket that closed before the worker tracking it ran is
tracked after its release, and its entry must still go. Such a track is
stored released at once, as is a released entry tracked again: a channel
whose socket is gone stays gone.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from typing import Any

from .presence import Listing

__all__ = ["Diff", "DiffBatch", "PresenceTable"]

#: A diff to send: its notify group, its presence set, its joins and its leaves.
Diff = tuple[str, str, dict[str, list[Any]], dict[str, list[Any]]]


class DiffBatch:
    """The joins and leaves of each presence set since the last :meth:`take`.

    A key that joins and then leaves (or leaves and then joins) before the
    batch is taken cancels out: its state is the one the last frame told.
    """

    def __init__(self) -> None:
        # {presence: {key: (joined, the metas it joined with or had when it left)}}
        self._changes: dict[str, dict[str, tuple[bool, list[str]]]] = {}
        self._notify: dict[str, str] = {}

    def add(self, presence: str, notify: str, key: str, joined: bool, metas: list[str]) -> None:
        """Record that *key* joined (or left) *presence*, whose diffs go to *notify*."""
        self._notify[presence] = notify
        changes = self._changes.setdefault(presence, {})
        # Keys change state one step at a time: a change pending for a key is
        # the opposite of this one, and the two make no difference.
        if changes.pop(key, None) is None:
            changes[key] = (joined, metas)

    def take(self) -> list[Diff]:
        """Return a diff per presence set with changes, and start a new batch."""
        diffs: list[Diff] = []
        for presence, changes in self._changes.items():
            if not changes:
                continue
            joins = {k: [json.loads(m) for m in metas] for k, (j, metas) in changes.items() if j}
            leaves = {
                k: [json.loads(m) for m in metas] for k, (j, metas) in changes.items() if not j
            }
            diffs.append((self._notify[presence], presence, joins, leaves))
        self._changes.clear()
        self._notify.clear()
        return diffs


@dataclass(slots=True)
class _Entry:
    key: str
    #: Compact JSON, as :func:`~channels.layers.presence.encode_meta` made it.
    meta: str
    #: When it leaves, once its channel is released.
    leaves_at: float | None = None


class PresenceTable:
    """Every presence set of one in-memory layer; call it with the layer's lock held."""

    def __init__(self) -> None:
        # {presence: {channel: entry}}, each set in track order (a new track goes last).
        self._sets: dict[str, dict[str, _Entry]] = {}
        # {presence: {key: how many entries have it}}
        self._holders: dict[str, dict[str, int]] = {}
        # {presence: the notify group its latest track named}
        self._notify: dict[str, str] = {}
        # {channel: the presence sets it has an entry in}, for release
        self._of_channel: dict[str, set[str]] = {}
        # (leaves_at, presence, channel) of released entries; stale ones are skipped
        self._due: list[tuple[float, str, str]] = []
        # {channel: until when a track of it is stored released}, and the same
        # as a heap (until, channel) to forget them in order; stale ones are skipped
        self._released: dict[str, float] = {}
        self._forget: list[tuple[float, str]] = []
        self.diffs = DiffBatch()

    def track(
        self,
        presence: str,
        channel: str,
        key: str,
        meta: str,
        notify: str | None,
        now: float,
        grace: float,
    ) -> None:
        """Record *channel* as *key* with *meta* in *presence*, replacing its entry there.

        A channel released before leaves *grace* seconds from *now* (or, if
        its entry here was released, when that one would have).
        """
        self.expire(now)
        if notify is not None:
            self._notify[presence] = notify
        entries = self._sets.setdefault(presence, {})
        old = entries.pop(channel, None)
        entry = entries[channel] = _Entry(key, meta)
        self._of_channel.setdefault(channel, set()).add(presence)
        if old is None or old.key != key:
            self._gain(presence, key, meta)
            if old is not None:
                self._lose(presence, old)
        if old is not None and old.leaves_at is not None:
            entry.leaves_at = old.leaves_at  # its place in the heap stands
        elif channel in self._released:
            entry.leaves_at = now + grace
            heapq.heappush(self._due, (entry.leaves_at, presence, channel))
            self.expire(now)  # with no grace, it goes at once

    def untrack(self, presence: str, channel: str, now: float) -> None:
        """Remove *channel*'s entry from *presence* now, if it has one."""
        self.expire(now)
        self._remove(presence, channel)

    def release(self, channel: str, now: float, grace: float, remember: float) -> None:
        """Have each entry of *channel* leave *grace* seconds from *now* (unless already due).

        Tracks of *channel* in the next *remember* seconds are stored released.
        """
        until = self._released[channel] = now + remember
        heapq.heappush(self._forget, (until, channel))
        for presence in self._of_channel.get(channel, ()):
            entry = self._sets[presence][channel]
            if entry.leaves_at is None:
                entry.leaves_at = now + grace
                heapq.heappush(self._due, (entry.leaves_at, presence, channel))
        self.expire(now)

    def listing(self, presence: str, now: float) -> Listing:
        """Return ``{key: [meta, ...]}`` of *presence*, metas in track order."""
        self.expire(now)
        listed: Listing = {}
        for entry in self._sets.get(presence, {}).values():
            listed.setdefault(entry.key, []).append(json.loads(entry.meta))
        return listed

    def count(self, presence: str, now: float) -> int:
        """Return the number of distinct keys of *presence*."""
        self.expire(now)
        return len(self._holders.get(presence, ()))

    def expire(self, now: float) -> None:
        """Remove the released entries whose grace ran out by *now*, and old releases."""
        forget = self._forget
        while forget and forget[0][0] <= now:
            until, channel = heapq.heappop(forget)
            if self._released.get(channel) == until:
                del self._released[channel]
        due = self._due
        while due and due[0][0] <= now:
            leaves_at, presence, channel = heapq.heappop(due)
            entry = self._sets.get(presence, {}).get(channel)
            # Tracked again, or untracked, since it was released: not due any more.
            if entry is not None and entry.leaves_at == leaves_at:
                self._remove(presence, channel)

    # Internals -------------------------------------------------------------

    def _remove(self, presence: str, channel: str) -> None:
        entries = self._sets.get(presence)
        entry = entries.pop(channel, None) if entries is not None else None
        if entry is None:
            return
        presences = self._of_channel[channel]
        presences.discard(presence)
        if not presences:
            del self._of_channel[channel]
        self._lose(presence, entry)
        if not entries:
            del self._sets[presence]
            self._holders.pop(presence, None)
            self._notify.pop(presence, None)

    def _gain(self, presence: str, key: str, meta: str) -> None:
        holders = self._holders.setdefault(presence, {})
        held = holders.get(key, 0)
        holders[key] = held + 1
        if not held:
            self._changed(presence, key, True, meta)

    def _lose(self, presence: str, entry: _Entry) -> None:
        holders = self._holders[presence]
        held = holders[entry.key] - 1
        if held:
            holders[entry.key] = held
        else:
            del holders[entry.key]
            self._changed(presence, entry.key, False, entry.meta)

    def _changed(self, presence: str, key: str, joined: bool, meta: str) -> None:
        notify = self._notify.get(presence)
        if notify is not None:
            self.diffs.add(presence, notify, key, joined, [meta])
