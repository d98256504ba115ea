"""The append script's cost with the writers' marks bounded by generations, beside a baseline's script
(another revision's ``scripts.APPEND``, read with ``git show``), on one redis-server started for the run
on a free 127.0.0.1 port: one-point appends by a writer that has appended before (the steady state: one
more field in the counters' ``HMGET``), and by writers new to the sensor (their first append reads the
server's ``TIME``; the baseline's does not). Server-side time from ``INFO commandstats`` (``evalsha``
usec per call), in turn, each repeat.

    python benchmarks/bench_marks.py [--baseline main] [--repeats 5] [--calls 3000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table
from bench_api import start_redis


def _baseline_append(rev: str) -> str:
    source = subprocess.run(
        ["git", "show", f"{rev}:python/anomaly_detection/redis/scripts.py"],
        check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parent,
    ).stdout  # fmt: skip
    namespace: dict[str, object] = {}
    exec(compile(source, f"{rev}:scripts.py", "exec"), namespace)  # noqa: S102 - the project's own file
    return str(namespace["APPEND"])


def _argument_for(source: str):
    """The packed argument as ``source``'s script reads it: a script of before the anomaly count
    in the argument (seven float64 in its head) is sent the head without the eighth (0 here)."""
    if "'<dddddddBBB'" in source:
        return lambda arg: arg[:56] + arg[64:]
    return lambda arg: arg


def _usec_per_call(client, script, calls: int, writer, adapt=lambda arg: arg) -> float:
    from anomaly_detection.redis import AnomalyRedisKeys
    from anomaly_detection.redis.codec import encode_append_point

    keys = AnomalyRedisKeys()
    sensor_keys = [keys.window("s"), keys.counters("s"), keys.mirror("s")]
    client.config_resetstat()
    for i in range(calls):
        wid, seq = writer(i)
        arg = adapt(encode_append_point(100, 3600, wid, seq, 20.0 + (i % 7), float(i)))
        script(keys=sensor_keys, args=[arg])
    stats = client.info("commandstats")["cmdstat_evalsha"]
    return float(stats["usec"]) / float(stats["calls"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()

    import redis

    from anomaly_detection.redis import scripts

    proc, url = start_redis()
    try:
        client = redis.Redis.from_url(url)
        versions = {args.baseline: _baseline_append(args.baseline), "this tree": scripts.APPEND}
        got: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for name, source in versions.items():
                script = client.register_script(source)
                adapt = _argument_for(source)
                client.flushall()
                steady = _usec_per_call(
                    client, script, args.calls, lambda i: (b"0123456789abcdef", i + 1), adapt
                )
                client.flushall()
                fresh = _usec_per_call(client, script, args.calls, lambda i: (b"w%015d" % i, 1), adapt)
                got.setdefault((name, "a writer's next append"), []).append(steady)
                got.setdefault((name, "a new writer's first append"), []).append(fresh)
        rows = [[name, case, f"{np.min(v):.2f}-{np.max(v):.2f}"] for (name, case), v in got.items()]
        print(machine())
        print(table(["script", "case", "server usec per EVALSHA (range of repeats)"], rows))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
