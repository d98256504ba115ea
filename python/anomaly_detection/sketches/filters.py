"""Membership filters: scalable Bloom and cuckoo (with deletion)."""

from __future__ import annotations

from typing import Any

import numpy as np

from anomaly_detection import _core
from anomaly_detection._fork import hold_across_fork
from anomaly_detection.sketches._base import Items, Sketch, check_float, check_int

__all__ = ["BloomFilter", "CuckooFilter"]


class _MembershipFilter(Sketch):
    """What Bloom and cuckoo filters answer alike."""

    __slots__ = ()

    def exists(self, items: Items) -> bool | np.ndarray:
        """True where an item may be present, False where it surely is not."""
        return self._native.exists(items)

    def __contains__(self, item: str | bytes | int) -> bool:
        return bool(self._native.exists(item))

    def __len__(self) -> int:
        return self._native.size


class BloomFilter(_MembershipFilter):
    """Scalable Bloom filter (RedisBloom ``BF.RESERVE`` parameters): no false negatives.

    Parameters
    ----------
    capacity : int
        Items the first layer holds at ``error_rate``.
    error_rate : float
        Target false-positive rate at capacity, in (0, 1).
    expansion : int, default 2
        Each new layer holds ``expansion`` times more items than the last (at half its
        error rate, so the compound rate stays below ``2 * error_rate``).
    non_scaling : bool, default False
        Never grow: adding past capacity raises :class:`~anomaly_detection.errors.FilterFullError`.

    Examples
    --------
    >>> bf = BloomFilter(capacity=1000, error_rate=0.01)
    >>> bf.add(["alice", "bob"]).tolist()
    [True, True]
    >>> bf.exists("alice"), bf.exists("carol")
    (True, False)
    """

    _native_type = _core.BloomFilter
    __slots__ = ()

    def __init__(
        self, capacity: int, error_rate: float = 0.01, expansion: int = 2, *, non_scaling: bool = False
    ) -> None:
        self._native = hold_across_fork(
            _core.BloomFilter(
                check_int("capacity", capacity, 1, 2**40),
                check_float("error_rate", error_rate, 0.0, 1.0 - 1e-12),
                check_int("expansion", expansion, 0 if non_scaling else 1, 32768),
                bool(non_scaling),
            )
        )

    @property
    def capacity(self) -> int:
        return self._native.capacity

    @property
    def error_rate(self) -> float:
        return self._native.error_rate

    @property
    def expansion(self) -> int:
        return self._native.expansion

    @property
    def non_scaling(self) -> bool:
        return self._native.non_scaling

    def add(self, items: Items) -> bool | np.ndarray:
        """Add items; True for each that was not (as far as the filter can tell) present.
        A full non-scaling filter raises ``FilterFullError`` (earlier items of the batch stay)."""
        return self._native.add(items)

    def positions(self, items: Items) -> np.ndarray:
        """Bit offsets in the first layer, shape ``(n, hash_count)``: what a shared filter sets."""
        return self._native.positions(items)

    def info(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "error_rate": self.error_rate,
            "expansion": self.expansion,
            "non_scaling": self.non_scaling,
            "items": self._native.size,
            "layers": self._native.layer_count,
            "bits": self._native.bit_count,
            "hashes": self._native.hash_count,
            "memory_bytes": self._native.memory_bytes,
        }


class CuckooFilter(_MembershipFilter):
    """Cuckoo filter with deletion and growth (RedisBloom ``CF.*`` semantics).

    Parameters
    ----------
    capacity : int
        Items the first sub-filter is sized for.
    bucket_size : int, default 2
        Fingerprints per bucket (1..255): larger fills better but errs more.
    max_iterations : int, default 20
        Evictions tried before growing.
    expansion : int, default 1
        A new sub-filter is ``expansion`` times larger than the last; 0 never grows, and
        an item that does not fit raises :class:`~anomaly_detection.errors.FilterFullError`.
    seed : int, default 0
        Seed of the eviction choices (runs repeat).

    Examples
    --------
    >>> cf = CuckooFilter(capacity=1000)
    >>> cf.add("session-1")
    >>> cf.exists("session-1"), cf.delete("session-1"), cf.exists("session-1")
    (True, True, False)
    """

    _native_type = _core.CuckooFilter
    __slots__ = ()

    def __init__(
        self,
        capacity: int,
        bucket_size: int = 2,
        max_iterations: int = 20,
        expansion: int = 1,
        *,
        seed: int = 0,
    ) -> None:
        self._native = hold_across_fork(
            _core.CuckooFilter(
                check_int("capacity", capacity, 2, 2**32),
                check_int("bucket_size", bucket_size, 1, 255),
                check_int("max_iterations", max_iterations, 1, 65535),
                check_int("expansion", expansion, 0, 32768),
                check_int("seed", seed, 0, 2**64 - 1),
            )
        )

    @property
    def capacity(self) -> int:
        return self._native.capacity

    @property
    def bucket_size(self) -> int:
        return self._native.bucket_size

    @property
    def max_iterations(self) -> int:
        return self._native.max_iterations

    @property
    def expansion(self) -> int:
        return self._native.expansion

    def add(self, items: Items) -> None:
        """Add items (a repeated item is stored again). Raises ``FilterFullError`` at the
        first item that cannot fit; that item leaves no trace, earlier ones stay."""
        self._native.add(items)

    def add_nx(self, items: Items) -> bool | np.ndarray:
        """Add the items not present yet; True for each one added."""
        return self._native.add_nx(items)

    def delete(self, items: Items) -> bool | np.ndarray:
        """Remove one copy of each item; True where a copy was found. Deleting an item
        that was never added may remove another item's fingerprint (as in RedisBloom)."""
        return self._native.delete(items)

    def count(self, items: Items) -> int | np.ndarray:
        """Copies of each item (may overcount on fingerprint collisions)."""
        return self._native.count(items)

    def info(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "bucket_size": self.bucket_size,
            "max_iterations": self.max_iterations,
            "expansion": self.expansion,
            "items": self._native.size,
            "deletions": self._native.deletions,
            "filters": self._native.filter_count,
            "buckets": self._native.bucket_count,
            "memory_bytes": self._native.memory_bytes,
        }
