"""The default detector on synthetic series of each anomaly kind, next to TSB-AD's POLY and Sub-PCA.

    python -m benchmarks.synthetic_kinds [--seeds 3] [--no-tsbad] [--write FILE]

Series from ``anomaly_detection.evaluation.synthetic`` (28 days at five minutes, a daily
cycle with noise, weekly component and trend, three anomalies of one kind after a clean
week): data no design choice of the default was made on. Per kind, the mean VUS-PR and
AUC-PR (TSB-AD's metrics, ``anomaly_detection.evaluation.tsbad``; the window from each
series' period), and for the default detector how many injected anomalies raised an alarm
(within 30 points of their end) and how many alarms fell elsewhere. TSB-AD's methods are
optional (the install line is in ``benchmarks/tsbad_nab.py``); they see each whole series
offline, ours only the past.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, report
from tsbad_nab import TSBAD_METHODS, load_tsbad_wrappers

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.evaluation import average_precision, sliding_window, vus_pr
from anomaly_detection.evaluation.synthetic import KINDS, SyntheticSeries, make_suite


def _incidents(labels: np.ndarray) -> np.ndarray:
    edges = np.flatnonzero(np.diff(np.r_[0, labels.astype(int), 0]))
    return edges.reshape(-1, 2)  # [start, end) rows


def alarms(series: SyntheticSeries, flags: np.ndarray) -> tuple[int, int]:
    """(incidents with an alarm from their start to 30 points after, alarms outside any such span)."""
    near = np.zeros(len(flags), dtype=bool)
    found = 0
    for start, end in _incidents(series.labels):
        near[start : end + 30] = True
        found += bool(flags[start : end + 30].any())
    return found, int(np.count_nonzero(flags & ~near))


def _tsbad_runner(method: str, wrappers, hp):
    run = getattr(wrappers, f"run_{method}")

    def score(values: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = np.asarray(run(values.reshape(-1, 1), **hp[method]), dtype=np.float64)
        return s if np.isfinite(s).all() else np.zeros(len(values))

    return score


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="series per kind (default 3)")
    p.add_argument("--no-tsbad", action="store_true", help="skip TSB-AD's Sub-PCA and POLY")
    p.add_argument("--write", type=Path, help="also write the markdown here")
    args = p.parse_args(argv)
    suite = make_suite(args.seeds)
    scorers = {"ours (default, streaming)": None}
    note = ""
    if not args.no_tsbad:
        try:
            wrappers, hp, version = load_tsbad_wrappers()
            scorers.update({f"TSB-AD {m} (offline)": _tsbad_runner(m, wrappers, hp) for m in TSBAD_METHODS})
            note = f"TSB-AD {version}, hyper-parameters of its HP_list. "
        except ImportError as exc:
            note = f"TSB-AD's rows skipped: {exc}. "
    rows: dict[str, dict[str, list[float]]] = {name: {k: [] for k in KINDS} for name in scorers}
    aps: dict[str, dict[str, list[float]]] = {name: {k: [] for k in KINDS} for name in scorers}
    found = {k: [0, 0, 0] for k in KINDS}  # incidents found, incidents, alarms elsewhere
    for s in suite:
        window = sliding_window(s.values)
        for name, scorer in scorers.items():
            if scorer is None:
                batch = StatisticalAnomalyDetector().detect_batch("s", s.values, s.timestamps)
                scores = batch.scores
                hit, false = alarms(s, batch.is_anomaly)
                found[s.kind][0] += hit
                found[s.kind][1] += len(_incidents(s.labels))
                found[s.kind][2] += false
            else:
                scores = scorer(s.values)
            rows[name][s.kind].append(vus_pr(s.labels, scores, window=window))
            aps[name][s.kind].append(average_precision(s.labels, scores))
    names = list(scorers)
    lines = [
        (
            f"Synthetic anomaly kinds, {args.seeds} series each ({len(suite)} series of 8,064 points); "
            f"{note}Machine: {machine()}."
        ),
        "",
        "| kind | "
        + " | ".join(f"{n} VUS-PR / AUC-PR" for n in names)
        + " | ours: anomalies alarmed, alarms elsewhere |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for kind in KINDS:
        cells = [f"{np.mean(rows[n][kind]):.3f} / {np.mean(aps[n][kind]):.3f}" for n in names]
        f = found[kind]
        lines.append(f"| {kind} | " + " | ".join(cells) + f" | {f[0]} of {f[1]}, {f[2]} |")
    means = [
        f"**{np.mean([np.mean(rows[n][k]) for k in KINDS]):.3f}** / {np.mean([np.mean(aps[n][k]) for k in KINDS]):.3f}"
        for n in names
    ]
    total = [sum(found[k][i] for k in KINDS) for i in range(3)]
    lines.append("| **mean** | " + " | ".join(means) + f" | {total[0]} of {total[1]}, {total[2]} |")
    text = "\n".join(lines)
    report(text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
