"""Where each of the Redis layer's messages goes: keys, shards and script arguments.

Everything here is CPU only, shared by the sync and async twins of the
layer's methods, and cached where a worker asks the same thing over and
over (a channel's key, the plan of a receive on the same channels). A channel
is a list ``<prefix><name>`` (a process's ``prefix!`` channels share the list
of their prefix, the local part travels in the entry), a group is a sorted
set ``<prefix>group:<name>``; the hash ring puts each on one shard.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from ..base import Message
from ..names import non_local_part, require_valid_channel_name, require_valid_group_name, stats_name
from .entries import header
from .hashring import HashRing
from .seal import EntrySeal
from .shard import Shard

T = TypeVar("T")

#: {list key: (local parts, channel names)}: where one push goes on one shard.
Targets = dict[str, tuple[bytes, list[str]]]
#: (keys, args, channel names per list) of one PUSH call.
PushCall = tuple[list[str], list[Any], list[list[str]]]
#: (the list keys of a receive, the same keys grouped by shard index).
ReceivePlan = tuple[list[str], dict[int, list[str]]]


def rotated(items: list[T]) -> list[T]:
    """*items* starting from a random one (cheaper than shuffling, as fair for BLPOP)."""
    start = random.randrange(len(items))
    return items[start:] + items[:start]


class KeyRouter:
    """The keys, shards and PUSH/GROUP_SEND arguments of one layer's operations.

    It holds the layer's settings that decide them (prefix, expiry, capacity)
    and its shards, but never talks to them: the layer does.
    """

    def __init__(
        self,
        prefix: str,
        shards: Sequence[Shard],
        *,
        expiry: float,
        group_expiry: float,
        capacity: int,
        get_capacity: Callable[[str], int],
        per_channel_capacity: bool,
        encode: Callable[[Message], bytes],
        seal: EntrySeal | None = None,
    ) -> None:
        self.prefix = prefix
        self.shards = list(shards)
        self.ring = HashRing(len(self.shards))
        self.expiry = expiry
        self.group_expiry = group_expiry
        self.capacity = capacity
        self.get_capacity = get_capacity
        self.encode = encode
        #: An encrypted layer's entry seal (each entry's tag is made here, per list).
        self.seal = seal
        #: Whether a group send can be one script call on the group's server.
        # (Not for sealed entries: Lua cannot make their tags.)
        self.one_call_groups = len(self.shards) == 1 and not per_channel_capacity and seal is None
        self.stats_key = prefix + "stats"
        #: Seconds a list outlives its newest entry (Redis drops a forgotten one).
        self.list_ttl = int(expiry * 2) + 1
        # Cached by the part a channel is stored under: a reply channel's whole
        # name is one per connection, and caching it grew a worker's memory.
        self._stored_key = lru_cache(maxsize=8192)(self._lookup_stored_key)
        self._plan = lru_cache(maxsize=256)(self._lookup_plan)

    # Channels and groups ---------------------------------------------------

    def channel_key(self, channel: str) -> tuple[str, bytes, int]:
        """Return (list key, local part, shard index) of *channel*."""
        stored = non_local_part(channel)
        key, shard = self._stored_key(stored)
        return key, channel[len(stored) :].encode("ascii"), shard

    def _lookup_stored_key(self, stored: str) -> tuple[str, int]:
        return self.prefix + stored, self.ring.shard_for(stored)

    def shard_of_key(self, key: str) -> Shard:
        """Return the shard of the list *key*."""
        return self.shards[self.ring.shard_for(key[len(self.prefix) :])]

    def group_key(self, group: str) -> tuple[str, Shard]:
        """Return the sorted set of *group*, and its shard; ``TypeError`` for a bad name."""
        require_valid_group_name(group)
        return self.prefix + "group:" + group, self.shards[self.ring.shard_for("group:" + group)]

    def membership(self, group: str, channel: str) -> tuple[str, Shard]:
        """Return what :meth:`group_key` does, checking *channel*'s name too."""
        key, shard = self.group_key(group)
        require_valid_channel_name(channel)
        return key, shard

    # Receives ----------------------------------------------------------------

    def receive_plan(self, channels: Iterable[str]) -> ReceivePlan:
        """Return the list keys of *channels*, and per shard, in an order fair to each."""
        if isinstance(channels, str):
            raise TypeError("receive() takes a list of channel names, not a single str")
        keys, by_shard = self._plan(tuple(channels))
        if len(keys) <= 1:
            return keys, by_shard
        # A busy channel must not starve a quiet one: BLPOP serves keys in order,
        # and a non-blocking receive asks the shards in order.
        shards = rotated(list(by_shard))
        return rotated(keys), {shard: rotated(by_shard[shard]) for shard in shards}

    def _lookup_plan(self, channels: tuple[str, ...]) -> ReceivePlan:
        keys = list(
            {self.channel_key(require_valid_channel_name(c, receive=True))[0]: c for c in channels}
        )
        by_shard: dict[int, list[str]] = defaultdict(list)
        for key in keys:
            by_shard[self.ring.shard_for(key[len(self.prefix) :])].append(key)
        return keys, dict(by_shard)

    # Sends -------------------------------------------------------------------

    def push_args(self, targets: Targets, data: bytes, *, group: bool = False) -> PushCall:
        """Build PUSH script arguments for {list key: (local parts, channel names)}.

        With *group*, a list found holding an expired message gets nothing.
        An encrypted layer's entries are sealed here, each to its list.
        """
        now = time.time()
        deadline = int((now + self.expiry) * 1000)
        seal = self.seal
        digest = b"" if seal is None else seal.digest(data)
        keys: list[str] = []
        args: list[Any] = [int(now * 1000), self.list_ttl, data, 1 if group else 0]
        owners: list[list[str]] = []
        for key, (locals_, names) in targets.items():
            keys.append(key)
            if seal is None:
                head = header(deadline, locals_)
            else:
                head = seal.header(key, deadline, locals_, digest)
            # By the stored part, which names[0] shares with the rest: one cache entry per list.
            args += [self.get_capacity(key[len(self.prefix) :]), head, stats_name(names[0])]
            owners.append(names)
        keys.append(self.stats_key)
        return keys, args, owners

    def send_plan(self, channel: str, message: Message) -> tuple[Shard, list[str], list[Any]]:
        """Return the shard, keys and args of the PUSH that sends *message* to *channel*."""
        require_valid_channel_name(channel)
        data = self.encode(message)
        key, local, shard = self.channel_key(channel)
        keys, args, _ = self.push_args({key: (local, [channel])}, data)
        return self.shards[shard], keys, args

    def push_plan(self, channel: str, data: bytes) -> tuple[Shard, list[str], list[Any]]:
        """:meth:`send_plan` for a message already encoded (*data*)."""
        require_valid_channel_name(channel)
        key, local, shard = self.channel_key(channel)
        keys, args, _ = self.push_args({key: (local, [channel])}, data)
        return self.shards[shard], keys, args

    def group_targets(self, members: list[str]) -> dict[int, Targets]:
        """Group members by shard and list; one entry per process prefix."""
        plan: dict[int, Targets] = defaultdict(dict)
        for channel in members:
            key, local, shard = self.channel_key(channel)
            targets = plan[shard]
            if key in targets and local:
                locals_, names = targets[key]
                targets[key] = (locals_ + b"," + local, [*names, channel])
            else:
                targets[key] = (local, [channel])
        return plan

    def one_call_group_send(self, key: str, data: bytes) -> tuple[list[str], list[Any]] | None:
        """Return GROUP_SEND arguments when one script call can do the whole send."""
        if not self.one_call_groups:
            return None
        now = time.time()
        args = [
            int(now * 1000),
            now - self.group_expiry,
            self.list_ttl,
            data,
            self.capacity,
            int((now + self.expiry) * 1000),
            self.prefix,
        ]
        return [key, self.stats_key], args

    def members_cutoff(self) -> list[float]:
        """Return the MEMBERS script's argument: memberships added before it have expired."""
        return [time.time() - self.group_expiry]
