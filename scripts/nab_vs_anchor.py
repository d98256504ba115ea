"""The default detector's NAB alarms next to a published detector's, category by category.

    python scripts/nab_vs_anchor.py [--anchor ARTime] [--category realTweets] [--near 12]

Runs the C++ default over the 58 NAB files (as ``anomaly-detection evaluate --nab`` does),
takes both detectors' alarms at their own corpus thresholds (standard profile) after
probation, and prints per category the windows found and the false alarms of each. For
the false alarms of ``--category`` it then asks which of ours the anchor also raises (an
alarm of its own within ``--near`` rows) and, for ours that it does not, how ordinary
the alarm's values are: how many earlier points of the file, and of the last 2,000, reach
the largest value of the alarm's last six points (its peak). Last, per category, how many of
our first detections and false alarms an "ordinary values" gate would keep: those whose six
points' extreme at most ``--gate`` of the last 2,000 points reach (above their largest value
or below their smallest, whichever fewer reach). A diagnosis only: nothing here is used at
detection time.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.evaluation import NabCorpus, load_scores_dir, score_corpus
from anomaly_detection.evaluation.cli import run_detector_on_corpus

ROOT = Path(__file__).resolve().parents[1]


def alarms(corpus, scores, threshold):
    """Per file: (first detection of each window found, false alarms), rows after probation."""
    out = {}
    for name, f in corpus.files.items():
        det = np.flatnonzero(scores[name] >= threshold)
        det = det[det >= f.probation]
        found = [det[(det >= a) & (det <= b)][:1] for a, b in f.window_rows]
        out[name] = (np.concatenate(found) if found else det[:0], det[~f.window_mask().astype(bool)[det]])
    return out


def quartiles(values) -> str:
    return ", ".join(f"{v:g}" for v in np.percentile(values, [25, 50, 75]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nab", type=Path, default=ROOT.parent / "shared" / "data" / "nab")
    ap.add_argument("--anchor", default="ARTime")
    ap.add_argument("--category", default="realTweets")
    ap.add_argument("--near", type=int, default=12)
    ap.add_argument("--gate", type=int, default=10)
    args = ap.parse_args(argv)

    corpus = NabCorpus.load(args.nab)
    runs = {
        "ours": run_detector_on_corpus(corpus, StatisticalAnomalyDetector),
        args.anchor: load_scores_dir(args.nab / "anchor_scores" / args.anchor, corpus),
    }
    found = {}
    for who, scores in runs.items():
        threshold = score_corpus(corpus, scores, "standard").threshold
        found[who] = alarms(corpus, scores, threshold)
        print(f"{who}: corpus threshold {threshold:.4f}")
    print(f"\n| category | ours: windows found, false alarms | {args.anchor}: windows found, false alarms |")
    print("|---|---|---|")
    for cat in sorted({n.split("/")[0] for n in corpus.files}):
        cells = []
        for who in runs:
            tp = fp = 0
            for name, (t, f) in found[who].items():
                if name.startswith(cat + "/"):
                    tp, fp = tp + len(t), fp + len(f)
            cells.append(f"{tp}, {fp}")
        print(f"| {cat} | {cells[0]} | {cells[1]} |")

    shared, ours_only = [], []
    for name, f in corpus.files.items():
        if not name.startswith(args.category + "/"):
            continue
        theirs = found[args.anchor][name][1]
        for i in found["ours"][name][1]:
            peak = f.values[max(0, i - 5) : i + 1].max()
            reach = (int((f.values[:i] >= peak).sum()), int((f.values[max(0, i - 2000) : i] >= peak).sum()))
            near = len(theirs) and np.abs(theirs - i).min() <= args.near
            (shared if near else ours_only).append(reach)
    print(f"\n{args.category}: {len(shared) + len(ours_only)} false alarms of ours, {len(shared)} with one of "
          f"{args.anchor}'s within {args.near} rows")  # fmt: skip
    for label, group in (("also the anchor's", shared), ("ours only", ours_only)):
        if group:
            a = np.array(group)
            print(f"  {label} ({len(a)}): earlier points reaching the peak, quartiles {quartiles(a[:, 0])}; "
                  f"of the last 2,000: {quartiles(a[:, 1])}")  # fmt: skip
    print(f"\nkept by a gate at {args.gate} of the last 2,000 points (ours): first detections, false alarms")
    for cat in sorted({n.split("/")[0] for n in corpus.files}):
        kept = [[0, 0], [0, 0]]
        for name, f in corpus.files.items():
            if name.startswith(cat + "/"):
                for k, rows in enumerate(found["ours"][name]):
                    for i in rows:
                        seg, past = f.values[max(0, i - 5) : i + 1], f.values[max(0, i - 2000) : i]
                        reach = min((past >= seg.max()).sum(), (past <= seg.min()).sum())
                        kept[k][0] += int(reach <= args.gate)
                        kept[k][1] += 1
        print(f"  {cat:24s} {kept[0][0]} of {kept[0][1]}, {kept[1][0]} of {kept[1][1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
