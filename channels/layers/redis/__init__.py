"""The Redis channel layer: ``channels.layers.redis.RedisChannelLayer`` in ``BACKEND``.

The package's parts, one concept each: :mod:`.layer` (the public API),
:mod:`.router` (what goes where: keys, shards, script arguments; CPU only),
:mod:`.shard` (one server's transport, the only code that touches redis-py's
internals), :mod:`.batching` (coalescing async calls), :mod:`.fanin`
(receives across shards), :mod:`.membership` (the groups, presence and
housekeeping half of the API) over :mod:`.groups` (a group's members and
sends to them), :mod:`.presence` (presence sets, their Lua in
:mod:`.presence_lua`), :mod:`.hygiene` (the reaper of dead processes, over
the keys of :mod:`.ownership`) and :mod:`.plans` (commands for several
shards at once), :mod:`.entries` (the stored entry format and the read-ahead
buffer), :mod:`.scripts` (the Lua, and reloading it), :mod:`.errors`
(redis-py's errors as ours), :mod:`.hashring` (sharding), :mod:`.transports`
(which transport each host gets), :mod:`.sentinel` (masters found through
Sentinel, across failovers), and for a Redis Cluster :mod:`.slots`
(hash-tagged keys, CPU only), :mod:`.slotmap` (which master owns each slot)
and :mod:`.cluster` (routing, redirections, failover).
"""

from .layer import RedisChannelLayer
from .sentinel import RedisSentinelChannelLayer

__all__ = ["RedisChannelLayer", "RedisSentinelChannelLayer"]
