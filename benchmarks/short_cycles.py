"""The default detector on short cycles, next to TSB-AD's POLY and Sub-PCA and a plain z-score.

    python -m benchmarks.short_cycles [--seeds 3] [--spike-seeds 30] [--no-tsbad] [--write FILE]

Most of the other families are five-minute or one-minute series, a day of 288 or 1,440
points. Much public labelled data is coarser: hourly series of a few weeks whose day is 24
points (Yahoo's S5, most of TSB-AD's YAHOO files), or machines' and heartbeats' cycles of
tens of points. Two generated families (no design choice was made on them):

* ``cycles``: ``cycle_case``: 6,000 points of a cycle of 24, 50, 100 or 144 points with noise
  and, after the first third, one anomaly of each of four kinds (a spike of twice the
  amplitude, a crest turned into a trough, a level shift, four-fold noise);
* ``hourly spikes``: ``spike_case``: 1,400 hourly points (58 days of 24) of a daily cycle with
  noise and three single-point spikes of 1-3 amplitudes anywhere after the 30th point, as
  Yahoo's series carry them.

Per family, the mean VUS-PR and AUC-PR (TSB-AD's metrics, the window from each series'
period) of the default's ``scores`` with timestamps (a ``cycle`` points a day) and without
(as ``evaluate --tsbad`` runs a file without a timestamp column), of TSB-AD's methods
(offline: each sees the whole series; optional, install line in ``benchmarks/tsbad_nab.py``)
and of ``|x - mean| / sd`` over the whole series.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, report
from synthetic_kinds import _tsbad_runner
from tsbad_nab import TSBAD_METHODS, load_tsbad_wrappers

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.evaluation import average_precision, sliding_window, vus_pr

DAY = 86400.0
CYCLES = (24, 50, 100, 144)  # points a cycle of the `cycles` family


def cycle_case(cycle: int, seed: int, n: int = 6000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, timestamps, labels): a cycle of ``cycle`` points with noise and, after its first
    third, one anomaly of each of four kinds, a cycle or more apart: a spike of twice the
    amplitude, a crest turned into a trough (a quarter cycle, inside the range), a level shift
    of 0.8 amplitude over a cycle, the noise four-fold over half a cycle. Stamped ``cycle``
    points a day."""
    rng = np.random.default_rng([seed, cycle])
    t = np.arange(n)
    amplitude, phase = rng.uniform(5, 20), rng.uniform(0, 2 * np.pi)
    noise = amplitude * rng.uniform(0.03, 0.1)
    clean = 100 + amplitude * np.sin(2 * np.pi * t / cycle + phase)
    values = clean + rng.normal(0, noise, n)
    labels = np.zeros(n, dtype=np.int8)
    starts = np.linspace(n // 3, n - 2 * cycle, 5)[:-1].astype(int) + rng.integers(0, cycle, 4)
    for kind, start in zip(rng.permutation(4), starts):
        if kind == 0:
            span = slice(start, start + 1)
            values[span] += rng.choice([-1, 1]) * 2 * amplitude
        elif kind == 1:
            crest = start + int(np.argmax(clean[start : start + cycle])) - cycle // 8
            span = slice(crest, crest + max(cycle // 4, 1))
            values[span] = 200 - clean[span] + rng.normal(0, noise, span.stop - span.start)
        elif kind == 2:
            span = slice(start, start + cycle)
            values[span] += rng.choice([-1, 1]) * 0.8 * amplitude
        else:
            span = slice(start, start + max(cycle // 2, 2))
            values[span] += rng.normal(0, 4 * noise, span.stop - span.start)
        labels[span] = 1
    return values, 1.7e9 + DAY / cycle * t, labels


def spike_case(seed: int, n: int = 1400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, timestamps, labels): ``n`` hourly points of a daily cycle (amplitude 5-20,
    noise 5% of it) with three single-point spikes of 1-3 amplitudes, up or down, anywhere
    after the 30th point."""
    rng = np.random.default_rng([seed, 24])
    t = np.arange(n)
    amplitude = rng.uniform(5, 20)
    values = 100 + amplitude * np.sin(2 * np.pi * t / 24 + rng.uniform(0, 2 * np.pi))
    values += rng.normal(0, 0.05 * amplitude, n)
    labels = np.zeros(n, dtype=np.int8)
    for pos in rng.choice(np.arange(30, n - 30), 3, replace=False):
        values[pos] += rng.choice([-1, 1]) * amplitude * rng.uniform(1.0, 3.0)
        labels[pos] = 1
    return values, 1.7e9 + 3600.0 * t, labels


def families(seeds: int, spike_seeds: int) -> dict[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]]:
    """Per family: (name, values, timestamps, labels)."""
    return {
        "cycles": [(f"cycle{c}_{s}", *cycle_case(c, s)) for c in CYCLES for s in range(seeds)],
        "hourly spikes": [(f"spikes_{s}", *spike_case(s)) for s in range(spike_seeds)],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="series per cycle length (default 3)")
    p.add_argument("--spike-seeds", type=int, default=30, help="hourly spike series (default 30)")
    p.add_argument("--no-tsbad", action="store_true", help="skip TSB-AD's Sub-PCA and POLY")
    p.add_argument("--write", type=Path, help="also write the markdown here")
    args = p.parse_args(argv)

    def ours(timed: bool):
        return lambda v, ts: StatisticalAnomalyDetector().detect_batch("s", v, ts if timed else None).scores

    scorers = {"ours, timestamps": ours(True), "ours, none": ours(False)}
    note = ""
    if not args.no_tsbad:
        try:
            wrappers, hp, version = load_tsbad_wrappers()
            for m in TSBAD_METHODS:
                run = _tsbad_runner(m, wrappers, hp)
                scorers[f"TSB-AD {m} (offline)"] = lambda v, ts, run=run: run(v)
            note = f"TSB-AD {version}, hyper-parameters of its HP_list. "
        except ImportError as exc:
            note = f"TSB-AD's rows skipped: {exc}. "
    scorers["z-score (offline)"] = lambda v, ts: np.abs(v - v.mean()) / v.std()
    fams = families(args.seeds, args.spike_seeds)
    groups: dict[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]] = {}
    for fam, cases in fams.items():
        groups[f"**{fam}**"] = cases
        if fam == "cycles":
            for c in CYCLES:
                groups[f"cycles of {c}"] = [k for k in cases if k[0].startswith(f"cycle{c}_")]
    results = {name: {} for name in scorers}
    for cases in fams.values():
        for name, values, ts, labels in cases:
            window = sliding_window(values)
            for sname, scorer in scorers.items():
                scores = np.asarray(scorer(values, ts), dtype=np.float64)
                results[sname][name] = (
                    vus_pr(labels, scores, window=window),
                    average_precision(labels, scores),
                )
    lines = [
        f"Short cycles: {sum(len(c) for c in fams.values())} series; {note}Machine: {machine()}.",
        "",
        "| family | series | " + " | ".join(f"{n} VUS-PR / AUC-PR" for n in scorers) + " |",
        "|---|---:|" + "---|" * len(scorers),
    ]
    for group, cases in groups.items():
        cells = []
        for sname in scorers:
            vus, ap = zip(*(results[sname][k[0]] for k in cases))
            cells.append(f"{np.mean(vus):.3f} / {np.mean(ap):.3f}")
        lines.append(f"| {group} | {len(cases)} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    report(text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
