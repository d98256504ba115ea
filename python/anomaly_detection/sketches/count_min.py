"""Count-min sketch: frequencies that never undercount."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from anomaly_detection import _core
from anomaly_detection._fork import hold_across_fork
from anomaly_detection.sketches._base import Items, Sketch, check_float, check_int

__all__ = ["CountMinSketch"]

_MAX_COUNTER = 2**32 - 1


class CountMinSketch(Sketch):
    """Count-min sketch with saturating 32-bit counters (RedisBloom ``CMS.*`` semantics).

    Parameters
    ----------
    width : int
        Counters per row; the error is about ``e / width`` times the total count.
    depth : int
        Rows; the error bound fails with probability about ``exp(-depth)``.
    conservative : bool, default False
        Conservative update: raise only the smallest counters of an item. Lower error,
        same guarantees, but a merge of conservative sketches is only an upper bound.
    seed : int, default 0
        Seed of the row hashes; sketches merge only with the same seed.

    Examples
    --------
    >>> cms = CountMinSketch.from_error(epsilon=0.001, delta=0.01)
    >>> int(cms.incrby("GET /api/users", 3))
    3
    >>> cms.query(["GET /api/users", "POST /login"]).tolist()
    [3, 0]
    """

    _native_type = _core.CountMinSketch
    __slots__ = ()

    def __init__(self, width: int, depth: int, *, conservative: bool = False, seed: int = 0) -> None:
        self._native = hold_across_fork(
            _core.CountMinSketch(
                check_int("width", width, 1, 2**28),
                check_int("depth", depth, 1, 64),
                bool(conservative),
                check_int("seed", seed, 0, 2**64 - 1),
            )
        )

    @classmethod
    def from_dims(
        cls, width: int, depth: int, *, conservative: bool = False, seed: int = 0
    ) -> CountMinSketch:
        """A sketch of ``depth`` rows of ``width`` counters."""
        return cls(width, depth, conservative=conservative, seed=seed)

    @classmethod
    def from_error(
        cls, epsilon: float, delta: float, *, conservative: bool = False, seed: int = 0
    ) -> CountMinSketch:
        """A sketch whose estimates exceed the truth by at most ``epsilon * total`` with
        probability ``1 - delta`` (width ``ceil(e / epsilon)``, depth ``ceil(ln(1 / delta))``)."""
        native = _core.CountMinSketch.from_error(
            check_float("epsilon", epsilon, 0.0, 1.0),
            check_float("delta", delta, 0.0, 1.0),
            bool(conservative),
            check_int("seed", seed, 0, 2**64 - 1),
        )
        return cls._wrap(native)

    @property
    def width(self) -> int:
        return self._native.width

    @property
    def depth(self) -> int:
        return self._native.depth

    @property
    def conservative(self) -> bool:
        return self._native.conservative

    @property
    def seed(self) -> int:
        return self._native.seed

    @property
    def total(self) -> int:
        """Sum of every increment."""
        return self._native.total

    def incrby(self, items: Items, increments: int | Sequence[int] | np.ndarray = 1) -> int | np.ndarray:
        """Add ``increments`` (one int for all, or one per item) and return the new estimates.

        All or nothing: if a counter would pass ``2**32 - 1`` an ``OverflowError`` is raised
        and nothing changes. Negative or non-integer increments raise ``ValueError``.
        """
        return self._native.incrby(items, increments)

    def add(self, items: Items) -> int | np.ndarray:
        """Count each item once; return the new estimates."""
        return self._native.incrby(items, 1)

    def query(self, items: Items) -> int | np.ndarray:
        """Estimated counts: never below the true count."""
        return self._native.query(items)

    def positions(self, items: Items) -> np.ndarray:
        """Counter indices (``row * width + column``), shape ``(n, depth)``: what a shared
        sketch increments on the server."""
        return self._native.positions(items)

    def merge(
        self, others: CountMinSketch | Sequence[CountMinSketch], weights: Sequence[int] | None = None
    ) -> None:
        """Add ``sum(weights[i] * others[i])`` to this sketch, saturating at ``2**32 - 1``.

        The others must have the same width, depth and seed (else ``ValueError``).
        """
        natives = self._check_same_type(others)
        if weights is None:
            weights = [1] * len(natives)
        weights = [check_int("weights[]", w, 0, 2**63 - 1) for w in weights]
        if len(weights) != len(natives):
            raise ValueError(f"weights: expected {len(natives)} weights, got {len(weights)}")
        self._native.merge(natives, weights)

    def counters(self) -> np.ndarray:
        """A copy of the counters, shape ``(depth, width)``."""
        return self._native.counters().reshape(self.depth, self.width)

    def load_counters(self, counters: np.ndarray) -> None:
        """Replace every counter (for example with a snapshot of a shared sketch)."""
        arr = np.asarray(counters)
        if arr.dtype.kind not in "iu" or arr.size != self.width * self.depth:
            raise ValueError(
                f"counters: expected {self.width * self.depth} integers, got {arr.dtype} x {arr.size}"
            )
        if arr.size and (arr.min() < 0 or arr.max() > _MAX_COUNTER):
            raise ValueError("counters: expected values in [0, 2**32 - 1]")
        self._native.load_counters(arr.reshape(-1).astype(np.uint32))

    def clear(self) -> None:
        """Reset every counter."""
        self._native.clear()

    def info(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "depth": self.depth,
            "count": self.total,
            "conservative": self.conservative,
            "seed": self.seed,
            "memory_bytes": self._native.memory_bytes,
        }


# CountMinSketch.incrby of one item is a hot path: the method above only calls the native one with the
# same arguments, so CPython calls the native one directly (no Python frame; same docstring).
_core.CountMinSketch._install_fast_method(CountMinSketch, "incrby")
