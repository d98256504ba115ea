"""StatisticalAnomalyDetector against the peers a user would otherwise use.

    python benchmarks/bench_detector.py [--points N] [--window W] [--quick] [--json]

1. ``detect_batch`` (embedded store, z-score) against a pure-Python per-point
   detector written as a FastAPI app would (a deque per sensor, mean and stdev
   over the window with the statistics module);
2. ``detect`` one point at a time against River's rolling statistics
   (``utils.Rolling(stats.Mean())`` and ``utils.Rolling(stats.Var())``) per point.
All in one run, on one synthetic stream; figures are medians of repeats.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict, deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, median_seconds, table

from anomaly_detection import StatisticalAnomalyDetector


class PurePythonDetector:
    """What a FastAPI app writes without this package."""

    def __init__(self, window_size: int, threshold: float = 3.0, min_samples: int = 10) -> None:
        self.windows: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window_size))
        self.threshold = threshold
        self.min_samples = min_samples

    def detect(self, sensor: str, value: float) -> tuple[bool, float]:
        window = self.windows[sensor]
        z = 0.0
        if len(window) >= 2:
            mean = statistics.fmean(window)
            std = statistics.stdev(window) or 1e-12
            z = (value - mean) / std
        window.append(value)
        return len(window) > self.min_samples and abs(z) > self.threshold, z


def river_detector(window_size: int):
    from river import stats, utils

    mean = utils.Rolling(stats.Mean, window_size=window_size)
    var = utils.Rolling(stats.Var, window_size=window_size)

    def detect(value: float) -> tuple[bool, float]:
        m, v = mean.get(), var.get()
        z = (value - m) / math.sqrt(v) if v > 0 else 0.0
        mean.update(value)
        var.update(value)
        return abs(z) > 3.0, z

    return detect


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=2_000_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="200,000 points, 10,000 for the per-point loops")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    if args.quick:
        args.points = min(args.points, 200_000)
    figures = []
    rng = np.random.default_rng(0)
    stream = rng.normal(20.0, 1.0, args.points)
    stream[rng.integers(0, args.points, args.points // 1000)] += 8.0
    ts = np.arange(args.points, dtype=np.float64)
    small = stream[: 10_000 if args.quick else 50_000].tolist()

    def batch():
        StatisticalAnomalyDetector(detection_method="zscore", window_size=args.window).detect_batch(
            "s", stream, ts
        )

    def pure_python():
        det = PurePythonDetector(args.window)
        for v in small:
            det.detect("s", v)

    def single():
        det = StatisticalAnomalyDetector(detection_method="zscore", window_size=args.window)
        for i, v in enumerate(small):
            det.detect("s", v, float(i))

    rows = []
    t_batch = median_seconds(batch, 5)
    t_pure = median_seconds(pure_python, 3)
    batch_rate, pure_rate = args.points / t_batch, len(small) / t_pure
    rows.append(["detect_batch (z-score, embedded)", f"{batch_rate / 1e6:.2f} M", "pure Python deque detector",
                 f"{pure_rate / 1e3:.1f} k", f"{batch_rate / pure_rate:.0f}x", ">= 200x"])  # fmt: skip
    figures.append(
        {
            "metric": "detect_batch (z-score) vs pure-Python deque detector",
            "unit": "points/s",
            "ours": batch_rate,
            "peer": pure_rate,
            "peer_name": "pure Python",
            "target": ">= 200x",
        }
    )
    t_single = median_seconds(single, 3)
    single_rate = len(small) / t_single
    try:
        river = river_detector(args.window)
        t_river = median_seconds(lambda: [river(v) for v in small], 3)
        river_rate = len(small) / t_river
        rows.append(["detect, one point", f"{single_rate / 1e3:.0f} k", "River rolling Mean+Var",
                     f"{river_rate / 1e3:.0f} k", f"{single_rate / river_rate:.1f}x", ">= 5x"])  # fmt: skip
        figures.append(
            {
                "metric": "detect one point vs River rolling Mean+Var",
                "unit": "points/s",
                "ours": single_rate,
                "peer": river_rate,
                "peer_name": "river",
                "target": ">= 5x",
            }
        )
    except ImportError:
        figures.append(
            {
                "metric": "detect one point vs River rolling Mean+Var",
                "unit": "points/s",
                "ours": single_rate,
                "peer": None,
                "peer_name": "river",
                "missing": "river",
                "target": ">= 5x",
            }
        )
        rows.append(
            ["detect, one point", f"{single_rate / 1e3:.0f} k", "River (not installed)", "-", "-", ">= 5x"]
        )

    print(f"machine: {machine()}; window {args.window}; batch of {args.points:,} points; medians")
    print(table(["ours", "points/s", "peer", "points/s", "ratio", "target"], rows))
    print(f"\ndetect_batch absolute: {batch_rate / 1e6:.1f} M points/s on one core (target >= 20 M)")
    for method in ("mad", "iqr", "ewma", "cusum"):

        def run(method=method):
            StatisticalAnomalyDetector(detection_method=method, window_size=args.window).detect_batch(
                "s", stream[:500_000], ts[:500_000]
            )

        rate = min(500_000, args.points) / median_seconds(run, 3)
        print(f"  {method:<6} {rate / 1e6:6.2f} M points/s")
        figures.append({"metric": f"detect_batch {method} (no peer)", "unit": "points/s", "ours": rate})
    if args.json:
        print(json.dumps({"bench": "detector", "points": args.points, "figures": figures}))


if __name__ == "__main__":
    main()
