"""What the facade's ``warming_up`` costs on the Redis store, per call, while a sensor warms up: the
earlier path (``RedisStore.summary``: the whole window read with ``LRANGE`` and its JSON decoded, the
counters read, the window's moments computed, to use one counter) against ``RedisStore.progress``
(the ensemble: this process's cached state, no I/O; another process's read: the counters' and the
checkpoint's fields; the other methods: ``HGET seen``), side by side in one run on a redis-server
started for the run on a free 127.0.0.1 port: a one-minute sensor 600 points in (warming up), its
checkpoint 10 points behind. Also one ensemble ``detect`` with its ``warming_up``, for scale. Reports microseconds per call (median of each repeat, range over the repeats).

    python benchmarks/bench_warm_up.py [--repeats 5] [--calls 300]
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


def _per_call_us(fn, calls: int) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return 1e6 * float(np.median(samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    proc, url = start_redis()
    try:
        rows = []
        for window in (100, 1000):
            rows += _one_window(url, window, args.repeats, args.calls)
        print(machine())
        print(table(["window", "path", "us per call (median; range of repeats)"], rows))
    finally:
        proc.terminate()
        proc.wait()


def _one_window(url: str, window: int, repeats: int, calls: int) -> list[list[object]]:
    from anomaly_detection import Settings, StatisticalAnomalyDetector
    from anomaly_detection.redis.client import redis_client_from_settings

    settings = Settings(store_backend="redis", redis_url=url, window_size=window, redis_alerts=False)
    client = redis_client_from_settings(settings)
    client.flushall()
    det = StatisticalAnomalyDetector(settings, redis_client=client)
    other = StatisticalAnomalyDetector(settings, redis_client=client)  # never scored the sensor
    zdet = StatisticalAnomalyDetector(settings, redis_client=client, detection_method="zscore")
    n = 600  # one minute apart: warming up until 750; a checkpoint 10 points behind
    values = 20.0 + np.random.default_rng(1).normal(size=n)
    stamps = 1.7e9 + 60.0 * np.arange(n)
    for sensor in ("s", "d"):
        det.detect_batch(sensor, values[:-10], stamps[:-10])
        for v, t in zip(values[-10:], stamps[-10:]):
            det.detect(sensor, float(v), timestamp=float(t))
    zdet.detect_batch("z", values, stamps)
    assert det.store.progress("s")[1] is None
    assert other.store.progress("s")[1] is None
    cases = {
        "ensemble: summary (before)": lambda: det.store.summary("s"),
        "ensemble: progress, own state (after)": lambda: det.store.progress("s"),
        "ensemble: progress, another process (after)": lambda: other.store.progress("s"),
        "z-score: summary (before)": lambda: zdet.store.summary("z"),
        "z-score: progress (after)": lambda: zdet.store.progress("z"),
    }
    got: dict[str, list[float]] = {name: [] for name in cases}
    detect_us = []
    t = [float(stamps[-1])]

    def one_detect() -> None:
        t[0] += 60.0
        det.detect("d", 20.0, timestamp=t[0])  # 50 points a repeat: still warming up

    for _ in range(repeats):
        for name, fn in cases.items():  # side by side, in turn, each repeat
            got[name].append(_per_call_us(fn, calls))
        detect_us.append(_per_call_us(one_detect, 25))
    rows: list[list[object]] = [[window, name, f"{min(us):.1f}-{max(us):.1f}"] for name, us in got.items()]
    detect = f"{min(detect_us):.1f}-{max(detect_us):.1f}"
    rows.append([window, "ensemble: one detect with warming_up (after)", detect])
    client.close()
    return rows


if __name__ == "__main__":
    main()
