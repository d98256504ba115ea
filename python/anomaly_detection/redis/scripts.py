"""The Lua scripts of the shared store: each runs atomically on the server, so processes
sharing a sensor lose no update, and the appends are exactly once (a repeated append
stores nothing). Key and hash-field names are those of
:mod:`anomaly_detection.redis.keys`."""

__all__ = [
    "APPEND",
    "APPEND_ENSEMBLE",
    "COUNT_ONCE",
    "DELIVER_ALERT",
    "FIND_CHECKPOINT",
    "SAVE_CHECKPOINT",
    "UNPACK_APPEND",
]

# The one argument of an append (ARGV[1]), packed by codec.encode_append: five
# little-endian float64 (window size, TTL in seconds, number of points of the call, sequence
# number, m = the points sent, the last min(n, window size)), one byte (1: the caller takes
# the window from the mirror; 0 for a client that decodes replies as text), one byte L, the
# writer id (L bytes), the m values and the m timestamps packed as little-endian float64,
# then the m points' JSON entries joined by newlines. One argument: redis-py encodes each
# argument in Python (about 1 us apiece) and the script reads this one with one
# struct.unpack.
UNPACK_APPEND = """
local arg = ARGV[1]
local w, ttl, total, seq, m, want, wl, at = struct.unpack('<dddddBB', arg)
local writer = string.sub(arg, at, at + wl - 1)
at = at + wl
local new_vs = string.sub(arg, at, at + 8 * m - 1)
local new_ts = string.sub(arg, at + 8 * m, at + 16 * m - 1)
local joined = string.sub(arg, at + 16 * m)
ttl = string.format('%d', ttl)
"""

# Exactly once: every append carries its writer's id and a sequence number that grows with
# each of that writer's appends to a sensor. The counters hash keeps, per writer,
# 'w:<id>' = '<last sequence>:<seen before it>'. The last append sent again (a client's
# retry, or a write-back of points whose first try timed out after all) stores nothing
# and is answered as the first time: the window before it, rebuilt from the list (as far
# as the list still holds it). An older sequence number answers {-1} and stores nothing
# either.
#
# The compact mirror, three fields of the counters hash: 'values' and 'stamps', the
# window's points packed as little-endian float64 (oldest first), and 'last', the list's
# last entry when they were written. It is valid while the list has as many entries and
# the same last one (another writer's RPUSH changes them); then the window before the
# points is answered from it (two strings, no JSON), else from the list (LRANGE, JSON
# entries decoded by the caller) and the mirror is rebuilt from the list after the append
# (cjson; left out while the list holds an entry that is not {"value": number,
# "timestamp": number}, or when the mirror's strings are corrupt: rebuilt, never used).
# Each redis.call costs ~1-2 us in the script, so the counters are read with one HMGET and
# written with one HSET, and the list's length comes from RPUSH's reply (no LLEN): the
# last entry is read before the push, the window (when the mirror cannot answer) after it.
# Uses the unpacked argument, `seen` and `meta` (the prelude's HMGET of the counters:
# seen, the writer's mark, values, stamps, last at meta[{m}]..meta[{m} + 3]) and
# `want_packed` (false: the caller's client cannot take binary replies, so `before` is
# read from the list).
# Defines `before` (the window before the points, JSON entries, unless answered from the
# mirror), `packed` (the window before them from the mirror, or false) and `repeated`.
_APPEND_ONCE = """
local repeat_of = false
local mark = meta[{m}]
if mark then
  local last_seq, last_seen = string.match(mark, '^(%d+):(%d+)$')
  if last_seq then
    last_seq = tonumber(last_seq)
    if seq < last_seq then return {-1} end
    if seq == last_seq then repeat_of = tonumber(last_seen) end
  end
end
local before, repeated, packed = {}, 0, false
if repeat_of then
  local first = seen - redis.call('LLEN', KEYS[1])  -- the stream position of the list's head
  seen, repeated = repeat_of, 1
  local lo = math.max(seen - w, first)
  if seen > lo then before = redis.call('LRANGE', KEYS[1], lo - first, seen - 1 - first) end
else
  local mv, ms, mlast = meta[{m} + 1], meta[{m} + 2], meta[{m} + 3]
  local tail = redis.call('LINDEX', KEYS[1], -1)
  local points, n = {}, 0
  for e in string.gmatch(joined, '[^\\n]+') do
    n = n + 1
    points[n] = e
  end
  local len = 0
  for i = 1, n, 1000 do
    len = redis.call('RPUSH', KEYS[1], unpack(points, i, math.min(i + 999, n)))
  end
  if n == 0 then len = redis.call('LLEN', KEYS[1]) end
  len = len - n  -- the list's length before the points
  if len == 0 then
    packed = {'', ''}
  elseif mv and ms and mlast and #mv == 8 * len and #ms == 8 * len and mlast == tail then
    packed = {mv, ms}
    if len > w then packed = {string.sub(mv, -8 * w), string.sub(ms, -8 * w)} end
  end
  if not (packed and want_packed) and len > 0 then
    before = redis.call('LRANGE', KEYS[1], -math.min(w, len) - n, -n - 1)
  end
  if len + n > w then redis.call('LTRIM', KEYS[1], -w, -1) end
  redis.call('EXPIRE', KEYS[1], ttl)
  local vs, ts = false, false
  if packed then
    vs, ts = packed[1] .. new_vs, packed[2] .. new_ts
    if #vs > 8 * w then vs, ts = string.sub(vs, -8 * w), string.sub(ts, -8 * w) end
  else
    vs, ts = {}, {}
    for i, e in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
      local ok, p = pcall(cjson.decode, e)
      local v = ok and type(p) == 'table' and p['value']
      local t = v and p['timestamp']
      if type(v) ~= 'number' or type(t) ~= 'number' or v ~= v or t ~= t or v == math.huge
          or v == -math.huge or t == math.huge or t == -math.huge then
        vs = false
        break
      end
      vs[i], ts[i] = struct.pack('<d', v), struct.pack('<d', t)
    end
    if vs then vs, ts = table.concat(vs), table.concat(ts) end
  end
  local after = string.format('%d', seen + total)
  local mark_now = string.format('%d', seq) .. ':' .. string.format('%d', seen)
  if vs then
    redis.call('HSET', KEYS[2], 'seen', after, 'w:' .. writer, mark_now,
               'values', vs, 'stamps', ts, 'last', points[n])
  else
    redis.call('HSET', KEYS[2], 'seen', after, 'w:' .. writer, mark_now)
    redis.call('HDEL', KEYS[2], 'values', 'stamps', 'last')
  end
  redis.call('EXPIRE', KEYS[2], ttl)
end
"""

# KEYS[1] window list, KEYS[2] counters hash. ARGV[1] the packed append (UNPACK_APPEND).
# Returns {seen before, window before as JSON entries, 1 if a repeat else 0, and, when
# the mirror had it, the window before as packed values and timestamps}.
APPEND = (
    UNPACK_APPEND
    + """
local meta = redis.call('HMGET', KEYS[2], 'seen', 'w:' .. writer, 'values', 'stamps', 'last')
local seen = tonumber(meta[1] or '0')
local want_packed = want == 1
"""
    + _APPEND_ONCE.replace("{m}", "2")
    + "if packed and want_packed then return {seen, before, repeated, packed[1], packed[2]} end\n"
    + "return {seen, before, repeated}\n"
)

# The ensemble's append: the same, plus the checkpoint hash. KEYS[3] checkpoint
# (hash: seen, blob). ARGV[2] the epoch and ARGV[3] the point count of the state the
# caller has cached ('' and -1 for none). The counters' epoch (the server time when they were
# created) tells a sensor from a reset one of the same name: a new epoch drops the old
# checkpoint and makes caches stale.
# Returns {seen before, window before, epoch, checkpoint's seen or -1, its bytes
# when newer than the caller's state, else nil, 1 if a repeat else 0, and, when the
# mirror had it, the packed window before}.
APPEND_ENSEMBLE = (
    UNPACK_APPEND
    + """
local meta = redis.call('HMGET', KEYS[2], 'seen', 'epoch', 'w:' .. writer, 'values', 'stamps', 'last')
local seen = tonumber(meta[1] or '0')
local epoch = meta[2]
local want_packed = true
if not epoch then
  local now = redis.call('TIME')
  epoch = now[1] .. '.' .. now[2]
  redis.call('HSET', KEYS[2], 'epoch', epoch)
  redis.call('DEL', KEYS[3])
end
"""
    + _APPEND_ONCE.replace("{m}", "3")
    + """
local ckpt = tonumber(redis.call('HGET', KEYS[3], 'seen') or '-1') or -1
local blob = false
if ckpt >= 0 then
  redis.call('EXPIRE', KEYS[3], ttl)
  if epoch ~= ARGV[2] or ckpt > tonumber(ARGV[3]) then
    blob = redis.call('HGET', KEYS[3], 'blob')
  end
end
if packed then return {seen, before, epoch, ckpt, blob, repeated, packed[1], packed[2]} end
return {seen, before, epoch, ckpt, blob, repeated}
"""
)

# Compare-and-set of a checkpoint. KEYS[1] checkpoint, KEYS[2] counters, KEYS[3] the
# parking place; ARGV[1] epoch, ARGV[2] seen, ARGV[3] bytes, ARGV[4] TTL, ARGV[5] '1' to
# replace a corrupt one whatever its seen. Writes only for the same epoch and a newer
# state: any two processes writing at one count write the same bytes. Returns 1 if
# written. One that lost to a newer checkpoint is parked for 2 s: a process whose
# window starts right after it may be waiting for exactly that one.
SAVE_CHECKPOINT = """
if redis.call('HGET', KEYS[2], 'epoch') ~= ARGV[1] then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], 'seen') or '-1') or -1
if ARGV[5] ~= '1' and current >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[3], 'seen', ARGV[2], 'blob', ARGV[3], 'epoch', ARGV[1])
  redis.call('PEXPIRE', KEYS[3], 2000)
  return 0
end
redis.call('HSET', KEYS[1], 'seen', ARGV[2], 'blob', ARGV[3], 'epoch', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

# A checkpoint in [ARGV[2], ARGV[3]] of epoch ARGV[1], from KEYS[1] (the checkpoint) or
# KEYS[2] (the parked one); returns {seen, blob} or {-1}.
FIND_CHECKPOINT = """
for _, key in ipairs(KEYS) do
  local c = redis.call('HMGET', key, 'seen', 'blob', 'epoch')
  local at = tonumber(c[1] or '-1') or -1
  if c[3] == ARGV[1] and c[2] and at >= tonumber(ARGV[2]) and at <= tonumber(ARGV[3]) then
    return {at, c[2]}
  end
end
return {-1}
"""

# The anomalies of a written-back append, counted once: KEYS[1] counters hash; ARGV[1]
# writer id, ARGV[2] the append's sequence number, ARGV[3] how many anomalies, ARGV[4]
# TTL (s). The field 'a:<writer id>' keeps the last sequence number counted; a count sent
# again (its reply was lost) or an older one adds nothing. Returns 1 if counted.
COUNT_ONCE = """
local field = 'a:' .. ARGV[1]
local last = tonumber(redis.call('HGET', KEYS[1], field) or '0') or 0
if tonumber(ARGV[2]) <= last then return 0 end
redis.call('HINCRBY', KEYS[1], 'anomalies', ARGV[3])
redis.call('HSET', KEYS[1], field, ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

# An alert delivered once: KEYS[1] the alert stream, KEYS[2] the alert's delivery mark
# (its id in the stream). ARGV[1] the stream's MAXLEN, ARGV[2] the alert as JSON, ARGV[3]
# the mark's TTL (s), ARGV[4] the channel, ARGV[5] and ARGV[6] the published message
# before and after its id. A second delivery (its reply was lost) finds the mark and adds
# and publishes nothing. Returns {stream id, 1 if delivered now else 0}.
DELIVER_ALERT = """
local done = redis.call('GET', KEYS[2])
if done then return {done, 0} end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'alert', ARGV[2])
redis.call('SET', KEYS[2], id, 'EX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5] .. id .. ARGV[6])
return {id, 1}
"""
