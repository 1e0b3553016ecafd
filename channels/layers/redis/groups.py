"""A group's live members, and one message pushed to all of them.

A group is a sorted set of channel names scored by when each was added,
on the group's shard. Reading it drops memberships older than
``group_expiry``, and members whose list holds a message that expired
unread: nobody listens there any more. A send reads the members, then makes
one PUSH call per shard that holds member lists, carrying the message once
whatever the number of members; on one server, without per-channel
capacities, the whole send is one script call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from . import scripts
from .cluster import ClusterBucket, run_together
from .entries import now_ms
from .errors import TranslateErrors
from .router import KeyRouter
from .shard import Shard


def dead_members(status: list[int], owners: list[list[str]]) -> list[str]:
    """Return the members whose list a PUSH found holding a message that expired unread."""
    return [name for code, names in zip(status, owners, strict=True) if code & 1 for name in names]


class GroupFanOut:
    """Read and send to the groups of one layer, on its *shards*, as *router* places them."""

    def __init__(
        self, shards: Sequence[Shard], router: KeyRouter, translate_errors: TranslateErrors
    ) -> None:
        self._shards = list(shards)
        self._router = router
        self._translate_errors = translate_errors

    def members(self, key: str, shard: Shard) -> list[str]:
        """Return the live members of the group whose sorted set is *key* on *shard*."""
        router = self._router
        with self._translate_errors:
            members = [
                m.decode() for m in shard.eval(scripts.MEMBERS, [key], router.members_cutoff())
            ]
            dead = []
            for index, targets in router.group_targets(members).items():
                keys = list(targets)
                stale = self._shards[index].eval(scripts.STALE, keys, [now_ms()])
                for position in stale:
                    dead += targets[keys[position - 1]][1]
            if dead:
                shard.execute(("ZREM", key, *dead))
        gone = set(dead)
        return [member for member in members if member not in gone]

    def push(self, key: str, shard: Shard, data: bytes) -> None:
        """Push encoded *data* to every live member of the group *key* on *shard*."""
        router = self._router
        one_call = router.one_call_group_send(key, data)
        with self._translate_errors:
            if one_call is not None:
                shard.eval(scripts.GROUP_SEND, *one_call)
                return
            members = shard.eval(scripts.MEMBERS, [key], router.members_cutoff())
            plan = router.group_targets([m.decode() for m in members]).items()
            calls = [router.push_args(targets, data, group=True) for _, targets in plan]
            statuses = self._push_all(
                [self._shards[index] for index, _ in plan], [(k, a) for k, a, _ in calls]
            )
            dead = [
                name
                for status, (_, _, owners) in zip(statuses, calls, strict=True)
                for name in dead_members(status, owners)
            ]
            if dead:
                shard.execute(("ZREM", key, *dead))

    @staticmethod
    def _push_all(shards: list[Shard], pushes: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run one PUSH per shard; on a cluster, the PUSHes to one master in one write."""
        if shards and isinstance(shards[0], ClusterBucket):
            commands = [("EVALSHA", scripts.PUSH.sha, len(k), *k, *a) for k, a in pushes]
            replies = run_together(list(zip(shards, commands, strict=True)))  # type: ignore[arg-type]  # isinstance checked the first; a layer's shards are all of one kind
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            return replies
        pairs = zip(shards, pushes, strict=True)
        return [shard.eval(scripts.PUSH, keys, args) for shard, (keys, args) in pairs]

    async def apush(self, key: str, shard: Shard, data: bytes) -> None:
        """Async twin of :meth:`push`: the pushes to several servers run together."""
        router = self._router
        one_call = router.one_call_group_send(key, data)
        with self._translate_errors:
            if one_call is not None:
                await shard.aeval(scripts.GROUP_SEND, *one_call)
                return
            members = await shard.aeval(scripts.MEMBERS, [key], router.members_cutoff())
            plan = router.group_targets([m.decode() for m in members]).items()
            calls = [router.push_args(targets, data, group=True) for _, targets in plan]
            statuses = await asyncio.gather(
                *(
                    self._shards[index].aeval(scripts.PUSH, keys, args)
                    for (index, _), (keys, args, _) in zip(plan, calls, strict=True)
                )
            )
            dead = [
                name
                for status, (_, _, owners) in zip(statuses, calls, strict=True)
                for name in dead_members(status, owners)
            ]
            if dead:
                await shard.aexecute(("ZREM", key, *dead))
