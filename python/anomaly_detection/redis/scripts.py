"""The Lua scripts of the shared store: each runs atomically on the server, so processes
sharing a sensor lose no update. Key and hash-field names are those of
:mod:`anomaly_detection.redis.keys`."""

__all__ = ["APPEND", "APPEND_ENSEMBLE", "FIND_CHECKPOINT", "SAVE_CHECKPOINT"]

# The append itself, shared by both scripts; {first} is the ARGV index of the first point.
_PUSH_POINTS = """
for i = {first}, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('LTRIM', KEYS[1], -w, -1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], 'seen', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[2])
"""

# KEYS[1] window list, KEYS[2] counters hash.
# ARGV[1] window size, ARGV[2] TTL (s), ARGV[3] number of points, ARGV[4..] the last
# min(n, window size) points as JSON. Returns {seen before, window before}.
APPEND = (
    """
local w = tonumber(ARGV[1])
local before = redis.call('LRANGE', KEYS[1], -w, -1)
local seen = tonumber(redis.call('HGET', KEYS[2], 'seen') or '0')
"""
    + _PUSH_POINTS.replace("{first}", "4")
    + "return {seen, before}\n"
)

# The ensemble's append: the same, plus the checkpoint hash. KEYS[3] checkpoint
# (hash: seen, blob). ARGV[4] the epoch and ARGV[5] the point count of the state the
# caller has cached ('' and -1 for none), ARGV[6..] the points. The counters' epoch
# (the server time when they were created) tells a sensor from a reset one of the
# same name: a new epoch drops the old checkpoint and makes caches stale.
# Returns {seen before, window before, epoch, checkpoint's seen or -1, its bytes
# when newer than the caller's state, else nil}.
APPEND_ENSEMBLE = (
    """
local w = tonumber(ARGV[1])
local before = redis.call('LRANGE', KEYS[1], -w, -1)
local meta = redis.call('HMGET', KEYS[2], 'seen', 'epoch')
local seen = tonumber(meta[1] or '0')
local epoch = meta[2]
if not epoch then
  local now = redis.call('TIME')
  epoch = now[1] .. '.' .. now[2]
  redis.call('HSET', KEYS[2], 'epoch', epoch)
  redis.call('DEL', KEYS[3])
end
"""
    + _PUSH_POINTS.replace("{first}", "6")
    + """
local ckpt = tonumber(redis.call('HGET', KEYS[3], 'seen') or '-1') or -1
local blob = false
if ckpt >= 0 then
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  if epoch ~= ARGV[4] or ckpt > tonumber(ARGV[5]) then
    blob = redis.call('HGET', KEYS[3], 'blob')
  end
end
return {seen, before, epoch, ckpt, blob}
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
