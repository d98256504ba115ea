"""Missed and late NAB windows of the ensemble (the numba model), taken apart.

    pip install numba && python scripts/nab_windows.py [--row 229] [--threshold T] [--list]

For one row of ``scripts/ensemble_design.py`` (default: the product's, row 229) at its
corpus threshold (standard profile, or ``--threshold``):

* every missed window: file, the largest alert score and the largest score before the
  alarm logic (``min(statistic / 10, 1)``) inside it, the detector that set that score,
  and why the alarm logic kept it under the threshold (halved as no record of the last
  three days, or held after an alarm);
* for the windows found: where in the window the first detection sits (0 = its left
  edge, 1 = its right edge; NAB's labelled point is at 0.5), the reward it earns
  against a detection at the left edge, and how much earlier the score before the alarm
  logic crossed the threshold (what the halving and the hold cost in time);
* the raw score lost to lateness, to the missed windows and to the false alarms, per
  category and in all, on the three profiles.

A diagnosis tool: nothing here is used at detection time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ensemble_design as ed

from anomaly_detection.evaluation import NabCorpus, score_corpus
from anomaly_detection.evaluation.nab import _MAX_TP, scaled_sigmoid


def reward(pos: int, left: int, right: int) -> float:
    width = right - left + 1
    return float(scaled_sigmoid(-(right - pos + 1) / width) / _MAX_TP)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nab", type=Path, default=ed.ROOT.parent / "shared" / "data" / "nab")
    ap.add_argument("--row", type=int, default=229)
    ap.add_argument("--threshold", type=float)
    ap.add_argument("--list", action="store_true", help="also every window found, one line each")
    ap.add_argument(
        "--anchor",
        action="append",
        default=[],
        help="also a published detector's stored scores (anchor_scores/NAME, e.g. ARTime): its lateness "
        "and which of the windows missed here it finds (repeatable)",
    )
    ap.add_argument(
        "--cpp",
        action="store_true",
        help="the product's alert scores (`detect_batch`, the C++) in place of the model's; the "
        "detectors named are still the model's",
    )
    args = ap.parse_args(argv)
    label, change = ed.STEPS[args.row]
    p = {**ed.BASE, **change}
    corpus = NabCorpus.load(args.nab)
    out = {}
    for name, f in corpus.files.items():
        x = np.asarray(f.values, float)
        ts = f.timestamps.astype("datetime64[ns]").astype(np.int64) / 1e9
        out[name] = ed.detect(x, ts, p, explain="stats")
    alerts = {k: v[0] for k, v in out.items()}
    if args.cpp:
        from anomaly_detection import StatisticalAnomalyDetector
        from anomaly_detection.evaluation.cli import run_detector_on_corpus

        alerts = run_detector_on_corpus(corpus, StatisticalAnomalyDetector)
        out = {k: (alerts[k], *v[1:]) for k, v in out.items()}
        label += " (alert scores: the C++ product)"
    res = {prof: score_corpus(corpus, alerts, prof) for prof in ed_profiles()}
    thr = args.threshold if args.threshold is not None else res["standard"].threshold
    if args.threshold is not None:
        res = {prof: score_corpus(corpus, alerts, prof, threshold=thr) for prof in ed_profiles()}
    print(f"row {args.row}: {label}\nthreshold {thr:.4f}\n")
    missed, found = [], []
    for name, f in corpus.files.items():
        a, which, best, stats = out[name]
        raw = np.minimum(best / 10, 1.0)
        raw[: p["llearn"]] = 0
        start = f.probation
        for left, right in f.window_rows:
            left = max(left, start)
            if right < left:
                continue
            seg = slice(left, right + 1)
            hit = np.flatnonzero(a[seg] >= thr)
            rhit = np.flatnonzero(raw[seg] >= thr)
            width = right - left + 1
            cat = name.split("/")[0]
            if len(hit) == 0:
                i = left + int(np.argmax(raw[seg]))
                dets = sorted(((float(v[seg].max()) / 10, k) for k, v in stats.items()), reverse=True)[:3]
                # separability: each detector's largest inside against its 99.5% quantile outside every window
                outside = ~f.window_mask().astype(bool)
                outside[:start] = False
                sep = sorted(
                    (
                        (float(v[seg].max()) / max(float(np.quantile(v[outside], 0.995)), 1e-9), k)
                        for k, v in stats.items()
                        if outside.any()
                    ),
                    reverse=True,
                )[:2]
                why = "-"
                if raw[i] >= thr:  # above before the alarm logic: halved or held
                    before = a[max(0, i - 100) : i]
                    why = "held" if (before >= thr).any() else "halved (no record)"
                missed.append(
                    (
                        cat,
                        name,
                        left,
                        right,
                        float(a[seg].max()),
                        float(raw[i]),
                        str(which[i]),
                        why,
                        dets,
                        sep,
                    )
                )
            else:
                first = left + int(hit[0])
                rfirst = left + int(rhit[0]) if len(rhit) else first
                found.append(
                    (
                        cat,
                        name,
                        left,
                        right,
                        (first - left) / width,
                        reward(first, left, right),
                        (rfirst - left) / width,
                        reward(rfirst, left, right),
                        str(which[first]),
                    )
                )
    print(f"missed windows: {len(missed)}\n")
    print(
        "| category | file | rows | alert max | score max (before the alarm logic) | set by | why under | three largest detectors (weighted stat / 10) "
        "| the two most separable: largest inside / 99.5% quantile outside every window |"
    )
    print("|---|---|---|---:|---:|---|---|---|---|")
    for cat, name, left, right, amax, rmax, who, why, dets, sep in missed:
        d = ", ".join(f"{k} {v:.2f}" for v, k in dets)
        q = ", ".join(f"{k} {v:.2f}" for v, k in sep)
        print(
            f"| {cat} | {name.split('/')[1]} | {left}-{right} | {amax:.3f} | {rmax:.3f} | {who} | {why} | {d} | {q} |"
        )
    print(f"\nwindows found: {len(found)}\n")
    print(
        "| category | found | first detection, median position (quartiles) | reward, mean | lost to lateness (sum of 1 - reward) | of which after the window's middle | before the alarm logic: median position, lost | first detector (counts) |"
    )
    print("|---|---:|---|---:|---:|---:|---|---|")
    cats = sorted({c for c, *_ in found} | {c for c, *_ in missed})
    for cat in [*cats, "all"]:
        rows = [r for r in found if cat in ("all", r[0])]
        if not rows:
            continue
        pos = np.array([r[4] for r in rows])
        rew = np.array([r[5] for r in rows])
        rpos = np.array([r[6] for r in rows])
        rrew = np.array([r[7] for r in rows])
        who = {}
        for r in rows:
            who[r[8]] = who.get(r[8], 0) + 1
        q = np.percentile(pos, [25, 50, 75])
        mid = [reward(r[2] + (r[3] - r[2] + 1) // 2, r[2], r[3]) for r in rows]
        after = float(np.sum(np.maximum(np.array(mid) - rew, 0)))
        print(
            f"| {cat} | {len(rows)} | {q[1]:.2f} ({q[0]:.2f}-{q[2]:.2f}) | {rew.mean():.3f} | {np.sum(1 - rew):.2f} | {after:.2f} "
            f"| {np.median(rpos):.2f}, {np.sum(1 - rrew):.2f} | "
            + ", ".join(f"{k} {v}" for k, v in sorted(who.items(), key=lambda kv: -kv[1]))
            + " |"
        )
    print("\nraw score lost against a perfect detector (every window at its left edge, no false alarm):\n")
    print("| profile | score | raw | lost to lateness | to missed windows | to false alarms | TP/FN/FP |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for prof, r in res.items():
        cost = corpus.profiles[prof]
        late = sum(1 - x[5] for x in found) * cost.tp_weight
        fn = len(missed) * (cost.tp_weight + cost.fn_weight)
        perfect = r.perfect
        fp = perfect - r.raw - late - fn
        print(
            f"| {prof} | {r.score:.2f} | {r.raw:.2f} | {late:.2f} | {fn:.2f} | {fp:.2f} | {r.tp}/{r.fn}/{r.fp} |"
        )
    print(
        "\nthe same per category (standard): raw, lost to lateness / missed windows / false alarms (count)\n"
    )
    print("| category | raw | lateness | missed | false alarms |")
    print("|---|---:|---:|---:|---:|")
    r = res["standard"]
    for cat in sorted({f.name.split("/")[0] for f in r.files}):
        files = [f for f in r.files if f.name.startswith(cat + "/")]
        raw = sum(f.score for f in files)
        late = sum(1 - x[5] for x in found if x[0] == cat)
        fn = 2 * sum(1 for x in missed if x[0] == cat)
        fpc = sum(f.fp for f in files)
        perfect = sum(f.perfect for f in files)
        print(f"| {cat} | {raw:.2f} | {late:.2f} | {fn:.2f} | {perfect - raw - late - fn:.2f} ({fpc}) |")
    per_point = {prof: 100 / (r.perfect - r.null) for prof, r in res.items()}
    print(
        "\n(one raw point is worth "
        + ", ".join(f"{v:.3f} ({k})" for k, v in per_point.items())
        + " of the score)"
    )
    for anchor in args.anchor:  # a published detector's stored scores, at its own corpus threshold
        from anomaly_detection.evaluation.nab_corpus import load_scores_dir

        scores = load_scores_dir(args.nab / "anchor_scores" / anchor, corpus)
        ar = score_corpus(corpus, scores, "standard")
        late = 0.0
        where = {}
        for f in corpus.files.values():
            s = np.asarray(scores[f.name], float)
            for left, right in f.window_rows:
                left = max(left, f.probation)
                if right < left:
                    continue
                hit = np.flatnonzero(s[left : right + 1] >= ar.threshold)
                if len(hit):
                    late += 1 - reward(left + int(hit[0]), left, right)
                where[(f.name, left)] = hit[0] / (right - left + 1) if len(hit) else None
        ours = [where[(m[1], m[2])] for m in missed]
        print(
            f"\n{anchor}: {ar.score:.2f} at threshold {ar.threshold:.4f}, {ar.tp}/{ar.fn}/{ar.fp}, "
            f"lost to lateness {late:.2f}; of the {len(missed)} windows missed here it finds "
            f"{sum(w is not None for w in ours)}: "
            + ", ".join(
                f"{m[1].split('/')[1][:-4]} {m[2]} (at {w:.2f})"
                for m, w in zip(missed, ours)
                if w is not None
            )
        )
    if args.list:
        print(
            "\n| category | file | rows | first detection at | reward | before the alarm logic at | detector |"
        )
        print("|---|---|---|---:|---:|---:|---|")
        for cat, name, left, right, pos, rew, rpos, _rrew, who in sorted(found, key=lambda r: r[5]):
            print(
                f"| {cat} | {name.split('/')[1]} | {left}-{right} | {pos:.2f} | {rew:.3f} | {rpos:.2f} | {who} |"
            )
    return 0


def ed_profiles():
    return ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


if __name__ == "__main__":
    raise SystemExit(main())
