"""Probabilistic sketches on the C++ core, and variants shared through stock Redis.

Items are ``str``, ``bytes``, ``int`` or NumPy arrays of ints or strings, hashed with
xxHash64 so every process and platform agrees: text as its UTF-8 bytes, an int as its
8-byte little-endian value (see :func:`hash_items`). The ``Shared*`` classes keep their
state in stock Redis 7 under ``<prefix>:sketch:<name>`` (see ``shared``).
"""

from __future__ import annotations

from anomaly_detection.errors import FilterFullError
from anomaly_detection.sketches.count_min import CountMinSketch
from anomaly_detection.sketches.filters import BloomFilter, CuckooFilter
from anomaly_detection.sketches.hyperloglog import HyperLogLog, hash_items
from anomaly_detection.sketches.shared import (
    SharedBloomFilter,
    SharedCountMinSketch,
    SharedCuckooFilter,
    SharedHyperLogLog,
    SharedTDigest,
    SharedTopK,
    sketch_key,
)
from anomaly_detection.sketches.t_digest import TDigest
from anomaly_detection.sketches.top_k import TopK

__all__ = [
    "BloomFilter",
    "CountMinSketch",
    "CuckooFilter",
    "FilterFullError",
    "HyperLogLog",
    "SharedBloomFilter",
    "SharedCountMinSketch",
    "SharedCuckooFilter",
    "SharedHyperLogLog",
    "SharedTDigest",
    "SharedTopK",
    "TDigest",
    "TopK",
    "hash_items",
    "sketch_key",
]
