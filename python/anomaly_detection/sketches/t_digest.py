"""t-digest: quantiles of a stream, most accurate in the tails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from anomaly_detection import _core
from anomaly_detection._fork import hold_across_fork
from anomaly_detection.sketches._base import Sketch, check_float

__all__ = ["TDigest"]

ArrayLike = float | Sequence[float] | np.ndarray


class TDigest(Sketch):
    """Merging t-digest (Dunning & Ertl) with the arcsine scale function.

    Parameters
    ----------
    compression : float, default 100
        10..10000; about ``compression`` centroids are kept. At 100, rank errors stay well
        below 1% at the median and far smaller in the tails.

    Examples
    --------
    >>> td = TDigest()
    >>> td.add(np.arange(1, 1001, dtype=float))
    >>> round(float(td.quantile(0.5)))
    500
    >>> td.min(), td.max()
    (1.0, 1000.0)
    """

    _native_type = _core.TDigest
    __slots__ = ()

    def __init__(self, compression: float = 100.0) -> None:
        self._native = hold_across_fork(
            _core.TDigest(check_float("compression", compression, 10.0, 10000.0, open_low=False))
        )

    @property
    def compression(self) -> float:
        return self._native.compression

    @property
    def total_weight(self) -> float:
        """Sum of the weights added."""
        return self._native.total_weight

    def add(self, values: ArrayLike, weights: ArrayLike | None = None) -> None:
        """Add values (finite) with weights (finite, at least 2.2e-308; default 1). A bad entry,
        or weights whose total would exceed the largest double, raises ``ValueError`` and adds nothing."""
        self._native.add(values, weights)

    def quantile(self, q: ArrayLike) -> float | np.ndarray:
        """Value at quantile(s) ``q`` in [0, 1]; NaN when empty."""
        return self._native.quantile(q)

    def cdf(self, x: ArrayLike) -> float | np.ndarray:
        """Fraction of the weight below ``x``; NaN when empty."""
        return self._native.cdf(x)

    def trimmed_mean(self, low: float, high: float) -> float:
        """Mean of the values between quantiles ``low`` and ``high``."""
        return self._native.trimmed_mean(float(low), float(high))

    def min(self) -> float:
        """Smallest value added (NaN when empty)."""
        return self._native.min()

    def max(self) -> float:
        """Largest value added (NaN when empty)."""
        return self._native.max()

    def centroids(self) -> tuple[np.ndarray, np.ndarray]:
        """``(means, weights)`` of the centroids."""
        return self._native.centroids()

    def merge(self, others: TDigest | Sequence[TDigest], *, scale_to_fit: bool = False) -> None:
        """Fold in digests of the same compression (``ValueError`` otherwise).

        When the total weight would exceed the largest double (1.8e308), ``ValueError`` and
        nothing changes; with ``scale_to_fit``, every weight is first halved as often as needed
        (none below 2.2e-308): quantiles, ``cdf`` and trimmed means are those of the true weights,
        ``total_weight`` is the true total halved as often."""
        self._native.merge(self._check_same_type(others), scale_to_fit)

    def clear(self) -> None:
        """Forget every value."""
        self._native.clear()

    def info(self) -> dict[str, Any]:
        return {
            "compression": self.compression,
            "total_weight": self.total_weight,
            "centroids": len(self.centroids()[0]),
            "min": self.min(),
            "max": self.max(),
            "memory_bytes": self._native.memory_bytes,
        }


# TDigest.add of one item is a hot path: the method above only calls the native one with the
# same arguments, so CPython calls the native one directly (no Python frame; same docstring).
_core.TDigest._install_fast_method(TDigest, "add")
