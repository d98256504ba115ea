"""Shared counters: a count-min sketch in one string of u32 counters (``BITFIELD``) and
Redis's own HyperLogLog (``PFADD`` / ``PFCOUNT``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from anomaly_detection.redis import sketch_scripts
from anomaly_detection.redis.driver import Script, Steps, command
from anomaly_detection.redis.keys import AnomalyRedisKeys, AnomalyRedisTTL
from anomaly_detection.sketches._base import Items
from anomaly_detection.sketches.count_min import CountMinSketch
from anomaly_detection.sketches.hyperloglog import HyperLogLog, hash_items
from anomaly_detection.sketches.shared._base import (
    CHUNK,
    SharedSketch,
    bitfield,
    check_u32_counters,
    is_scalar,
    one,
)

__all__ = ["SharedCountMinSketch", "SharedHyperLogLog"]


class SharedCountMinSketch(SharedSketch):
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

    def _incrby(self, items: Items, increments: Any) -> Steps[int | np.ndarray]:
        scalar = is_scalar(items)
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
        values = yield from bitfield(self.key, subcommands, head=("OVERFLOW", "SAT"))
        estimates = values[inverse].reshape(n, depth).min(axis=1)
        return int(estimates[0]) if scalar else estimates

    def add(self, items: Items) -> Any:
        """Count each item once."""
        return self.incrby(items, 1)

    def query(self, items: Items) -> Any:
        """Estimated counts, read with ``BITFIELD_RO``."""
        return self._run(self._query(items))

    def _query(self, items: Items) -> Steps[int | np.ndarray]:
        scalar = is_scalar(items)
        positions = np.atleast_2d(self._local.positions(items))
        subcommands = [["GET", "u32", f"#{pos}"] for pos in positions.reshape(-1).tolist()]
        size = self._local.width * self._local.depth
        values = yield from bitfield(self.key, subcommands, read_only=True, u32_counters=size)
        estimates = (
            values.reshape(positions.shape).min(axis=1) if len(values) else np.zeros(0, dtype=np.uint64)
        )
        return int(estimates[0]) if scalar else estimates

    def snapshot(self) -> Any:
        """A local :class:`CountMinSketch` with the current counters (for merging, pickling)."""
        return self._run(self._snapshot())

    def _snapshot(self) -> Steps[CountMinSketch]:
        raw = (yield command("get", self.key)) or b""
        size = self._local.width * self._local.depth
        check_u32_counters(self.key, len(raw), size)
        counters = np.zeros(size, dtype=np.uint32)
        data = np.frombuffer(raw, dtype=">u4")
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


class SharedHyperLogLog(SharedSketch):
    """Redis's own HyperLogLog (``PFADD`` / ``PFCOUNT``, 0.81% standard error), fed with
    each item's 64-bit xxHash64 so every client language and process agrees on items."""

    _family = "hyperloglog"

    def __init__(
        self, client: Any, name: str, *, prefix: str = "anomaly", ttl: int | None = AnomalyRedisTTL.SKETCH
    ) -> None:
        super().__init__(client, name, {}, prefix, ttl)
        self._merge = client.register_script(sketch_scripts.HLL_MERGE)
        self._start()

    def add(self, items: Items) -> Any:
        """Add items; True when the HyperLogLog changed."""
        return self._write(self._add(items))

    def _add(self, items: Items) -> Steps[bool]:
        hashes = np.atleast_1d(hash_items(items)).astype("<u8")
        changed = False
        for start in range(0, len(hashes), CHUNK):
            elements = [h.tobytes() for h in hashes[start : start + CHUNK]]
            changed |= bool((yield command("pfadd", self.key, *elements)))
        return changed

    def count(self) -> Any:
        """Estimated distinct items (``PFCOUNT``)."""
        return self._run(self._count())

    def _count(self) -> Steps[int]:
        return int((yield command("pfcount", self.key)))

    def snapshot(self) -> Any:
        """The shared registers as a local Redis-compatible :class:`HyperLogLog`."""
        return self._run(self._snapshot())

    def _snapshot(self) -> Steps[HyperLogLog]:
        raw = yield command("get", self.key)
        return HyperLogLog.from_redis_bytes(raw) if raw else HyperLogLog(14, redis_compatible=True)

    def merge(self, sketch: HyperLogLog) -> Any:
        """Fold a local Redis-compatible sketch in (``PFMERGE``, atomically, in one script):
        count a large batch locally at native speed, then share it in one call."""
        if not isinstance(sketch, HyperLogLog) or not sketch.redis_compatible:
            raise ValueError("merge: expected a HyperLogLog created with redis_compatible=True")
        scratch = AnomalyRedisKeys(self.prefix).sketch_scratch(self.name)
        op = Script(self._merge, [self.key, scratch], [sketch.to_redis_bytes()])
        return self._write(one(op))
