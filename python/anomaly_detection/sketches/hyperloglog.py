"""HyperLogLog: distinct counts in a few kilobytes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from anomaly_detection import _core
from anomaly_detection._fork import hold_across_fork
from anomaly_detection.sketches._base import Items, Sketch, check_int

__all__ = ["HyperLogLog", "hash_items"]


def hash_items(items: Items) -> np.ndarray:
    """The 64-bit hashes every sketch uses: xxHash64 (seed 0) of the item's bytes, where
    a ``str`` is its UTF-8 (so ``"a"`` and ``b"a"`` are one item) and an ``int`` its 8-byte
    little-endian two's-complement value (``[-2**63, 2**64)``; ``42`` and ``"42"`` are two
    items). Stable across processes and platforms (never Python's ``hash()``).

    >>> int(hash_items(["a"])[0]) == 0xD24EC4F1A98C6E5B
    True
    """
    return _core.HyperLogLog.hash_items(items)


class HyperLogLog(Sketch):
    """HyperLogLog with ``2**precision`` registers.

    While a sketch is only added to, :meth:`count` is the HIP estimate (historic inverse
    probability: each register change adds the inverse of the chance that an item changes
    a register), relative standard error ``0.83 / sqrt(2**precision)``, as DataSketches does
    for unmerged sketches. After :meth:`merge`, or when read from Redis's bytes, the history
    is unknown and :meth:`count` is Ertl's improved estimator over the registers,
    ``1.04 / sqrt(2**precision)``. :attr:`estimator` says which.

    Parameters
    ----------
    precision : int, default 14
        4..18: ``2**precision`` one-byte registers (16 KiB at 14; error 0.65% with HIP,
        0.81% without).
    redis_compatible : bool, default False
        Fill the registers exactly as Redis's ``PFADD`` does for the element "8-byte
        little-endian item hash" (what :class:`SharedHyperLogLog` adds). Needs precision 14;
        enables :meth:`to_redis_bytes` / :meth:`from_redis_bytes`, so a sketch built locally
        at batch speed can be ``SET`` into Redis and read by ``PFCOUNT`` / ``PFMERGE``.

    Examples
    --------
    >>> hll = HyperLogLog(precision=12)
    >>> hll.add(np.arange(10_000))
    True
    >>> abs(hll.count() - 10_000) < 3 * hll.standard_error * 10_000
    True
    """

    _native_type = _core.HyperLogLog
    __slots__ = ()

    def __init__(self, precision: int = 14, *, redis_compatible: bool = False) -> None:
        precision = check_int("precision", precision, 4, 18)
        if redis_compatible and precision != 14:
            raise ValueError(f"precision: a Redis-compatible HyperLogLog has precision 14, got {precision}")
        self._native = hold_across_fork(_core.HyperLogLog(precision, bool(redis_compatible)))

    @property
    def precision(self) -> int:
        return self._native.precision

    @property
    def redis_compatible(self) -> bool:
        return self._native.redis_compatible

    def to_redis_bytes(self) -> bytes:
        """The dense Redis HLL string of a Redis-compatible sketch (``RuntimeError`` otherwise)."""
        return self._native.to_redis()

    @classmethod
    def from_redis_bytes(cls, data: bytes) -> HyperLogLog:
        """A Redis-compatible sketch from a Redis HLL string (``GET`` of a ``PFADD`` key,
        dense or sparse); ``ValueError`` when the bytes are not one."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"data: expected bytes, got {type(data).__name__}")  # noqa: TRY004
        return cls._wrap(_core.HyperLogLog.from_redis(bytes(data)))

    @property
    def standard_error(self) -> float:
        """Relative standard error of :meth:`count` (depends on :attr:`estimator`)."""
        return self._native.standard_error

    @property
    def estimator(self) -> str:
        """``"hip"`` while the sketch was only added to, ``"registers"`` (Ertl) after a merge
        or when read from Redis's bytes."""
        return "hip" if self._native.hip_valid else "registers"

    def add(self, items: Items) -> bool:
        """Add items; True when the sketch changed (like ``PFADD``)."""
        return self._native.add(items)

    def count(self) -> int:
        """Estimated number of distinct items added."""
        return round(self._native.count())

    def merge(self, others: HyperLogLog | Sequence[HyperLogLog]) -> None:
        """Fold in sketches of the same precision (``ValueError`` otherwise)."""
        self._native.merge(self._check_same_type(others))

    def clear(self) -> None:
        """Forget every item."""
        self._native.clear()

    def __len__(self) -> int:
        return self.count()

    def info(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "redis_compatible": self.redis_compatible,
            "registers": 2**self.precision,
            "estimator": self.estimator,
            "standard_error": self.standard_error,
            "memory_bytes": self._native.memory_bytes,
        }


# HyperLogLog.add of one item is a hot path: the method above only calls the native one with the
# same arguments, so CPython calls the native one directly (no Python frame; same docstring).
_core.HyperLogLog._install_fast_method(HyperLogLog, "add")
