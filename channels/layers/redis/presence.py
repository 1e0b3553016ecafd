"""The Redis layer's presence sets: who is in each, in one round trip per call.

A set *N* lives on the shard of ``presence:<N>`` (cluster: its bucket), kept
by the Lua of :mod:`.presence_lua`, so concurrent workers never miscount: a
key joins when its first channel comes and leaves when its last one goes,
wherever they were tracked. Each channel has an index of the sets it is in,
``<prefix>presence-of:<channel>`` on the channel's own shard, which
:meth:`PresenceSets.release` reads; a process's channels are also in its
ownership index (:mod:`.hygiene`), which the reaper reads. On one server a
track, an untrack, a list and a count are one round trip each (the set's
script and the index's commands in one write); a release is two (read the
index, then release everywhere it points), one if the channel is in none.

A socket may close before the worker that tracks it has run (the client
left at once): its release then finds nothing, and the track comes after.
So a release first leaves a marker, ``<prefix>presence-released:<channel>``
beside the index for twice the layer's ``expiry`` (a ``websocket.connect``
older than ``expiry`` is dropped unread, and a reply channel's name is
never used again), and only then reads the index; a track adds to the
index and only then asks for the marker, in the same write. Both on one
shard, one of the two sees the other: the release finds the set, or the
track finds the marker and releases its entry itself, one more round trip
in that rare case. The release may reach the set before the track's
script does; RELEASE then notes the channel as released, and TRACK stores
it so (:mod:`.presence_lua`).

Diffs are kept in Redis beside each set with a notify group, and taken by
the first housekeeping pass of any process (:meth:`PresenceSets.sweep`):
changes made anywhere are sent once, in one frame per set and pass.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from ..names import require_valid_channel_name
from ..presence import Listing, check_track, require_presence_name
from . import plans, scripts
from .ownership import Ownership, presence_entry
from .router import KeyRouter
from .scripts import Command
from .shard import Shard

#: A diff to send: (notify group, presence set, joins, leaves), metas decoded.
Notification = tuple[str, str, dict[str, list[Any]], dict[str, list[Any]]]


def now_ms() -> int:
    return int(time.time() * 1000)


class Track(NamedTuple):
    """A track's plan, and where its reply says whether the channel was released."""

    plan: plans.Plan
    #: The channel's shard: the EXISTS of its marker is the third of its commands.
    index_shard: Shard
    name: str
    channel: str


#: Where, among the index shard's replies to a track, the marker's EXISTS is.
_MARKER_REPLY = 2


def parse_record(record: bytes) -> tuple[int, str, str]:
    """Return (track number, key, meta JSON) of a stored entry (:mod:`.presence_lua`)."""
    number, length, rest = record.split(b":", 2)
    size = int(length)
    return int(number), rest[:size].decode(), rest[size:].decode()


def parse_listing(flat: list[bytes]) -> Listing:
    """Return ``{key: [meta, ...]}`` from ``HGETALL``'s (channel, record, ...), in track order."""
    records = sorted(parse_record(record) for record in flat[1::2])
    result: Listing = {}
    for _, key, meta in records:
        result.setdefault(key, []).append(json.loads(meta))
    return result


def notifications(swept: Iterable[list[Any]]) -> list[Notification]:
    """Return the diffs of a SWEEP's reply: per set, its notify group, joins and leaves."""
    diffs: list[Notification] = []
    for name, notify, changes in swept:
        diff: dict[bytes, dict[str, list[Any]]] = {b"j": {}, b"l": {}}
        for kind, key, record in changes:
            _, _, meta = parse_record(record)
            diff[kind][key.decode()] = [json.loads(meta)]
        diffs.append((notify.decode(), name.decode(), diff[b"j"], diff[b"l"]))
    return diffs


class PresenceSets:
    """The presence sets of one Redis layer: their keys, plans and script calls.

    *grace* returns the layer's ``presence_grace`` when a release happens, so
    a change to the layer's attribute applies at once.
    """

    #: Sets one housekeeping pass settles, and sets it takes the diffs of, per shard.
    sweep_batch = 100

    def __init__(
        self, router: KeyRouter, ownership: Ownership, grace: Callable[[], float], ttl: int
    ) -> None:
        self.prefix = prefix = router.prefix
        self._router = router
        self._ownership = ownership
        self._grace = grace
        #: Seconds a set's keys outlive its last track: as long as a group membership.
        self._ttl = ttl
        self._dirty = prefix + "hygiene:presence-dirty"
        self._expiring = prefix + "hygiene:presence-expiring"

    # Keys -----------------------------------------------------------------

    def _set(self, name: str) -> tuple[list[str], Shard]:
        """Return the KEYS of *name*'s scripts, and its shard."""
        shard = self._router.shards[self._router.ring.shard_for("presence:" + name)]
        return [f"{self.prefix}presence:{name}", self._dirty, self._expiring], shard

    def index_key(self, channel: str) -> str:
        """Return the key of the sets *channel* is in."""
        return f"{self.prefix}presence-of:{channel}"

    def marker_key(self, channel: str) -> str:
        """Return the key that says *channel* was released (on the shard of its index)."""
        return f"{self.prefix}presence-released:{channel}"

    def _index_shard(self, channel: str) -> Shard:
        return self._router.shards[self._router.channel_key(channel)[2]]

    def _marker_ms(self) -> int:
        """Return how long a release's marker (and RELEASE's note) lasts: twice ``expiry``."""
        return max(1, int(2 * self._router.expiry * 1000))

    # Plans ----------------------------------------------------------------

    def track_plan(
        self, presence: str, channel: str, key: str, meta: Any, notify: str | None
    ) -> Track:
        name, channel, key, encoded, notify = check_track(presence, channel, key, meta, notify)
        keys, shard = self._set(name)
        index, index_shard = self.index_key(channel), self._index_shard(channel)
        plan: plans.Plan = {}
        # The indexes first (whatever is tracked can always be found again), and
        # the marker after the index: a release writes them in the other order.
        indexing = [
            ("SADD", index, name),
            ("EXPIRE", index, self._ttl),
            ("EXISTS", self.marker_key(channel)),
        ]
        plans.add(plan, index_shard, *indexing)
        self._ownership.index_presence(plan, name, channel)
        now = now_ms()
        deadline = now + int(self._grace() * 1000)
        args = (name, channel, key, encoded, notify or "", self._ttl, now, deadline)
        plans.add(plan, shard, ("EVALSHA", scripts.TRACK.sha, len(keys), *keys, *args))
        return Track(plan, index_shard, name, channel)

    def late_release_plan(self, track: Track, replies: plans.Replies) -> plans.Plan:
        """Return the release of a tracked channel whose marker the track saw (else nothing).

        Its socket closed before the track, whose entry now leaves after the
        grace like any released one.
        """
        if not replies[track.index_shard][_MARKER_REPLY]:
            return {}
        return self._release_plan(track.channel, track.index_shard, [track.name])

    def untrack_plan(self, presence: str, channel: str) -> plans.Plan:
        name = require_presence_name(presence)
        require_valid_channel_name(channel)
        keys, shard = self._set(name)
        plan: plans.Plan = {}
        plans.add(plan, shard, ("EVALSHA", scripts.UNTRACK.sha, len(keys), *keys, name, channel))
        plans.add(plan, self._index_shard(channel), ("SREM", self.index_key(channel), name))
        self._ownership.unindex(plan, channel, presence_entry(name, channel))
        return plan

    def add_releases(self, plan: plans.Plan, channels: Mapping[str, list[str]]) -> None:
        """Add to *plan* the release of ``{set name: [channel, ...]}``, with the grace."""
        now = now_ms()
        deadline = now + int(self._grace() * 1000)
        noted = now + self._marker_ms()
        for name, members in channels.items():
            keys, shard = self._set(name)
            args = (name, deadline, now, noted)
            release = ("EVALSHA", scripts.RELEASE.sha, len(keys), *keys, *args)
            plans.add(plan, shard, (*release, *members))

    def release_lookup(self, channel: str) -> tuple[Shard, list[Command]]:
        """Return the shard of *channel*'s index, and the release's first step there.

        It marks the channel released, then reads the index (the replies'
        second), in that order: see the module's docstring.
        """
        require_valid_channel_name(channel)
        mark = ("SET", self.marker_key(channel), 1, "PX", self._marker_ms())
        return self._index_shard(channel), [mark, ("SMEMBERS", self.index_key(channel))]

    def release_plan(self, channel: str, shard: Shard, names: list[bytes]) -> plans.Plan:
        """Return the release of *channel* from the sets *names* its index (on *shard*) lists."""
        return self._release_plan(channel, shard, [name.decode() for name in names])

    def _release_plan(self, channel: str, shard: Shard, sets: list[str]) -> plans.Plan:
        plan: plans.Plan = {}
        self.add_releases(plan, {name: [channel] for name in sets})
        # Only what was read: a set a track adds meanwhile is that track's to release.
        plans.add(plan, shard, ("SREM", self.index_key(channel), *sets))
        self._ownership.unindex(plan, channel, *(presence_entry(name, channel) for name in sets))
        return plan

    def query(self, presence: str) -> tuple[Shard, list[str], list[Any]]:
        """Return the shard, keys and args of a LIST or COUNT of *presence*."""
        name = require_presence_name(presence)
        keys, shard = self._set(name)
        return shard, keys, [name, now_ms()]

    def sweep(self) -> Command:
        """Return the script call that settles a shard's due sets and takes their diffs."""
        keys = [self.prefix + "presence:", self._dirty, self._expiring]
        return ("EVALSHA", scripts.SWEEP.sha, len(keys), *keys, now_ms(), self.sweep_batch)

    # Sync and async calls -------------------------------------------------

    def track(self, presence: str, channel: str, key: str, meta: Any, notify: str | None) -> None:
        track = self.track_plan(presence, channel, key, meta, notify)
        late = self.late_release_plan(track, plans.run(track.plan))
        if late:
            plans.run(late)

    async def atrack(
        self, presence: str, channel: str, key: str, meta: Any, notify: str | None
    ) -> None:
        track = self.track_plan(presence, channel, key, meta, notify)
        late = self.late_release_plan(track, await plans.arun(track.plan))
        if late:
            await plans.arun(late)

    def untrack(self, presence: str, channel: str) -> None:
        plans.run(self.untrack_plan(presence, channel))

    async def auntrack(self, presence: str, channel: str) -> None:
        await plans.arun(self.untrack_plan(presence, channel))

    def release(self, channel: str) -> None:
        shard, lookup = self.release_lookup(channel)
        _, names = shard.execute(*lookup)
        if names:
            plans.run(self.release_plan(channel, shard, names))

    async def arelease(self, channel: str) -> None:
        shard, lookup = self.release_lookup(channel)
        _, names = await shard.aexecute(*lookup)
        if names:
            await plans.arun(self.release_plan(channel, shard, names))

    def listing(self, presence: str) -> Listing:
        shard, keys, args = self.query(presence)
        return parse_listing(shard.eval(scripts.LIST, keys, args))

    async def alisting(self, presence: str) -> Listing:
        shard, keys, args = self.query(presence)
        return parse_listing(await shard.aeval(scripts.LIST, keys, args))

    def count(self, presence: str) -> int:
        shard, keys, args = self.query(presence)
        return int(shard.eval(scripts.COUNT, keys, args))

    async def acount(self, presence: str) -> int:
        shard, keys, args = self.query(presence)
        return int(await shard.aeval(scripts.COUNT, keys, args))
