"""The keys of group hygiene: the process registry, ownership indexes and reaping leases.

CPU only: the names of the keys :mod:`.hygiene` describes, and the commands
that keep a process's ownership index in step with its channels' group
memberships and presence entries. An index is a sorted set of entries
``g <group> <channel>`` (scored by when the membership was added) and
``p <presence> <channel>`` (scored ``+inf``); names hold no spaces, so an
entry splits back.
"""

from __future__ import annotations

import time

from .liveness import process_of
from .plans import Plan, add
from .router import KeyRouter
from .shard import Shard


def group_entry(group: str, channel: str) -> str:
    """Return the ownership index entry of *channel*'s membership of *group*."""
    return f"g {group} {channel}"


def presence_entry(presence: str, channel: str) -> str:
    """Return the ownership index entry of *channel*'s entry in the presence set *presence*."""
    return f"p {presence} {channel}"


class Ownership:
    """The keys of the registry, ownership indexes and leases of one layer."""

    def __init__(self, prefix: str, router: KeyRouter, ttl: int) -> None:
        self.prefix = prefix
        self._router = router
        #: Seconds an index outlives its last write, and an index entry of a
        #: membership its ``group_add``: as long as a membership (``group_expiry``).
        self.ttl = ttl
        #: The registry's key (one per shard: the same name on each).
        self.registry = prefix + "hygiene:processes"
        self.lease_prefix = prefix + "hygiene:reaping:"
        self.alive_prefix = prefix + "alive:"

    def key(self, process: str) -> str:
        """Return the ownership index of the process prefix *process*."""
        return f"{self.prefix}hygiene:owns:{process}"

    def shard_of(self, process: str) -> Shard:
        """Return the shard of everything about *process*: that of its list."""
        return self._router.shard_of_key(self.prefix + process)

    def index_membership(self, plan: Plan, group: str, channel: str) -> None:
        """Add to *plan* the indexing of *channel*'s membership of *group* (a process's).

        Scored by when it was added, as the membership is; entries older
        than ``group_expiry`` go at the same time, so the index of a
        long-lived process whose sockets never leave their groups stays as
        small as its live memberships.
        """
        process = process_of(channel)
        if process is not None:
            key, now = self.key(process), time.time()
            add(
                plan,
                self.shard_of(process),
                ("ZADD", key, now, group_entry(group, channel)),
                ("ZREMRANGEBYSCORE", key, "-inf", now - self.ttl),
                ("EXPIRE", key, self.ttl),
            )

    def index_presence(self, plan: Plan, presence: str, channel: str) -> None:
        """Add to *plan* the indexing of *channel*'s entry in *presence* (a process's).

        It never ages out: the entry lasts until it is untracked or released
        (which unindexes it), however long that is.
        """
        process = process_of(channel)
        if process is not None:
            key = self.key(process)
            entry = presence_entry(presence, channel)
            add(
                plan,
                self.shard_of(process),
                ("ZADD", key, "+inf", entry),
                ("EXPIRE", key, self.ttl),
            )

    def unindex(self, plan: Plan, channel: str, *entries: str) -> None:
        """Add to *plan* the removal of *entries* from *channel*'s process's index."""
        process = process_of(channel)
        if process is not None and entries:
            add(plan, self.shard_of(process), ("ZREM", self.key(process), *entries))
