"""Group hygiene: what each process owns, and the reaper that cleans up after a dead one.

Three kinds of keys, all on the shard (cluster: the bucket) of a process's
``prefix!`` list, so one shard holds everything about one process:

``<layer prefix>hygiene:processes``
    the shard's **registry**, a sorted set: process prefix -> ms deadline
    (its last announce plus ``process_ttl``), written by the announce that
    rides on the process's receives (:mod:`.liveness`): no round trip of its own.
``<layer prefix>hygiene:owns:<process prefix>``
    its **ownership index** (:mod:`.ownership`), a sorted set of
    ``g <group> <channel>`` and ``p <presence> <channel>`` entries, written in
    the same round trip (on one server) as the ``group_add``/``presence_track``
    of one of its channels and removed with its ``group_discard``,
    ``presence_untrack`` or ``presence_release``.
``<layer prefix>hygiene:reaping:<process prefix>``
    a **lease**: whoever set it is reaping that process until it expires.

The :class:`Reaper` (run by every live process's housekeeping) claims
processes whose deadline passed and whose alive key is gone, one script call
per shard, each claim an atomic ``SET NX PX``: two reapers never take the same
process, and one that dies half-way is replaced when its lease runs out (the
work is idempotent, so taking it over is safe). Reaping a process removes its
channels from each group with one ``ZREM`` per group, releases their presence
entries (with grace), deletes its list and its index, then drops it from the
registry. Its ``seen:`` key stays, so :meth:`~.liveness.ProcessLiveness.alive`
keeps answering False. A clean close reaps the closing process's own
prefixes the same way, at once. Nothing here scans groups, and group sends
do not change: a dead process's members are simply gone from them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

from . import plans, scripts
from .ownership import Ownership
from .presence import PresenceSets
from .router import KeyRouter
from .scripts import Command
from .shard import Shard


class Reaper:
    """Find dead processes, claim each with a lease, and remove what they owned."""

    #: Seconds a claim holds: a reaper that died is replaced after this long.
    lease = 30.0
    #: Processes one reaper claims per shard and pass, at most.
    batch = 50

    def __init__(self, ownership: Ownership, router: KeyRouter, presence: PresenceSets) -> None:
        self._ownership = ownership
        self._router = router
        self._presence = presence
        #: Who holds a lease (readable in Redis, when one asks who reaps what).
        self.token = secrets.token_hex(8)

    def claim(self) -> Command:
        """Return the script call that claims a shard's dead processes (any shard: same call)."""
        own = self._ownership
        now, lease = int(time.time() * 1000), int(self.lease * 1000)
        keys = (own.registry, own.lease_prefix, own.alive_prefix)
        return ("EVALSHA", scripts.CLAIM.sha, len(keys), *keys, now, lease, self.token, self.batch)

    def reap_claimed(self, shard: Shard, claimed: list[bytes]) -> list[str]:
        """Reap the processes :meth:`claim` took on *shard*; return them."""
        processes = [process.decode() for process in claimed]
        if processes:
            self._reap(shard, processes, drop_lists=True)
        return processes

    def reap_dead(self) -> list[str]:
        """Reap every process whose deadline passed that no other reaper holds; return them.

        (Housekeeping sends the claims with its other commands, and calls
        :meth:`reap_claimed`; this is the same, on its own.)
        """
        claim = self.claim()
        replies = plans.run({shard: [claim] for shard in self._router.shards})
        return [
            p for shard, (claimed,) in replies.items() for p in self.reap_claimed(shard, claimed)
        ]

    def reap_own(self, processes: Sequence[str]) -> None:
        """Reap *processes*, this process's own, at once (a clean close); leave their lists.

        Their lists keep what the close puts back. A process another reaper
        holds is left to it.
        """
        own = self._ownership
        lease = int(self.lease * 1000)
        by_shard: dict[Shard, list[str]] = {}
        for process in processes:
            by_shard.setdefault(own.shard_of(process), []).append(process)
        plan = {
            shard: [("SET", own.lease_prefix + p, self.token, "NX", "PX", lease) for p in mine]
            for shard, mine in by_shard.items()
        }
        for shard, replies in plans.run(plan).items():
            claimed = [p for p, reply in zip(by_shard[shard], replies, strict=True) if reply]
            if claimed:
                self._reap(shard, claimed, drop_lists=False)

    def _reap(self, shard: Shard, processes: list[str], *, drop_lists: bool) -> None:
        """Remove what *processes* (all on *shard*) own, then forget them."""
        own = self._ownership
        indexes = [own.key(process) for process in processes]
        owned = shard.execute(*(("ZRANGE", key, 0, -1) for key in indexes))
        groups: dict[str, list[str]] = {}
        presences: dict[str, list[str]] = {}
        for entries in owned:
            for entry in entries:
                kind, name, channel = entry.decode().split(" ", 2)
                (groups if kind == "g" else presences).setdefault(name, []).append(channel)
        plan: plans.Plan = {}
        for group, members in groups.items():
            key, group_shard = self._router.group_key(group)
            plans.add(plan, group_shard, ("ZREM", key, *members))
        self._presence.add_releases(plan, presences)
        plans.run(plan)
        channels = {channel for members in presences.values() for channel in members}
        forget: list[Any] = [*indexes, *(own.lease_prefix + p for p in processes)]
        forget += [self._presence.index_key(channel) for channel in channels]
        if drop_lists:
            forget += [self._router.prefix + process for process in processes]
        shard.execute(("DEL", *forget), ("ZREM", own.registry, *processes))
