"""The Lua scripts of the shared sketches (:mod:`anomaly_detection.sketches.shared`): each
runs atomically on the server, so concurrent writers lose no update. ``KEYS[1]`` is always
the sketch's key (:meth:`AnomalyRedisKeys.sketch`)."""

__all__ = ["BLOOM", "CUCKOO", "HLL_MERGE"]

# Bloom filter: ARGV[1] 'add' or 'exists', ARGV[2] k (bits per item), ARGV[3] the items'
# bit offsets packed as little-endian u32 (k per item), ARGV[4] the filter's size in bytes.
# Returns one '0'/'1' per item: exists: every bit set; add: some bit was still clear (the
# item is new); an error 'possible corruption' when the string is longer than the filter.
BLOOM = """
local key, op, k, packed = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
-- SETBIT never makes the string longer than the filter's bits: a longer one is not this filter.
local size, most = redis.call('STRLEN', key), tonumber(ARGV[4])
if size > most then
  return redis.error_reply('possible corruption: ' .. key .. ' holds ' .. size ..
    ' bytes, more than the ' .. most .. ' of a Bloom filter of these parameters')
end
local out = {}
for i = 0, #packed / (4 * k) - 1 do
  -- exists: every bit set (stop at the first clear one); add: some bit was still clear.
  local answer = (op == 'exists') and 1 or 0
  for j = 0, k - 1 do
    local offset = struct.unpack('<I4', packed, (i * k + j) * 4 + 1)
    if op == 'exists' then
      if redis.call('GETBIT', key, offset) == 0 then answer = 0 break end
    elseif redis.call('SETBIT', key, offset, 1) == 0 then
      answer = 1
    end
  end
  out[#out + 1] = answer
end
return table.concat(out)
"""

# HyperLogLog merge: KEYS[2] a scratch key in the sketch's slot, ARGV[1] the registers of a
# Redis-compatible HyperLogLog (a Redis HLL string). SET + PFMERGE + DEL in one call.
HLL_MERGE = """
redis.call('SET', KEYS[2], ARGV[1])
redis.call('PFMERGE', KEYS[1], KEYS[2])
redis.call('DEL', KEYS[2])
"""

# Cuckoo filter in one string: an 8-byte item count, then buckets * bucket_size one-byte
# fingerprints. ARGV[1] the op ('add', 'add_nx', 'exists', 'count', 'delete', 'size'), ARGV[2]
# bucket size, ARGV[3] number of buckets (a power of two), ARGV[4] the most evictions of
# one insert, then (fingerprint, bucket 1, bucket 2) per item. Returns one integer per
# item ('size': the item count); a trailing -1 marks the first item that did not fit (the
# walk was undone); an error 'possible corruption' when the string is not such a filter.
CUCKOO = """
local key, op = KEYS[1], ARGV[1]
local bs, nb, max_it = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local mask, header = nb - 1, 8
local out = {}
if redis.call('EXISTS', key) == 0 then
  if op == 'size' then return {0} end
  if op ~= 'add' and op ~= 'add_nx' then
    for i = 5, #ARGV, 3 do out[#out + 1] = 0 end
    return out
  end
  redis.call('SETRANGE', key, header + nb * bs - 1, '\\0')
else
  -- Anything but a header and nb * bs slots (garbage, another filter) is refused, before
  -- any change: its slots would answer at random and a walk would read past its end.
  local size, items = redis.call('STRLEN', key), 0
  if size == header + nb * bs then items = redis.call('BITFIELD', key, 'GET', 'i64', 0)[1] end
  if size ~= header + nb * bs or items < 0 or items > nb * bs then
    return redis.error_reply('possible corruption: ' .. key .. ' holds ' .. size .. ' bytes and ' ..
      items .. ' items, not a cuckoo filter of ' .. nb .. ' buckets of ' .. bs .. ' slots')
  end
  if op == 'size' then return {items} end
end
local function bucket(b) return redis.call('GETRANGE', key, header + b * bs, header + b * bs + bs - 1) end
local function find(b, fp)
  local s = bucket(b)
  for i = 1, bs do if string.byte(s, i) == fp then return i - 1 end end
  return nil
end
local function put(b, slot, fp) redis.call('SETRANGE', key, header + b * bs + slot, string.char(fp)) end
local function alt(b, fp) return bit.band(bit.bxor(b, bit.tobit((fp * 1540483477) % 4294967296)), mask) end
local function insert(fp, b1, b2)
  local s = find(b1, 0)
  if s then put(b1, s, fp) return true end
  s = find(b2, 0)
  if s then put(b2, s, fp) return true end
  -- Random walk with a MINSTD generator seeded by the item, so runs repeat.
  local undo, rng = {}, (fp * 7919 + b1 * 104729 + b2) % 2147483646 + 1
  local b = (rng % 2 == 0) and b1 or b2
  for it = 0, max_it - 1 do
    rng = (rng * 48271) % 2147483647
    local slot = rng % bs
    local victim = string.byte(bucket(b), slot + 1)
    put(b, slot, fp)
    undo[#undo + 1] = {b, slot, victim}
    fp = victim
    b = alt(b, fp)
    s = find(b, 0)
    if s then put(b, s, fp) return true end
  end
  for i = #undo, 1, -1 do put(undo[i][1], undo[i][2], undo[i][3]) end
  return false
end
local added = 0
for i = 5, #ARGV, 3 do
  local fp, b1, b2 = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local r = 0
  if op == 'exists' then
    if find(b1, fp) or find(b2, fp) then r = 1 end
  elseif op == 'count' then
    for _, b in ipairs(b1 == b2 and {b1} or {b1, b2}) do
      local s = bucket(b)
      for j = 1, bs do if string.byte(s, j) == fp then r = r + 1 end end
    end
  elseif op == 'delete' then
    local s = find(b1, fp)
    if s then put(b1, s, 0) r = 1 else
      s = find(b2, fp)
      if s then put(b2, s, 0) r = 1 end
    end
    added = added - r
  else
    if op == 'add_nx' and (find(b1, fp) or find(b2, fp)) then
      r = 0
    elseif insert(fp, b1, b2) then
      r = 1
      added = added + 1
    else
      out[#out + 1] = -1
      break
    end
  end
  out[#out + 1] = r
end
if added ~= 0 then redis.call('BITFIELD', key, 'INCRBY', 'i64', 0, added) end
return out
"""
