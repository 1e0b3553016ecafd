"""The Redis layer's Lua scripts, each one round trip, with their shared parts written once.

Every list entry is ``b"<deadline in ms>|<local parts>|<encoded message>"``
(:mod:`.entries` writes and reads it in Python; :data:`_PRELUDE` reads it in
Lua). The local parts are empty for normal and single-reader channels; for a
process-specific channel they are the comma-separated local parts the entry
is for, so a group send to many sockets of one server stores one entry.

Each script is the prelude plus its own body: Redis compiles a script once
per ``SCRIPT LOAD``, so the shared functions cost nothing per call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from . import presence_lua

#: A Redis command, as hiredis packs it.
Command = tuple[Any, ...]

# Shared by the scripts that push: reading an entry's deadline, dropping the
# expired head of a list (nobody reads that channel any more), pushing and
# counting, and the statistics totals.
_PRELUDE = """
local function deadline_of(entry)
  return tonumber(string.match(entry, '^(%d+)|'))
end
local function drop_expired(key, now)
  local length = redis.call('LLEN', key)
  local head = length > 0 and redis.call('LINDEX', key, 0)
  local dropped = false
  while head do
    local deadline = deadline_of(head)
    if deadline and deadline > now then break end
    dropped = true
    redis.call('LPOP', key)
    length = length - 1
    head = redis.call('LINDEX', key, 0)
  end
  return length, dropped
end
local function push(stats, key, entry, ttl, field)
  redis.call('RPUSH', key, entry)
  redis.call('EXPIRE', key, ttl)
  redis.call('HINCRBY', stats, 'count:' .. field, 1)
end
local function count_totals(stats, ttl, sent, full)
  if sent > 0 then redis.call('HINCRBY', stats, 'count:', sent) end
  if full > 0 then redis.call('HINCRBY', stats, 'full:', full) end
  redis.call('EXPIRE', stats, ttl)
end
"""

# Push one entry onto each list in KEYS[1..n-1]; KEYS[n] is the statistics hash.
# ARGV: now (ms), list TTL (s), encoded message, group flag, then per list:
# capacity, entry header ("<deadline>|<local parts>|") and statistics name. The
# message travels once however many lists it goes to.
# Returns per list: 0 sent, 2 full, plus 1 when its head had expired unread
# (nobody reads that channel any more, so the caller drops it from its group).
# With the group flag set, such a list gets nothing (status 1): a group send
# does not deliver to a member it has just found dead, as the in-memory layer.
_PUSH = """
local now, ttl, body = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local group = ARGV[4] == '1'
local stats = KEYS[#KEYS]
local status = {}
local sent, full = 0, 0
for i = 1, #KEYS - 1 do
  local key, base = KEYS[i], 3 * i + 2
  local length, dropped = drop_expired(key, now)
  local dead = dropped and 1 or 0
  local field = ARGV[base + 2]
  if group and dropped then
    status[i] = 1
  elseif length >= tonumber(ARGV[base]) then
    redis.call('HINCRBY', stats, 'full:' .. field, 1)
    full = full + 1
    status[i] = dead + 2
  else
    push(stats, key, ARGV[base + 1] .. body, ttl, field)
    sent = sent + 1
    status[i] = dead
  end
end
count_totals(stats, ttl, sent, full)
return status
"""

# Send to a whole group living on the same server as its members, in one call:
# read the live members of KEYS[1], push one entry per list (one per process
# prefix, naming its local parts), and drop, without sending to them, members
# whose list held a message that expired unread. KEYS[2] is the statistics
# hash. ARGV: now (ms), membership cutoff (s), list TTL (s), encoded message,
# capacity, entry deadline (ms), key prefix. Only used with one server and one
# capacity for every channel, and it touches list keys it computes, so it needs
# a plain (non-cluster) Redis.
_GROUP_SEND = """
local now, ttl, body = tonumber(ARGV[1]), tonumber(ARGV[3]), ARGV[4]
local capacity, deadline, prefix = tonumber(ARGV[5]), ARGV[6], ARGV[7]
local stats = KEYS[2]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local lists, order = {}, {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local bang = string.find(member, '!', 1, true)
  local stored = bang and string.sub(member, 1, bang) or member
  local entry = lists[stored]
  if not entry then
    local mark = bang or string.find(member, '?', 1, true)
    entry = {locals = {}, names = {}, field = mark and string.sub(member, 1, mark) or member}
    lists[stored] = entry
    order[#order + 1] = stored
  end
  if bang then entry.locals[#entry.locals + 1] = string.sub(member, bang + 1) end
  entry.names[#entry.names + 1] = member
end
local sent, full = 0, 0
for _, stored in ipairs(order) do
  local entry, key = lists[stored], prefix .. stored
  local length, dropped = drop_expired(key, now)
  if dropped then
    for _, name in ipairs(entry.names) do redis.call('ZREM', KEYS[1], name) end
  elseif length >= capacity then
    redis.call('HINCRBY', stats, 'full:' .. entry.field, 1)
    full = full + 1
  else
    local header = deadline .. '|' .. table.concat(entry.locals, ',') .. '|'
    push(stats, key, header .. body, ttl, entry.field)
    sent = sent + 1
  end
end
count_totals(stats, ttl, sent, full)
return sent
"""

# Pop the first entry of the first non-empty list in KEYS: {key, entry} or nil.
_POP = """
for i = 1, #KEYS do
  local entry = redis.call('LPOP', KEYS[i])
  if entry then return {KEYS[i], entry} end
end
return false
"""

# Drop memberships older than ARGV[1] (s) from the group KEYS[1]; return the rest.
_MEMBERS = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# Return the indexes (1-based) of the lists in KEYS whose head expired before ARGV[1].
_STALE = """
local now = tonumber(ARGV[1])
local stale = {}
for i = 1, #KEYS do
  local head = redis.call('LINDEX', KEYS[i], 0)
  if head then
    local deadline = deadline_of(head)
    if not deadline or deadline <= now then stale[#stale + 1] = i end
  end
end
return stale
"""


class Script:
    """A Lua script and its SHA1, for ``EVALSHA`` with a ``SCRIPT LOAD`` fallback."""

    __slots__ = ("load", "sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        #: The command that (re)loads this script into a server that lost it.
        self.load: tuple[str, str, str] = ("SCRIPT", "LOAD", source)

    def __repr__(self) -> str:
        return f"<Script {self.sha[:8]}>"


PUSH = Script(_PRELUDE + _PUSH)
GROUP_SEND = Script(_PRELUDE + _GROUP_SEND)
POP = Script(_POP)
MEMBERS = Script(_MEMBERS)
STALE = Script(_PRELUDE + _STALE)
# Presence sets and the reaper's claims (:mod:`.presence_lua`).
TRACK = Script(presence_lua.PRESENCE_PRELUDE + presence_lua.TRACK)
UNTRACK = Script(presence_lua.PRESENCE_PRELUDE + presence_lua.UNTRACK)
RELEASE = Script(presence_lua.PRESENCE_PRELUDE + presence_lua.RELEASE)
LIST = Script(presence_lua.PRESENCE_PRELUDE + presence_lua.LIST)
COUNT = Script(presence_lua.PRESENCE_PRELUDE + presence_lua.COUNT)
SWEEP = Script(presence_lua.PRESENCE_PRELUDE + presence_lua.SWEEP)
CLAIM = Script(presence_lua.CLAIM)

#: Every script by SHA1: a reply of ``NOSCRIPT`` to an ``EVALSHA`` names what to load.
BY_SHA: dict[str, Script] = {
    script.sha: script
    for script in (
        *(PUSH, GROUP_SEND, POP, MEMBERS, STALE),
        *(TRACK, UNTRACK, RELEASE, LIST, COUNT, SWEEP, CLAIM),
    )
}


# Reloading scripts a server lost: the CPU-only half of the shard's exchanges -----

#: *retry* of an exchange that returns ``NOSCRIPT`` replies as they are (the one re-running).
AS_IS = -1


def reload_plan(
    commands: Sequence[Command], results: list[Any], retry: int | None
) -> tuple[list[Command], list[int]]:
    """Return (commands to send, indexes they re-run) after ``NOSCRIPT`` replies.

    The commands load every script an ``EVALSHA`` found missing (a new or
    restarted server), then run again those of the first *retry* commands
    (all when None) that failed so.
    """
    loads: dict[str, Command] = {}
    again: list[int] = []
    for index, result in enumerate(results):
        if isinstance(result, NoScriptError):
            sha = commands[index][1]
            loads[sha] = BY_SHA[sha].load
            if retry is None or index < retry:
                again.append(index)
    return [*loads.values(), *(commands[index] for index in again)], again


def merge_reloaded(results: list[Any], retried: list[Any], again: list[int]) -> list[Any]:
    """Put the replies of re-run commands in place; raise a failed ``SCRIPT LOAD``'s error."""
    loaded = len(retried) - len(again)
    for result in retried[:loaded]:
        if isinstance(result, Exception):
            raise result
    for index, result in zip(again, retried[loaded:], strict=True):
        results[index] = result
    return results
