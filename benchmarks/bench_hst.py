"""HalfSpaceTrees against River's HalfSpaceTrees on the same stream, same run.

Progressive validation (score each observation, then learn it) over a
shuffled ADBench set scaled to [0, 1] per feature, same seed for both: ROC-AUC
and observations per second, for River per observation (dicts), ours per
observation (dicts, the same API) and ours in batch (score_learn_many).

    PYTHONPATH=python python benchmarks/bench_hst.py [--limit 20000] [--repeats 3] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from bench_forest import data_dir
from river.anomaly import HalfSpaceTrees as RiverHST
from sklearn.metrics import roc_auc_score

from anomaly_detection.forest import HalfSpaceTrees

SETS = ("6_cardio", "23_mammography", "30_satellite", "32_shuttle")


def stream(name: str, limit: int):
    with np.load(data_dir() / f"{name}.npz") as data:
        X, y = data["X"].astype(np.float64), data["y"]
    order = np.random.default_rng(0).permutation(len(X))[:limit]
    X, y = X[order], y[order]
    span = X.max(axis=0) - X.min(axis=0)
    X = (X - X.min(axis=0)) / np.where(span > 0, span, 1.0)
    return X, y


def progressive(model, dicts):
    scores = np.empty(len(dicts))
    start = time.perf_counter()
    for i, x in enumerate(dicts):
        scores[i] = model.score_one(x)
        model.learn_one(x)
    return scores, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20000, help="observations per set")
    parser.add_argument("--quick", action="store_true", help="two sets of at most 5,000 observations")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per set (medians)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    sets = SETS[:2] if args.quick else SETS
    if args.quick:
        args.limit = min(args.limit, 5000)
        args.repeats = 1
    totals = np.zeros(4)  # observations, river s, ours per-observation s, ours batch s
    aucs = []
    print(
        f"{'set':<16}{'n':>7}{'AUC river':>11}{'AUC ours':>10}{'river obs/s':>13}"
        f"{'ours obs/s':>12}{'ratio':>8}{'batch obs/s':>13}{'ratio':>8}"
    )
    for name in sets:
        X, y = stream(name, args.limit)
        # Zero-padded names sort like the columns, so dicts and rows build the same trees.
        dicts = [{f"f{j:03d}": float(v) for j, v in enumerate(row)} for row in X]
        # River, ours per observation and ours in batch take turns; medians of the repeats.
        times = []
        for _ in range(args.repeats):
            river_scores, river_t = progressive(RiverHST(seed=42), dicts)
            ours_scores, ours_t = progressive(HalfSpaceTrees(seed=42), dicts)
            start = time.perf_counter()
            batch_scores = HalfSpaceTrees(seed=42).score_learn_many(X)
            times.append((river_t, ours_t, time.perf_counter() - start))
            assert np.array_equal(ours_scores, batch_scores)
        river_t, ours_t, batch_t = np.median(times, axis=0)
        warm = slice(250, None)  # the first window scores 0 by definition
        auc_r = roc_auc_score(y[warm], river_scores[warm])
        auc_o = roc_auc_score(y[warm], ours_scores[warm])
        n = len(X)
        print(
            f"{name:<16}{n:>7}{auc_r:>11.4f}{auc_o:>10.4f}{n / river_t:>13,.0f}{n / ours_t:>12,.0f}"
            f"{river_t / ours_t:>7.1f}x{n / batch_t:>13,.0f}{river_t / batch_t:>7.0f}x"
        )
        totals += (n, river_t, ours_t, batch_t)
        aucs.append((auc_o, auc_r))
    if args.json:
        n, river_t, ours_t, batch_t = totals
        where = f"{len(sets)} ADBench sets, {int(n):,} observations"
        print(
            json.dumps(
                {
                    "bench": "hst",
                    "sets": list(sets),
                    "figures": [
                        {
                            "metric": f"HalfSpaceTrees score_learn_many vs River per observation ({where})",
                            "unit": "obs/s",
                            "ours": n / batch_t,
                            "peer": n / river_t,
                            "peer_name": "river",
                            "target": ">= 20x",
                        },
                        {
                            "metric": f"HalfSpaceTrees score_one+learn_one vs River ({where})",
                            "unit": "obs/s",
                            "ours": n / ours_t,
                            "peer": n / river_t,
                            "peer_name": "river",
                            "target": ">= 20x",
                        },
                        {
                            "metric": "HalfSpaceTrees mean ROC-AUC vs River (same seed)",
                            "unit": "ROC-AUC",
                            "kind": "quality",
                            "ours": float(np.mean([a for a, _ in aucs])),
                            "peer": float(np.mean([b for _, b in aucs])),
                            "peer_name": "river",
                        },
                    ],
                }
            )
        )


if __name__ == "__main__":
    main()
