"""Sketches whose state lives in stock Redis 7 (no modules), shared by many processes.

Each sketch lives under ``<prefix>:sketch:<name>`` (its parameters under
``<prefix>:sketch:<name>:meta``), keys built by :class:`AnomalyRedisKeys`; every write
renews both keys' TTL (``ttl``, default :attr:`AnomalyRedisTTL.SKETCH`, 24 h; ``None``
keeps them forever). The C++ core computes where an item goes; Redis
applies the update atomically, so concurrent writers lose nothing.

The classes take a ``redis.Redis`` / ``RedisCluster`` client, or their ``redis.asyncio``
twins: with an asyncio client every method that talks to Redis returns an awaitable
(``await cms.incrby(items)``), exactly as redis-py's own methods do. Each operation is
written once, as steps of Redis operations that :class:`anomaly_detection.redis.driver.Driver`
runs on either kind of client.

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

Modules: ``_base`` (keys, parameters, TTL, the runner; the sharded base), ``counters``
(count-min, HyperLogLog), ``filters`` (Bloom, cuckoo), ``sharded`` (t-digest, top-k); the
Lua scripts are in :mod:`anomaly_detection.redis.sketch_scripts`.
"""

from __future__ import annotations

from anomaly_detection.sketches.shared._base import sketch_key
from anomaly_detection.sketches.shared.counters import SharedCountMinSketch, SharedHyperLogLog
from anomaly_detection.sketches.shared.filters import SharedBloomFilter, SharedCuckooFilter
from anomaly_detection.sketches.shared.sharded import SharedTDigest, SharedTopK

__all__ = [
    "SharedBloomFilter",
    "SharedCountMinSketch",
    "SharedCuckooFilter",
    "SharedHyperLogLog",
    "SharedTDigest",
    "SharedTopK",
    "sketch_key",
]
