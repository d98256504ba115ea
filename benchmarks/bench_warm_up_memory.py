"""What review 13's warm-up fixes cost on Redis, side by side with main's behaviour in one run (a redis-server
started for the run on a free 127.0.0.1 port; an ensemble sensor past its warm-up, five-minute points, window 100):

- ``detect``: the facade asks the store's progress for every point (this process's cached state, no I/O) where
  main trusted its memory of learned sensors (emulated: ``_warming_point`` answering False);
- ``stats``: the progress read from Redis (``fresh``: counters and checkpoint) where main answered from this
  process's cached state (emulated: ``progress`` without ``fresh``).

Reports microseconds per call (median of each repeat, range over the repeats) and the ratio fix / main.

    python benchmarks/bench_warm_up_memory.py [--repeats 5] [--calls 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table
from bench_api import start_redis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    from anomaly_detection import Settings, StatisticalAnomalyDetector
    from anomaly_detection.redis.client import redis_client_from_settings

    proc, url = start_redis()
    try:
        settings = Settings(store_backend="redis", redis_url=url, redis_alerts=False)
        client = redis_client_from_settings(settings)
        fix = StatisticalAnomalyDetector(settings, redis_client=client)
        old = StatisticalAnomalyDetector(settings, redis_client=client)
        old._warming_point = lambda name, count: False  # main: the memory trusted at a full window of 100
        values = 20.0 + np.random.default_rng(1).normal(size=400)
        stamps = 1.7e9 + 300.0 * np.arange(400)
        for det, sensor in ((fix, "f"), (old, "o")):
            det.detect_batch(sensor, values, stamps)
        t = [float(stamps[-1])]
        cached_stats = old.store.progress  # main's stats(): this process's cached state

        def stats_main() -> None:
            old.store.summary("o")
            cached_stats("o")

        cases = {
            "detect (fix)": lambda: fix.detect("f", 20.0, timestamp=t[0]),
            "detect (main)": lambda: old.detect("o", 20.0, timestamp=t[0]),
            "stats (fix)": lambda: fix.stats("f"),
            "stats (main: summary + cached progress)": stats_main,
        }
        got: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, fn in cases.items():  # side by side, in turn, each repeat
                samples = []
                for _ in range(args.calls):
                    t[0] += 300.0
                    start = time.perf_counter()
                    fn()
                    samples.append(time.perf_counter() - start)
                got[name].append(1e6 * float(np.median(samples)))
        rows = [[name, f"{min(us):.1f}-{max(us):.1f}"] for name, us in got.items()]
        for what in ("detect", "stats"):
            fix_us, main_us = (
                got[f"{what} (fix)"],
                next(v for k, v in got.items() if k.startswith(f"{what} (main")),
            )
            ratios = [a / b for a, b in zip(fix_us, main_us)]
            rows.append([f"{what}: fix / main", f"{min(ratios):.2f}-{max(ratios):.2f}"])
        print(machine())
        print(table(["path", "us per call (median; range of repeats)"], rows))
        client.close()
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
