"""Sketches against Apache DataSketches (``datasketches`` on PyPI), same data, one run.

For each pair: updates per second from a NumPy batch and one item at a time, memory
in bytes, and error. DataSketches' count-min, HLL and frequent-items sketches have no
batch update in Python, so their "batch" is the loop a user would write; its KLL and
t-digest take NumPy arrays.

    PYTHONPATH=python python benchmarks/bench_sketches.py [--n 1000000] [--single 200000] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import datasketches as ds
import numpy as np

from anomaly_detection.sketches import CountMinSketch, HyperLogLog, TDigest, TopK


def best_time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def zipf_ints(rng: np.random.Generator, n: int, a: float, universe: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, universe + 1) ** a
    return (rng.choice(universe, size=n, p=weights / weights.sum()) + 1).astype(np.int64)


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def fmt_rate(r: float) -> str:
    return f"{r / 1e6:8.2f} M/s" if r >= 1e5 else f"{r / 1e3:8.1f} k/s"


def bench_count_min(data: np.ndarray, single: np.ndarray, repeat: int) -> dict:
    eps, delta = 0.0005, 0.01
    ours = CountMinSketch.from_error(eps, delta)
    width, depth = ours.width, ours.depth
    items = data.tolist()

    def ours_batch():
        s = CountMinSketch(width, depth)
        s.incrby(data)
        return s

    def theirs_batch():
        s = ds.count_min_sketch(depth, width)
        for x in items:
            s.update(x)
        return s

    def ours_single():
        s = CountMinSketch(width, depth)
        for x in single.tolist():
            s.incrby(x)

    def theirs_single():
        s = ds.count_min_sketch(depth, width)
        for x in single.tolist():
            s.update(x)

    t_ob, t_tb = best_time(ours_batch, repeat), best_time(theirs_batch, repeat)
    t_os, t_ts = best_time(ours_single, repeat), best_time(theirs_single, repeat)
    o, t = ours_batch(), theirs_batch()
    keys, truth = np.unique(data, return_counts=True)
    heavy = keys[np.argsort(-truth)][:2000]
    true_heavy = np.sort(truth)[::-1][:2000]
    err_o = np.mean(o.query(heavy) - true_heavy) / len(data)
    err_t = np.mean([t.get_estimate(int(k)) for k in heavy] - true_heavy) / len(data)
    return {
        "name": f"count-min {width}x{depth}",
        "batch": (rate(len(data), t_ob), rate(len(data), t_tb)),
        "single": (rate(len(single), t_os), rate(len(single), t_ts)),
        "memory": (o.info()["memory_bytes"], t.get_serialized_size_bytes()),
        "error": (err_o, err_t),
        "error_name": "mean overcount / N, top 2000",
    }


def bench_hll(data: np.ndarray, single: np.ndarray, repeat: int) -> dict:
    lg_k = 12
    items = data.tolist()

    def ours_batch():
        s = HyperLogLog(lg_k)
        s.add(data)
        return s

    def theirs_batch():
        s = ds.hll_sketch(lg_k, ds.tgt_hll_type.HLL_8)
        for x in items:
            s.update(x)
        return s

    def ours_single():
        s = HyperLogLog(lg_k)
        for x in single.tolist():
            s.add(x)

    def theirs_single():
        s = ds.hll_sketch(lg_k, ds.tgt_hll_type.HLL_8)
        for x in single.tolist():
            s.update(x)

    t_ob, t_tb = best_time(ours_batch, repeat), best_time(theirs_batch, repeat)
    t_os, t_ts = best_time(ours_single, repeat), best_time(theirs_single, repeat)
    # Error: mean |relative error| over 20 streams of distinct integers of growing size.
    rel_o, rel_t = [], []
    for i, n in enumerate(np.geomspace(1_000, 200_000, 20).astype(int)):
        stream = np.arange(n, dtype=np.int64) + i * 10**7
        o = HyperLogLog(lg_k)
        o.add(stream)
        t = ds.hll_sketch(lg_k, ds.tgt_hll_type.HLL_8)
        for x in stream.tolist():
            t.update(x)
        rel_o.append(abs(o.count() - n) / n)
        rel_t.append(abs(t.get_estimate() - n) / n)
    t = theirs_batch()
    return {
        "name": f"HyperLogLog p={lg_k}",
        "batch": (rate(len(data), t_ob), rate(len(data), t_tb)),
        "single": (rate(len(single), t_os), rate(len(single), t_ts)),
        "memory": (ours_batch().info()["memory_bytes"], t.get_updatable_serialization_bytes()),
        "error": (float(np.mean(rel_o)), float(np.mean(rel_t))),
        "error_name": "mean |relative error|, 20 streams",
    }


def rank_error(sorted_values: np.ndarray, quantile: Callable[[float], float]) -> float:
    qs = (0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999)
    n = len(sorted_values)
    return max(abs(np.searchsorted(sorted_values, quantile(q)) / n - q) for q in qs)


def bench_quantiles(values: np.ndarray, single: np.ndarray, repeat: int) -> list[dict]:
    ordered = np.sort(values)

    def ours_batch():
        s = TDigest(100)
        s.add(values)
        s.quantile(0.5)  # include the final merge of the buffer
        return s

    def tdigest_batch():
        s = ds.tdigest_double(100)
        s.update(values)
        s.get_quantile(0.5)
        return s

    def kll_batch():
        s = ds.kll_doubles_sketch(200)
        s.update(values)
        s.get_quantile(0.5)
        return s

    def ours_single():
        s = TDigest(100)
        for x in single.tolist():
            s.add(x)

    def tdigest_single():
        s = ds.tdigest_double(100)
        for x in single.tolist():
            s.update(x)

    def kll_single():
        s = ds.kll_doubles_sketch(200)
        for x in single.tolist():
            s.update(x)

    o, td, kll = ours_batch(), tdigest_batch(), kll_batch()
    t_ob = best_time(ours_batch, repeat)
    t_os = best_time(ours_single, repeat)
    err_o = rank_error(ordered, o.quantile)
    mem_o = o.info()["memory_bytes"]
    rows = []
    for label, batch, one, sketch in (
        ("t-digest vs DS t-digest", tdigest_batch, tdigest_single, td),
        ("t-digest vs DS KLL k=200", kll_batch, kll_single, kll),
    ):
        t_tb, t_ts = best_time(batch, repeat), best_time(one, repeat)
        mem_t = (
            sketch.get_serialized_size_bytes()
            if hasattr(sketch, "get_serialized_size_bytes")
            else len(sketch.serialize())
        )
        rows.append(
            {
                "name": label,
                "batch": (rate(len(values), t_ob), rate(len(values), t_tb)),
                "single": (rate(len(single), t_os), rate(len(single), t_ts)),
                "memory": (mem_o, mem_t),
                "error": (err_o, rank_error(ordered, sketch.get_quantile)),
                "error_name": "max rank error, q in .001...999",
            }
        )
    return rows


def bench_frequent(data: np.ndarray, single: np.ndarray, repeat: int) -> dict:
    k = 20
    strings = np.array([f"endpoint-{x}" for x in data.tolist()])
    listed = strings.tolist()
    one = listed[: len(single)]

    def ours_batch():
        s = TopK(k, width=200, depth=5)
        s.add(strings)
        return s

    def theirs_batch():
        s = ds.frequent_strings_sketch(10)
        for x in listed:
            s.update(x)
        return s

    def ours_single():
        s = TopK(k, width=200, depth=5)
        for x in one:
            s.add(x)

    def theirs_single():
        s = ds.frequent_strings_sketch(10)
        for x in one:
            s.update(x)

    t_ob, t_tb = best_time(ours_batch, repeat), best_time(theirs_batch, repeat)
    t_os, t_ts = best_time(ours_single, repeat), best_time(theirs_single, repeat)
    keys, counts = np.unique(strings, return_counts=True)
    true_top = set(keys[np.argsort(-counts)][:k].tolist())
    o, t = ours_batch(), theirs_batch()
    found_o = len(true_top & set(o.list())) / k
    ranked = t.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_POSITIVES)
    found_t = len(true_top & {row[0] for row in ranked[:k]}) / k
    return {
        "name": f"top-{k} vs frequent_strings",
        "batch": (rate(len(data), t_ob), rate(len(data), t_tb)),
        "single": (rate(len(single), t_os), rate(len(single), t_ts)),
        "memory": (o.info()["memory_bytes"], t.get_serialized_size_bytes()),
        "error": (1 - found_o, 1 - found_t),
        "error_name": "1 - recall of the true top 20",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="items in the batch runs")
    parser.add_argument("--single", type=int, default=200_000, help="items in the one-at-a-time runs")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--quick", action="store_true", help="n=200,000, single=50,000, best of 2")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    if args.quick:
        args.n, args.single, args.repeat = min(args.n, 200_000), min(args.single, 50_000), min(args.repeat, 2)
    rng = np.random.default_rng(42)
    data = zipf_ints(rng, args.n, 1.1, 1_000_000)
    single = data[: args.single]
    values = rng.lognormal(size=args.n)

    print(
        f"# sketches vs datasketches {ds.__name__} | {platform.processor() or platform.machine()} | n={args.n:,}"
    )
    rows = [bench_count_min(data, single, args.repeat), bench_hll(data, single, args.repeat)]
    rows += bench_quantiles(values, values[: args.single], args.repeat)
    rows.append(bench_frequent(data, single, args.repeat))

    header = (
        f"{'sketch':<28} {'batch ours':>12} {'batch DS':>12} {'x':>7} {'one ours':>12} {'one DS':>12} {'x':>6}"
        f" {'mem ours':>9} {'mem DS':>9} {'err ours':>9} {'err DS':>9}  error measure"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        (bo, bt), (so, st), (mo, mt), (eo, et) = r["batch"], r["single"], r["memory"], r["error"]
        print(
            f"{r['name']:<28} {fmt_rate(bo):>12} {fmt_rate(bt):>12} {bo / bt:6.1f}x {fmt_rate(so):>12}"
            f" {fmt_rate(st):>12} {so / st:5.2f}x {mo:>9,} {mt:>9,} {eo:9.2e} {et:9.2e}  {r['error_name']}"
        )
    if args.json:
        figures = []
        for r in rows:
            name = r["name"].replace(" vs DS ", " vs DataSketches ")
            figures.append(
                {
                    "metric": f"{name}: batch update ({args.n:,} items)",
                    "unit": "items/s",
                    "ours": r["batch"][0],
                    "peer": r["batch"][1],
                    "peer_name": "datasketches",
                    "target": ">= 10x",
                }
            )
            figures.append(
                {
                    "metric": f"{name}: one item per call",
                    "unit": "items/s",
                    "ours": r["single"][0],
                    "peer": r["single"][1],
                    "peer_name": "datasketches",
                }
            )
            figures.append(
                {
                    "metric": f"{name}: error ({r['error_name']})",
                    "unit": "error",
                    "kind": "quality",
                    "better": "lower",
                    "ours": float(r["error"][0]),
                    "peer": float(r["error"][1]),
                    "peer_name": "datasketches",
                }
            )
        print(json.dumps({"bench": "sketches", "n": args.n, "figures": figures}))


if __name__ == "__main__":
    main()
