"""Shared membership filters, each in one Redis string changed only by a Lua script
(:mod:`anomaly_detection.redis.sketch_scripts`): a non-scaling Bloom filter and a
non-growing cuckoo filter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from anomaly_detection.errors import FilterFullError
from anomaly_detection.redis import sketch_scripts
from anomaly_detection.redis.driver import Script, Steps
from anomaly_detection.redis.keys import AnomalyRedisTTL
from anomaly_detection.sketches._base import Items
from anomaly_detection.sketches.filters import BloomFilter, CuckooFilter
from anomaly_detection.sketches.shared._base import SharedSketch, is_scalar, script_reply

__all__ = ["SharedBloomFilter", "SharedCuckooFilter"]


class SharedBloomFilter(SharedSketch):
    """Non-scaling Bloom filter in one Redis string of bits, set and read with ``SETBIT`` /
    ``GETBIT`` by a short Lua script: the core computes each item's bit offsets and sends
    them packed (4 bytes each), so a batch of 10,000 items is one atomic call.

    The filter does not grow: past ``capacity`` items the false-positive rate rises above
    ``error_rate``. At most 2**32 bits (a Redis string holds 512 MiB).
    """

    _family = "bloom"
    # Items per script call: bounds how long one call keeps the server busy.
    _ITEMS_PER_CALL = 10_000

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
        self._script = client.register_script(sketch_scripts.BLOOM)
        self._start()

    def add(self, items: Items) -> Any:
        """Set the items' bits; True for each item that had a bit still clear (new)."""
        return self._write(self._call("add", items))

    def exists(self, items: Items) -> Any:
        """True where an item may be present, False where it surely is not."""
        return self._run(self._call("exists", items))

    def _call(self, op: str, items: Items) -> Steps[bool | np.ndarray]:
        scalar = is_scalar(items)
        positions = np.atleast_2d(self._local.positions(items)).astype("<u4")
        k = positions.shape[1]
        most = (self._local.info()["bits"] + 7) // 8
        answers = []
        for start in range(0, len(positions), self._ITEMS_PER_CALL):
            args = [op, k, positions[start : start + self._ITEMS_PER_CALL].tobytes(), most]
            answers.append(bytes((yield from script_reply(Script(self._script, [self.key], args)))))
        flags = np.frombuffer(b"".join(answers), dtype=np.uint8) == ord("1")
        return bool(flags[0]) if scalar else flags


class SharedCuckooFilter(SharedSketch):
    """Non-growing cuckoo filter in one Redis string, changed only by a Lua script, so
    add (with evictions), ``add_nx``, ``delete`` and ``count`` are atomic across processes.

    Layout: an 8-byte item count, then ``buckets * bucket_size`` one-byte fingerprints. The
    core computes each item's fingerprint and buckets; the script walks the evictions
    (a random walk seeded by the item, so runs repeat) and undoes a failed walk, then raises
    ``FilterFullError``.
    """

    _family = "cuckoo"

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
        self._script = client.register_script(sketch_scripts.CUCKOO)
        self._start()

    def _call(self, op: str, items: Items, convert: Callable[[np.ndarray], Any]) -> Steps[Any]:
        scalar = is_scalar(items)
        fps, b1, b2 = self._local._native.slots(items)
        args: list[Any] = [op, self._local.bucket_size, self._buckets, self._local.max_iterations]
        for triple in zip(fps.tolist(), b1.tolist(), b2.tolist(), strict=True):
            args.extend(triple)
        reply = (yield from script_reply(Script(self._script, [self.key], args))) if len(fps) else []
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

        def steps() -> Steps[None]:
            yield from self._call("add", items, lambda out: out)

        return self._write(steps())

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
        return self._run(self._size())

    def _size(self) -> Steps[int]:
        args = ["size", self._local.bucket_size, self._buckets, self._local.max_iterations]
        return int((yield from script_reply(Script(self._script, [self.key], args)))[0])
