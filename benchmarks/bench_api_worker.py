"""The worker thread's part of ``POST /api/batch`` on the Redis store, in process.

Calls ``AnomalyService._score_here`` (what the service runs on its worker thread for a batch of plain
points: the detector's ``detect_many``, the Redis store's pipelines, the alerts' delivery) on
``--requests`` batches of ``--sensors`` x ``--points`` points (bench_api's body, already grouped) against a
redis-server of its own on a free port, and reports the CPU of this thread a request
(``time.thread_time``; redis-server and waiting are not counted). ``--parts`` adds the time of the main
calls inside (timers around them, ~0.03 ms a request of their own). To compare two trees side by side,
alternate runs with ``PYTHONPATH=TREE`` (a directory holding ``anomaly_detection/`` with a ``_core``).

    python benchmarks/bench_api_worker.py [--requests 800] [--rounds 3] [--parts]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from _common import machine
from bench_api import start_redis

_PARTS = [
    ("anomaly_detection.api.service", "AnomalyService", "_score_here", "worker thread (_score_here)"),
    (
        "anomaly_detection.core.detector",
        "StatisticalAnomalyDetector",
        "detect_many",
        "- detector.detect_many",
    ),
    ("anomaly_detection.stores.redis", "RedisStore", "detect_many", "-- RedisStore.detect_many"),
    ("redis.client", "Pipeline", "execute", "--- redis-py Pipeline.execute"),
    ("anomaly_detection.stores.redis", "RedisStore", "_score", "--- scoring the windows (_score)"),
    ("anomaly_detection.api.service", "AnomalyService", "_publish_many", "- alert delivery (_publish_many)"),
]


def _timed(spent: dict[str, float]) -> None:
    import importlib

    for module, cls_name, name, label in _PARTS:
        cls = getattr(importlib.import_module(module), cls_name)
        fn = getattr(cls, name, None)
        if fn is None:  # an older tree without it
            continue

        def wrapper(*a: Any, _fn: Any = fn, _label: str = label, **k: Any) -> Any:
            start = time.thread_time()
            try:
                return _fn(*a, **k)
            finally:
                spent[_label] += time.thread_time() - start

        setattr(cls, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sensors", type=int, default=10)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--parts", action="store_true")
    args = parser.parse_args()

    from anomaly_detection import Settings
    from anomaly_detection.api.service import AnomalyService, _collected

    spent: dict[str, float] = defaultdict(float)
    if args.parts:
        _timed(spent)
    redis_proc, url = start_redis()
    try:
        settings = Settings(detection_method="zscore", max_batch_items=100_000, store_backend="redis",
                            redis_url=url)  # fmt: skip
        service = AnomalyService(settings)
        rng = random.Random(1)

        def batch() -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
            now = time.time()
            return {f"bench-{s}": (np.array([round(rng.gauss(50, 5), 3) for _ in range(args.points)]),
                                   np.full(args.points, now), "point") for s in range(args.sensors)}  # fmt: skip

        def run(groups: dict[str, tuple[np.ndarray, np.ndarray, str]]) -> None:
            token = _collected.set([])
            try:
                service._score_here(groups)
            finally:
                _collected.reset(token)

        for groups in [batch() for _ in range(50)]:  # warm-up: windows full, scripts loaded
            run(groups)
        import anomaly_detection

        print(f"{machine()}; {anomaly_detection.__file__}")
        for _ in range(args.rounds):
            batches = [batch() for _ in range(args.requests)]
            spent.clear()
            start = time.thread_time()
            for groups in batches:
                run(groups)
            print(f"worker thread CPU: {(time.thread_time() - start) / args.requests * 1e3:.3f} ms a request")
            for *_, label in _PARTS:
                if label in spent:
                    print(f"  {label:40s} {spent[label] / args.requests * 1e3:.3f} ms")
        service.close()
    finally:
        redis_proc.kill()


if __name__ == "__main__":
    main()
