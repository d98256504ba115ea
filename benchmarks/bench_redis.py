"""The Redis-backed detector against the seed's pattern, on one redis-server
started on a free loopback port, in one run.

    python benchmarks/bench_redis.py [--points N] [--window W]

Seed pattern (one redis-py pipeline per point): RPUSH the JSON point, LTRIM to the
window, EXPIRE, LRANGE the window back, then the z-score in Python. Ours: one
``detect_batch`` per sensor (one atomic script call), scoring in C++. Also the
latency of a single ``detect`` (p50, p99) and Redis memory per sensor.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, table

from anomaly_detection import Settings, StatisticalAnomalyDetector


def start_redis() -> tuple[subprocess.Popen, int, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.02)
    return proc, port, folder


def seed_pattern(client, sensor: str, values: np.ndarray, window: int) -> int:
    key = f"anomaly:temp:data:{sensor}:queue"
    flagged = 0
    for i, v in enumerate(values.tolist()):
        pipe = client.pipeline()
        pipe.rpush(key, json.dumps({"value": v, "timestamp": float(i)}))
        pipe.ltrim(key, -window, -1)
        pipe.expire(key, 3600)
        pipe.lrange(key, 0, -1)
        data = [json.loads(x)["value"] for x in pipe.execute()[3]]
        history = data[:-1]
        if len(history) >= 2:
            mean, std = statistics.fmean(history), statistics.stdev(history) or 1e-12
            flagged += abs((v - mean) / std) > 3.0
    return flagged


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=5000, help="points per sensor for the seed pattern")
    parser.add_argument("--batch", type=int, default=10_000, help="points per detect_batch call")
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="1,000 seed points, 5 sensors")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    if args.quick:
        args.points, args.sensors = 1000, 5
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server)")
    import redis

    proc, port, folder = start_redis()
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        rng = np.random.default_rng(0)
        settings = Settings(window_size=args.window, redis_alerts=False)

        values = rng.normal(20, 1, args.points)
        start = time.perf_counter()
        seed_pattern(client, "seed", values, args.window)
        seed_rate = args.points / (time.perf_counter() - start)

        det = StatisticalAnomalyDetector(settings, redis_client=client)
        batches = [rng.normal(20, 1, args.batch) for _ in range(args.sensors)]
        det.detect_batch("warm", batches[0][:10])
        start = time.perf_counter()
        for i, batch in enumerate(batches):
            det.detect_batch(f"s{i}", batch)
        batch_rate = args.sensors * args.batch / (time.perf_counter() - start)

        single = []
        for i in range(2000):
            t0 = time.perf_counter()
            det.detect("latency", 20.0 + (i % 7) * 0.1)
            single.append(time.perf_counter() - t0)
        single_ms = np.array(single) * 1e3

        memory = client.memory_usage("anomaly:temp:data:s0:queue") + client.memory_usage(
            "anomaly:temp:data:s0:stats"
        )
        rows = [
            ["detect_batch, Redis (one script call per sensor)", f"{batch_rate / 1e3:,.0f} k",
             "seed pipeline per point", f"{seed_rate / 1e3:,.1f} k", f"{batch_rate / seed_rate:,.0f}x", ">= 20x"],
            ["detect, one point per call (one script call)", f"{1 / np.mean(single):,.0f}",
             "seed pipeline per point", f"{seed_rate:,.0f}", f"{1 / np.mean(single) / seed_rate:,.1f}x", "-"],
        ]  # fmt: skip
        print(f"machine: {machine()}; redis-server on loopback; window {args.window}; "
              f"{args.sensors} sensors x {args.batch:,} points")  # fmt: skip
        print(table(["ours", "points/s", "peer", "points/s", "ratio", "target"], rows))
        print(
            f"\nsingle detect latency: p50 {np.percentile(single_ms, 50):.3f} ms, "
            f"p99 {np.percentile(single_ms, 99):.3f} ms ({1e3 / single_ms.mean():,.0f} detects/s, one client)"
        )
        print(f"Redis memory per sensor with a full window of {args.window}: {memory:,} bytes")
        if args.json:
            print(json.dumps({"bench": "redis", "figures": [
                {"metric": f"Redis detect_batch vs the seed's pipeline per point (window {args.window})",
                 "unit": "points/s", "ours": batch_rate, "peer": seed_rate, "peer_name": "redis-py pipeline",
                 "target": ">= 20x"},
                {"metric": "Redis detect, one point per call, vs the seed's pipeline per point",
                 "unit": "points/s", "ours": 1 / float(np.mean(single)), "peer": seed_rate,
                 "peer_name": "redis-py pipeline"},
            ]}))  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
