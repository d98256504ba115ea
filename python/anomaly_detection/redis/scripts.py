"""The Lua scripts of the shared store: each runs atomically on the server, so processes
sharing a sensor lose no update, and the appends are exactly once (a repeated append
stores nothing). Key and hash-field names are those of
:mod:`anomaly_detection.redis.keys`."""

__all__ = [
    "APPEND",
    "APPEND_ENSEMBLE",
    "COUNT_ONCE",
    "DELIVER_ALERT",
    "DELIVER_STORE_ALERT",
    "FIND_CHECKPOINT",
    "IDEMPOTENCY_REPLACE",
    "IDEMPOTENCY_SHA1",
    "MARK_HORIZON",
    "RING_END",
    "SAVE_CHECKPOINT",
    "UNPACK_APPEND",
]

# The one argument of an append (ARGV[1]), packed by codec.encode_append: eight
# little-endian float64 (window size, TTL in seconds, number of points of the call, sequence
# number, m = the points sent, the last min(n, window size), the caller's claim: the
# sequence number of its previous append to the sensor and the point count after it, 0 and 0
# for none, and `counted`: the anomalies the caller found in the points scored on the window
# it claims, added with the points when the claim holds, 0 for none), three bytes (want: 1 if the caller takes the window from the mirror, 0 for a
# client that decodes replies as text; refresh: 1 to refresh the keys' TTLs; L), the writer id
# (L bytes), the m points packed as little-endian float64 pairs (value, timestamp), then their
# JSON entries joined by newlines. One argument: redis-py encodes each argument in Python
# (about 1 us apiece) and the script reads this one with one struct.unpack.
UNPACK_APPEND = """
local arg = ARGV[1]
local w, ttl, total, seq, m, prev, known, counted, want, refresh, wl, at = struct.unpack('<ddddddddBBB', arg)
local writer = string.sub(arg, at, at + wl - 1)
at = at + wl
local new_pts = string.sub(arg, at, at + 16 * m - 1)
local joined = string.sub(arg, at + 16 * m)
"""

#: The last 8 bytes of a compact mirror (the ring key): written once with it, never by a
#: SETRANGE of points, so a SETRANGE that answers any other length found no mirror.
RING_END = "ad-ring1"

#: Seconds a writer's marks in a sensor's counters hash outlive its last append there, at
#: least (``w:<writer id>``, ``a:<writer id>``): far longer than any retry or write-back
#: after an outage of Redis (the marks' clock only runs while writers append). See _MARKS.
MARK_HORIZON = 86_400

# Exactly once: every append carries its writer's id and a sequence number that grows with
# each of that writer's appends to a sensor. The counters hash keeps, per writer,
# 'w:<id>' = '<last sequence>:<seen before it>:<generation>'. The last append sent again (a
# client's retry, or a write-back of points whose first try timed out after all) stores nothing
# and is answered as the first time: the window before it, rebuilt from the list (as far
# as the list still holds it). An older sequence number answers {-1} and stores nothing
# either.
#
# The marks are bounded by generations (_MARKS): the field 'marks' = '<generation>:<server
# time it began, s>'; each mark carries the generation it was written in (a mark of an earlier
# version, without one: generation 0). A writer new to the sensor (no mark of its own) reads
# the server's TIME; when the generation is MARK_HORIZON old, it begins the next one and drops
# every mark ('w:' and 'a:') two or more generations old: a mark outlives its writer's last
# append by MARK_HORIZON at least (the generation after its own lasts that long), and the
# hash holds the marks of the writers that appended in the last two generations (a start in
# the server's future, its clock gone back, is taken back to now: the generation is not held
# for as long as the clock was ahead, and nothing is dropped early). A writer
# that appends is never dropped (each append writes the current generation); the clock moves
# only when a new writer appends, so an outage of Redis, however long, drops nothing.
#
# The compact mirror, a ring in a string key of its own (KEYS[{r}], `...:mirror`): w slots
# of 16 bytes (value, timestamp, little-endian float64) and the 8 bytes RING_END; the
# sensor's point number k (counted by 'seen', from 0) is in slot k mod w. The counters hash
# says which points it holds: 'ring' = '<w>:<count>:<seen>' (the last `count` points before
# point number `seen`) and 'tail', the list's last entry when it was written (not 'last', the
# field of the earlier mirror: a writer of an earlier version keeps that one, never this). It
# is valid while 'seen' is the ring's, the list has `count` entries and the same last one
# (another writer's append changes them: an earlier version's counts a point even where the
# list's length and last entry stay the same, a repeated entry on a full window) and w is the
# caller's window size; then the window before the points is answered from it
# (the ring as it is, the caller turns it), a point is written into it with one SETRANGE
# of 16 bytes, and a SETRANGE that answers another length than the mirror's (the key was
# gone) makes it invalid. An invalid mirror is rebuilt from the list after the append
# (cjson; left out while the list holds an entry that is not {"value": number,
# "timestamp": number}); the window before is then answered from the list (LRANGE, JSON
# entries decoded by the caller). The rebuild drops the mirror of earlier versions
# ('values', 'stamps' and 'last' in the counters hash). Each redis.call costs ~1-2 us in the
# script, so the counters are read with one HMGET and written with one HSET, and the
# list's length comes from RPUSH's reply (no LLEN): the last entry is read before the push,
# the window (when the mirror cannot answer) after it.
#
# The caller's claim (`prev`, `known`): "my append `prev` was the sensor's last, and left
# `known` points seen". When the writer's mark still names `prev`, `seen` is `known` and the
# mirror is valid (nobody appended since, the list unchanged), the window before the points
# is the one the caller kept from its last call: `hit` is true and the window is not sent.
# The caller has then scored the points already: its `counted` anomalies are added to the
# counters' 'anomalies' in the same script, under COUNT_ONCE's rule (the field 'a:<writer id>'
# = '<seq>:<generation>'), so the points and their count are stored together or not at all,
# and a COUNT_ONCE of this append sent later (a write-back's, a repeat's) adds nothing. An
# append whose claim fails counts nothing: the caller scores on the window answered and
# counts with COUNT_ONCE, as before.
#
# TTLs: the keys' EXPIREs (~1.5 us each) run when the caller asks (`refresh`: every call of
# the general path; the single detect's at most every TTL/60 per sensor and process) and
# whenever the script finds the counters or the list new; a rebuilt mirror is written
# with its TTL (so no key is ever left without one).
# marks_generation(counters key, its 'marks' field or false): the generation a new writer's
# mark is written in; begins the next one (dropping the marks two generations old) when the
# current one is MARK_HORIZON old, or the first one when the hash has none.
_MARKS = """
local function marks_generation(key, field)
  local now = tonumber(redis.call('TIME')[1])
  local g, since = string.match(field or '', '^(%d+):(%d+)$')
  g, since = tonumber(g), tonumber(since)
  if not g then
    redis.call('HSET', key, 'marks', '0:' .. now)
    return 0
  end
  if now < since then  -- a start in the future (the clock went back): the generation starts now
    redis.call('HSET', key, 'marks', string.format('%d:%d', g, now))
    return g
  end
  if now - since < {horizon} then return g end
  g = g + 1
  redis.call('HSET', key, 'marks', string.format('%d:%d', g, now))
  local all, old = redis.call('HGETALL', key), {}
  for i = 1, #all, 2 do
    local f, kind = all[i], string.sub(all[i], 1, 2)
    local mg = false
    if kind == 'w:' then
      mg = tonumber(string.match(all[i + 1], '^%d+:%d+:(%d+)$') or '0')
    elseif kind == 'a:' then
      mg = tonumber(string.match(all[i + 1], '^%d+:(%d+)$') or '0')
    end
    if mg and mg <= g - 2 then old[#old + 1] = f end
  end
  for i = 1, #old, 1000 do redis.call('HDEL', key, unpack(old, i, math.min(i + 999, #old))) end
  return g
end
""".replace("{horizon}", str(MARK_HORIZON))

# Uses the unpacked argument, `seen` and `meta` (the prelude's HMGET of the counters: seen,
# the writer's mark, ring, tail, marks at meta[{m}]..meta[{m} + 3]) and `want_packed` (false: the
# caller's client cannot take binary replies, so `before` is read from the list).
# Defines `before` (the window before the points, JSON entries, unless answered from the
# mirror), `packed` (the mirror answering the window before, '' for an empty window, or
# false), `count` (the points of the window before in `packed`), `repeated` and `hit`.
_APPEND_ONCE = (
    """
local repeat_of, hit, last_seq, last_seen = false, false, false, false
local mark = meta[{m}]
local gen = tonumber(string.match(meta[{m} + 3] or '', '^(%d+):') or '0')
if mark then
  last_seq, last_seen = string.match(mark, '^(%d+):(%d+)')
  if last_seq then
    last_seq = tonumber(last_seq)
    if seq < last_seq then return {-1} end
    if seq == last_seq then repeat_of = tonumber(last_seen) end
  end
else
  gen = marks_generation(KEYS[2], meta[{m} + 3])
end
local before, repeated, packed, count = {}, 0, false, 0
if repeat_of then
  local first = seen - redis.call('LLEN', KEYS[1])  -- the stream position of the list's head
  seen, repeated = repeat_of, 1
  local lo = math.max(seen - w, first)
  if seen > lo then before = redis.call('LRANGE', KEYS[1], lo - first, seen - 1 - first) end
else
  local ring, mlast = meta[{m} + 1], meta[{m} + 2]
  local tail = redis.call('LINDEX', KEYS[1], -1)
  local points, n, len = {}, 0, 0
  if m == 1 then  -- one point: its entry is the whole of `joined`
    points[1], n = joined, 1
    len = redis.call('RPUSH', KEYS[1], joined)
  else
    for e in string.gmatch(joined, '[^\\n]+') do
      n = n + 1
      points[n] = e
    end
    for i = 1, n, 1000 do
      len = redis.call('RPUSH', KEYS[1], unpack(points, i, math.min(i + 999, n)))
    end
  end
  if n == 0 then len = redis.call('LLEN', KEYS[1]) end
  len = len - n  -- the list's length before the points
  local valid = false
  if len > 0 and len <= w and ring and mlast == tail then
    local rw, rc, rs = string.match(ring, '^(%d+):(%d+):(%d+)$')
    valid = tonumber(rw) == w and tonumber(rc) == len and tonumber(rs) == seen
  end
  local size = 16 * w + 8
  if valid then
    hit = prev > 0 and last_seq == prev and seen == known and want_packed
    if want_packed and not hit then
      packed = redis.call('GET', KEYS[{r}])
      if packed and #packed == size then count = len else packed, valid = false, false end
    end
  elseif len == 0 then
    packed = ''
  end
  if not (hit or packed) and len > 0 then
    before = redis.call('LRANGE', KEYS[1], -math.min(w, len) - n, -n - 1)
  end
  if len + n > w then redis.call('LTRIM', KEYS[1], -w, -1) end
  local fresh = refresh == 1 or len == 0 or not meta[1]
  if fresh then ttl = string.format('%d', ttl) end
  if fresh then redis.call('EXPIRE', KEYS[1], ttl) end
  local after = seen + total
  if valid and n > 0 then
    local slot = (after - n) % w
    local first = math.min(n, w - slot)
    local got = redis.call('SETRANGE', KEYS[{r}], 16 * slot, string.sub(new_pts, 1, 16 * first))
    if n > first then got = redis.call('SETRANGE', KEYS[{r}], 0, string.sub(new_pts, 16 * first + 1)) end
    if got ~= size then valid = false end
    if fresh and valid then redis.call('EXPIRE', KEYS[{r}], ttl) end
  end
  local kept = math.min(len + n, w)
  if not valid then  -- rebuilt from the list, as it is after the append
    local entries = redis.call('LRANGE', KEYS[1], 0, -1)
    kept = #entries
    local slots = {}
    for i, e in ipairs(entries) do
      local ok, p = pcall(cjson.decode, e)
      local v = ok and type(p) == 'table' and p['value']
      local t = v and p['timestamp']
      if type(v) ~= 'number' or type(t) ~= 'number' or v ~= v or t ~= t or v == math.huge
          or v == -math.huge or t == math.huge or t == -math.huge or kept > w then
        slots = false
        break
      end
      slots[(after - kept + i - 1) % w + 1] = struct.pack('<dd', v, t)
    end
    if slots then
      local zero = string.rep('\\0', 16)
      for i = 1, w do slots[i] = slots[i] or zero end
      redis.call('SET', KEYS[{r}], table.concat(slots) .. '"""
    + RING_END
    + r"""', 'EX', ttl)
      valid = true
    else  -- no mirror while an entry cannot be read (nor a partial one SETRANGE made, without TTL)
      redis.call('DEL', KEYS[{r}])
    end
    redis.call('HDEL', KEYS[2], 'values', 'stamps', 'last')  -- the mirror of earlier versions
  end
  local after_s = string.format('%d', after)
  local mark_now = string.format('%d:%d:%d', seq, seen, gen)
  if hit and counted > 0 then  -- hit implies valid: the count joins the HSET below
    redis.call('HINCRBY', KEYS[2], 'anomalies', string.format('%d', counted))
    redis.call('HSET', KEYS[2], 'seen', after_s, 'w:' .. writer, mark_now,
               'ring', string.format('%d:%d:%s', w, kept, after_s), 'tail', points[n] or tail,
               'a:' .. writer, string.format('%d:%d', seq, gen))
  elseif valid then
    redis.call('HSET', KEYS[2], 'seen', after_s, 'w:' .. writer, mark_now,
               'ring', string.format('%d:%d:%s', w, kept, after_s), 'tail', points[n] or tail)
  else
    redis.call('HSET', KEYS[2], 'seen', after_s, 'w:' .. writer, mark_now)
    redis.call('HDEL', KEYS[2], 'ring', 'tail')
  end
  if fresh then redis.call('EXPIRE', KEYS[2], ttl) end
end
"""
)

# KEYS[1] window list, KEYS[2] counters hash, KEYS[3] compact mirror. ARGV[1] the packed
# append (UNPACK_APPEND). Returns {seen before, window before as JSON entries, 1 if a repeat
# else 0, and, when the mirror had it, the mirror and the count of the window's points in
# it}; when the caller's claim held, {seen before, {}, 0, 1}: the window before is the one
# the caller kept, and its `counted` anomalies were added.
APPEND = (
    UNPACK_APPEND
    + _MARKS
    + """
local meta = redis.call('HMGET', KEYS[2], 'seen', 'w:' .. writer, 'ring', 'tail', 'marks')
local seen = tonumber(meta[1] or '0')
local want_packed = want == 1
"""
    + _APPEND_ONCE.replace("{m}", "2").replace("{r}", "3")
    + "if hit then return {seen, before, repeated, 1} end\n"
    + "if packed then return {seen, before, repeated, packed, count} end\n"
    + "return {seen, before, repeated}\n"
)

# The ensemble's append: the same, plus the checkpoint hash. KEYS[3] checkpoint
# (hash: seen, blob). ARGV[2] the epoch and ARGV[3] the point count of the state the
# caller has cached ('' and -1 for none). The counters' epoch (the server time when they were
# created) tells a sensor from a reset one of the same name: a new epoch drops the old
# checkpoint and makes caches stale.
# Returns {seen before, window before, epoch, checkpoint's seen or -1, its bytes
# when newer than the caller's state, else nil, 1 if a repeat else 0, and, when the
# mirror had it, the mirror and the count of the window's points in it}. KEYS[5] the mirror
# (KEYS[4], the parked checkpoint, is not used here: sensor_keys passes every key).
APPEND_ENSEMBLE = (
    UNPACK_APPEND
    + _MARKS
    + """
local meta = redis.call('HMGET', KEYS[2], 'seen', 'epoch', 'w:' .. writer, 'ring', 'tail', 'marks')
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
    + _APPEND_ONCE.replace("{m}", "3").replace("{r}", "5")
    + """
local ckpt = tonumber(redis.call('HGET', KEYS[3], 'seen') or '-1') or -1
local blob = false
if ckpt >= 0 then
  redis.call('EXPIRE', KEYS[3], ttl)
  if epoch ~= ARGV[2] or ckpt > tonumber(ARGV[3]) then
    blob = redis.call('HGET', KEYS[3], 'blob')
  end
end
if packed then return {seen, before, epoch, ckpt, blob, repeated, packed, count} end
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

# The anomalies of an append, counted once: KEYS[1] counters hash; ARGV[1] writer id, ARGV[2]
# the append's sequence number, ARGV[3] how many anomalies, ARGV[4] TTL (s). The field
# 'a:<writer id>' = '<last sequence number counted>:<generation>' (an earlier version's: the
# number alone); a count sent again (its reply was lost) or an older one adds nothing, and so
# does a count whose append the hash does not hold (the writer's mark 'w:<writer id>' names an
# earlier one, or none: the sensor was reset after the append, or the mark was dropped
# MARK_HORIZON after it). Returns 1 if counted.
COUNT_ONCE = """
local field = 'a:' .. ARGV[1]
local marks = redis.call('HMGET', KEYS[1], field, 'w:' .. ARGV[1], 'marks')
local seq = tonumber(ARGV[2])
if seq <= (tonumber(string.match(marks[1] or '', '^(%d+)') or '0') or 0) then return 0 end
if seq > (tonumber(string.match(marks[2] or '', '^(%d+):') or '0') or 0) then return 0 end
redis.call('HINCRBY', KEYS[1], 'anomalies', ARGV[3])
redis.call('HSET', KEYS[1], field, string.format('%d:%s', seq, string.match(marks[3] or '', '^(%d+):') or '0'))
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

# An alert delivered, stored and indexed once, in one call (a single node; on a Cluster the
# alert's key, named by its stream id, is in no slot known beforehand: DELIVER_ALERT there,
# then the storing and indexing). KEYS[1] the alert stream, KEYS[2] the alert's delivery mark,
# KEYS[3] the alerts' time index. ARGV[1] to ARGV[6] as DELIVER_ALERT's (the published message
# is also the stored document), ARGV[7] the prefix of the alert's key (its stream id follows:
# not in KEYS, which a single node allows), ARGV[8] its score in the index, ARGV[9] how many ids
# the index keeps. A second delivery (its reply was lost) finds the mark and appends and
# publishes nothing; its storing and indexing are the same writes again. Returns {stream id,
# 1 if delivered now else 0}.
DELIVER_STORE_ALERT = """
local id = redis.call('GET', KEYS[2])
local now = 0
if not id then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'alert', ARGV[2])
  redis.call('SET', KEYS[2], id, 'EX', ARGV[3])
  now = 1
end
local doc = ARGV[5] .. id .. ARGV[6]
redis.call('SET', ARGV[7] .. id, doc, 'EX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[8], id)
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[9]) - 1)
redis.call('EXPIRE', KEYS[3], ARGV[3])
if now == 1 then redis.call('PUBLISH', ARGV[4], doc) end
return {id, now}
"""

# A corrupt idempotency record (bytes the store does not write: not UTF-8, not JSON, other
# fields) replaced by a claim, only if it still holds the same bytes: a record another worker
# wrote since it was read (or the key gone) is left alone. KEYS[1] the record, ARGV[1] the
# SHA-1 (hex) of the bytes that were read, ARGV[2] the claim, ARGV[3] its TTL (ms). Returns 1
# if replaced.
IDEMPOTENCY_REPLACE = """
local seen = redis.call('GET', KEYS[1])
if not seen or redis.sha1hex(seen) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# The SHA-1 (hex) of KEYS[1]'s bytes, or nil: for a client that decodes replies, which cannot
# read bytes that are not UTF-8.
IDEMPOTENCY_SHA1 = """
local seen = redis.call('GET', KEYS[1])
if not seen then return false end
return redis.sha1hex(seen)
"""
