"""The ensemble method: speed of ``detect_batch`` and the NAB table against the anchors.

    python benchmarks/bench_ensemble.py [--points N] [--nab DIR] [--write FILE] [--quick] [--json] [--speed-only]

1. ``detect_batch`` points per second, one sensor, one core, for the ensemble
   and (for scale) the z-score method, on a noisy daily cycle sampled every 5
   minutes; medians of repeats. Also ``detect`` one point at a time.
2. NAB (the project's scorer, one configuration for every file): the ensemble's
   scores on the three profiles, and a per-file table (standard profile, raw
   score at each detector's own corpus-wide threshold, and TP/FP) against the
   published detectors in ``<nab>/anchor_scores``.

``--speed-only`` skips the NAB part: a build against another (``main``'s installed package on
``PYTHONPATH``, one run after the other, repeated) side by side, as in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, median_seconds, table

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.evaluation import NabCorpus, load_scores_dir, score_all_profiles
from anomaly_detection.evaluation.cli import default_detector_factory, run_detector_on_corpus

ANCHORS = ["ARTime", "numenta", "contextOSE", "relativeEntropy", "randomCutForest", "knncad"]
PROFILES = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]


def speed(n: int) -> list[list[object]]:
    rng = np.random.default_rng(0)
    t = np.arange(n)
    values = 50 + 10 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1, n)
    ts = t * 300.0
    rows = []
    for method in ("ensemble", "zscore"):
        secs = median_seconds(
            lambda m=method: StatisticalAnomalyDetector(detection_method=m).detect_batch("s", values, ts), 3
        )
        # CPU time too (best of 3): on a shared machine wall time mostly measures the others' load
        cpu = []
        for _ in range(3):
            start = time.process_time()
            StatisticalAnomalyDetector(detection_method=method).detect_batch("s", values, ts)
            cpu.append(time.process_time() - start)
        det = StatisticalAnomalyDetector(detection_method=method)
        k = min(n, 200_000)
        start = time.perf_counter()
        for v, tt in zip(values[:k].tolist(), ts[:k].tolist()):
            det.detect("s", v, tt)
        single = k / (time.perf_counter() - start)
        rows.append(
            [method, f"{n / secs / 1e6:.2f} M/s", f"{single / 1e6:.2f} M/s", f"{n / min(cpu) / 1e6:.2f} M/s"]
        )
    rows.append(learning_speed())
    return rows


def learning_speed(sensors: int = 2000, points: int = 300) -> list[object]:
    """The ensemble's learning points (the first 300 of each sensor, where its warm-up rules run),
    ``sensors`` fresh sensors one ``detect_batch`` each: CPU time, best of 3."""
    values = 100 + np.random.default_rng(0).normal(0, 1, points)
    ts = 1.7e9 + 300.0 * np.arange(points)
    cpu = []
    for _ in range(3):
        det = StatisticalAnomalyDetector()
        start = time.process_time()
        for i in range(sensors):
            det.detect_batch(f"s{i}", values, ts)
        cpu.append(time.process_time() - start)
    rate = sensors * points / min(cpu) / 1e6
    return [f"ensemble, first {points} points of {sensors:,} sensors", "-", "-", f"{rate:.2f} M/s"]


def nab(nab_dir: Path) -> tuple[str, dict]:
    corpus = NabCorpus.load(nab_dir)
    ours = run_detector_on_corpus(corpus, default_detector_factory, {"detection_method": "ensemble"})
    results = {"ensemble": score_all_profiles(corpus, ours)}
    for name in ANCHORS:
        results[name] = score_all_profiles(corpus, load_scores_dir(nab_dir / "anchor_scores" / name, corpus))
    out = [f"### NAB scores ({len(corpus.files)} files, NAB's normalisation)", ""]
    out.append(
        table(
            ["detector", *PROFILES, "threshold (standard)", "TP/FN/FP"],
            [
                [name, *(f"{r[p].score:.2f}" for p in PROFILES), f"{r['standard'].threshold:.4g}",
                 f"{r['standard'].tp}/{r['standard'].fn}/{r['standard'].fp}"]
                for name, r in results.items()
            ],
        )
    )  # fmt: skip
    out += ["", "### Per file (standard profile: raw score, TP/FP)", ""]
    names = list(results)
    per = {n: {f.name: f for f in results[n]["standard"].files} for n in names}
    rows = [
        [fname, *(f"{per[n][fname].score:.2f} ({per[n][fname].tp}/{per[n][fname].fp})" for n in names)]
        for fname in corpus.files
    ]
    rows.append(["total", *(f"{results[n]['standard'].raw:.2f}" for n in names)])
    out.append(table(["file", *names], rows))
    return "\n".join(out), results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=1_000_000)
    data = os.environ.get("ANOMALY_DATA_DIR")
    default_nab = Path(data) / "nab" if data else Path(__file__).parents[2] / "shared" / "data" / "nab"
    parser.add_argument("--nab", type=Path, default=default_nab)
    parser.add_argument("--write", type=Path, help="also write the report (markdown) to this file")
    parser.add_argument("--quick", action="store_true", help="200,000 points for the speed part")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    parser.add_argument("--speed-only", action="store_true", help="only the speed part (no NAB)")
    args = parser.parse_args()
    if args.quick:
        args.points = min(args.points, 200_000)
    report = [f"Machine: {machine()}", "", f"### Speed ({args.points:,} points, one sensor, one core)", ""]
    speed_rows = speed(args.points)
    report.append(
        table(["method", "detect_batch", "detect (per point)", "detect_batch (CPU time)"], speed_rows)
    )
    if args.speed_only:
        print("\n".join(report))
        return
    nab_text, results = nab(args.nab)
    report += ["", nab_text]
    text = "\n".join(report)
    print(text)
    if args.write:
        args.write.write_text(text + "\n")
    if args.json:
        rates = {row[0]: float(str(row[1]).split()[0]) * 1e6 for row in speed_rows}
        figures = [
            {
                "metric": f"ensemble detect_batch ({args.points:,} points, no peer)",
                "unit": "points/s",
                "ours": rates["ensemble"],
                "target": ">= 1 M points/s",
            }
        ]
        n_files = len(results["ensemble"]["standard"].files)
        figures += [
            {
                "metric": f"NAB standard score, {n_files} files: ensemble vs {peer}",
                "unit": "NAB score",
                "kind": "quality",
                "ours": results["ensemble"]["standard"].score,
                "peer": results[peer]["standard"].score,
                "peer_name": f"{peer} (published)",
            }
            for peer in ("ARTime", "numenta")
        ]
        print(json.dumps({"bench": "ensemble", "figures": figures}))


if __name__ == "__main__":
    main()
