"""The Redis store's two request paths in process, no HTTP: 4 concurrent callers of 10 sensors x 100
points each, ``detect_many`` on worker threads (a sync client) against ``adetect_many`` on one event loop
(``use_async_client``: the redis.asyncio twin the service uses with ``redis_async_requests``), in turn,
on a redis-server started for the run on a free 127.0.0.1 port. Reports ms per request for each.

    python benchmarks/bench_redis_paths.py [--rounds 3] [--requests 100]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from bench_api import start_redis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100, help="per caller")
    args = parser.parse_args()

    from anomaly_detection import Settings
    from anomaly_detection.redis.client import async_client_like, redis_client_from_settings
    from anomaly_detection.stores.redis import RedisStore

    proc, url = start_redis()
    try:
        settings = Settings(store_backend="redis", redis_url=url, detection_method="zscore")
        client = redis_client_from_settings(settings)
        store = RedisStore(client, settings)
        store.use_async_client(lambda: async_client_like(client, settings, settings.redis_socket_timeout))
        rng = np.random.default_rng(1)
        names = [f"b{i}" for i in range(10)]
        values = [rng.normal(50, 5, 100) for _ in names]
        stamps = [np.arange(100) + 1.0 for _ in names]
        n, callers = args.requests, 4

        async def threads() -> None:
            def one() -> None:
                for _ in range(n):
                    store.detect_many(names, values, stamps)

            await asyncio.gather(*(asyncio.to_thread(one) for _ in range(callers)))

        async def loop() -> None:
            async def one() -> None:
                for _ in range(n):
                    await store.adetect_many(names, values, stamps)

            await asyncio.gather(*(one() for _ in range(callers)))
            for driver in store._async_drivers.values():
                await driver.client.aclose()
            store._async_drivers.clear()

        print(f"{callers} concurrent callers x {n} requests of 10 sensors x 100 points; {machine()}")
        for r in range(args.rounds):
            got = {}
            for name, run in (("worker threads", threads), ("redis.asyncio on the loop", loop)):
                start = time.perf_counter()
                asyncio.run(run())
                got[name] = (time.perf_counter() - start) / (callers * n) * 1e3
            print(f"round {r + 1}: " + ", ".join(f"{k} {v:.2f} ms/request" for k, v in got.items()))
        store.close()
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
