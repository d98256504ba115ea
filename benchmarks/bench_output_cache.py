"""The output cache of ``detect_batch`` (cpp/bindings/output_cache.cpp), A/B in one process.

``python benchmarks/bench_output_cache.py [--points 4000000] [--repeat 7]``

1. ``bench_detector.py``'s pattern (a detector built per call, the result dropped) with the
   cache ("cache") and with NumPy's allocation for every output array, the cache left as it is
   ("numpy", what ``main`` did before the cache), interleaved with the pandas peer: best CPU
   time of each over ``--repeat`` rounds.
2. A loop that keeps every result (8 batches of a quarter of the points, all kept, so no
   reuse is possible; the cache emptied, untimed, before each): the cache must not be slower.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd
from bench_detector import ours, pandas_ewma, pandas_zscore

from anomaly_detection import StatisticalAnomalyDetector, _core


def best_of(fns: dict, repeat: int, before=None) -> dict[str, float]:
    """Best process CPU time of each function over ``repeat`` interleaved rounds (after one
    warm-up each); ``before`` runs before each, untimed."""
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeat + 1):
        for name, fn in fns.items():
            if before:
                before()
            start = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - start)
    return best


def with_cache(on: bool, fn):
    def run():
        _core._bypass_output_cache(not on)
        try:
            return fn()
        finally:
            _core._bypass_output_cache(False)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=4_000_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    n, w = args.points, args.window
    rng = np.random.default_rng(0)
    x = rng.normal(20.0, 1.0, n)
    x[rng.integers(0, n, n // 1000)] += 8.0
    ts = np.arange(n, dtype=np.float64)
    for method, peer in (("zscore", pandas_zscore), ("ewma", pandas_ewma)):
        fns = {
            "numpy": with_cache(False, lambda method=method: ours(method, x, ts, w)),
            "cache": with_cache(True, lambda method=method: ours(method, x, ts, w)),
            "pandas": lambda peer=peer: peer(pd, x, w),
        }
        rate = {k: n / t / 1e6 for k, t in best_of(fns, args.repeat).items()}
        print(
            f"{method}: NumPy's allocation {rate['numpy']:.1f} M/s ({rate['numpy'] / rate['pandas']:.2f}x), "
            f"cache {rate['cache']:.1f} M/s ({rate['cache'] / rate['pandas']:.2f}x), pandas {rate['pandas']:.1f} M/s",
            flush=True,
        )

    part = n // 4

    def keep_all():
        det = StatisticalAnomalyDetector(detection_method="zscore", window_size=w, min_samples=10)
        kept = [
            det.detect_batch(f"s{i % 2}", x[j : j + part], ts[j : j + part])
            for i in range(2)
            for j in range(0, 4 * part, part)
        ]
        return len(kept)

    fns = {"numpy": with_cache(False, keep_all), "cache": with_cache(True, keep_all)}
    rate = {k: 8 * part / t / 1e6 for k, t in best_of(fns, args.repeat, before=_core.release_memory).items()}
    rate = {k: 8 * part / t / 1e6 for k, t in best_of(fns, args.repeat).items()}
    print(
        f"keep every result (8 x {part:,} points): NumPy's allocation {rate['numpy']:.1f} M/s, "
        f"cache {rate['cache']:.1f} M/s ({rate['cache'] / rate['numpy']:.3f}x)"
    )
    print(f"cache after the run: {_core._output_cache_info()}")


if __name__ == "__main__":
    main()
