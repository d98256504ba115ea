"""Sketches whose state lives in stock Redis 7 (no modules), shared by many processes.

Each sketch lives under ``<prefix>:sketch:<name>`` (its parameters under
``<prefix>:sketch:<name>:meta``), keys built by :class:`AnomalyRedisKeys`; every write
renews both keys' TTL (``ttl``, default :attr:`AnomalyRedisTTL.SKETCH`, 24 h; ``None``
keeps them forever). The C++ core computes where an item goes; Redis
applies the update atomically, so concurrent writers lose nothing.

The classes take a ``redis.Redis`` / ``RedisCluster`` client, or their ``redis.asyncio``
twins: with an asyncio client every method that talks to Redis returns an awaitable
(``await cms.incrby(items)``), exactly as redis-py's own methods do. Each operation is
written once, as a plan of Redis calls that a sync or an async driver runs.

================  =========================================================================
sketch            how the state is shared
================  =========================================================================
count-min         one string of u32 counters; ``BITFIELD ... OVERFLOW SAT INCRBY`` at the
                  positions the core computes (one command per batch, atomic, saturating)
Bloom             one string of bits (non-scaling); SETBIT / GETBIT at the offsets the core
                  computes, run by a Lua script that takes them packed (one call per 10k items)
HyperLogLog       Redis's own HLL: ``PFADD`` of each item's 64-bit xxHash64, ``PFCOUNT``
cuckoo            one string of fingerprints (non-growing); a Lua script does the insert
                  with evictions, ``add_nx``, ``delete`` and ``count`` atomically
t-digest, top-k   one hash; each worker keeps a local sketch and writes its serialised
                  shard under its own field; readers merge every shard
================  =========================================================================
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import uuid
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import numpy as np

from anomaly_detection.errors import FilterFullError
from anomaly_detection.redis.keys import AnomalyRedisKeys, AnomalyRedisTTL
from anomaly_detection.sketches._base import Items
from anomaly_detection.sketches.count_min import CountMinSketch
from anomaly_detection.sketches.filters import BloomFilter, CuckooFilter
from anomaly_detection.sketches.hyperloglog import HyperLogLog, hash_items
from anomaly_detection.sketches.t_digest import TDigest
from anomaly_detection.sketches.top_k import TopK

__all__ = [
    "SharedBloomFilter",
    "SharedCountMinSketch",
    "SharedCuckooFilter",
    "SharedHyperLogLog",
    "SharedTDigest",
    "SharedTopK",
    "sketch_key",
]

# Sub-commands per BITFIELD / PFADD call: bounds the size of one request.
_CHUNK = 20_000

_T = TypeVar("_T")
#: One Redis call: takes the client, returns the reply (an awaitable for asyncio clients).
Op = Callable[[Any], Any]
#: An operation: yields Ops, receives their replies, returns the result.
Plan = Generator[Op, Any, _T]


def sketch_key(name: str, *, prefix: str = "anomaly") -> str:
    """``<prefix>:sketch:<name>``, the key of a shared sketch (:meth:`AnomalyRedisKeys.sketch`).

    The name follows the sensor-name rules (no ``:``, ``*``, ``?``, brackets, braces or
    whitespace, at most 200 bytes), so it cannot break out of the key layout.

    >>> sketch_key("endpoints")
    'anomaly:sketch:endpoints'
    """
    return AnomalyRedisKeys(prefix).sketch(name)


class _SharedBase:
    """Key, client, the parameters every process must agree on, and the plan drivers."""

    _family: str

    def __init__(
        self,
        client: Any,
        name: str,
        params: dict[str, Any],
        prefix: str,
        ttl: int | None = AnomalyRedisTTL.SKETCH,
    ) -> None:
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1):
            raise ValueError(f"ttl: expected None or a positive number of seconds, got {ttl!r}")
        kwargs = getattr(client, "get_connection_kwargs", dict)()
        if kwargs.get("decode_responses"):
            # Shards and filter replies are raw bytes; a decoding client would corrupt them.
            raise ValueError("client: expected a redis client with decode_responses=False")
        self.client = client
        self.name = name
        self.prefix = prefix
        self.key = sketch_key(name, prefix=prefix)
        self.meta_key = AnomalyRedisKeys(prefix).sketch_meta(name)
        self.params = params
        self.ttl = ttl
        self._async = inspect.iscoroutinefunction(getattr(client, "execute_command", None))
        self._ready = False

    def _start(self) -> None:
        """With a sync client, check the parameters now; an asyncio client does it on first use."""
        if not self._async:
            self._run(_nothing())

    def _setup(self) -> Plan[None]:
        # The first process to arrive records the parameters; the others must match them,
        # or their positions would land on different counters.
        meta = json.dumps({"family": self._family, **self.params}, sort_keys=True)
        yield lambda c: c.set(self.meta_key, meta, nx=True)
        stored = yield lambda c: c.get(self.meta_key)
        if stored is not None and (stored.decode() if isinstance(stored, bytes) else stored) != meta:
            raise ValueError(
                f"{self.key} already holds a sketch with other parameters: {stored!r}, wanted {meta}"
            )

    def _ready_plan(self, plan: Plan[_T]) -> Plan[_T]:
        if not self._ready:
            yield from self._setup()
            self._ready = True
        return (yield from plan)

    def _touched(self, plan: Plan[_T]) -> Plan[_T]:
        # Every write renews the TTL (AnomalyRedisTTL.SKETCH: 24 h after the last update).
        result = yield from plan
        if self.ttl is not None:
            for key in (self.key, self.meta_key):
                yield lambda c, key=key: c.expire(key, self.ttl)
        return result

    def _write(self, plan: Plan[_T]) -> Any:
        """Run a plan that changes the sketch, then renew its TTL."""
        return self._run(self._touched(plan))

    def _run(self, plan: Plan[_T]) -> Any:
        """Run a plan: synchronously, or as a coroutine for an asyncio client."""
        plan = self._ready_plan(plan)
        if self._async:
            return self._run_async(plan)
        reply = None
        try:
            while True:
                reply = plan.send(reply)(self.client)
        except StopIteration as done:
            return done.value

    async def _run_async(self, plan: Plan[_T]) -> _T:
        reply = None
        try:
            while True:
                reply = await plan.send(reply)(self.client)
        except StopIteration as done:
            return done.value

    def drop(self) -> Any:
        """Remove the shared state and its parameters from Redis."""

        def plan() -> Plan[None]:
            yield lambda c: c.delete(self.key, self.meta_key)

        return self._run(plan())

    def info(self) -> dict[str, Any]:
        return {"key": self.key, "family": self._family, **self.params}


def _nothing() -> Plan[None]:
    return
    yield  # a plan without Redis calls (the setup still runs in front of it)


def _is_scalar(items: Any) -> bool:
    if isinstance(items, np.ndarray):
        return items.ndim == 0
    return isinstance(items, (str, bytes, bytearray, int, np.integer))


def _bitfield(
    key: str, subcommands: list[list[Any]], *, read_only: bool = False, head: Sequence[Any] = ()
) -> Plan[np.ndarray]:
    """BITFIELD sub-commands in chunks (each chunk one atomic command, ``head`` such as
    ``OVERFLOW SAT`` repeated in front of each); returns every reply as one array."""
    name = "BITFIELD_RO" if read_only else "BITFIELD"
    replies = np.empty(len(subcommands), dtype=np.uint64)
    for start in range(0, len(subcommands), _CHUNK):
        args = [word for sub in subcommands[start : start + _CHUNK] for word in sub]
        replies[start : start + _CHUNK] = yield lambda c, args=args: c.execute_command(
            name, key, *head, *args
        )
    return replies


class SharedCountMinSketch(_SharedBase):
    """Count-min sketch in one Redis string of u32 counters, updated with
    ``BITFIELD key OVERFLOW SAT INCRBY u32 #i n``: atomic per batch, saturating (a shared
    sketch cannot be all-or-nothing across processes), standard (not conservative) update.

    Examples
    --------
    With a ``redis.Redis`` client (tested in ``tests/python/test_sketches_shared.py``)::

        cms = SharedCountMinSketch(redis_client, "status_codes", width=2000, depth=5)
        cms.incrby(["200", "500"], [10, 1])     # array([10,  1], dtype=uint64)
    """

    _family = "count_min"

    def __init__(
        self,
        client: Any,
        name: str,
        width: int,
        depth: int,
        *,
        seed: int = 0,
        prefix: str = "anomaly",
        ttl: int | None = AnomalyRedisTTL.SKETCH,
    ) -> None:
        self._local = CountMinSketch(width, depth, seed=seed)
        params = {"width": self._local.width, "depth": self._local.depth, "seed": seed}
        super().__init__(client, name, params, prefix, ttl)
        self._start()

    @classmethod
    def from_error(
        cls,
        client: Any,
        name: str,
        epsilon: float,
        delta: float,
        *,
        seed: int = 0,
        prefix: str = "anomaly",
        ttl: int | None = AnomalyRedisTTL.SKETCH,
    ) -> SharedCountMinSketch:
        """Dimensions for the (epsilon, delta) guarantee, as :meth:`CountMinSketch.from_error`."""
        local = CountMinSketch.from_error(epsilon, delta, seed=seed)
        return cls(client, name, local.width, local.depth, seed=seed, prefix=prefix, ttl=ttl)

    def incrby(self, items: Items, increments: int | Sequence[int] | np.ndarray = 1) -> Any:
        """Add increments on the server; return the estimates right after this batch."""
        return self._write(self._incrby(items, increments))

    def _incrby(self, items: Items, increments: Any) -> Plan[int | np.ndarray]:
        scalar = _is_scalar(items)
        positions = np.atleast_2d(self._local.positions(items))
        n, depth = len(positions), self._local.depth
        inc = _increments(increments, n)
        # Repeated counters are summed first: one sub-command per distinct counter.
        unique, inverse = np.unique(positions.reshape(-1), return_inverse=True)
        sums = np.bincount(inverse, weights=np.repeat(inc, depth).astype(np.float64), minlength=len(unique))
        subcommands = [
            ["INCRBY", "u32", f"#{pos}", int(min(amount, 2**32 - 1))]
            for pos, amount in zip(unique.tolist(), sums.tolist(), strict=True)
        ]
        values = yield from _bitfield(self.key, subcommands, head=("OVERFLOW", "SAT"))
        estimates = values[inverse].reshape(n, depth).min(axis=1)
        return int(estimates[0]) if scalar else estimates

    def add(self, items: Items) -> Any:
        """Count each item once."""
        return self.incrby(items, 1)

    def query(self, items: Items) -> Any:
        """Estimated counts, read with ``BITFIELD_RO``."""
        return self._run(self._query(items))

    def _query(self, items: Items) -> Plan[int | np.ndarray]:
        scalar = _is_scalar(items)
        positions = np.atleast_2d(self._local.positions(items))
        subcommands = [["GET", "u32", f"#{pos}"] for pos in positions.reshape(-1).tolist()]
        values = yield from _bitfield(self.key, subcommands, read_only=True)
        estimates = (
            values.reshape(positions.shape).min(axis=1) if len(values) else np.zeros(0, dtype=np.uint64)
        )
        return int(estimates[0]) if scalar else estimates

    def snapshot(self) -> Any:
        """A local :class:`CountMinSketch` with the current counters (for merging, pickling)."""
        return self._run(self._snapshot())

    def _snapshot(self) -> Plan[CountMinSketch]:
        raw = (yield lambda c: c.get(self.key)) or b""
        size = self._local.width * self._local.depth
        counters = np.zeros(size, dtype=np.uint32)
        data = np.frombuffer(raw[: size * 4], dtype=">u4")
        counters[: len(data)] = data
        snap = self._local.copy()
        snap.load_counters(counters)
        return snap


def _increments(increments: Any, n: int) -> np.ndarray:
    if isinstance(increments, (int, np.integer)) and not isinstance(increments, bool):
        if increments < 0 or increments > 2**32 - 1:
            raise ValueError(f"increments: expected 0..2**32-1, got {increments}")
        return np.full(n, int(increments), dtype=np.int64)
    arr = np.asarray(increments)
    if arr.ndim != 1 or len(arr) != n or arr.dtype.kind not in "iu":
        raise ValueError(f"increments: expected one integer or {n} integers")
    if len(arr) and (arr.min() < 0 or arr.max() > 2**32 - 1):
        raise ValueError("increments: expected values in 0..2**32-1")
    return arr.astype(np.int64)


class SharedBloomFilter(_SharedBase):
    """Non-scaling Bloom filter in one Redis string of bits, set and read with ``SETBIT`` /
    ``GETBIT`` by a short Lua script: the core computes each item's bit offsets and sends
    them packed (4 bytes each), so a batch of 10,000 items is one atomic call.

    The filter does not grow: past ``capacity`` items the false-positive rate rises above
    ``error_rate``. At most 2**32 bits (a Redis string holds 512 MiB).
    """

    _family = "bloom"
    # Items per script call: bounds how long one call keeps the server busy.
    _ITEMS_PER_CALL = 10_000

    _SCRIPT = """
local key, op, k, packed = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
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

    def __init__(
        self,
        client: Any,
        name: str,
        capacity: int,
        error_rate: float = 0.01,
        *,
        prefix: str = "anomaly",
        ttl: int | None = AnomalyRedisTTL.SKETCH,
    ) -> None:
        self._local = BloomFilter(capacity, error_rate, non_scaling=True)
        if self._local.info()["bits"] > 2**32:
            raise ValueError("capacity and error_rate: a shared Bloom filter holds at most 2**32 bits")
        super().__init__(client, name, {"capacity": capacity, "error_rate": error_rate}, prefix, ttl)
        self._script = client.register_script(self._SCRIPT)
        self._start()

    def add(self, items: Items) -> Any:
        """Set the items' bits; True for each item that had a bit still clear (new)."""
        return self._write(self._call("add", items))

    def exists(self, items: Items) -> Any:
        """True where an item may be present, False where it surely is not."""
        return self._run(self._call("exists", items))

    def _call(self, op: str, items: Items) -> Plan[bool | np.ndarray]:
        scalar = _is_scalar(items)
        positions = np.atleast_2d(self._local.positions(items)).astype("<u4")
        k = positions.shape[1]
        answers = []
        for start in range(0, len(positions), self._ITEMS_PER_CALL):
            args = [op, k, positions[start : start + self._ITEMS_PER_CALL].tobytes()]
            answer = yield lambda c, args=args: self._script(keys=[self.key], args=args, client=c)
            answers.append(bytes(answer))
        flags = np.frombuffer(b"".join(answers), dtype=np.uint8) == ord("1")
        return bool(flags[0]) if scalar else flags


class SharedHyperLogLog(_SharedBase):
    """Redis's own HyperLogLog (``PFADD`` / ``PFCOUNT``, 0.81% standard error), fed with
    each item's 64-bit xxHash64 so every client language and process agrees on items."""

    _family = "hyperloglog"

    _MERGE = """
redis.call('SET', KEYS[2], ARGV[1])
redis.call('PFMERGE', KEYS[1], KEYS[2])
redis.call('DEL', KEYS[2])
"""

    def __init__(
        self, client: Any, name: str, *, prefix: str = "anomaly", ttl: int | None = AnomalyRedisTTL.SKETCH
    ) -> None:
        super().__init__(client, name, {}, prefix, ttl)
        self._start()

    def add(self, items: Items) -> Any:
        """Add items; True when the HyperLogLog changed."""
        return self._write(self._add(items))

    def _add(self, items: Items) -> Plan[bool]:
        hashes = np.atleast_1d(hash_items(items)).astype("<u8")
        changed = False
        for start in range(0, len(hashes), _CHUNK):
            elements = [h.tobytes() for h in hashes[start : start + _CHUNK]]
            changed |= bool((yield lambda c, e=elements: c.pfadd(self.key, *e)))
        return changed

    def count(self) -> Any:
        """Estimated distinct items (``PFCOUNT``)."""

        def plan() -> Plan[int]:
            return int((yield lambda c: c.pfcount(self.key)))

        return self._run(plan())

    def snapshot(self) -> Any:
        """The shared registers as a local Redis-compatible :class:`HyperLogLog`."""

        def plan() -> Plan[HyperLogLog]:
            raw = yield lambda c: c.get(self.key)
            return HyperLogLog.from_redis_bytes(raw) if raw else HyperLogLog(14, redis_compatible=True)

        return self._run(plan())

    def merge(self, sketch: HyperLogLog) -> Any:
        """Fold a local Redis-compatible sketch in (``PFMERGE``, atomically, in one script):
        count a large batch locally at native speed, then share it in one call."""
        if not isinstance(sketch, HyperLogLog) or not sketch.redis_compatible:
            raise ValueError("merge: expected a HyperLogLog created with redis_compatible=True")
        scratch = AnomalyRedisKeys(self.prefix).sketch_scratch(self.name)
        blob = sketch.to_redis_bytes()

        def plan() -> Plan[None]:
            yield lambda c: c.eval(self._MERGE, 2, self.key, scratch, blob)

        return self._write(plan())


class SharedCuckooFilter(_SharedBase):
    """Non-growing cuckoo filter in one Redis string, changed only by a Lua script, so
    add (with evictions), ``add_nx``, ``delete`` and ``count`` are atomic across processes.

    Layout: an 8-byte item count, then ``buckets * bucket_size`` one-byte fingerprints. The
    core computes each item's fingerprint and buckets; the script walks the evictions
    (a random walk seeded by the item, so runs repeat) and undoes a failed walk, then raises
    ``FilterFullError``.
    """

    _family = "cuckoo"

    _SCRIPT = """
local key, op = KEYS[1], ARGV[1]
local bs, nb, max_it = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local mask, header = nb - 1, 8
local out = {}
if redis.call('EXISTS', key) == 0 then
  if op ~= 'add' and op ~= 'add_nx' then
    for i = 5, #ARGV, 3 do out[#out + 1] = 0 end
    return out
  end
  redis.call('SETRANGE', key, header + nb * bs - 1, '\\0')
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

    def __init__(
        self,
        client: Any,
        name: str,
        capacity: int,
        bucket_size: int = 2,
        max_iterations: int = 20,
        *,
        prefix: str = "anomaly",
        ttl: int | None = AnomalyRedisTTL.SKETCH,
    ) -> None:
        self._local = CuckooFilter(capacity, bucket_size, max_iterations, expansion=0)
        self._buckets = self._local._native.first_filter_buckets
        if self._buckets > 2**31:
            raise ValueError("capacity: a shared cuckoo filter holds at most 2**31 buckets")
        super().__init__(
            client,
            name,
            {"capacity": capacity, "bucket_size": bucket_size, "max_iterations": max_iterations},
            prefix,
            ttl,
        )
        self._script = client.register_script(self._SCRIPT)
        self._start()

    def _call(self, op: str, items: Items, convert: Callable[[np.ndarray], Any]) -> Plan[Any]:
        scalar = _is_scalar(items)
        fps, b1, b2 = self._local._native.slots(items)
        args: list[Any] = [op, self._local.bucket_size, self._buckets, self._local.max_iterations]
        for triple in zip(fps.tolist(), b1.tolist(), b2.tolist(), strict=True):
            args.extend(triple)
        reply = (yield lambda c: self._script(keys=[self.key], args=args, client=c)) if len(fps) else []
        out = np.asarray(reply, dtype=np.int64)
        if len(out) and out[-1] == -1:
            raise FilterFullError(
                f"shared cuckoo filter {self.key} is full: item {len(out) - 1} of the batch did not fit "
                "(the items before it were added)"
            )
        result = convert(out)
        return result[0].item() if scalar else result

    def add(self, items: Items) -> Any:
        """Add items; ``FilterFullError`` at the first that does not fit (earlier ones stay)."""

        def plan() -> Plan[None]:
            yield from self._call("add", items, lambda out: out)

        return self._write(plan())

    def add_nx(self, items: Items) -> Any:
        """Add the items not present yet; True for each one added."""
        return self._write(self._call("add_nx", items, lambda out: out.astype(bool)))

    def exists(self, items: Items) -> Any:
        """True where an item may be present."""
        return self._run(self._call("exists", items, lambda out: out.astype(bool)))

    def delete(self, items: Items) -> Any:
        """Remove one copy of each item; True where a copy was found."""
        return self._write(self._call("delete", items, lambda out: out.astype(bool)))

    def count(self, items: Items) -> Any:
        """Copies of each item's fingerprint."""
        return self._run(self._call("count", items, lambda out: out.astype(np.uint64)))

    def size(self) -> Any:
        """Items in the filter (adds minus deletes)."""

        def plan() -> Plan[int]:
            raw = yield lambda c: c.getrange(self.key, 0, 7)
            return int.from_bytes(raw, "big", signed=True) if len(raw) == 8 else 0

        return self._run(plan())


class _ShardedBase(_SharedBase):
    """A local sketch written as this worker's shard (a field of one Redis hash) after
    every update; reads merge every worker's shard. Each worker writes only its own field,
    so no update is lost; a worker restarted with the same ``worker_id`` resumes its shard."""

    _local: Any

    def __init__(
        self,
        client: Any,
        name: str,
        params: dict[str, Any],
        prefix: str,
        worker_id: str | None,
        ttl: int | None,
    ) -> None:
        super().__init__(client, name, params, prefix, ttl)
        if worker_id is None:
            worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        if not isinstance(worker_id, str) or not worker_id:
            raise ValueError(f"worker_id: expected a non-empty str, got {worker_id!r}")
        self.worker_id = worker_id
        self._start()

    def _setup(self) -> Plan[None]:
        yield from super()._setup()
        previous = yield lambda c: c.hget(self.key, self.worker_id)
        if previous is not None:
            self._local = type(self._local).from_bytes(previous)

    def _flush(self) -> Plan[None]:
        blob = self._local.to_bytes()
        yield lambda c: c.hset(self.key, self.worker_id, blob)

    def flush(self) -> Any:
        """Write this worker's shard."""
        return self._write(self._flush())

    def _shards(self) -> Plan[dict[str, Any]]:
        raw = yield lambda c: c.hgetall(self.key)
        return {
            (k.decode() if isinstance(k, bytes) else k): type(self._local).from_bytes(v)
            for k, v in raw.items()
        }

    def shards(self) -> Any:
        """Every worker's shard, loaded (``ValueError`` if one is corrupt)."""
        return self._run(self._shards())

    def _merged(self) -> Plan[Any]:
        shards = yield from self._shards()
        result = self._local.copy()
        others = [s for k, s in shards.items() if k != self.worker_id]
        if others:
            result.merge(others)
        return result

    def merged(self) -> Any:
        """One local sketch holding every shard (this worker's current state included)."""
        return self._run(self._merged())

    def _read(self, answer: Callable[[Any], _T]) -> Any:
        def plan() -> Plan[_T]:
            return answer((yield from self._merged()))

        return self._run(plan())

    def _update(self, change: Callable[[], _T]) -> Any:
        def plan() -> Plan[_T]:
            result = change()
            yield from self._flush()
            return result

        return self._write(plan())


class SharedTDigest(_ShardedBase):
    """t-digest shared as per-worker shards, merged on read."""

    _family = "t_digest"

    def __init__(
        self,
        client: Any,
        name: str,
        compression: float = 100.0,
        *,
        prefix: str = "anomaly",
        worker_id: str | None = None,
        ttl: int | None = AnomalyRedisTTL.SKETCH,
    ) -> None:
        self._local = TDigest(compression)
        super().__init__(client, name, {"compression": self._local.compression}, prefix, worker_id, ttl)

    def add(self, values: Any, weights: Any = None) -> Any:
        """Add values locally and write this worker's shard."""
        return self._update(lambda: self._local.add(values, weights))

    def quantile(self, q: Any) -> Any:
        return self._read(lambda d: d.quantile(q))

    def cdf(self, x: Any) -> Any:
        return self._read(lambda d: d.cdf(x))

    def trimmed_mean(self, low: float, high: float) -> Any:
        return self._read(lambda d: d.trimmed_mean(low, high))

    def total_weight(self) -> Any:
        """Sum of the weights of every shard."""
        return self._read(lambda d: d.total_weight)


class SharedTopK(_ShardedBase):
    """HeavyKeeper top-k shared as per-worker shards, merged on read (heap counts summed)."""

    _family = "top_k"

    def __init__(
        self,
        client: Any,
        name: str,
        k: int,
        width: int = 8,
        depth: int = 7,
        decay: float = 0.9,
        *,
        seed: int = 0,
        prefix: str = "anomaly",
        worker_id: str | None = None,
        ttl: int | None = AnomalyRedisTTL.SKETCH,
    ) -> None:
        self._local = TopK(k, width, depth, decay, seed=seed)
        params = {"k": k, "width": width, "depth": depth, "decay": decay}
        super().__init__(client, name, params, prefix, worker_id, ttl)

    def incrby(self, items: Items, increments: Any = 1) -> Any:
        """Add locally and write this worker's shard; returns what left this worker's top k."""
        return self._update(lambda: self._local.incrby(items, increments))

    def add(self, items: Items) -> Any:
        return self.incrby(items, 1)

    def list(self, with_count: bool = False) -> Any:
        return self._read(lambda t: t.list(with_count=with_count))

    def query(self, items: Items) -> Any:
        return self._read(lambda t: t.query(items))
