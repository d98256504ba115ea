"""Where the default's false alarms on NAB come from (issue 15, the low-FP angle).

    pip install numba && python scripts/fp_diagnosis.py [--row 229] [--profile standard]

Runs the numba model of the product (`scripts/ensemble_design.py`, row 229: the C++ default) on
the 58 NAB files, finds the corpus threshold of the profile, and describes every alarm at it:
true (the first detection in a window, or a later one inside it) or false; for the false ones
their cost (NAB's FP sweep: full weight far from a window), the detector that set the statistic
(the maximum of the weighted statistics), the second largest detector, how far from the last
alarm and from a window, how far into the file, whether the score was a record (not halved by
the alarm logic), and the alert score itself. A diagnosis only: it chooses nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ensemble_design as ed

from anomaly_detection.evaluation import NabCorpus, score_corpus
from anomaly_detection.evaluation.nab import _prepare


def q(v, ps=(25, 50, 75)):
    return "-" if len(v) == 0 else ", ".join(f"{x:.3g}" for x in np.percentile(v, ps))


def week_extreme(x, a, period):
    """The largest deviation of the last 6 points from the past week's median, over the past
    week's range on that side (> 1: a new extreme for the week)."""
    past = x[max(0, a - 7 * max(period, 1)) : a]
    if len(past) == 0:
        return np.nan
    med = np.median(past)
    dev = x[max(0, a - 5) : a + 1] - med
    d = dev[np.argmax(np.abs(dev))]
    side = past.max() - med if d >= 0 else past.min() - med
    return d / side if side != 0 else np.inf


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nab", type=Path, default=ed.ROOT.parent / "shared" / "data" / "nab")
    ap.add_argument("--row", type=int, default=229)
    ap.add_argument("--profile", default="standard")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--files", action="store_true", help="also the false alarms per file")
    args = ap.parse_args(argv)
    label, change = ed.STEPS[args.row]
    p = {**ed.BASE, **change}
    corpus = NabCorpus.load(args.nab)
    out = {}
    scores = {}
    for name, f in corpus.files.items():
        x = np.asarray(f.values, float)
        ts = f.timestamps.astype("datetime64[ns]").astype(np.int64) / 1e9
        alerts, which, best, stats, pre = ed.detect(x, ts, p, explain="raw stats")
        out[name] = (x, ts, alerts, which, best, stats, pre)
        scores[name] = alerts
    res = score_corpus(corpus, scores, args.profile)
    thr = args.threshold if args.threshold is not None else res.threshold
    res = score_corpus(corpus, scores, args.profile, threshold=thr)
    print(f"row {args.row}: {label}; profile {args.profile}, threshold {thr:.4f}")
    print(f"score {res.score:.2f}, TP/FN/FP {res.tp}/{res.fn}/{res.fp}\n")
    weights = dict(zip(["value", "diff"], [p["w_value"], p["w_diff"]]))
    weights.update({"season": p["w_season"], "poly": p["w_poly"], "markov": p["w_markov"]})
    weights.update({"level": p["w_level"], "context": p["w_context"], "shape": p["w_novel"]})
    fps, tps = [], []  # dicts
    for name, (x, ts, alerts, _which, best, stats, pre) in out.items():
        f = corpus.files[name]
        pr = _prepare(f, alerts)
        n = len(x)
        dt = np.median(np.diff(ts))
        al = np.flatnonzero(alerts >= thr)
        al = al[al >= f.probation]
        prev_alarm = -(10**9)
        firsts = set()
        for lo, hi in f.window_rows:
            h = al[(al >= lo) & (al <= hi)]
            if len(h):
                firsts.add(int(h[0]))
        period = round(86400 / dt) if dt > 0 and 4 <= 86400 / dt <= 50000 else 0
        echo1 = ed.daily_echo(best, period if period < n else 0, 1, 2, 5.0)
        echo2 = ed.daily_echo(best, period if period < n else 0, 2, 2, 5.0)
        alarm_ts = ts[alerts >= 0.5]
        for a in al:
            w = {d: s[a] / weights.get(d, 1.0) for d, s in stats.items()}
            order = sorted(w, key=lambda d: -w[d])
            # a record in the alarm logic: the score beat every score of the last three days
            rec_len = max(int(p["record_days"] * 86400 / dt), 50)
            rec = pre[a] > (pre[max(0, a - rec_len) : a].max() if a > 0 else 0.0)
            since_prev = a - prev_alarm
            low_between = float(pre[prev_alarm + 1 : a].min()) if 0 <= prev_alarm < a - 1 else np.nan
            prev_alarm = a
            dist_prev = min([a - hi for lo, hi in f.window_rows if hi < a], default=None)
            dist_next = min([lo - a for lo, hi in f.window_rows if lo > a], default=None)
            row = {
                "file": name,
                "cat": name.split("/")[0],
                "t": int(a),
                "frac": a / n,
                "days": (ts[a] - ts[0]) / 86400,
                "det": order[0],
                "second": order[1],
                "stat": w[order[0]],
                "stat2": w[order[1]],
                "alert": alerts[a],
                "pre": pre[a],
                "record": bool(rec),
                "since_prev": since_prev,
                "low_between": low_between,
                "dist_prev": dist_prev,
                "dist_next": dist_next,
                "cost": -pr.fp_sweep[a],
                "value_rel": (x[a] - np.median(x[:a])) / max(x[:a].max() - x[:a].min(), 1e-12),
                "first": a in firsts,
                "echo1": bool(echo1[a]),
                "echo2": bool(echo2[a]),
                "week_extreme": week_extreme(x, a, period),
                "halved_saturated": bool(abs(alerts[a] - 0.5 * pre[a]) < 1e-12 and pre[a] >= 0.99),
                "past": [
                    int(np.count_nonzero((alarm_ts < ts[a]) & (alarm_ts > ts[a] - d * 86400)))
                    for d in (3, 7, 14)
                ],
            }
            (tps if pr.in_window[a] else fps).append(row)
    first_tps = [r for r in tps if r["first"]]
    print(f"alarms: {len(first_tps)} first detections in windows, {len(tps) - len(first_tps)} later ones in windows, "
          f"{len(fps)} false (cost-weighted {sum(r['cost'] for r in fps):.1f})\n")  # fmt: skip

    print("| category | FP | cost | FP by detector | TP (first) by detector |")
    print("|---|---:|---:|---|---|")
    for cat in sorted({r["cat"] for r in fps + tps}):
        f_ = [r for r in fps if r["cat"] == cat]
        t_ = [r for r in first_tps if r["cat"] == cat]
        fc = Counter(r["det"] for r in f_)
        tc = Counter(r["det"] for r in t_)
        print(f"| {cat} | {len(f_)} | {sum(r['cost'] for r in f_):.1f} | "
              + ", ".join(f"{d} {c}" for d, c in fc.most_common()) + " | "
              + ", ".join(f"{d} {c}" for d, c in tc.most_common()) + " |")  # fmt: skip

    print("\nfiles with the most false alarms (FP, cost, by detector; TP/windows):")
    per_file = defaultdict(list)
    for r in fps:
        per_file[r["file"]].append(r)
    for name, rs in sorted(per_file.items(), key=lambda kv: -len(kv[1]))[: 25 if not args.files else 100]:
        f = corpus.files[name]
        t_ = sum(1 for r in first_tps if r["file"] == name)
        print(f"  {name:60s} {len(rs):3d} {sum(r['cost'] for r in rs):5.1f}  "
              + ", ".join(f"{d} {c}" for d, c in Counter(r["det"] for r in rs).most_common())
              + f"  | {t_}/{len(f.window_rows)}")  # fmt: skip

    def describe(name, rs):
        a = np.array
        print(f"\n{name} ({len(rs)}): quartiles")
        print(f"  alert score         {q(a([r['alert'] for r in rs]))}")
        print(f"  statistic (max)     {q(a([r['stat'] for r in rs]))}")
        print(f"  second detector     {q(a([r['stat2'] for r in rs]))}")
        print(f"  points since last alarm {q(a([r['since_prev'] for r in rs if r['since_prev'] < 10**8]))}")
        print(f"  days into the file  {q(a([r['days'] for r in rs]))}")
        print(f"  share of the file   {q(a([r['frac'] for r in rs]))}")
        print(f"  value vs past median / past range {q(a([r['value_rel'] for r in rs]))}")
        print(f"  record share        {np.mean([r['record'] for r in rs]):.2f}")
        dp = [r["dist_prev"] for r in rs if r["dist_prev"] is not None]
        dn = [r["dist_next"] for r in rs if r["dist_next"] is not None]
        print(f"  after a window by (points) {q(a(dp))}; before one by {q(a(dn))}")

    describe("false alarms", fps)
    describe("true alarms (first in a window)", first_tps)
    describe("later alarms in a window", [r for r in tps if not r["first"]])
    for cat in ("realTweets", "realKnownCause", "realAWSCloudwatch"):
        describe(f"false alarms, {cat}", [r for r in fps if r["cat"] == cat])
        describe(f"true alarms, {cat}", [r for r in first_tps if r["cat"] == cat])

    print("\nfalse alarms: points since the previous alarm (same file)")
    edges = [0, 150, 300, 600, 1000, 2000, 5000, 10**9]
    sp = np.array([r["since_prev"] for r in fps])
    print("  " + ", ".join(f"<{edges[i + 1]}: {int(((sp >= edges[i]) & (sp < edges[i + 1])).sum())}"
                           for i in range(len(edges) - 1)))  # fmt: skip
    for nm, rs in (("false", fps), ("true (first)", first_tps)):
        lb = np.array([r["low_between"] for r in rs])
        lb = lb[np.isfinite(lb)]
        print(f"  {nm}: the score before the alarm logic stayed >= 0.3 since the previous alarm: "
              f"{int((lb >= 0.3).sum())} of {len(lb)}")  # fmt: skip
    print("false alarms: days into the file")
    d = np.array([r["days"] for r in fps])
    edges = [0, 2, 4, 7, 14, 28, 1e9]
    print("  " + ", ".join(f"<{edges[i + 1]}: {int(((d >= edges[i]) & (d < edges[i + 1])).sum())}"
                           for i in range(len(edges) - 1)))  # fmt: skip
    print("false alarms: alert score")
    sc = np.array([r["alert"] for r in fps])
    tc = np.array([r["alert"] for r in first_tps])
    edges = [0, 0.55, 0.6, 0.7, 0.8, 0.9, 0.99, 1.01]
    for nm, v in (("FP", sc), ("TP", tc)):
        print(f"  {nm}: " + ", ".join(f"[{edges[i]}, {edges[i + 1]}): {int(((v >= edges[i]) & (v < edges[i + 1])).sum())}"
                                     for i in range(len(edges) - 1)))  # fmt: skip
    print(
        "by the detector that set the statistic: false / true (first) alarms and their statistic (quartiles)"
    )
    for det in Counter(r["det"] for r in fps):
        rs = [r for r in fps if r["det"] == det]
        ts_ = [r for r in first_tps if r["det"] == det]
        print(f"  {det:8s} FP {len(rs):3d} stat {q(np.array([r['stat'] for r in rs]))} "
              f"| TP {len(ts_):3d} stat {q(np.array([r['stat'] for r in ts_]))}")  # fmt: skip
    print("\nhalved saturated scores (not a record of the last three days, statistic >= 10: alert 0.5):")
    for nm, rs in (("false", fps), ("true (first)", first_tps)):
        hs = [r for r in rs if r["halved_saturated"]]
        print(f"  {nm}: {len(hs)}, statistic {q(np.array([r['stat'] for r in hs]), (10, 25, 50, 75, 90))} (deciles 1, 9), "
              + ", ".join(f"{d} {c}" for d, c in Counter(r["det"] for r in hs).most_common()))  # fmt: skip
    print("alarms (alert >= 0.5) of the same file in the past 3 / 7 / 14 days: share with >= 2 / >= 3 / >= 5")
    for nm, rs in (("false", fps), ("true (first)", first_tps)):
        pa = np.array([r["past"] for r in rs])
        print(f"  {nm}: " + ", ".join(f"{d} days: {(pa[:, i] >= 2).sum()} / {(pa[:, i] >= 3).sum()} / {(pa[:, i] >= 5).sum()}"
                                      for i, d in enumerate((3, 7, 14))) + f" of {len(rs)}")  # fmt: skip
    print("a new extreme for the week (the last 6 points' largest deviation from the past week's median")
    print("beyond the past week's range on that side): share and quartiles of that ratio")
    for nm, rs in (("false", fps), ("true (first)", first_tps)):
        we = np.array([r["week_extreme"] for r in rs])
        print(f"  {nm}: {np.mean(we > 1):.2f} new extremes; ratio {q(we[np.isfinite(we)])}")
    print("\nthe statistic at the alarm level (>= 5) within +-2 points of the same time the day before /")
    print("on each of the two days before (a recurring daily event), by category: false / true (first)")
    for cat in sorted({r["cat"] for r in fps + tps}):
        f_ = [r for r in fps if r["cat"] == cat]
        t_ = [r for r in first_tps if r["cat"] == cat]
        print(f"  {cat:24s} day before {sum(r['echo1'] for r in f_):3d} / {sum(r['echo1'] for r in t_):2d}"
              f"   both days {sum(r['echo2'] for r in f_):3d} / {sum(r['echo2'] for r in t_):2d}")  # fmt: skip
    print("\nconsecutive false alarms within one burst: FP pairs in the same file closer than 300 / 1000 points:",
          int((sp < 300).sum()), "/", int((sp < 1000).sum()))  # fmt: skip


if __name__ == "__main__":
    main()
