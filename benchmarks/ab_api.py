"""A/B of two builds of the package on ``POST /api/batch`` (bench_api's server and clients).

Each tree is a directory holding an ``anomaly_detection`` package (for example a
``git archive`` of ``main``'s ``python/`` with the same ``_core`` module copied in, and a copy of
the installed package of a branch). Servers of the trees take turns, round after round, each
with its own redis-server (for ``redis`` and ``redis-async``), so a load change on the shared
machine hits both alike. Reports, per tree, the ranges and medians of points/s, the CPU
milliseconds per request of the server process and of redis-server (the steady figures on a
loaded machine), and p50/p99 latency.

    python benchmarks/ab_api.py KIND ROUNDS SECONDS TREE [TREE ...]   # KIND: redis, redis-async, native

A tree may end with ``@plain`` or ``@standard`` (the default): the uvicorn stack its server runs on
(bench_api's ``--uvicorn``: asyncio + h11, or uvloop + httptools), to compare deployments.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_api as b


def main() -> None:
    kind, rounds, seconds, trees = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
    rng = random.Random(1)
    items = [{"type": "point", "sensor_name": f"bench-{s}", "value": round(rng.gauss(50, 5), 3)}
             for s in range(10) for _ in range(100)]  # fmt: skip
    body = json.dumps({"metrics": items}).encode()
    results: dict[str, list[tuple[float, ...]]] = {tree: [] for tree in trees}
    for _ in range(rounds):
        for tree in trees:
            redis_proc, redis_url = b.start_redis() if kind.startswith("redis") else (None, None)
            port = b.free_port()
            path, _, stack = tree.partition("@")
            env = dict(os.environ, BENCH_REDIS_URL=redis_url or "", PYTHONPATH=path)
            proc = subprocess.Popen(
                [
                    sys.executable,
                    b.__file__,
                    "--serve",
                    kind,
                    "--port",
                    str(port),
                    "--uvicorn",
                    stack or "standard",
                ],
                env=env,
            )
            url = f"http://{b.HOST}:{port}"
            try:
                for _ in range(300):
                    try:
                        httpx.get(url + "/health", timeout=1)
                        break
                    except httpx.TransportError:
                        time.sleep(0.1)
                cpu0 = b.cpu_seconds(proc.pid), b.cpu_seconds(redis_proc.pid) if redis_proc else 0.0
                n, latencies = asyncio.run(b.drive(url, seconds, 4, body))
                cpu1 = b.cpu_seconds(proc.pid), b.cpu_seconds(redis_proc.pid) if redis_proc else 0.0
            finally:
                proc.terminate()
                proc.wait()
                if redis_proc:
                    redis_proc.terminate()
                    redis_proc.wait()
            latencies.sort()
            results[tree].append((
                n * 1000 / seconds, (cpu1[0] - cpu0[0]) / (n + 4) * 1e3, (cpu1[1] - cpu0[1]) / (n + 4) * 1e3,
                latencies[len(latencies) // 2] * 1e3, latencies[int(len(latencies) * 0.99)] * 1e3,
            ))  # fmt: skip
    for tree, xs in results.items():

        def span(i: int, fmt: str, xs: list[tuple[float, ...]] = xs) -> str:
            col = [x[i] for x in xs]
            return f"{min(col):{fmt}}-{max(col):{fmt}} (med {statistics.median(col):{fmt}})"

        print(f"{tree}: pts/s {span(0, ',.0f')}  server CPU ms/req {span(1, '.2f')}  "
              f"redis CPU ms/req {span(2, '.2f')}  p50 {span(3, '.1f')} p99 {span(4, '.1f')}")  # fmt: skip


if __name__ == "__main__":
    main()
