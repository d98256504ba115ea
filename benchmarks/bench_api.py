"""HTTP ingest: ``POST /api/batch`` from concurrent clients for a bounded time on 127.0.0.1.

The same app is served three times in the same run, each by uvicorn (one worker) in its
own process: with the package's detector on the embedded store (C++ core), on Redis (a
redis-server started for the run on a free port), and with a pure-Python detector (a
deque per sensor, mean and stdev per point, as a FastAPI app would write it). The request
body is encoded once, so the clients cost little next to the server. Reports points per
second, p50/p99 request latency, and the CPU time per request of the server process and
of redis-server (from /proc: on a loaded machine wall times swing, CPU times much less).

    python benchmarks/bench_api.py [--seconds 5] [--clients 4] [--sensors 10] [--points 100] [--no-redis] [--async-redis] [--rounds 1] [--uvicorn standard|plain|both] [--quick] [--json]

``--uvicorn`` picks the server stack: ``standard`` is uvicorn with uvloop and httptools (what
``uvicorn[standard]``, and so the package's ``api`` extra, installs), ``plain`` is uvicorn on
asyncio's loop and h11 (pure Python), ``both`` measures every server on each, the two stacks
one after the other in each round (each ratio taken on one stack).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table

HOST = "127.0.0.1"
#: uvicorn's event loop and HTTP parser per server stack (--uvicorn)
STACKS = {"standard": {"loop": "uvloop", "http": "httptools"}, "plain": {"loop": "asyncio", "http": "h11"}}


class PurePythonDetector:
    """z-score over a deque per sensor, one point at a time (the peer)."""

    def __init__(self, window_size: int = 100, threshold: float = 3.0, min_samples: int = 10) -> None:
        self.windows: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window_size))
        self.times: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window_size))
        self.threshold = threshold
        self.min_samples = min_samples
        self._listeners: list[Any] = []

    def detect(self, sensor: str, value: float, timestamp: float | None = None) -> Any:
        from anomaly_detection.core.results import AnomalyResult

        w = self.windows[sensor]
        n = len(w)
        mean = sum(w) / n if n else value
        std = math.sqrt(sum((x - mean) ** 2 for x in w) / (n - 1)) if n > 1 else 0.0
        z = (value - mean) / std if std > 0 else 0.0
        is_anomaly = n >= self.min_samples and abs(z) > self.threshold
        w.append(value)
        self.times[sensor].append(timestamp or time.time())
        result = AnomalyResult(sensor, value, timestamp or time.time(), is_anomaly, min(1.0, abs(z) / 10), z, mean,
                               n, self.threshold, "zscore")  # fmt: skip
        if is_anomaly:
            for listener in self._listeners:
                listener(result)
        return result

    def detect_batch(self, sensor: str, values: Any, timestamps: Any = None) -> list[Any]:
        ts = timestamps if timestamps is not None else [None] * len(values)
        return [self.detect(sensor, float(v), None if t is None else float(t)) for v, t in zip(values, ts)]

    async def adetect(self, *args: Any) -> Any:
        return self.detect(*args)

    async def adetect_batch(self, *args: Any) -> Any:
        return self.detect_batch(*args)

    def add_alert_listener(self, fn: Any) -> None:
        self._listeners.append(fn)

    def remove_alert_listener(self, fn: Any) -> None:
        self._listeners.remove(fn)

    def sensors(self) -> list[str]:
        return sorted(self.windows)

    def health(self) -> dict[str, Any]:
        return {"store": "pure-python", "degraded": False, "sensors": len(self.windows)}


def serve(kind: str, port: int, stack: str = "standard") -> None:
    import uvicorn

    from anomaly_detection import Settings
    from anomaly_detection.api import create_app

    # z-score, as the pure-Python peer computes (the default method is the ensemble)
    common = {"detection_method": "zscore", "max_batch_items": 100_000, "max_request_bytes": 64 * 1024 * 1024}
    settings = Settings(**common)
    if kind in ("redis", "redis-async"):
        settings = Settings(**common, store_backend="redis", redis_url=os.environ["BENCH_REDIS_URL"],
                            redis_async_requests=kind == "redis-async")  # fmt: skip
    detector = PurePythonDetector() if kind == "python" else None
    uvicorn.run(
        create_app(settings, detector=detector), host=HOST, port=port, log_level="error", access_log=False,
        **STACKS[stack],
    )  # fmt: skip


async def drive(url: str, seconds: float, clients: int, body: bytes) -> tuple[int, list[float]]:
    """``clients`` keep-alive HTTP/1.1 connections, each posting ``body`` in a loop.

    A minimal client on asyncio streams (the request bytes are built once), so that the
    load generator, which shares the CPU with the server, costs little.
    """
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST /api/batch HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    requests = 0

    async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))  # fmt: skip
        await reader.readexactly(length)
        if status != b"200":
            raise RuntimeError(f"POST /api/batch answered {status.decode()}")

    async def one(stop: float) -> None:
        nonlocal requests
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            await post(reader, writer)  # warm-up: windows filled, code paths hot
            while time.perf_counter() < stop:
                t = time.perf_counter()
                await post(reader, writer)
                latencies.append(time.perf_counter() - t)
                requests += 1
        finally:
            writer.close()

    stop = time.perf_counter() + seconds
    await asyncio.gather(*(one(stop) for _ in range(clients)))
    return requests, latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its threads so far (Linux /proc), or NaN."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    import redis

    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(host=HOST, port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc, f"redis://{HOST}:{port}/0"
        except redis.ConnectionError:  # noqa: PERF203 - polling until the server listens
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)


def package_root() -> str:
    """The folder holding the anomaly_detection this process imports, for the servers' PYTHONPATH:
    a dev build's python/ under PYTHONPATH=python, else the installed package's site-packages (the
    source tree's python/ has no compiled _core without scripts/dev-build.sh, so it cannot be forced)."""
    import importlib.util

    spec = importlib.util.find_spec("anomaly_detection")
    if spec is None or spec.origin is None:
        raise RuntimeError("anomaly_detection is not importable: pip install '.[bench]' first")
    return str(Path(spec.origin).resolve().parents[1])


def start_server(
    kind: str, redis_url: str | None = None, stack: str = "standard"
) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    env = dict(os.environ)
    if redis_url:
        env["BENCH_REDIS_URL"] = redis_url
    env["PYTHONPATH"] = package_root() + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port), "--uvicorn", stack], env=env
    )
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/health", timeout=1)
            return proc, url
        except httpx.TransportError:  # noqa: PERF203 - polling until the server listens
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sensors", type=int, default=10)
    parser.add_argument("--points", type=int, default=100, help="points per sensor per request")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis run")
    parser.add_argument(
        "--async-redis", action="store_true", help="also Redis with redis_async_requests (redis.asyncio)"
    )
    parser.add_argument(
        "--serve", choices=["native", "redis", "redis-async", "python"], help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=1, help="measure the servers in turn this many times")
    parser.add_argument(
        "--uvicorn", choices=["standard", "plain", "both"], default="standard",
        help="uvicorn with uvloop + httptools (standard), on asyncio + h11 (plain), or each in turn (both)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="2 s per server")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 2.0)
    if args.serve:
        serve(args.serve, args.port, args.uvicorn)
        return

    import random

    rng = random.Random(1)
    items = [{"type": "point", "sensor_name": f"bench-{s}", "value": round(rng.gauss(50, 5), 3)}
             for s in range(args.sensors) for _ in range(args.points)]  # fmt: skip
    body = json.dumps({"metrics": items}).encode()
    per_request = len(items)
    runs = [("native", "package detector (C++ core, embedded)")]
    if not args.no_redis:
        runs.append(("redis", "package detector (C++ core, Redis store)"))
        if args.async_redis:
            runs.append(("redis-async", "the same, redis_async_requests (redis.asyncio on the loop)"))
    runs.append(("python", "pure-Python detector"))
    stacks = ["standard", "plain"] if args.uvicorn == "both" else [args.uvicorn]
    # With --rounds N the servers are measured in turn N times (a loaded machine's slow spell then
    # spreads over all of them), and each ratio is taken within its round and its server stack.
    measured: dict[tuple[str, str], list[tuple[float, int, float, float, float, float]]] = defaultdict(list)
    for _ in range(args.rounds):
        for stack in stacks:
            for kind, _label in runs:
                redis_proc, redis_url = start_redis() if kind.startswith("redis") else (None, None)
                proc, url = start_server(kind, redis_url, stack)
                try:
                    cpu0 = cpu_seconds(proc.pid), cpu_seconds(redis_proc.pid) if redis_proc else 0.0
                    requests, lat = asyncio.run(drive(url, args.seconds, args.clients, body))
                    # the warm-up request of each client included (a few in thousands)
                    cpu = [
                        (cpu_seconds(p.pid) - c0) / max(1, requests + args.clients) if p else 0.0
                        for p, c0 in zip((proc, redis_proc), cpu0)
                    ]
                finally:
                    proc.terminate()
                    proc.wait(timeout=10)
                    if redis_proc is not None:
                        redis_proc.terminate()
                        redis_proc.wait(timeout=10)
                lat.sort()
                p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
                measured[stack, kind].append(
                    (requests * per_request / args.seconds, requests, statistics.median(lat), p99, *cpu)
                )

    def span(xs: list[float], fmt: str) -> str:
        return format(xs[0], fmt) if len(xs) == 1 else f"{format(min(xs), fmt)}-{format(max(xs), fmt)}"

    rows = []
    for stack in stacks:
        for kind, label in runs:
            m = measured[stack, kind]
            rows.append([label, stack, span([x[0] for x in m], ",.0f"), sum(x[1] for x in m),
                         span([x[2] * 1e3 for x in m], ".1f"), span([x[3] * 1e3 for x in m], ".1f"),
                         span([x[4] * 1e3 for x in m], ".2f"),
                         span([x[5] * 1e3 for x in m], ".2f") if kind.startswith("redis") else "-"])  # fmt: skip
    rates = {kind: statistics.median(x[0] for x in measured[stacks[0], kind]) for kind, _ in runs}
    rounds = f", {args.rounds} rounds (ranges)" if args.rounds > 1 else ""
    print(f"POST /api/batch, {per_request} points per request ({args.sensors} sensors x {args.points}), "
          f"{args.clients} concurrent clients, {args.seconds:g} s each{rounds}, uvicorn 1 worker on {HOST} "
          f"(standard: uvloop + httptools; plain: asyncio + h11)")  # fmt: skip
    print(machine())
    print(
        table(
            [
                "server",
                "uvicorn",
                "points/s",
                "requests",
                "p50 ms",
                "p99 ms",
                "CPU ms/req",
                "redis CPU ms/req",
            ],
            rows,
        )
    )
    for stack in stacks:
        peer = measured[stack, "python"]
        for kind in ("native", "redis", "redis-async"):
            if kind in rates:
                ratios = [a[0] / b[0] for a, b in zip(measured[stack, kind], peer)]
                print(f"ratio {kind} / pure Python ({stack}): {span(ratios, '.1f')}x points/s")
                cpu = [b[4] / (a[4] + a[5]) for a, b in zip(measured[stack, kind], peer)]
                print(f"  CPU per request, pure Python / ({kind} server + redis-server): {span(cpu, '.1f')}x")
        if args.rounds > 1 and "redis-async" in rates:
            ratios = [a[0] / b[0] for a, b in zip(measured[stack, "redis-async"], measured[stack, "redis"])]
            print(f"ratio redis-async / redis (worker threads), per round ({stack}): "
                  f"{', '.join(f'{r:.2f}' for r in ratios)}")  # fmt: skip
    if args.json:
        figures = [
            {
                "metric": f"POST /api/batch, {per_request} points per request, {args.clients} clients",
                "unit": "points/s",
                "ours": rates["native"],
                "peer": rates["python"],
                "peer_name": "same app, pure-Python detector",
                "target": ">= 5x",
            },
        ]
        if "redis" in rates:
            figures.append(
                {
                    "metric": "POST /api/batch on the Redis store",
                    "unit": "points/s",
                    "ours": rates["redis"],
                    "peer": rates["python"],
                    "peer_name": "same app, pure-Python detector",
                }
            )
        print(json.dumps({"bench": "api", "figures": figures}))


if __name__ == "__main__":
    main()
