"""Shared sketches that are not bit-addressable but merge: each worker keeps a local
t-digest or top-k and writes it as its shard; readers merge every shard."""

from __future__ import annotations

from typing import Any

from anomaly_detection.redis.driver import Steps
from anomaly_detection.redis.keys import AnomalyRedisTTL
from anomaly_detection.sketches._base import Items
from anomaly_detection.sketches.shared._base import ShardedSketch
from anomaly_detection.sketches.t_digest import TDigest
from anomaly_detection.sketches.top_k import TopK

__all__ = ["SharedTDigest", "SharedTopK"]


class SharedTDigest(ShardedSketch):
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

    # The reads merge with scale_to_fit: shards whose weights sum beyond the largest double
    # (each one's total is at most that) give the quantiles of the true weights, where the
    # merge raised on every read until the shards were dropped. ``merged()`` still refuses
    # them (ValueError): one digest of those weights cannot exist.

    def quantile(self, q: Any) -> Any:
        return self._read(lambda d: d.quantile(q), scale_to_fit=True)

    def cdf(self, x: Any) -> Any:
        return self._read(lambda d: d.cdf(x), scale_to_fit=True)

    def trimmed_mean(self, low: float, high: float) -> Any:
        return self._read(lambda d: d.trimmed_mean(low, high), scale_to_fit=True)

    def total_weight(self) -> Any:
        """Sum of the weights of every shard (``inf`` beyond the largest double)."""

        def steps() -> Steps[float]:
            shards = yield from self._shards()
            others = [s.total_weight for k, s in shards.items() if k != self.worker_id]
            return sum(others, self._local.total_weight)

        return self._run(steps())


class SharedTopK(ShardedSketch):
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
