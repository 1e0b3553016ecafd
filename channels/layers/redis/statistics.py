"""The ``statistics`` extension of the Redis layer: counts kept by the PUSH scripts, read back.

Every push counts itself in the stats hash of its shard (``count:<name>``,
and ``full:<name>`` when refused), the totals under ``count:``/``full:``;
this module only reads them, with what is waiting on a channel now.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from .entries import deadline_of
from .shard import Shard


def global_statistics(shards: Sequence[Shard], stats_key: str) -> dict[str, int]:
    """Return ``messages_count`` and ``channel_full_count`` summed over *shards*."""
    totals = {"messages_count": 0, "channel_full_count": 0}
    for shard in shards:
        ((sent, full),) = shard.execute(("HMGET", stats_key, "count:", "full:"))
        totals["messages_count"] += int(sent or 0)
        totals["channel_full_count"] += int(full or 0)
    return totals


def channel_statistics(
    shard: Shard, stats_key: str, key: str, name: str, expiry: float
) -> dict[str, int]:
    """Return the counts of the channel counted as *name*, and what waits in its list *key*."""
    (sent, full), pending, head = shard.execute(
        ("HMGET", stats_key, "count:" + name, "full:" + name),
        ("LLEN", key),
        ("LINDEX", key, 0),
    )
    max_age = 0
    deadline = deadline_of(head) if head else None
    if deadline is not None:
        waited = time.time() - (deadline / 1000 - expiry)
        max_age = max(0, int(waited))  # whole seconds, as asgi_redis gave
    return {
        "messages_count": int(sent or 0),
        "channel_full_count": int(full or 0),
        "messages_pending": pending,
        "messages_max_age": max_age,
    }
