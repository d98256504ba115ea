"""IsolationForest against scikit-learn's IsolationForest(n_jobs=1), same run, same data.

On the 12 ADBench sets in ../shared/data/adbench (or $ANOMALY_DATA_DIR/adbench),
seeds 0, 1, 2: ROC-AUC of each (fitted and scored on all of X, as ADBench's
reference), fit and score time on one thread, and scaling with threads.

With --large (only then): the ADBench-sized shapes that dominate real use, synthetic
with planted anomalies (500k x 3, 500k x 30, 300k x 500), as float64 and float32, C
and Fortran order: fit and score_samples time of ours vs scikit-learn n_jobs=1 (once
each: these take seconds), ROC-AUC of both over seeds 0, 1, 2 (float64, C order), and
whether our scores on the other layouts equal those on the float64 C array; and the
read-bandwidth floor of fit: `X.sum()` and our finiteness pass alone (a fit of 1 tree of 2 rows).

    PYTHONPATH=python python benchmarks/bench_forest.py [--repeats 3] [--threads 1,2] [--quick] [--json]
    PYTHONPATH=python python benchmarks/bench_forest.py --large [--shapes 500000x3,500000x30,300000x500]
    PYTHONPATH=python python benchmarks/bench_forest.py --floor [--shapes 300000x500] [--repeats 7]

With --floor: fit against the read-bandwidth floor at each shape, every layout, all
timings interleaved in one process (CPU time and wall time, min-max over --repeats):
`X.sum()`, a tight AVX2 read loop and an AVX2 exponent-bit finiteness loop (read_floor.c,
built with $CC or cc), our finiteness pass alone, our fit and scikit-learn's fit.
With --score: score_samples of ours and scikit-learn's at each shape, every layout,
interleaved in one process (CPU and wall time, min-max), and the ratio per pair.

    PYTHONPATH=python python benchmarks/bench_forest.py --score [--shapes 300000x500] [--repeats 5]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import IsolationForest as SkIsolationForest
from sklearn.metrics import roc_auc_score

from anomaly_detection.forest import IsolationForest

SEEDS = (0, 1, 2)
QUICK_SETS = ("4_breastw", "6_cardio", "23_mammography", "38_thyroid")


def data_dir() -> Path:
    root = os.environ.get("ANOMALY_DATA_DIR")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (base / "adbench").exists():
        base = Path("/work/shared/data")
    return base / "adbench"


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def planted(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n rows of d features, 1% planted anomalies: inliers from 3 correlated Gaussian
    clusters; half the anomalies uniform in a box wider than the data, half inliers
    shifted by 4 on 3 random features (hard to see among many features)."""
    rng = np.random.default_rng(seed)
    n_out = n // 100
    centres = rng.normal(scale=3.0, size=(3, d))
    X = rng.standard_normal((n, d))
    X[:, 1:] += 0.5 * X[:, :1]  # some correlation with feature 0
    X += centres[rng.integers(0, 3, size=n)]
    y = np.zeros(n, dtype=np.int8)
    out = rng.choice(n, size=n_out, replace=False)
    y[out] = 1
    box, shift = out[: n_out // 2], out[n_out // 2 :]
    lo, hi = X.min(axis=0) - 1.0, X.max(axis=0) + 1.0
    X[box] = rng.uniform(lo, hi, size=(len(box), d))
    for i in shift:
        cols = rng.choice(d, size=min(3, d), replace=False)
        X[i, cols] += 4.0 * rng.choice((-1.0, 1.0), size=len(cols))
    return X, y


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def large(shapes: list[tuple[int, int]]) -> list[dict]:
    """The large-shape table; returns its rows for --json."""
    print(
        f"{'shape':<14}{'dtype':<9}{'order':<6}{'fit ours s':>11}{'fit sk s':>10}{'fit x':>7}"
        f"{'score ours s':>13}{'score sk s':>11}{'score x':>8}{'same scores':>13}{'X.sum() s':>11}{'pass s':>8}"
    )
    rows = []
    for n, d in shapes:
        X, y = planted(n, d)
        aucs = {"ours": [], "sk": []}
        reference = None
        for dtype, order in ((np.float64, "C"), (np.float64, "F"), (np.float32, "C"), (np.float32, "F")):
            Xl = np.asarray(X, dtype=dtype, order=order)
            t_fit, ours = timed(lambda Xl=Xl: IsolationForest(random_state=0, n_jobs=1).fit(Xl))
            t_score, s_ours = timed(lambda f=ours, Xl=Xl: f.score_samples(Xl))
            t_fit_sk, sk = timed(lambda Xl=Xl: SkIsolationForest(random_state=0, n_jobs=1).fit(Xl))
            t_score_sk, s_sk = timed(lambda f=sk, Xl=Xl: f.score_samples(Xl))
            # The read-bandwidth floor of fit: NumPy summing X once, and our finiteness pass alone
            # (a fit of one tree of two rows does nothing else of note).
            t_sum, _ = timed(lambda Xl=Xl: Xl.sum())
            t_pass, _ = timed(
                lambda Xl=Xl: IsolationForest(n_estimators=1, max_samples=2, random_state=0).fit(Xl)
            )
            if dtype is np.float64 and order == "C":
                reference = s_ours
                aucs["ours"].append(roc_auc_score(y, -s_ours))
                aucs["sk"].append(roc_auc_score(y, -s_sk))
                same = "-"
            elif dtype is np.float64:
                same = "yes" if np.array_equal(s_ours, reference) else "NO"
            else:  # float32: the same scores as the float64 array of the same (rounded) values
                same = (
                    "yes" if np.array_equal(s_ours, ours.score_samples(np.asarray(Xl, np.float64))) else "NO"
                )
            print(
                f"{f'{n // 1000}k x {d}':<14}{np.dtype(dtype).name:<9}{order:<6}{t_fit:>11.3f}{t_fit_sk:>10.2f}"
                f"{t_fit_sk / t_fit:>6.1f}x{t_score:>13.3f}{t_score_sk:>11.2f}{t_score_sk / t_score:>7.1f}x{same:>13}"
                f"{t_sum:>11.3f}{t_pass:>8.3f}",
                flush=True,
            )
            rows.append({"n": n, "d": d, "dtype": np.dtype(dtype).name, "order": order, "fit": [t_fit, t_fit_sk],
                         "score": [t_score, t_score_sk], "same": same, "floor": [t_sum, t_pass]})  # fmt: skip
            del Xl
        for seed in SEEDS[1:]:
            aucs["ours"].append(roc_auc_score(y, -IsolationForest(random_state=seed).fit(X).score_samples(X)))
            sk = SkIsolationForest(random_state=seed, n_jobs=1).fit(X)
            aucs["sk"].append(roc_auc_score(y, -sk.score_samples(X)))
        a, b = np.mean(aucs["ours"]), np.mean(aucs["sk"])
        print(
            f"{f'{n // 1000}k x {d}':<14}ROC-AUC over seeds {SEEDS}: ours {a:.4f} "
            f"({min(aucs['ours']):.4f}-{max(aucs['ours']):.4f}), scikit-learn {b:.4f} "
            f"({min(aucs['sk']):.4f}-{max(aucs['sk']):.4f}), delta {a - b:+.4f}",
            flush=True,
        )
        rows.append({"n": n, "d": d, "auc": [float(a), float(b)]})
        del X
    return rows


def read_floor_lib(tmp: str) -> ctypes.CDLL:
    """read_floor.c built with the system C compiler and loaded."""
    out = os.path.join(tmp, "read_floor.so")
    source = Path(__file__).with_name("read_floor.c")
    subprocess.run(
        [os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-o", out, str(source)], check=True
    )
    lib = ctypes.CDLL(out)
    lib.read_avx2.restype, lib.read_avx2.argtypes = ctypes.c_uint64, [ctypes.c_void_p, ctypes.c_size_t]
    lib.finite_avx2.restype, lib.finite_avx2.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_size_t]
    return lib


def floor(shapes: list[tuple[int, int]], repeats: int) -> list[dict]:
    """Fit against the read floor, interleaved in one process; returns the rows for --json."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        lib = read_floor_lib(tmp)
        print(
            f"{'shape':<12}{'layout':<10}{'what':<22}{'cpu ms (min-max)':>18}{'wall ms (min-max)':>19}{'GB/s':>6}"
        )
        for n, d in shapes:
            X, _ = planted(n, d)
            for dtype, order in ((np.float64, "C"), (np.float64, "F"), (np.float32, "C"), (np.float32, "F")):
                Xl = np.asarray(X, dtype=dtype, order=order)
                p, nbytes = Xl.ctypes.data, Xl.nbytes
                cands = {
                    "X.sum()": lambda Xl=Xl: Xl.sum(),
                    "AVX2 read loop": lambda p=p, b=nbytes: lib.read_avx2(p, b - b % 128),
                }
                if dtype is np.float64:
                    cands["AVX2 finite loop"] = lambda p=p, k=Xl.size: lib.finite_avx2(p, k)
                cands |= {
                    "our pass (1 tree)": lambda Xl=Xl: IsolationForest(n_estimators=1, max_samples=2).fit(Xl),
                    "our fit": lambda Xl=Xl: IsolationForest(random_state=0, n_jobs=1).fit(Xl),
                    "scikit-learn fit": lambda Xl=Xl: SkIsolationForest(random_state=0, n_jobs=1).fit(Xl),
                }
                times: dict[str, list[tuple[float, float]]] = {k: [] for k in cands}
                for _ in range(repeats):
                    for what, fn in cands.items():
                        c0, w0 = time.process_time(), time.perf_counter()
                        fn()
                        times[what].append((time.process_time() - c0, time.perf_counter() - w0))
                layout = f"{np.dtype(dtype).name} {order}"
                for what, v in times.items():
                    cpu, wall = sorted(a for a, _ in v), sorted(b for _, b in v)
                    rate = (
                        f"{nbytes / cpu[0] / 1e9:6.1f}" if what not in ("our fit", "scikit-learn fit") else ""
                    )
                    print(
                        f"{f'{n // 1000}k x {d}':<12}{layout:<10}{what:<22}"
                        f"{f'{cpu[0] * 1e3:.1f}-{cpu[-1] * 1e3:.1f}':>18}{f'{wall[0] * 1e3:.1f}-{wall[-1] * 1e3:.1f}':>19}"
                        f"{rate:>6}",
                        flush=True,
                    )
                    rows.append({"n": n, "d": d, "layout": layout, "what": what, "cpu": cpu, "wall": wall})
                ratio = sorted(s[0] / o[0] for s, o in zip(times["scikit-learn fit"], times["our fit"]))
                print(
                    f"{'':<12}{layout:<10}fit ratio scikit-learn / ours (CPU, per pair): {ratio[0]:.1f}-{ratio[-1]:.1f}x"
                )
                del Xl
    return rows


def score_cpu(shapes: list[tuple[int, int]], repeats: int) -> list[dict]:
    """score_samples of both, every layout, interleaved in one process; returns the rows for --json."""
    rows = []
    print(f"{'shape':<12}{'layout':<11}{'ours cpu ms':>14}{'sk cpu ms':>16}{'ratio cpu':>12}{'ours wall ms':>15}"
          f"{'sk wall ms':>16}{'ratio wall':>12}")  # fmt: skip
    for n, d in shapes:
        X, _ = planted(n, d)
        ours = IsolationForest(random_state=0, n_jobs=1).fit(X)
        theirs = SkIsolationForest(random_state=0, n_jobs=1).fit(X)
        reference = ours.score_samples(X)
        for dtype, order in ((np.float64, "C"), (np.float64, "F"), (np.float32, "C"), (np.float32, "F")):
            Xl = np.asarray(X, dtype=dtype, order=order)
            same = np.asarray(X if dtype is np.float64 else Xl.astype(np.float64))
            expected = reference if dtype is np.float64 else ours.score_samples(same)
            times: dict[str, list[tuple[float, float]]] = {"ours": [], "sk": []}
            for _ in range(repeats):
                for who, model in (("ours", ours), ("sk", theirs)):
                    c0, w0 = time.process_time(), time.perf_counter()
                    got = model.score_samples(Xl)
                    times[who].append((time.process_time() - c0, time.perf_counter() - w0))
                    if who == "ours" and not np.array_equal(got, expected):
                        raise SystemExit(
                            f"scores on {np.dtype(dtype).name} {order} differ from the C float64 ones"
                        )
            cpu = [sorted(a for a, _ in times[k]) for k in ("ours", "sk")]
            wall = [sorted(b for _, b in times[k]) for k in ("ours", "sk")]
            rc = sorted(s[0] / o[0] for o, s in zip(times["ours"], times["sk"]))
            rw = sorted(s[1] / o[1] for o, s in zip(times["ours"], times["sk"]))
            layout = f"{np.dtype(dtype).name} {order}"
            print(
                f"{f'{n // 1000}k x {d}':<12}{layout:<11}"
                f"{f'{cpu[0][0] * 1e3:.0f}-{cpu[0][-1] * 1e3:.0f}':>14}{f'{cpu[1][0] * 1e3:.0f}-{cpu[1][-1] * 1e3:.0f}':>16}"
                f"{f'{rc[0]:.1f}-{rc[-1]:.1f}x':>12}"
                f"{f'{wall[0][0] * 1e3:.0f}-{wall[0][-1] * 1e3:.0f}':>15}{f'{wall[1][0] * 1e3:.0f}-{wall[1][-1] * 1e3:.0f}':>16}"
                f"{f'{rw[0]:.1f}-{rw[-1]:.1f}x':>12}",
                flush=True,
            )
            rows.append({"n": n, "d": d, "layout": layout, "cpu": cpu, "wall": wall})
            del Xl
    return rows


def vector_ab(shapes: list[tuple[int, int]], repeats: int) -> list[dict]:
    """Our Fortran float64 scoring with the AVX2 walk allowed and forbidden, interleaved in one process."""
    rows = []
    print(f"{'shape':<12}{'avx2 cpu ms':>14}{'scalar cpu ms':>16}{'scalar/avx2 per pair':>40}")
    for n, d in shapes:
        X, _ = planted(n, d)
        forest = IsolationForest(random_state=0, n_jobs=1).fit(X)
        reference = forest.score_samples(X)
        Xf = np.asfortranarray(X)
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(repeats):
            for flag in (True, False):
                for native in forest.estimators_:
                    native.set_vector_walk(flag)
                c0 = time.process_time()
                got = forest.score_samples(Xf)
                times[flag].append(time.process_time() - c0)
                if not np.array_equal(got, reference):
                    raise SystemExit("Fortran float64 scores differ from the C float64 ones")
        for native in forest.estimators_:
            native.set_vector_walk(True)
        a, b = sorted(times[True]), sorted(times[False])
        ratios = sorted(round(s / o, 3) for o, s in zip(times[True], times[False]))
        print(
            f"{f'{n // 1000}k x {d}':<12}{f'{a[0] * 1e3:.0f}-{a[-1] * 1e3:.0f}':>14}"
            f"{f'{b[0] * 1e3:.0f}-{b[-1] * 1e3:.0f}':>16}  {ratios!s}",
            flush=True,
        )
        rows.append({"n": n, "d": d, "avx2": times[True], "scalar": times[False]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (best of)")
    parser.add_argument("--threads", default="1,2", help="thread counts for the scaling table")
    parser.add_argument("--quick", action="store_true", help="4 sets, seed 0, no scaling table")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    parser.add_argument("--large", action="store_true", help="only the large synthetic shapes (see above)")
    parser.add_argument("--shapes", default="500000x3,500000x30,300000x500", help="shapes for --large")
    parser.add_argument("--floor", action="store_true", help="fit against the read floor (see above)")
    parser.add_argument(
        "--score", action="store_true", help="score_samples CPU time side by side (see above)"
    )
    parser.add_argument(
        "--vector-ab", action="store_true", help="Fortran float64 scoring, AVX2 top levels vs scalar walk"
    )
    args = parser.parse_args()
    if args.vector_ab:
        shapes = args.shapes if args.shapes != parser.get_default("shapes") else "300000x500"
        rows = vector_ab([tuple(int(v) for v in s.split("x")) for s in shapes.split(",")], args.repeats)  # type: ignore[misc]
        if args.json:
            print(json.dumps({"bench": "forest-vector-ab", "rows": rows}))
        return
    if args.score:
        shapes = args.shapes if args.shapes != parser.get_default("shapes") else "300000x500"
        rows = score_cpu([tuple(int(v) for v in s.split("x")) for s in shapes.split(",")], args.repeats)  # type: ignore[misc]
        if args.json:
            print(json.dumps({"bench": "forest-score", "rows": rows}))
        return
    if args.floor:
        shapes = args.shapes if args.shapes != parser.get_default("shapes") else "300000x500"
        rows = floor([tuple(int(v) for v in s.split("x")) for s in shapes.split(",")], args.repeats)  # type: ignore[misc]
        if args.json:
            print(json.dumps({"bench": "forest-floor", "rows": rows}))
        return
    if args.large:
        rows = large([tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")])  # type: ignore[misc]
        if args.json:
            print(json.dumps({"bench": "forest-large", "rows": rows}))
        return
    seeds = (0,) if args.quick else SEEDS
    sets = sorted(data_dir().glob("*.npz"), key=lambda p: int(p.stem.split("_")[0]))
    if args.quick:
        sets = [p for p in sets if p.stem in QUICK_SETS]
    if not sets:
        raise SystemExit(f"no ADBench data under {data_dir()}")

    print(
        f"{'set':<16}{'n':>7}{'d':>4}{'AUC ours':>10}{'AUC sk':>9}{'delta':>8}"
        f"{'fit sk/ours':>13}{'score sk/ours':>15}"
    )
    aucs_ours, aucs_sk, totals = [], [], np.zeros(4)
    for path in sets:
        with np.load(path) as data:
            X, y = data["X"], data["y"]
        ours, theirs = [], []
        for seed in seeds:
            ours.append(roc_auc_score(y, -IsolationForest(random_state=seed).fit(X).score_samples(X)))
            theirs.append(
                roc_auc_score(y, -SkIsolationForest(random_state=seed, n_jobs=1).fit(X).score_samples(X))
            )
        a, b = float(np.mean(ours)), float(np.mean(theirs))
        aucs_ours.append(a)
        aucs_sk.append(b)
        fitted_ours = IsolationForest(random_state=0, n_jobs=1).fit(X)
        fitted_sk = SkIsolationForest(random_state=0, n_jobs=1).fit(X)
        t = np.array(
            [
                best_of(lambda X=X: IsolationForest(random_state=0, n_jobs=1).fit(X), args.repeats),
                best_of(lambda X=X: SkIsolationForest(random_state=0, n_jobs=1).fit(X), args.repeats),
                best_of(lambda f=fitted_ours, X=X: f.score_samples(X), args.repeats),
                best_of(lambda f=fitted_sk, X=X: f.score_samples(X), args.repeats),
            ]
        )
        totals += t
        print(
            f"{path.stem:<16}{X.shape[0]:>7}{X.shape[1]:>4}{a:>10.4f}{b:>9.4f}{a - b:>+8.4f}"
            f"{t[1] / t[0]:>12.1f}x{t[3] / t[2]:>14.1f}x"
        )
    deltas = np.array(aucs_ours) - np.array(aucs_sk)
    print()
    print(
        f"mean ROC-AUC over {len(sets)} sets x seeds {seeds}: ours {np.mean(aucs_ours):.4f}, "
        f"scikit-learn {np.mean(aucs_sk):.4f}, delta {deltas.mean():+.4f} "
        f"(worst set {deltas.min():+.4f}, best {deltas.max():+.4f})"
    )
    print(
        f"total time over the sets, one thread: fit {totals[1] * 1e3:.0f} ms vs {totals[0] * 1e3:.1f} ms "
        f"({totals[1] / totals[0]:.1f}x); score {totals[3] * 1e3:.0f} ms vs {totals[2] * 1e3:.1f} ms "
        f"({totals[3] / totals[2]:.1f}x)"
    )
    if args.json:
        where = f"{len(sets)} ADBench sets, one thread"
        print(
            json.dumps(
                {
                    "bench": "forest",
                    "sets": [p.stem for p in sets],
                    "figures": [
                        {
                            "metric": f"IsolationForest fit vs scikit-learn ({where})",
                            "unit": "s",
                            "better": "lower",
                            "ours": totals[0],
                            "peer": totals[1],
                            "peer_name": "scikit-learn",
                        },
                        {
                            "metric": f"IsolationForest score_samples vs scikit-learn ({where})",
                            "unit": "s",
                            "better": "lower",
                            "ours": totals[2],
                            "peer": totals[3],
                            "peer_name": "scikit-learn",
                            "target": ">= 10x",
                        },
                        {
                            "metric": f"IsolationForest mean ROC-AUC vs scikit-learn (seeds {seeds})",
                            "unit": "ROC-AUC",
                            "kind": "quality",
                            "ours": float(np.mean(aucs_ours)),
                            "peer": float(np.mean(aucs_sk)),
                            "peer_name": "scikit-learn",
                            "target": "delta >= -0.005",
                        },
                    ],
                }
            )
        )
    if args.quick:
        return

    # Scaling with threads on the largest set, and a larger synthetic matrix.
    big_path = max(sets, key=lambda p: np.load(p)["X"].shape[0])
    with np.load(big_path) as data:
        Xbig = np.ascontiguousarray(data["X"], dtype=np.float64)
    synthetic = np.random.default_rng(0).normal(size=(200_000, 16))
    print()
    print(f"{'data':<28}{'threads':>8}{'fit ms':>10}{'score ms':>10}{'score speedup':>15}")
    for label, data_ in ((f"{big_path.stem} {Xbig.shape}", Xbig), (f"normal {synthetic.shape}", synthetic)):
        base = None
        for n in (int(v) for v in args.threads.split(",")):
            model = IsolationForest(random_state=0, n_jobs=n, n_estimators=200, max_samples=1024)
            fit = best_of(lambda m=model, x=data_: m.fit(x), args.repeats)
            score = best_of(lambda m=model, x=data_: m.score_samples(x), args.repeats)
            base = base or score
            print(f"{label:<28}{n:>8}{fit * 1e3:>10.1f}{score * 1e3:>10.1f}{base / score:>14.2f}x")


if __name__ == "__main__":
    main()
