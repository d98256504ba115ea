"""StatisticalAnomalyDetector against the peers a user would otherwise use.

    python benchmarks/bench_detector.py [--points N] [--window W] [--quick] [--json] [--only zscore,ewma]

1. ``detect_batch`` of each classic method (embedded store) against what a data scientist
   with a NumPy array writes: pandas ``rolling`` / ``ewm`` on the same array, shifted by one
   so that the window holds only the past points, as the detector's does (z-score: rolling
   mean and std; MAD: the exact rolling MAD through NumPy's ``sliding_window_view`` and,
   as the fast approximation, pandas' two rolling medians; IQR: rolling quartiles; EWMA:
   ``ewm(adjust=False)`` against rolling mean and std; CUSUM: the rolling z-score and the
   recursion in a Python loop, which no pandas call expresses). Flags are compared point by
   point with ours: the agreement is reported beside the speed.
2. ``detect_many`` of 8 sensors on 2 threads against the same call on one thread;
3. ``detect_batch`` against a pure-Python per-point detector written as a FastAPI app would
   (a deque per sensor, mean and stdev over the window with the statistics module): an
   extra row, not the headline;
4. ``detect`` one point at a time against River's rolling statistics
   (``utils.Rolling(stats.Mean())`` and ``utils.Rolling(stats.Var())``) per point.
All in one run, on one synthetic stream. Ours against a peer (1 and 4): the best process CPU
time of each over interleaved repeats (both run on one thread; CPU time leaves out the time
either waited for a core on a shared machine). The other rows: medians of wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections import defaultdict, deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, median_seconds, table

from anomaly_detection import StatisticalAnomalyDetector


class PurePythonDetector:
    """What a FastAPI app writes without this package."""

    def __init__(self, window_size: int, threshold: float = 3.0, min_samples: int = 10) -> None:
        self.windows: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window_size))
        self.threshold = threshold
        self.min_samples = min_samples

    def detect(self, sensor: str, value: float) -> tuple[bool, float]:
        window = self.windows[sensor]
        z = 0.0
        if len(window) >= 2:
            mean = statistics.fmean(window)
            std = statistics.stdev(window) or 1e-12
            z = (value - mean) / std
        window.append(value)
        return len(window) > self.min_samples and abs(z) > self.threshold, z


def river_detector(window_size: int):
    from river import stats, utils

    mean = utils.Rolling(stats.Mean, window_size=window_size)
    var = utils.Rolling(stats.Var, window_size=window_size)

    def detect(value: float) -> tuple[bool, float]:
        m, v = mean.get(), var.get()
        z = (value - m) / math.sqrt(v) if v > 0 else 0.0
        mean.update(value)
        var.update(value)
        return abs(z) > 3.0, z

    return detect


# --- the pandas peers: what a data scientist writes for each method ----------------------
# Each returns the flags of the points; the window of point i is the W points before it
# (hence shift(1)), with at least two of them, and nothing is flagged before MIN_SAMPLES.

MIN_SAMPLES = 10
THRESHOLDS = {"zscore": 3.0, "mad": 3.5, "iqr": 1.5, "ewma": 3.0, "cusum": 5.0}


def _warm(flags, n_seen: int = MIN_SAMPLES) -> np.ndarray:
    flags = np.array(flags, dtype=bool)  # a writable copy
    flags[:n_seen] = False
    return flags


def pandas_zscore(pd, x: np.ndarray, w: int) -> np.ndarray:
    s = pd.Series(x)
    roll = s.rolling(w, min_periods=2)
    mean, std = roll.mean().shift(1), roll.std().shift(1)
    return _warm(((s - mean) / std).abs() > THRESHOLDS["zscore"])


def pandas_ewma(pd, x: np.ndarray, w: int, alpha: float = 0.3) -> np.ndarray:
    s = pd.Series(x)
    roll = s.rolling(w, min_periods=2)
    mean, std = roll.mean().shift(1), roll.std().shift(1)
    chart = s.ewm(alpha=alpha, adjust=False).mean()
    return _warm(((chart - mean) / (std * math.sqrt(alpha / (2 - alpha)))).abs() > THRESHOLDS["ewma"])


def pandas_cusum(pd, x: np.ndarray, w: int, k: float = 0.5) -> np.ndarray:
    s = pd.Series(x)
    roll = s.rolling(w, min_periods=2)
    z = ((s - roll.mean().shift(1)) / roll.std().shift(1)).fillna(0.0).tolist()
    h = THRESHOLDS["cusum"]
    flags = [False] * len(z)
    pos = neg = 0.0
    for i, zi in enumerate(z):  # the recursion has no vectorised pandas form
        pos, neg = max(0.0, pos + zi - k), max(0.0, neg - zi - k)
        if max(pos, neg) > h and i >= MIN_SAMPLES:
            flags[i] = True
            pos = neg = 0.0
    return np.array(flags)


def pandas_iqr(pd, x: np.ndarray, w: int) -> np.ndarray:
    s = pd.Series(x)
    roll = s.rolling(w, min_periods=2)
    q1, q3 = roll.quantile(0.25).shift(1), roll.quantile(0.75).shift(1)
    iqr = q3 - q1
    k = THRESHOLDS["iqr"]
    return _warm((s > q3 + k * iqr) | (s < q1 - k * iqr))


def pandas_mad_approx(pd, x: np.ndarray, w: int) -> np.ndarray:
    """Two rolling medians: each deviation is taken from its own point's median, not from
    the median of the window it is compared in (the usual fast approximation)."""
    s = pd.Series(x)
    median = s.rolling(w, min_periods=2).median().shift(1)
    mad = (s - median).abs().rolling(w, min_periods=2).median().shift(1)
    return _warm((0.6745 * (s - median) / mad).abs() > THRESHOLDS["mad"])


def numpy_mad_exact(x: np.ndarray, w: int) -> np.ndarray:
    """The exact rolling MAD over full windows (points w.. of the series) with NumPy's
    sliding windows; the first w points get no verdict (False)."""
    from numpy.lib.stride_tricks import sliding_window_view

    windows = sliding_window_view(x[:-1], w)  # windows[j] is the past of point j + w
    median = np.median(windows, axis=1)
    mad = np.median(np.abs(windows - median[:, None]), axis=1)
    flags = np.zeros(len(x), dtype=bool)
    flags[w:] = np.abs(0.6745 * (x[w:] - median) / mad) > THRESHOLDS["mad"]
    return flags


def ours(method: str, x: np.ndarray, ts: np.ndarray, w: int):
    det = StatisticalAnomalyDetector(detection_method=method, window_size=w, min_samples=MIN_SAMPLES)
    return det.detect_batch("s", x, ts).is_anomaly


def paired_cpu_seconds(ours_fn, peer_fn, repeats: int) -> tuple[float, float]:
    """Best process CPU time of each of two functions over ``repeats`` interleaved runs (after
    one warm-up run each). Both are single-threaded, so CPU time is the time each ran; on a
    machine shared with other jobs it leaves out the time either waited for a core, and the
    interleaving gives both the same conditions."""
    ours_fn(), peer_fn()
    best_ours = best_peer = math.inf
    for _ in range(repeats):
        start = time.process_time()
        ours_fn()
        best_ours = min(best_ours, time.process_time() - start)
        start = time.process_time()
        peer_fn()
        best_peer = min(best_peer, time.process_time() - start)
    return best_ours, best_peer


def agreement(a: np.ndarray, b: np.ndarray, start: int = 0) -> float:
    return float(np.mean(a[start:] == b[start:]))


def pandas_rows(x: np.ndarray, ts: np.ndarray, w: int, order_points: int, quick: bool, only=None):
    """(table rows, JSON figures) of every method (or those in ``only``) against its pandas
    (or NumPy) peer."""
    try:
        import pandas as pd
    except ImportError:
        fig = {"metric": "detect_batch vs pandas rolling", "unit": "points/s", "ours": None, "peer": None,
               "peer_name": "pandas", "missing": "pandas"}  # fmt: skip
        return [["detect_batch, every method", "-", "pandas (not installed)", "-", "-", "-", "-"]], [fig]
    small = order_points
    cases = [  # method, peer label, peer, points, target, first point compared for agreement
        ("zscore", "pandas rolling mean+std", lambda: pandas_zscore(pd, x, w), len(x), ">= 5x", 0),
        ("ewma", "pandas ewm + rolling mean+std", lambda: pandas_ewma(pd, x, w), len(x), ">= 5x", 0),
        ("cusum", "pandas rolling z + Python loop", lambda: pandas_cusum(pd, x[:small], w), small, ">= 5x", 0),
        ("iqr", "pandas rolling quantile x2", lambda: pandas_iqr(pd, x[:small], w), small, ">= 5x", 0),
        ("mad", "pandas two rolling medians (approx.)", lambda: pandas_mad_approx(pd, x[:small], w),
         small, ">= 2x", w),
        ("mad", "NumPy sliding windows (exact)", lambda: numpy_mad_exact(x[:small], w), small, "-", w),
    ]  # fmt: skip
    if only:
        cases = [case for case in cases if case[0] in only]
    rows, figures = [], []
    for method, label, peer, n, target, start in cases:
        t_ours, t_peer = paired_cpu_seconds(
            lambda method=method, n=n: ours(method, x[:n], ts[:n], w), peer, 3 if quick else 5
        )
        agree = agreement(ours(method, x[:n], ts[:n], w), peer(), start)
        rate, peer_rate = n / t_ours, n / t_peer
        rows.append([f"detect_batch {method}", f"{rate / 1e6:.2f} M", label, f"{peer_rate / 1e6:.2f} M",
                     f"{rate / peer_rate:.1f}x", f"{agree:.4%}", target])  # fmt: skip
        figures.append({"metric": f"detect_batch {method} vs {label} (W={w}, {n:,} points)",
                        "unit": "points/s", "ours": rate, "peer": peer_rate, "peer_name": label,
                        "agreement": agree, "target": target})  # fmt: skip
    return rows, figures


def _idle_seconds() -> float | None:
    """Idle time of all the machine's cores so far (Linux ``/proc/stat``; None elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def stream_scaling(n: int = 16_000_000, reps: int = 3) -> tuple[float, float]:
    """The machine's memory streaming rate (GB/s) on 1 thread and on 2 (NumPy's multiply of a
    128 MB array into another, the GIL released): how far a memory-bound call can gain from a
    second core here."""
    import threading

    src, dst = [np.full(n, 1.0) for _ in range(2)], [np.full(n, 0.0) for _ in range(2)]  # pages touched

    def stream(i: int) -> None:
        for _ in range(reps):
            np.multiply(src[i], 1.5, out=dst[i])

    stream(0)  # warm-up
    start = time.perf_counter()
    stream(0)
    stream(1)
    one = time.perf_counter() - start
    pool = [threading.Thread(target=stream, args=(i,)) for i in range(2)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    two = time.perf_counter() - start
    moved = 2 * reps * 2 * n * 8 / 1e9  # read and written
    return moved / one, moved / two


def unstamped_inputs_cpu(stream: np.ndarray, sensors: int = 8, repeats: int = 15) -> float:
    """CPU seconds (best of ``repeats``) of the facade's serial preparation of a ``detect_many``
    call whose sensors come without timestamps (stamped now): the part no thread shares."""
    from anomaly_detection.core.detector import _many_inputs

    parts = {f"s{i}": part for i, part in enumerate(np.array_split(stream, sensors))}
    store = StatisticalAnomalyDetector(detection_method="zscore").store
    best = math.inf
    for _ in range(repeats):
        start = time.process_time()
        prepared = _many_inputs(parts, None, store)
        best = min(best, time.process_time() - start)
        del prepared
    return best


#: detect_many's sensors' points in all, per method (the compute-bound ones fewer).
MANY_POINTS = {"zscore": 4_000_000, "mad": 1_000_000, "ensemble": 200_000}


def many_rows(
    stream: np.ndarray, ts: np.ndarray, window: int, methods: list[str], repeats: int, sensors: int = 8
) -> tuple[list[list[str]], list[dict]]:
    """``detect_many`` of ``sensors`` contiguous parts of the stream (timestamps given) on 2
    threads against the same call on 1, interleaved, a fresh detector each call: wall and
    process CPU time of each, the ratio of each pair's wall times (range and median), and the
    share of a core that stood idle, machine-wide, during the one-thread calls (about 1 when
    the second core was free for the second thread, about 0 when others held it) and the cores
    the two-thread call kept busy (its CPU time over its wall time: 2 at best)."""
    rows, figures = [], []
    for method in methods:
        n = min(len(stream), MANY_POINTS[method])
        parts = dict(zip((f"s{i}" for i in range(sensors)), np.array_split(stream[:n], sensors)))
        stamps = dict(zip(parts, np.array_split(ts[:n], sensors)))
        wall: dict[int, list[float]] = {1: [], 2: []}
        cpu: dict[int, list[float]] = {1: [], 2: []}
        idle, idle_wall, results = 0.0, 0.0, {}
        for _ in range(repeats + 1):  # the first pair warms up
            for threads in (1, 2):
                det = StatisticalAnomalyDetector(detection_method=method, window_size=window)
                results.pop(threads, None)  # its output memory back to the cache, as a caller's would
                before = _idle_seconds()
                w0, c0 = time.perf_counter(), time.process_time()
                results[threads] = det.detect_many(parts, stamps, threads=threads)
                w, c = time.perf_counter() - w0, time.process_time() - c0
                after = _idle_seconds()
                wall[threads].append(w)
                cpu[threads].append(c)
                if threads == 1 and before is not None and after is not None:
                    idle, idle_wall = idle + after - before, idle_wall + w
        equal = all(
            np.array_equal(getattr(results[1][k], f), getattr(results[2][k], f), equal_nan=True)
            for k in parts
            for f in ("is_anomaly", "scores", "deviations", "expected", "window_counts")
        )
        ratios = sorted(a / b for a, b in zip(wall[1][1:], wall[2][1:]))
        w1, w2 = statistics.median(wall[1][1:]), statistics.median(wall[2][1:])
        c1, c2 = statistics.median(cpu[1][1:]), statistics.median(cpu[2][1:])
        free = f"{idle / idle_wall:.2f}" if idle_wall else "-"
        rows.append([f"detect_many {method}, {sensors} sensors, 2 threads", f"{n / w2 / 1e6:.2f} M",
                     "same call, 1 thread", f"{n / w1 / 1e6:.2f} M",
                     f"{w1 / w2:.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})",
                     "equal" if equal else "DIFFERENT", ">= 1.8x"])  # fmt: skip
        used = statistics.median(c / w for c, w in zip(cpu[2][1:], wall[2][1:]))
        rows.append([f"  wall / CPU ms, 2 threads: {w2 * 1e3:.1f} / {c2 * 1e3:.1f}", f"{used:.2f} cores",
                     f"1 thread: {w1 * 1e3:.1f} / {c1 * 1e3:.1f}", "",
                     f"idle core {free}", f"load {os.getloadavg()[0]:.1f}", ""])  # fmt: skip
        figures.append({"metric": f"detect_many ({method}, {sensors} sensors, {n:,} points) on 2 threads vs 1",
                        "unit": "points/s", "ours": n / w2, "peer": n / w1, "peer_name": "threads=1",
                        "cpu_seconds": {"2": c2, "1": c1}, "pair_ratios": ratios, "idle_core": free,
                        "cores_used": used,
                        "equal": equal, "target": ">= 1.8x"})  # fmt: skip
    return rows, figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=4_000_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument(
        "--quick", action="store_true", help="200,000 points (100,000 for the order statistics and CUSUM)"
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    parser.add_argument(
        "--many",
        help="comma-separated methods (zscore,mad,ensemble): just their detect_many rows, 2 threads against 1",
    )
    parser.add_argument("--repeats", type=int, default=5, help="interleaved pairs of the detect_many rows")
    parser.add_argument(
        "--only", help="comma-separated methods (e.g. zscore,ewma): just their pandas rows, no other row"
    )
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    if args.quick:
        args.points = min(args.points, 200_000)
    order_points = min(args.points, 100_000 if args.quick else 500_000)
    rng = np.random.default_rng(0)
    stream = rng.normal(20.0, 1.0, args.points)
    stream[rng.integers(0, args.points, args.points // 1000)] += 8.0
    ts = np.arange(args.points, dtype=np.float64)
    small = stream[: 10_000 if args.quick else 50_000].tolist()

    if args.many:
        rows, figures = many_rows(stream, ts, args.window, args.many.split(","), args.repeats)
        print(f"machine: {machine()}; window {args.window}; wall (median) and process CPU time, interleaved")
        print(table(["ours", "points/s", "peer", "points/s", "ratio (pairs)", "results", "target"], rows))
        one, two = stream_scaling()
        print(f"memory streaming (NumPy multiply, 128 MB arrays): {one:.1f} GB/s on 1 thread, {two:.1f} on 2")
        unstamped = unstamped_inputs_cpu(stream)
        print(
            f"facade inputs of {len(stream):,} points in 8 sensors without timestamps: {unstamped * 1e3:.2f} ms CPU"
        )
        if args.json:
            print(json.dumps({"bench": "detector_many", "figures": figures, "stream_gb_s": [one, two]}))
        return
    rows, figures = pandas_rows(stream, ts, args.window, order_points, args.quick, only)
    if only:
        print(
            f"machine: {machine()}; window {args.window}; {args.points:,} points; best CPU time of interleaved runs"
        )
        print(table(["ours", "points/s", "peer", "points/s", "ratio", "flags agree", "target"], rows))
        if args.json:
            print(json.dumps({"bench": "detector", "points": args.points, "figures": figures}))
        return

    def batch():
        ours("zscore", stream, ts, args.window)

    def pure_python():
        det = PurePythonDetector(args.window)
        for v in small:
            det.detect("s", v)

    def single():
        det = StatisticalAnomalyDetector(detection_method="zscore", window_size=args.window)
        for i, v in enumerate(small):
            det.detect("s", v, float(i))

    t_batch = median_seconds(batch, 5)
    t_pure = median_seconds(pure_python, 3)
    batch_rate, pure_rate = args.points / t_batch, len(small) / t_pure
    rows.append(["detect_batch zscore", f"{batch_rate / 1e6:.2f} M", "pure Python deque detector (extra)",
                 f"{pure_rate / 1e6:.4f} M", f"{batch_rate / pure_rate:.0f}x", "-", ">= 200x"])  # fmt: skip
    figures.append(
        {
            "metric": "detect_batch (z-score) vs pure-Python deque detector",
            "unit": "points/s",
            "ours": batch_rate,
            "peer": pure_rate,
            "peer_name": "pure Python",
            "target": ">= 200x",
        }
    )
    t_single = median_seconds(single, 3)
    single_rate = len(small) / t_single
    try:
        river = river_detector(args.window)
        t_single, t_river = paired_cpu_seconds(
            single, lambda: [river(v) for v in small], 3 if args.quick else 5
        )
        single_rate, river_rate = len(small) / t_single, len(small) / t_river
        rows.append(["detect, one point", f"{single_rate / 1e6:.2f} M", "River rolling Mean+Var",
                     f"{river_rate / 1e6:.2f} M", f"{single_rate / river_rate:.1f}x", "-", ">= 10x"])  # fmt: skip
        figures.append(
            {
                "metric": "detect one point vs River rolling Mean+Var",
                "unit": "points/s",
                "ours": single_rate,
                "peer": river_rate,
                "peer_name": "river",
                "target": ">= 10x",
            }
        )
    except ImportError:
        figures.append(
            {
                "metric": "detect one point vs River rolling Mean+Var",
                "unit": "points/s",
                "ours": single_rate,
                "peer": None,
                "peer_name": "river",
                "missing": "river",
                "target": ">= 10x",
            }
        )
        rows.append(
            [
                "detect, one point",
                f"{single_rate / 1e6:.2f} M",
                "River (not installed)",
                "-",
                "-",
                "-",
                ">= 10x",
            ]
        )

    # Many sensors in one call: the same work on 2 threads against 1 (the GIL released).
    many, many_figures = many_rows(stream, ts, args.window, ["zscore"], 3 if args.quick else 5)
    rows += many
    figures += many_figures

    print(
        f"machine: {machine()}; window {args.window}; {args.points:,} points "
        f"({order_points:,} for CUSUM, IQR and MAD); against a peer: best CPU time of interleaved runs"
    )
    print(table(["ours", "points/s", "peer", "points/s", "ratio", "flags agree", "target"], rows))
    print(f"\ndetect_batch z-score absolute: {batch_rate / 1e6:.1f} M points/s on one core (target >= 100 M)")
    if args.json:
        print(json.dumps({"bench": "detector", "points": args.points, "figures": figures}))


if __name__ == "__main__":
    main()
