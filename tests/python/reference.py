"""Plain NumPy reference implementations of the streaming methods, written from
their definitions (no incremental tricks), to check the C++ core against."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

THRESHOLDS = {"zscore": 3.0, "mad": 3.5, "iqr": 1.5, "ewma": 3.0, "cusum": 5.0}


def _floor(scale: float, centre: float) -> float:
    floor = 1e-12 * max(1.0, abs(centre))
    return max(floor, scale)


def _score(z: float) -> float:
    return math.erf(abs(z) / math.sqrt(2))


@dataclass
class ReferenceDetector:
    method: str
    window_size: int
    min_samples: int
    threshold: float
    include_anomalies: bool = True
    alpha: float = 0.3
    k: float = 0.5
    window: list[float] = field(default_factory=list)
    ewma: float | None = None
    pos: float = 0.0
    neg: float = 0.0
    seen: int = 0

    def step(self, x: float) -> tuple[bool, float, float, float, int]:
        """(is_anomaly, score, deviation, expected, window_count) for one point."""
        w = np.array(self.window)
        n = len(w)
        dev, score, expected = 0.0, 0.0, x
        next_ewma = x if self.ewma is None else self.alpha * x + (1 - self.alpha) * self.ewma
        pos, neg = self.pos, self.neg
        if n >= 2:
            # Shifted by the first value, as the core's sums are: a flat window's mean is then
            # exactly its value (w.mean() of equal values can be off by an ulp, which the
            # scale floor of a flat window blows up into a visible score).
            shifted = w - w[0]
            mean, std = float(w[0] + shifted.mean()), float(shifted.std(ddof=1))
            if self.method == "zscore":
                expected = mean
                dev = (x - mean) / _floor(std, mean)
                score = _score(dev)
            elif self.method == "mad":
                med = float(np.median(w))
                mad = float(np.median(np.abs(w - med)))
                expected = med
                dev = 0.6745 * (x - med) / _floor(mad, med)
                score = _score(dev)
            elif self.method == "iqr":
                q1, med, q3 = (float(q) for q in np.quantile(w, [0.25, 0.5, 0.75]))
                iqr = _floor(q3 - q1, med)
                expected = med
                dev = (x - q3) / iqr if x > q3 else (x - q1) / iqr if x < q1 else 0.0
                score = _score((x - med) / (iqr / 1.349))
            elif self.method == "ewma":
                expected = mean
                sigma = _floor(std, mean) * math.sqrt(self.alpha / (2 - self.alpha))
                dev = (next_ewma - mean) / sigma
                score = _score(dev)
            elif self.method == "cusum":
                expected = mean
                z = (x - mean) / _floor(std, mean)
                pos = max(0.0, pos + z - self.k)
                neg = max(0.0, neg - z - self.k)
                dev = pos if pos >= neg else -neg
                score = _score(3 * dev / self.threshold)
        flagged = self.seen >= self.min_samples and abs(dev) > self.threshold
        self.seen += 1
        if not flagged or self.include_anomalies:
            self.ewma = next_ewma
            self.pos, self.neg = (0.0, 0.0) if flagged and self.method == "cusum" else (pos, neg)
            before = self.window
            self.window = [*self.window, x][-self.window_size :]
            if len(before) == self.window_size and _collapsed(before, self.window):
                # A value that held nearly all of the window's spread left it: the EWMA
                # chart is replayed over the window and the CUSUM sums restart (so that a
                # glitch changes nothing beyond the window that held it).
                self.ewma = self.window[0]
                for v in self.window[1:]:
                    self.ewma = self.alpha * v + (1 - self.alpha) * self.ewma
                self.pos = self.neg = 0.0
        return flagged, score, dev, expected, n


def _spread(values: list[float]) -> float:
    w = np.array(values)
    return float(((w - w.mean()) ** 2).sum())


def _collapsed(before: list[float], after: list[float]) -> bool:
    """Whether one eviction left less than 2^-20 of the window's spread."""
    return _spread(after) < 2.0**-20 * _spread(before)
