"""NAB on the whole corpus and leave-one-category-out, side by side.

    python scripts/nab_loco.py                                  # the default detector
    python scripts/nab_loco.py --candidate default= --candidate mad=detection_method=mad \\
        --candidate zscore=detection_method=zscore,window_size=500

Each candidate is a name and comma-separated settings (``KEY=VALUE``, values read
as JSON where they can be). Every candidate runs over the 58 files (a fresh
detector per file, as ``anomaly-detection evaluate --nab`` does); the table gives
its full-corpus NAB score on the three profiles and, for the set of candidates,
the leave-one-category-out score: each category scored with the candidate and
threshold chosen on the other six (``anomaly_detection.evaluation.loco``).

``--timestamps none`` runs every file without its timestamps (as a TSB-AD-format file
without a timestamp column runs: every point stamped now, the period estimated from the
values); ``--timestamps estimated`` stamps the positions from the Python prototype of
that estimate (``benchmarks/untimed.py``), a cross-check.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.evaluation import (
    PROFILE_NAMES,
    NabCorpus,
    leave_one_category_out,
    score_corpus,
)
from anomaly_detection.evaluation.cli import run_detector_on_corpus

ROOT = Path(__file__).resolve().parents[1]


def parse_candidate(text: str) -> tuple[str, dict]:
    name, _, body = text.partition("=")
    settings = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition("=")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return name, settings


class _Restamped:
    """The default detector fed other timestamps than the file's: none, or estimated."""

    def __init__(self, how: str, **settings) -> None:
        self._detector = StatisticalAnomalyDetector(**settings)
        self._how = how

    def detect_batch(self, sensor, values, timestamps=None):
        if self._how == "none":
            return self._detector.detect_batch(sensor, values)
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from untimed import estimated_timestamps

        ts, _ = estimated_timestamps(values, 8192, time.time())
        return self._detector.detect_batch(sensor, values, ts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nab", type=Path, default=ROOT.parent / "shared" / "data" / "nab")
    p.add_argument("--candidate", action="append", default=[], metavar="NAME=K=V,K=V")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--timestamps",
        choices=("real", "none", "estimated"),
        default="real",
        help="the files' timestamps (default), none, or positions stamped from an estimated period",
    )
    args = p.parse_args(argv)
    factory = (
        StatisticalAnomalyDetector
        if args.timestamps == "real"
        else lambda **settings: _Restamped(args.timestamps, **settings)
    )
    corpus = NabCorpus.load(args.nab)
    candidates = dict(parse_candidate(c) for c in args.candidate or ["default="])
    scores = {
        name: run_detector_on_corpus(corpus, factory, settings) for name, settings in candidates.items()
    }
    report: dict = {"full": {}, "loco": {}}
    for name, s in scores.items():
        report["full"][name] = {prof: round(score_corpus(corpus, s, prof).score, 2) for prof in PROFILE_NAMES}
    for prof in PROFILE_NAMES:
        loco = leave_one_category_out(corpus, scores, prof)
        report["loco"][prof] = {"score": round(loco.score, 2), "picks": loco.picks}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"NAB, {len(corpus)} files, {corpus.n_windows} windows\n")
    print("| candidate | settings | standard | low FP | low FN |\n|---|---|---:|---:|---:|")
    for name, full in report["full"].items():
        print(
            f"| {name} | {candidates[name] or '(defaults)'} | "
            + " | ".join(f"{full[p]:.2f}" for p in PROFILE_NAMES)
            + " |"
        )
    print(
        "| **leave-one-category-out** | | "
        + " | ".join(f"{report['loco'][p]['score']:.2f}" for p in PROFILE_NAMES)
        + " |"
    )
    print(
        "\nstandard profile, per held-out category: chosen candidate, threshold chosen without it, raw score"
    )
    for cat, (name, thr, raw) in report["loco"]["standard"]["picks"].items():
        print(f"  {cat:24s} {name:12s} {thr:8.4f} {raw:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
