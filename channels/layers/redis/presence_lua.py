"""The Lua of presence sets and of the reaper's claims: sources only, loaded by :mod:`.scripts`.

A presence set *N* is a handful of keys beside ``B = <prefix>presence:<N>``,
all on the shard (cluster: the bucket) of ``presence:<N>``:

``B``            hash, channel -> record ``<number>:<key length>:<key><meta JSON>``,
                 numbered by ``B:seq`` in track order
``B:keys``       hash, key -> how many channels count for it (released ones too,
                 until their grace runs out): ``HLEN`` is the presence count
``B:grace``      sorted set, released channel -> ms when it leaves (or, for a
                 channel released before it was tracked here, until when a
                 track of it is stored released)
``B:notify``     the group that gets diff frames; absent: no diffs are kept
``B:diff``       hash, key -> ``1``/``0``: whether it was present when the batch began
``B:joined``     hash, key -> the record that last made it present in this batch
``B:left``       hash, key -> the record whose leaving last made it vanish

and two keys of the shard itself: the presences with diffs to flush (a set)
and each presence's earliest grace deadline (a sorted set), so housekeeping
finds its work without scanning. A script takes ``B`` (or ``<prefix>presence:``
for the shard-wide sweep) and the two shard keys as ``KEYS`` and makes the
rest from ``B``: in a cluster every key of a bucket carries its hash tag at
the front, so the keys made here share the slot of those passed in.
Times come from the caller (``now`` in ms), as the PUSH script's do.
"""

from __future__ import annotations

# What every presence script shares: reading a record, counting a key in and out
# and noting it in the batch's diff, settling released channels whose grace ran out.
PRESENCE_PRELUDE = """
local function key_of(record)
  local _, stop, length = string.find(record, '^%d+:(%d+):')
  return string.sub(record, stop + 1, stop + tonumber(length))
end
local function presence(base, name, dirty, expiring)
  return {base = base, name = name, dirty = dirty, expiring = expiring,
          notify = redis.call('EXISTS', base .. ':notify') == 1}
end
local function noted(p, key, was, field, record)
  redis.call('HSETNX', p.base .. ':diff', key, was)
  redis.call('HSET', p.base .. field, key, record)
  redis.call('SADD', p.dirty, p.name)
end
local function added(p, key, record)
  local count = redis.call('HINCRBY', p.base .. ':keys', key, 1)
  if count == 1 and p.notify then noted(p, key, '0', ':joined', record) end
end
local function removed(p, key, record)
  local count = redis.call('HINCRBY', p.base .. ':keys', key, -1)
  if count > 0 then return end
  redis.call('HDEL', p.base .. ':keys', key)
  if p.notify then noted(p, key, '1', ':left', record) end
end
local function drop(p, channel)
  local record = redis.call('HGET', p.base, channel)
  if not record then return false end
  redis.call('HDEL', p.base, channel)
  removed(p, key_of(record), record)
  return true
end
local function schedule(p)
  local first = redis.call('ZRANGE', p.base .. ':grace', 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('ZADD', p.expiring, first[2], p.name)
  else
    redis.call('ZREM', p.expiring, p.name)
  end
end
local function settle(p, now)
  local grace = p.base .. ':grace'
  local due = redis.call('ZRANGEBYSCORE', grace, '-inf', now)
  if #due == 0 then return end
  for _, channel in ipairs(due) do drop(p, channel) end
  redis.call('ZREMRANGEBYSCORE', grace, '-inf', now)
  schedule(p)
end
local function context()
  return presence(KEYS[1], ARGV[1], KEYS[2], KEYS[3])
end
"""

# Track ARGV[2] (channel) as ARGV[3] (key) with ARGV[4] (meta JSON); ARGV[5] is
# the notify group ('' keeps the one a track named before), ARGV[6] the keys'
# TTL (s), ARGV[7] now and ARGV[8] now plus the grace (ms). The record's number
# orders the tracks of the set; tracking a channel under another key moves it.
# A released channel stays released: tracked again, it keeps its deadline; if
# its release came here first (RELEASE noted it with no entry), it leaves a
# grace from now.
TRACK = """
local base, ttl = KEYS[1], ARGV[6]
local now, deadline = tonumber(ARGV[7]), tonumber(ARGV[8])
if ARGV[5] ~= '' then redis.call('SET', base .. ':notify', ARGV[5]) end
local p = context()
local channel, key = ARGV[2], ARGV[3]
local grace = base .. ':grace'
local old = redis.call('HGET', base, channel)
local number = redis.call('INCR', base .. ':seq')
local record = number .. ':' .. string.len(key) .. ':' .. key .. ARGV[4]
redis.call('HSET', base, channel, record)
if not old then
  added(p, key, record)
elseif key_of(old) ~= key then
  added(p, key, record)
  removed(p, key_of(old), old)
end
if not old and redis.call('ZSCORE', grace, channel) then
  redis.call('ZADD', grace, deadline, channel)
  schedule(p)
  if deadline <= now then settle(p, now) end
end
for _, suffix in ipairs({'', ':keys', ':seq', ':notify', ':grace', ':diff', ':joined', ':left'}) do
  redis.call('EXPIRE', base .. suffix, ttl)
end
return 1
"""

# Remove channel ARGV[2] at once; return 1 if it was tracked.
UNTRACK = """
local p = context()
if not drop(p, ARGV[2]) then return 0 end
if redis.call('ZREM', KEYS[1] .. ':grace', ARGV[2]) == 1 then schedule(p) end
return 1
"""

# Release the channels ARGV[5...]: each leaves at ARGV[2] (ms), or at once when
# that is not after ARGV[3] (now, ms: no grace). A channel released already keeps
# its earlier deadline. A channel with no entry here is noted in B:grace, until
# ARGV[4] (ms), as released: its track may be on its way (its socket closed
# while a worker tracked it), and TRACK stores it released.
RELEASE = """
local p = context()
local deadline, now = tonumber(ARGV[2]), tonumber(ARGV[3])
local grace = KEYS[1] .. ':grace'
local later = false
for i = 5, #ARGV do
  local channel = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], channel) == 0 then
    redis.call('ZADD', grace, 'NX', ARGV[4], channel)
    later = true
  elseif deadline <= now then
    drop(p, channel)
    if redis.call('ZREM', grace, channel) == 1 then later = true end
  else
    redis.call('ZADD', grace, 'NX', deadline, channel)
    later = true
  end
end
if later then schedule(p) end
return 1
"""

# Return every record (channel, record, ...) once released channels past their
# grace (ARGV[2], now in ms) are gone.
LIST = """
settle(context(), ARGV[2])
return redis.call('HGETALL', KEYS[1])
"""

# Return the number of distinct keys, as LIST sees them.
COUNT = """
settle(context(), ARGV[2])
return redis.call('HLEN', KEYS[1] .. ':keys')
"""

# A shard's housekeeping, KEYS[1] being '<prefix>presence:': settle the presences
# whose earliest grace deadline passed ARGV[1] (now, ms), then take the diffs of
# up to ARGV[2] presences. Return per presence {name, notify group, changes}, a
# change being {'j', key, record} for a key that appeared (the record of the
# channel that made it present) or {'l', key, record} for one that vanished (the
# record of the channel whose leaving did).
SWEEP = """
local prefix, dirty, expiring = KEYS[1], KEYS[2], KEYS[3]
local now, limit = ARGV[1], tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', expiring, '-inf', now, 'LIMIT', 0, limit)
for _, name in ipairs(due) do settle(presence(prefix .. name, name, dirty, expiring), now) end
local out = {}
for _, name in ipairs(redis.call('SPOP', dirty, limit)) do
  local base = prefix .. name
  local diff = redis.call('HGETALL', base .. ':diff')
  local changes = {}
  for i = 1, #diff, 2 do
    local key, was = diff[i], diff[i + 1]
    local present = redis.call('HEXISTS', base .. ':keys', key) == 1
    if was == '0' and present then
      changes[#changes + 1] = {'j', key, redis.call('HGET', base .. ':joined', key)}
    elseif was == '1' and not present then
      changes[#changes + 1] = {'l', key, redis.call('HGET', base .. ':left', key)}
    end
  end
  redis.call('DEL', base .. ':diff', base .. ':joined', base .. ':left')
  local notify = redis.call('GET', base .. ':notify')
  if notify and #changes > 0 then out[#out + 1] = {name, notify, changes} end
end
return out
"""

# Claim up to ARGV[4] processes of the registry KEYS[1] whose deadline passed
# ARGV[1] (ms) and whose alive key (KEYS[3]..process) is gone: each with a lease
# key KEYS[2]..process, set to ARGV[3] (the claimer) for ARGV[2] ms unless another
# holds it. Return the processes claimed. (At maxmemory the registry's ZADD is
# refused but the alive key's PEXPIRE is not: a live process is never claimed.)
CLAIM = """
local limit = tonumber(ARGV[4])
local claimed = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 4 * limit)
for _, process in ipairs(due) do
  if redis.call('EXISTS', KEYS[3] .. process) == 0
      and redis.call('SET', KEYS[2] .. process, ARGV[3], 'NX', 'PX', ARGV[2]) then
    claimed[#claimed + 1] = process
    if #claimed >= limit then break end
  end
end
return claimed
"""
