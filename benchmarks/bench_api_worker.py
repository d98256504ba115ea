"""The worker thread's part of ``POST /api/batch`` on the Redis store, in process.

Calls ``AnomalyService._score_here`` (what the service runs on its worker thread for a batch of plain
points: the detector's ``detect_many``, the Redis store's pipelines, the alerts' delivery) on
``--requests`` batches of ``--sensors`` x ``--points`` points (bench_api's body, already grouped) against a
redis-server of its own on a free port, and reports the CPU of this thread a request
(``time.thread_time``; redis-server and waiting are not counted). ``--parts`` adds the time of the main
calls inside (timers around them, ~0.03 ms a request of their own). To compare two trees side by side,
alternate runs with ``PYTHONPATH=TREE`` (a directory holding ``anomaly_detection/`` with a ``_core``).

    python benchmarks/bench_api_worker.py [--requests 800] [--rounds 3] [--parts]

``--app`` measures the whole request instead: bench_api's body posted through the app (``create_app``,
the lean path) called as ASGI, one request at a time (no sockets, no HTTP), and reports the CPU a request
of the process, of the event-loop thread and of the rest (the worker threads).

    python benchmarks/bench_api_worker.py --app [--requests 400] [--rounds 4] [--threshold 1000]
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
    # the C++ scoring alone, in any tree (round 7 scores a claimed batch before its append: no _score)
    ("anomaly_detection", "_core", "detect_after_window", "---- _core.detect_after_window"),
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
    parser.add_argument("--app", action="store_true", help="the whole request through the ASGI app")
    parser.add_argument(
        "--threshold",
        type=float,
        help="the detector's threshold (a large one flags nothing: no alerts, no counts)",
    )
    args = parser.parse_args()
    if args.app:
        _app(args)
        return

    from anomaly_detection import Settings
    from anomaly_detection.api.service import AnomalyService, _collected

    spent: dict[str, float] = defaultdict(float)
    if args.parts:
        _timed(spent)
    redis_proc, url = start_redis()
    try:
        settings = Settings(**({} if args.threshold is None else {"threshold": args.threshold}),
                            detection_method="zscore", max_batch_items=100_000, store_backend="redis",
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


def _app(args: argparse.Namespace) -> None:
    """``--app``: CPU a request of the whole app (loop thread and worker threads), in process."""
    import asyncio
    import json

    from anomaly_detection import Settings
    from anomaly_detection.api import create_app

    redis_proc, url = start_redis()
    try:
        common = {
            **({} if args.threshold is None else {"threshold": args.threshold}),
            "detection_method": "zscore",
            "max_batch_items": 100_000,
            "max_request_bytes": 64 * 1024 * 1024,
        }
        app = create_app(Settings(**common, store_backend="redis", redis_url=url))
        rng = random.Random(1)
        items = [{"type": "point", "sensor_name": f"bench-{s}", "value": round(rng.gauss(50, 5), 3)}
                 for s in range(args.sensors) for _ in range(args.points)]  # fmt: skip
        body = json.dumps({"metrics": items}).encode()
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/api/batch", "raw_path": b"/api/batch", "query_string": b"", "root_path": "",
            "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        }  # fmt: skip

        async def one() -> None:
            sent = False
            status = []

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await asyncio.sleep(3600)  # no disconnect while answering
                return {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])

            await app(dict(scope), receive, send)
            if status != [200]:
                raise RuntimeError(f"POST /api/batch answered {status}")

        async def run() -> None:
            async with app.router.lifespan_context(app):
                for _ in range(100):  # warm-up: windows full, scripts loaded
                    await one()
                for _ in range(args.rounds):
                    process, loop = time.process_time(), time.thread_time()
                    for _ in range(args.requests):
                        await one()
                    process = (time.process_time() - process) / args.requests * 1e3
                    loop = (time.thread_time() - loop) / args.requests * 1e3
                    print(f"CPU a request: process {process:.3f} ms, event loop {loop:.3f}, "
                          f"worker threads {process - loop:.3f}")  # fmt: skip

        import anomaly_detection

        print(f"{machine()}; {anomaly_detection.__file__}")
        asyncio.run(run())
    finally:
        redis_proc.kill()


if __name__ == "__main__":
    main()
