"""Top-k heavy hitters (HeavyKeeper)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from anomaly_detection import _core
from anomaly_detection._fork import hold_across_fork
from anomaly_detection.sketches._base import Items, Sketch, check_float, check_int

__all__ = ["TopK"]


class TopK(Sketch):
    """The ``k`` most frequent items with HeavyKeeper (RedisBloom ``TOPK.*`` semantics).

    Parameters
    ----------
    k : int
        Items to keep.
    width, depth : int, default 8 and 7
        Buckets per row and rows of the decaying counter array; widen for long-tailed
        streams (a width of a few times ``k`` works well).
    decay : float, default 0.9
        Probability base with which a colliding count decays.
    seed : int, default 0
        Seed of the decay draws, so runs repeat.

    Examples
    --------
    >>> tk = TopK(k=2, width=50, depth=4)
    >>> _ = tk.incrby(["/home", "/login", "/cart"], [50, 30, 5])
    >>> tk.list()
    ['/home', '/login']
    """

    _native_type = _core.TopK
    __slots__ = ()

    def __init__(self, k: int, width: int = 8, depth: int = 7, decay: float = 0.9, *, seed: int = 0) -> None:
        self._native = hold_across_fork(
            _core.TopK(
                check_int("k", k, 1, 100_000),
                check_int("width", width, 1, 2**26),
                check_int("depth", depth, 1, 64),
                check_float("decay", decay, 0.0, 1.0),
                check_int("seed", seed, 0, 2**64 - 1),
            )
        )

    @property
    def k(self) -> int:
        return self._native.k

    @property
    def width(self) -> int:
        return self._native.width

    @property
    def depth(self) -> int:
        return self._native.depth

    @property
    def decay(self) -> float:
        return self._native.decay

    def add(self, items: Items) -> str | list[str | None] | None:
        """Count each item once; return, per item, the item it pushed out of the top k (or None)."""
        return self._native.incrby(items, 1)

    def incrby(
        self, items: Items, increments: int | Sequence[int] | np.ndarray = 1
    ) -> str | list[str | None] | None:
        """Add increments (1..2**32-1, one for all or one per item); return what each pushed out."""
        return self._native.incrby(items, increments)

    def query(self, items: Items) -> bool | np.ndarray:
        """True where the item is in the top k."""
        return self._native.query(items)

    def count(self, items: Items) -> int | np.ndarray:
        """Estimated counts from the counter array."""
        return self._native.count(items)

    def list(self, with_count: bool = False) -> list[str] | list[tuple[str, int]]:
        """The top k, heaviest first; with ``with_count`` as ``(item, count)`` pairs."""
        return self._native.list(bool(with_count))

    def merge(self, others: TopK | Sequence[TopK]) -> None:
        """Fold in sketches with the same ``k``, width, depth and decay."""
        self._native.merge(self._check_same_type(others))

    def info(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "width": self.width,
            "depth": self.depth,
            "decay": self.decay,
            "memory_bytes": self._native.memory_bytes,
        }


# TopK.add and TopK.incrby of one item are hot paths: the methods above only call the native
# incrby (add with increment 1), so CPython calls the native one directly (no Python frame; same
# docstrings); anything but one item goes to the native general path (_add, _incrby).
_core.TopK._install_fast_method(TopK, "incrby")
_core.TopK._install_fast_method(TopK, "add")
