"""The Redis-backed detector against the original prototype's pattern, on one redis-server
started on a free loopback port, in one run.

    python benchmarks/bench_redis.py [--points N] [--window W]
    python benchmarks/bench_redis.py --costs   # one detect against PING, and where its time goes
    python benchmarks/bench_redis.py --against DIR   # the same, this build beside the one in DIR

The original prototype's pattern (one redis-py pipeline per point): RPUSH the JSON point, LTRIM to the
window, EXPIRE, LRANGE the window back, then the z-score in Python. Ours: one
``detect_batch`` per sensor (one atomic script call), scoring in C++. Also the
latency of a single ``detect`` (p50, p99) and Redis memory per sensor.

Then the ensemble (the default method) on Redis against z-score in the same run:
``detect`` one point per call, ``detect_batch`` of 100 points and of ``--batch``
points per call, and the bytes per sensor in Redis (window, counters, checkpoint).
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


def prototype_pattern(client, sensor: str, values: np.ndarray, window: int) -> int:
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


def detect_against_ping(client, det, rounds: int = 10, calls: int = 300) -> tuple[float, float]:
    """z-score ``detect`` per call against ``PING`` per call on the same client (one
    connection), in alternating blocks so that both see the same load; calls/s of each."""
    detect_s = ping_s = 0.0
    t = 1.7e9
    det.detect_batch(
        "vs-ping", np.random.default_rng(2).normal(20, 1, 200), t - 60.0 * np.arange(200.0)[::-1]
    )
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            client.ping()
        ping_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(calls):
            t += 60.0
            det.detect("vs-ping", 20.0 + (i % 7) * 0.1, timestamp=t)
        detect_s += time.perf_counter() - t0
    return rounds * calls / detect_s, rounds * calls / ping_s


def point_costs(client, det, rounds: int = 5, calls: int = 300) -> dict[str, float]:
    """Where a z-score ``detect``'s time goes, against ``PING``, in alternating blocks: the
    client's CPU per call (``time.process_time``), the wall time per call, and the append
    script's time on the server (``INFO commandstats``, EVALSHA ``usec_per_call``)."""
    t = 2.0e9
    det.detect_batch("costs", np.random.default_rng(5).normal(20, 1, 200), t - 60.0 * np.arange(200.0)[::-1])
    cpu = {"detect": 0.0, "ping": 0.0}
    wall = {"detect": 0.0, "ping": 0.0}
    client.config_resetstat()
    for _ in range(rounds):
        for what in ("ping", "detect"):
            w0, c0 = time.perf_counter(), time.process_time()
            if what == "ping":
                for _ in range(calls):
                    client.ping()
            else:
                for i in range(calls):
                    t += 60.0
                    det.detect("costs", 20.0 + (i % 7) * 0.1, timestamp=t)
            cpu[what] += time.process_time() - c0
            wall[what] += time.perf_counter() - w0
    n = rounds * calls
    script = client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]
    return {"detect_cpu_us": cpu["detect"] / n * 1e6, "ping_cpu_us": cpu["ping"] / n * 1e6,
            "detect_wall_us": wall["detect"] / n * 1e6, "ping_wall_us": wall["ping"] / n * 1e6,
            "script_us": float(script)}  # fmt: skip


# One piece of the append script each (its window of 100 and counters set up first): what each
# part costs on the server, `usec_per_call` of EVALSHA over 1,000 calls.
_SCRIPT_PARTS = {
    "EVALSHA of `return 1`": "return 1",
    "HMGET of the counters with the mirror": (
        "redis.call('HMGET', KEYS[2], 'seen', 'w:abc', 'values', 'stamps', 'last') return 1"
    ),
    "the same, returning the mirror": (
        "local m = redis.call('HMGET', KEYS[2], 'seen', 'w:abc', 'values', 'stamps', 'last') "
        "return {1, {}, 0, m[3], m[4]}"
    ),
    "LINDEX": "redis.call('LINDEX', KEYS[1], -1) return 1",
    "RPUSH + LTRIM": "redis.call('RPUSH', KEYS[1], ARGV[2]) redis.call('LTRIM', KEYS[1], -100, -1) return 1",
    "two EXPIREs": "redis.call('EXPIRE', KEYS[1], 3600) redis.call('EXPIRE', KEYS[2], 3600) return 1",
    "HSET of the counters with the mirror": (
        "redis.call('HSET', KEYS[2], 'seen', '101', 'w:abc', '6:100', 'values', ARGV[3], 'stamps', ARGV[3], "
        "'last', ARGV[2]) return 1"
    ),
    "HMGET of the mirror, append 8 bytes and trim in Lua": (
        "local m = redis.call('HMGET', KEYS[2], 'values', 'stamps') local v = string.sub(m[1] .. ARGV[1], -800) "
        "local t = string.sub(m[2] .. ARGV[1], -800) return 1"
    ),
    # round 3: the mirror as a ring in its own key against the mirror in the hash, each whole
    "mirror in the hash: HMGET with it, append and trim in Lua, HSET with it": (
        "local m = redis.call('HMGET', KEYS[2], 'seen', 'w:abc', 'values', 'stamps', 'last') "
        "local vs, ts = string.sub(m[3] .. ARGV[1], -800), string.sub(m[4] .. ARGV[1], -800) "
        "redis.call('HSET', KEYS[2], 'seen', '101', 'w:abc', '6:100', 'values', vs, 'stamps', ts, "
        "'last', ARGV[2]) return 1"
    ),
    "mirror as a ring: HMGET of small fields, SETRANGE of 16 bytes, HSET of small fields": (
        "local m = redis.call('HMGET', KEYS[2], 'seen', 'w:abc', 'ring', 'tail') "
        "redis.call('SETRANGE', KEYS[3], 16 * 37, ARGV[1] .. ARGV[1]) "
        "redis.call('HSET', KEYS[2], 'seen', '101', 'w:abc', '6:100', 'ring', '100:100', 'tail', ARGV[2]) return 1"
    ),
    "three EXPIREs": (
        "redis.call('EXPIRE', KEYS[1], 3600) redis.call('EXPIRE', KEYS[2], 3600) "
        "redis.call('EXPIRE', KEYS[3], 3600) return 1"
    ),
}


def script_parts(client, rounds: int = 5, calls: int = 1000) -> dict[str, list[float]]:
    """``usec_per_call`` of each of :data:`_SCRIPT_PARTS` (alternating, ``rounds`` times)."""
    keys = [
        "anomaly:temp:data:parts:queue",
        "anomaly:temp:data:parts:stats",
        "anomaly:temp:data:parts:mirror",
    ]
    entry = '{"value":20.1,"timestamp":1700000000.0}'
    client.delete(*keys)
    client.rpush(keys[0], *[entry] * 100)
    client.hset(keys[1], mapping={"seen": 100, "values": b"a" * 800, "stamps": b"b" * 800, "last": entry,
                                  "w:abc": "5:5", "ring": "100:100", "tail": entry})  # fmt: skip
    client.set(keys[2], b"r" * 1608)
    shas = {name: client.script_load(body) for name, body in _SCRIPT_PARTS.items()}
    out: dict[str, list[float]] = {name: [] for name in shas}
    for _ in range(rounds):
        for name, sha in shas.items():
            client.config_resetstat()
            for _ in range(calls):
                client.evalsha(sha, 3, *keys, b"abcdefgh", entry, b"c" * 800)
            out[name].append(float(client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]))
    return out


def costs_only() -> None:
    """``--costs``: the detect-against-PING ratio three times, where a detect's time goes, and
    the append script's parts on the server."""
    import redis

    proc, port, folder = start_redis()
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        for method in ("zscore", "mad", "ewma"):
            det = StatisticalAnomalyDetector(
                Settings(detection_method=method, window_size=100, redis_alerts=False), redis_client=client
            )
            ratios = []
            for _ in range(3):
                d, p = detect_against_ping(client, det)
                ratios.append(f"{d / p:.2f}x ({d:,.0f} vs {p:,.0f}/s)")
            print(f"{method:>6} detect against PING: " + ", ".join(ratios))
        det = StatisticalAnomalyDetector(
            Settings(detection_method="zscore", window_size=100, redis_alerts=False), redis_client=client
        )
        for _ in range(3):
            c = point_costs(client, det)
            print(
                f"one detect: client CPU {c['detect_cpu_us']:.1f} us (PING {c['ping_cpu_us']:.1f} us), append "
                f"script {c['script_us']:.1f} us, wall {c['detect_wall_us']:.1f} us (PING {c['ping_wall_us']:.1f} us)"
            )
        for name, took in script_parts(client).items():
            print(
                f"script part: {name}: {min(took):.2f}-{max(took):.2f} us (median {statistics.median(took):.2f})"
            )
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _series(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A noisy daily cycle, 5 minutes apart (the ensemble finds its period)."""
    t = np.arange(n)
    return 20 + 3 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.3, n), 1.7e9 + 300.0 * t


def _rate_single(det, sensor: str, values: np.ndarray, stamps: np.ndarray) -> tuple[float, np.ndarray]:
    took = []
    for v, t in zip(values.tolist(), stamps.tolist()):
        t0 = time.perf_counter()
        det.detect(sensor, v, timestamp=t)
        took.append(time.perf_counter() - t0)
    took_ms = np.array(took) * 1e3
    return len(values) / (took_ms.sum() / 1e3), took_ms


def _rate_batches(det, prefix: str, batches, size: int) -> float:
    start = time.perf_counter()
    points = 0
    for i, (values, stamps) in enumerate(batches):
        for lo in range(0, len(values), size):
            det.detect_batch(f"{prefix}{i}", values[lo : lo + size], stamps[lo : lo + size])
        points += len(values)
    return points / (time.perf_counter() - start)


def ensemble_against_zscore(client, args, rng) -> list[dict]:
    """The ensemble on Redis (checkpoint beside the window) against z-score, same run, same data."""
    n_single, n_sensors = (1500, 3) if args.quick else (4000, 5)
    big = min(args.batch, 10_000)
    single_data = _series(n_single, rng)
    batch_data = [_series(big, rng) for _ in range(n_sensors)]
    rows, figures, results = [], [], {}
    for method in ("zscore", "ensemble"):
        det = StatisticalAnomalyDetector(
            Settings(detection_method=method, window_size=args.window, redis_alerts=False),
            redis_client=client,
        )
        det.detect_batch(f"warm-{method}", *_series(10, rng))
        single_rate, single_ms = _rate_single(det, f"one-{method}", *single_data)
        # The ensemble's first points replay nothing: measure past its warm-up too.
        rate100 = _rate_batches(det, f"b100-{method}-", batch_data, 100)
        rate_big = _rate_batches(det, f"big-{method}-", batch_data, big)
        keys = det.store.keys
        memory = sum(
            client.memory_usage(k) or 0
            for k in (keys.window("big-" + method + "-0"), keys.counters("big-" + method + "-0"),
                      keys.checkpoint("big-" + method + "-0"))
        )  # fmt: skip
        results[method] = (single_rate, single_ms, rate100, rate_big, memory)
    z, e = results["zscore"], results["ensemble"]
    for label, i in (("detect, one point per call", 0), ("detect_batch, 100 points per call", 2),
                     (f"detect_batch, {big:,} points per call", 3)):  # fmt: skip
        rows.append([label, f"{e[i]:,.0f}", f"{z[i]:,.0f}", f"{e[i] / z[i]:.2f}x"])
        figures.append({"metric": f"Redis ensemble vs z-score: {label} (window {args.window})", "unit": "points/s",
                        "ours": e[i], "peer": z[i], "peer_name": "z-score on Redis", "kind": "internal"})  # fmt: skip
    print(
        f"\nthe ensemble on Redis (checkpoint beside the window) against z-score, same run, window {args.window}:"
    )
    print(table(["call", "ensemble points/s", "z-score points/s", "ratio"], rows))
    for method, r in results.items():
        print(f"{method:>8} single detect: p50 {np.percentile(r[1], 50):.3f} ms, p99 {np.percentile(r[1], 99):.3f} ms; "
              f"Redis bytes per sensor (window + counters + checkpoint): {r[4]:,}")  # fmt: skip
    return figures


def outage(args: argparse.Namespace) -> list[dict]:
    """``detect`` with Redis killed: the package's client (bounded timeouts, no retries) and its
    circuit breaker against the embedded store's ``detect``, the store the fallback runs on."""
    import redis

    from anomaly_detection.redis.client import redis_client_from_settings

    def killed_run(make_client) -> tuple[float, np.ndarray, float]:
        proc, port, folder = start_redis()
        try:
            s = Settings(detection_method="zscore", window_size=args.window, redis_alerts=False,
                         redis_port=port, redis_host="127.0.0.1", redis_retry_interval=60)  # fmt: skip
            det = StatisticalAnomalyDetector(s, redis_client=make_client(s))
            det.detect_batch("s", np.random.default_rng(1).normal(20, 1, 200))
        finally:
            proc.kill()
            proc.wait()
            shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        det.detect("s", 20.0)  # the call that meets the outage
        first = time.perf_counter() - t0
        times = []
        for i in range(2000):
            t0 = time.perf_counter()
            det.detect("s", 20.0 + (i % 7) * 0.1)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        degraded = det.health()["degraded"]
        health = time.perf_counter() - t0
        assert degraded
        det.store.close()
        return first, np.array(times) * 1e3, health * 1e3

    first, down_ms, health_ms = killed_run(redis_client_from_settings)
    default_first, _, _ = killed_run(lambda s: redis.Redis(host="127.0.0.1", port=s.redis_port))
    local = StatisticalAnomalyDetector(Settings(detection_method="zscore", window_size=args.window))
    local.detect_batch("s", np.random.default_rng(1).normal(20, 1, 200))
    local_ms = []
    for i in range(2000):
        t0 = time.perf_counter()
        local.detect("s", 20.0 + (i % 7) * 0.1)
        local_ms.append(time.perf_counter() - t0)
    local_ms = np.array(local_ms) * 1e3
    p99, local_p99 = np.percentile(down_ms, 99), np.percentile(local_ms, 99)
    print("\nRedis killed (circuit breaker open; 2,000 detects after the failing one):")
    print(table(
        ["call", "ours", "peer", "peer value", "ratio"],
        [["detect p99, Redis down", f"{p99:.3f} ms", "embedded detect p99", f"{local_p99:.3f} ms",
          f"{p99 / local_p99:.1f}x"],
         ["detect p50, Redis down", f"{np.percentile(down_ms, 50):.3f} ms", "embedded detect p50",
          f"{np.percentile(local_ms, 50):.3f} ms", f"{np.percentile(down_ms, 50) / np.percentile(local_ms, 50):.1f}x"],
         ["the call that meets the outage", f"{first * 1e3:.1f} ms", "same, redis-py default client",
          f"{default_first * 1e3:.1f} ms", f"1/{default_first / first:,.0f}"],
         ["health() while down", f"{health_ms:.3f} ms", "-", "-", "-"]],
    ))  # fmt: skip
    return [
        {"metric": "detect p99 with Redis killed vs the embedded store's detect p99", "unit": "ms",
         "ours": float(p99), "peer": float(local_p99), "peer_name": "embedded detect", "target": "< 50 ms"},
    ]  # fmt: skip


def one_build(port: int, method: str) -> None:
    """``--_one``: this interpreter's build, detect against PING (and, for z-score, where a
    detect's time goes) on the redis-server at ``port``; one JSON line."""
    import redis

    import anomaly_detection

    client = redis.Redis(host="127.0.0.1", port=port)
    det = StatisticalAnomalyDetector(
        Settings(detection_method=method, window_size=100, redis_alerts=False), redis_client=client
    )
    d, p = detect_against_ping(client, det)
    out = {"package": anomaly_detection.__file__, "ratio": d / p, "detect": d, "ping": p}
    if method == "zscore":
        out.update(point_costs(client, det))
    print(json.dumps(out))


def against(folder: str, rounds: int) -> None:
    """``--against DIR``: this build and the one in DIR, one process per build and method, in
    turn on one redis-server, ``rounds`` times: the ratio to PING of each, and for z-score the
    client CPU, the script's server time and the wall per call."""
    import os

    proc, port, tmp = start_redis()
    try:
        for _ in range(rounds):
            for method in ("zscore", "mad", "ewma"):
                for name, path in (("this build", None), (folder, folder)):
                    env = dict(os.environ)
                    if path is not None:
                        env["PYTHONPATH"] = path
                    run = subprocess.run(
                        [sys.executable, __file__, "--_one", str(port), method],
                        env=env, capture_output=True, text=True, check=True,
                    )  # fmt: skip
                    o = json.loads(run.stdout.strip().splitlines()[-1])
                    line = f"{name:>12} {method:>6}: {o['ratio']:.2f}x ({o['detect']:,.0f} vs {o['ping']:,.0f}/s)"
                    if method == "zscore":
                        line += (
                            f"; client CPU {o['detect_cpu_us']:.1f} us (PING {o['ping_cpu_us']:.1f}), script "
                            f"{o['script_us']:.1f} us, wall {o['detect_wall_us']:.1f} us (PING {o['ping_wall_us']:.1f})"
                        )
                    print(line, flush=True)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--points", type=int, default=5000, help="points per sensor for the original prototype's pattern"
    )
    parser.add_argument("--batch", type=int, default=10_000, help="points per detect_batch call")
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument(
        "--quick", action="store_true", help="1,000 points for the original prototype's pattern, 5 sensors"
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    parser.add_argument(
        "--costs",
        action="store_true",
        help="only: detect against PING, where its time goes, the script's parts",
    )
    parser.add_argument(
        "--against",
        metavar="DIR",
        help="only: detect against PING and where its time goes, this build and the package in DIR "
        "(a folder holding anomaly_detection, e.g. main's python/ with the same _core), side by side",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --against")
    parser.add_argument("--_one", nargs=2, help=argparse.SUPPRESS)  # port, method: one build's figures
    args = parser.parse_args()
    if args._one:
        one_build(int(args._one[0]), args._one[1])
        return
    if args.against:
        against(args.against, args.rounds)
        return
    if args.costs:
        costs_only()
        return
    if args.quick:
        args.points, args.sensors = 1000, 5
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server)")
    import redis

    proc, port, folder = start_redis()
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        rng = np.random.default_rng(0)
        settings = Settings(detection_method="zscore", window_size=args.window, redis_alerts=False)

        values = rng.normal(20, 1, args.points)
        start = time.perf_counter()
        prototype_pattern(client, "prototype", values, args.window)
        prototype_rate = args.points / (time.perf_counter() - start)

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
        detect_rate, ping_rate = detect_against_ping(client, det)
        costs = point_costs(client, det)

        memory = client.memory_usage("anomaly:temp:data:s0:queue") + client.memory_usage(
            "anomaly:temp:data:s0:stats"
        )
        rows = [
            ["detect_batch, Redis (one script call per sensor)", f"{batch_rate / 1e3:,.0f} k",
             "prototype pipeline per point", f"{prototype_rate / 1e3:,.1f} k", f"{batch_rate / prototype_rate:,.0f}x", ">= 20x"],
            ["detect, one point per call (one script call)", f"{1 / np.mean(single):,.0f}",
             "prototype pipeline per point", f"{prototype_rate:,.0f}", f"{1 / np.mean(single) / prototype_rate:,.1f}x", "-"],
            ["detect, one point per call, interleaved with PING", f"{detect_rate:,.0f}",
             "PING on the same connection", f"{ping_rate:,.0f}", f"{detect_rate / ping_rate:.2f}x", ">= 0.7x"],
        ]  # fmt: skip
        print(f"machine: {machine()}; redis-server on loopback; window {args.window}; "
              f"{args.sensors} sensors x {args.batch:,} points")  # fmt: skip
        print(table(["ours", "points/s", "peer", "points/s", "ratio", "target"], rows))
        print(
            f"\nsingle detect latency: p50 {np.percentile(single_ms, 50):.3f} ms, "
            f"p99 {np.percentile(single_ms, 99):.3f} ms ({1e3 / single_ms.mean():,.0f} detects/s, one client)"
        )
        print(f"Redis memory per sensor with a full window of {args.window}: {memory:,} bytes")
        print(
            f"one detect: client CPU {costs['detect_cpu_us']:.1f} us (PING {costs['ping_cpu_us']:.1f} us), "
            f"append script on the server {costs['script_us']:.1f} us, wall {costs['detect_wall_us']:.1f} us "
            f"(PING {costs['ping_wall_us']:.1f} us)"
        )
        ensemble = ensemble_against_zscore(client, args, rng)
        ensemble += outage(args)
        if args.json:
            print(json.dumps({"bench": "redis", "figures": [
                {"metric": f"Redis detect_batch vs the original prototype's pipeline per point (window {args.window})",
                 "unit": "points/s", "ours": batch_rate, "peer": prototype_rate, "peer_name": "redis-py pipeline",
                 "target": ">= 20x"},
                {"metric": "Redis detect, one point per call, vs the original prototype's pipeline per point",
                 "unit": "points/s", "ours": 1 / float(np.mean(single)), "peer": prototype_rate,
                 "peer_name": "redis-py pipeline"},
                {"metric": "Redis detect, one point per call, vs PING on the same connection",
                 "unit": "calls/s", "ours": detect_rate, "peer": ping_rate, "peer_name": "PING (redis-py)",
                 "target": ">= 0.7x"},
                *ensemble,
            ]}))  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
