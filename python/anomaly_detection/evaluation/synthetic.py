"""Labelled synthetic series with the anomaly kinds of the literature.

A check on data no design choice was made on: each series is a daily cycle with
noise (optionally a weekly component and a slow trend), sampled every five
minutes, with one kind of anomaly injected a few times after a clean start::

    from anomaly_detection.evaluation.synthetic import KINDS, make_series
    s = make_series("level_shift", seed=0)
    s.values, s.timestamps, s.labels      # float64, epoch seconds, 0/1 per point

The kinds (after the taxonomy of Lai et al., "Revisiting time series outlier
detection", NeurIPS 2021, and GutenTAG's anomaly kinds):

========================  ============================================================
``point``                 a single value far outside the range (a global outlier)
``contextual``            a single value inside the range but wrong for its time of day
``seasonal``              an hour where the cycle is replaced by its mean (a shape anomaly)
``trend``                 a slope that builds up over a few hours, then snaps back
``level_shift``           the level steps up (or down) for half a day
``variance``              the noise grows five-fold for a few hours
``pattern``               the cycle runs at double speed for a few hours (a new pattern)
``weekly``                a weekday/weekend series (the weekend quiet: a fifth of the
                          weekday's cycle); half a weekend day runs as a weekday (each
                          value normal for a weekday at that hour, wrong on a weekend)
========================  ============================================================

Only the injected points are labelled (a level shift or a variance burst: every
point it covers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KINDS", "SyntheticSeries", "make_series", "make_suite"]

KINDS = ("point", "contextual", "seasonal", "trend", "level_shift", "variance", "pattern", "weekly")

_STEP = 300.0  # seconds between points
_DAY = int(86_400 / _STEP)  # 288 points


@dataclass(frozen=True)
class SyntheticSeries:
    kind: str
    seed: int
    values: np.ndarray
    timestamps: np.ndarray
    labels: np.ndarray

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.seed}"


def _base(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    t = np.arange(n)
    amplitude = rng.uniform(5, 20)
    noise = amplitude * rng.uniform(0.03, 0.1)
    weekly = amplitude * rng.uniform(0, 0.3) * np.sin(2 * np.pi * t / (7 * _DAY))
    trend = rng.uniform(-1, 1) * amplitude * t / n * 0.5
    phase = rng.uniform(0, 2 * np.pi)
    clean = 100 + amplitude * np.sin(2 * np.pi * t / _DAY + phase) + weekly + trend
    return clean, t, amplitude, noise, phase


def _weekly(rng: np.random.Generator, n: int, days: int, anomalies: int) -> tuple[np.ndarray, np.ndarray]:
    """A weekday/weekend series (days 5 and 6 of each week are the weekend: the cycle at a
    fifth of its weekday amplitude) with ``anomalies`` half-days of the weekend, from the
    third week on, that follow the weekday cycle (a lobe of the cycle: 12 hours between two
    points where the weekday and weekend curves meet)."""
    t = np.arange(n)
    amplitude = rng.uniform(5, 20)
    noise = amplitude * rng.uniform(0.03, 0.1)
    cycle = np.sin(2 * np.pi * t / _DAY)
    weekend = (t // _DAY) % 7 >= 5
    weekday = 100 + amplitude * cycle
    clean = np.where(weekend, 100 + 0.2 * amplitude * cycle, weekday)
    values = clean + rng.normal(0, noise, n)
    labels = np.zeros(n, dtype=np.int8)
    # (day, half) slots on weekend days from the third week on: distinct days, never touching,
    # never the same half a week apart (the later one's weekly reference would be the anomaly)
    slots = [(d, h) for d in range(14, days) if d % 7 >= 5 for h in (0, 1)]
    for _ in range(1000):
        picked = [slots[i] for i in rng.choice(len(slots), anomalies, replace=False)]
        days_used = {d for d, _ in picked}
        apart = not any((d + 7, h) in picked or (h == 1 and (d + 1, 0) in picked) for d, h in picked)
        if len(days_used) == anomalies and apart:
            break
    else:
        raise ValueError(f"days: {days} days hold too few weekend days from the third week on")
    half = _DAY // 2
    for day, h in picked:
        span = slice(day * _DAY + h * half, day * _DAY + (h + 1) * half)
        values[span] = weekday[span] + rng.normal(0, noise, half)
        labels[span] = 1
    return values, labels


def make_series(kind: str, seed: int = 0, days: int = 28, anomalies: int = 3) -> SyntheticSeries:
    """One series of ``days`` days with ``anomalies`` injected anomalies of ``kind``,
    none in the first week (the detector's history; for ``weekly``, the first two)."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if days < 10 or anomalies < 1:
        raise ValueError("days: expected >= 10 and anomalies >= 1")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    n = days * _DAY
    if kind == "weekly":
        values, labels = _weekly(rng, n, days, anomalies)
        return SyntheticSeries(kind, seed, values, 1.7e9 + _STEP * np.arange(n), labels)
    clean, t, amplitude, noise, phase = _base(rng, n)
    values = clean + rng.normal(0, noise, n)
    labels = np.zeros(n, dtype=np.int8)
    # anomaly starts: spread over the last three weeks, at least a day apart
    slots = np.linspace(7 * _DAY, n - _DAY, anomalies + 1)[:-1].astype(int)
    for start in slots + rng.integers(0, _DAY // 2, anomalies):
        if kind == "point":
            span = slice(start, start + 1)
            values[span] += rng.choice([-1, 1]) * amplitude * rng.uniform(2.5, 4)
        elif kind == "contextual":
            # at the cycle's peak or trough, the value of the opposite phase (inside the range)
            day0 = start - start % _DAY
            peak = day0 + int(np.argmax(clean[day0 : day0 + _DAY] - clean[day0 : day0 + _DAY].mean()))
            span = slice(peak, peak + 1)
            values[span] = 2 * clean[day0 : day0 + _DAY].mean() - clean[peak] + rng.normal(0, noise)
        elif kind == "seasonal":
            span = slice(start, start + 12)
            values[span] = clean[start - _DAY : start].mean() + rng.normal(0, noise, 12)
        elif kind == "trend":
            length = 36
            span = slice(start, start + length)
            values[span] += np.linspace(0, 1.5 * amplitude, length) * rng.choice([-1, 1])
        elif kind == "level_shift":
            span = slice(start, start + _DAY // 2)
            values[span] += rng.choice([-1, 1]) * amplitude * rng.uniform(0.6, 1.0)
        elif kind == "variance":
            span = slice(start, start + 36)
            values[span] += rng.normal(0, 4 * noise, 36)
        else:  # pattern: the daily cycle runs at double speed (its phase races ahead)
            span = slice(start, start + 48)
            ahead = t[span] - start
            cycle = amplitude * np.sin(2 * np.pi * t[span] / _DAY + phase)
            faster = amplitude * np.sin(2 * np.pi * (t[span] + ahead) / _DAY + phase)
            values[span] += faster - cycle
        labels[span] = 1
    return SyntheticSeries(kind, seed, values, 1.7e9 + _STEP * t, labels)


def make_suite(seeds: int = 3, **kwargs) -> list[SyntheticSeries]:
    """Every kind, ``seeds`` series each."""
    return [make_series(kind, seed, **kwargs) for kind in KINDS for seed in range(seeds)]
