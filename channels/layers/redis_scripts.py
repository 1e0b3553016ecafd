"""Lua scripts of the Redis layer, each one round trip.

Every list entry is ``b"<deadline in ms>|<local parts>|<encoded message>"``.
The local parts are empty for normal and single-reader channels; for a
process-specific channel they are the comma-separated local parts the entry
is for, so a group send to many sockets of one server stores one entry.
"""

from __future__ import annotations

import hashlib

# Push one entry onto each list in KEYS[1..n-1]; KEYS[n] is the statistics hash.
# ARGV: now (ms), list TTL (s), encoded message, then per list: capacity, entry
# header ("<deadline>|<local parts>|") and statistics name. The message travels
# once however many lists it goes to.
# Returns per list: 0 sent, 2 full, plus 1 when its head had expired unread
# (nobody reads that channel any more, so the caller drops it from its group).
PUSH = """
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local body = ARGV[3]
local stats = KEYS[#KEYS]
local status = {}
local sent, full = 0, 0
for i = 1, #KEYS - 1 do
  local key = KEYS[i]
  local base = 3 * i + 1
  local dead = 0
  local length = redis.call('LLEN', key)
  local head = length > 0 and redis.call('LINDEX', key, 0)
  while head do
    local deadline = tonumber(string.match(head, '^(%d+)|'))
    if deadline and deadline > now then break end
    dead = 1
    redis.call('LPOP', key)
    length = length - 1
    head = redis.call('LINDEX', key, 0)
  end
  local field = ARGV[base + 2]
  if length >= tonumber(ARGV[base]) then
    redis.call('HINCRBY', stats, 'full:' .. field, 1)
    full = full + 1
    status[i] = dead + 2
  else
    redis.call('RPUSH', key, ARGV[base + 1] .. body)
    redis.call('EXPIRE', key, ttl)
    redis.call('HINCRBY', stats, 'count:' .. field, 1)
    sent = sent + 1
    status[i] = dead
  end
end
if sent > 0 then redis.call('HINCRBY', stats, 'count:', sent) end
if full > 0 then redis.call('HINCRBY', stats, 'full:', full) end
redis.call('EXPIRE', stats, ttl)
return status
"""

# Pop the first entry of the first non-empty list in KEYS: {key, entry} or nil.
POP = """
for i = 1, #KEYS do
  local entry = redis.call('LPOP', KEYS[i])
  if entry then return {KEYS[i], entry} end
end
return false
"""

# Drop memberships older than ARGV[1] (s) from the group KEYS[1]; return the rest.
MEMBERS = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# Return the indexes (1-based) of the lists in KEYS whose head expired before ARGV[1].
STALE = """
local now = tonumber(ARGV[1])
local stale = {}
for i = 1, #KEYS do
  local head = redis.call('LINDEX', KEYS[i], 0)
  if head then
    local deadline = tonumber(string.match(head, '^(%d+)|'))
    if not deadline or deadline <= now then stale[#stale + 1] = i end
  end
end
return stale
"""


class Script:
    """A Lua script and its SHA1, for ``EVALSHA`` with a ``SCRIPT LOAD`` fallback."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


PUSH_SCRIPT = Script(PUSH)
POP_SCRIPT = Script(POP)
MEMBERS_SCRIPT = Script(MEMBERS)
STALE_SCRIPT = Script(STALE)
