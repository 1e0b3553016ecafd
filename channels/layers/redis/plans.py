"""Commands for several shards at once: each shard's in one write, the shards together.

A group add, a presence track or a reap touches keys on more than one shard
(the group's, the socket's process's, the presence set's). The caller
gathers them into a :data:`Plan`, ``{shard: commands}``, and runs it here:
on one server that is one round trip; on several, one per shard (the async
twin runs them concurrently); on a cluster, one per master, the commands of
its buckets in one write (:func:`.cluster.run_together`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .cluster import ClusterBucket, run_together
from .scripts import Command
from .shard import Shard

#: {shard: the commands to run there, in order}.
Plan = dict[Shard, list[Command]]
#: {shard: the replies to its commands}.
Replies = dict[Shard, list[Any]]


def add(plan: Plan, shard: Shard, *commands: Command) -> None:
    """Append *commands* to those *plan* runs on *shard*."""
    plan.setdefault(shard, []).extend(commands)


def _raise_first_error(replies: Replies) -> Replies:
    for results in replies.values():
        for result in results:
            if isinstance(result, Exception):
                raise result
    return replies


def run(plan: Plan) -> Replies:
    """Run *plan*; return each shard's replies, or raise the first error reply."""
    if not plan:
        return {}
    shards = list(plan)
    if not isinstance(shards[0], ClusterBucket):
        return _raise_first_error({shard: shard.run(plan[shard]) for shard in shards})
    calls = [(shard, command) for shard in shards for command in plan[shard]]
    flat = iter(run_together(calls))  # type: ignore[arg-type]  # a layer's shards are all of one kind
    return _raise_first_error({shard: [next(flat) for _ in plan[shard]] for shard in shards})


async def arun(plan: Plan) -> Replies:
    """Async twin of :func:`run`: the shards' writes go out together."""
    if len(plan) == 1:
        ((shard, commands),) = plan.items()
        return {shard: await shard.aexecute(*commands)}
    shards = list(plan)
    results = await asyncio.gather(*(shard.aexecute(*plan[shard]) for shard in shards))
    return dict(zip(shards, results, strict=True))
