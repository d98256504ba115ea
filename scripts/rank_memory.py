"""The memory of the ranking score ``scores``, chosen leave-one-family-out (issue 15, items 4-5).

    nice python scripts/rank_memory.py [--nab DIR] [--write FILE] [--cache FILE]

The default ensemble's ``scores`` are ``rank_score`` (the piecewise mapping of
``cpp/src/detectors/ensemble.cpp``: linear up to statistic 5 -> 0.5, then rising towards
1) of a *remembered* statistic. This script rebuilds ``scores`` in NumPy from a batch's
``deviations`` (the point's statistic, ``max(best, warm-up z)``) and checks the emulation
against the C++ ``scores`` (largest absolute difference, printed) before trusting it; then
it scores an a-priori set of memories on three families of labelled series:

* NAB: the 52 files with a labelled window (``window_mask``), with their timestamps;
* synthetic kinds: ``evaluation.synthetic.make_suite(3)``, 24 series;
* KPI proxy: ``evaluation.synthetic_kpi.make_kpi_suite(30)``, 30 series;

by TSB-AD's VUS-PR (window from the series' period) and AUC-PR, per family the mean over
series. Candidates (no grid):

* ``stat d``: ``rank = max(best, d * rank)`` on the statistic, d = 0.995 (the rule before
  this change), 0.99, 0.98, 0.95, and ``none`` (the point's statistic alone);
* ``score d``: the decay applied after the mapping, ``q = max(rank_score(best), d * q)``
  (a huge statistic's tail is then bounded in points), d = 0.99, 0.98, 0.95;
* ``max k``: ``rank_score`` of the largest statistic of the last k points, k = 8, 32, 128.

In each, the warm-up's robust z counts for its own point only (it is not remembered), as
in the C++. The choice, fixed before looking at the figures: for each family, the
candidate with the highest *mean of the other two families' mean VUS-PR* is scored on the
held-out family. The table, the three held-out figures and each candidate's rank per
family are printed.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.evaluation import NabCorpus, average_precision, sliding_window, vus_pr
from anomaly_detection.evaluation.cli import _epoch_seconds
from anomaly_detection.evaluation.synthetic import make_suite
from anomaly_detection.evaluation.synthetic_kpi import make_kpi_suite

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import short_cycles
from _common import report

IN_FORCE = "time 0.99"  # the current build's rule ("stat 0.99" before session 16, "stat 0.995" before that)
PREVIOUS = "stat 0.99"  # the rule the last choice replaced
REFERENCE_PERIOD = 288  # EnsembleParams::kReferencePeriod: the sampling the memory was chosen on
PERIOD_PROBE = 50  # EnsembleParams::kPeriodProbe: the points before a timed series' period is known
LEARN = 300  # EnsembleParams::kLearn: points before the transition models score
SCALE = 10.0  # EnsembleParams::kScale
WARMUP_MIN = 10  # EnsembleParams::kWarmupMin
FAMILIES = ("NAB", "synthetic kinds", "KPI proxy", "short cycles", "hourly spikes")


def warmup_step(values: np.ndarray) -> np.ndarray:
    """The C++ warm-up's step statistic a point (``EnsembleState::warmup_step_statistic``, session
    16: the first LEARN points' scores also rank a step by its robust z against the earlier steps,
    at most 0.9 x the alarm level's score): every candidate memory takes it, as the build does."""
    x = np.asarray(values, dtype=np.float64)
    out = np.zeros(len(x))
    for t in range(WARMUP_MIN + 1, min(LEARN, len(x))):
        m = WARMUP_MIN  # the first 10, 15, 22, ... (x 1.5) steps, as many as there are
        while m * 3 // 2 <= t - 1:
            m = m * 3 // 2
        steps = np.diff(x[: m + 1])
        k = len(steps) // 2
        median = np.partition(steps, k)[k]
        dev = np.abs(steps - median)
        scale = 1.4826 * np.partition(dev, k)[k] or 1.2533 * dev.mean()
        scale = max(scale, 1e-12 * max(1.0, abs(x[t])))
        with np.errstate(over="ignore", invalid="ignore"):
            z = abs(x[t] - x[t - 1] - median) / scale
        if np.isnan(z):
            continue
        tail = max(0.5 * math.erfc(min(z, 37.0) / math.sqrt(2.0)), 1e-300)
        out[t] = min(-0.5 * math.log10(tail), 0.9 * 0.5 * SCALE)  # kHoldCap x the alarm level
    return out


def rank_score(statistic: np.ndarray) -> np.ndarray:
    """``rank_score`` of ensemble.cpp: linear up to the alarm level (5 -> 0.5), then
    rising towards 1 without ever tying."""
    half = 0.5 * SCALE
    s = np.asarray(statistic, dtype=np.float64)
    return np.where(s <= half, s / SCALE, 1.0 - 0.5 * np.exp(-(s - half) / half))


def _decay(x: np.ndarray, d: float, early: float | None = None) -> np.ndarray:
    """``held = max(x, d * held)`` a point; ``early`` in place of ``d`` over the first
    PERIOD_PROBE points (the C++ knows no period before them)."""
    out = np.empty_like(x)
    held = 0.0
    for i, v in enumerate(x.tolist()):
        held = max(v, (d if early is None or i >= PERIOD_PROBE else early) * held)
        out[i] = held
    return out


def _sliding_max(x: np.ndarray, k: int) -> np.ndarray:
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.concatenate([np.zeros(k - 1), x])
    return sliding_window_view(padded, k).max(axis=1)


def candidates() -> dict[str, tuple[str, float]]:
    out: dict[str, tuple[str, float]] = {}
    for d in (0.995, 0.99, 0.98, 0.95):
        out[f"stat {d}"] = ("stat", d)
    out["time 0.99"] = ("time", 0.99)
    out["none (point)"] = ("stat", 0.0)
    for d in (0.99, 0.98, 0.95):
        out[f"score {d}"] = ("score", d)
    for k in (8, 32, 128):
        out[f"max {k}"] = ("max", k)
    for name in DIAGNOSES:
        out[name] = ("diag", 0.0)
    return out


# Rows that explain an earlier emulation (not candidates): the rule in force without the
# mapping (the faded raw statistic), and with the warm-up z remembered like the rest.
DIAGNOSES = {
    "diag: stat 0.995, no mapping": lambda dev: _decay(dev, 0.995),
    "diag: stat 0.995, warm-up remembered": lambda dev: rank_score(_decay(dev, 0.995)),
}


def points_a_day(ts: np.ndarray | None) -> int:
    """The series' period as the C++ takes it from regular timestamps (0: none)."""
    if ts is None or len(ts) < 2:
        return 0
    dt = float(np.median(np.diff(ts)))
    return round(86400 / dt) if dt > 0 and 4 <= 86400 / dt <= 50000 else 0


def series_decay(kind: str, p: float, per_day: int) -> float:
    """The decay a point: ``time`` is ``p`` a point at five minutes or finer, as fast in time at
    coarser sampling (``p ** (288 / points a day)`` below 288 a day), as the C++ since session 16."""
    if kind == "time" and 0 < per_day < REFERENCE_PERIOD:
        return p ** (REFERENCE_PERIOD / per_day)
    return p


def emulate(kind: str, p: float, carried: np.ndarray, own: np.ndarray, per_day: int = 0) -> np.ndarray:
    if kind in ("stat", "time"):
        return rank_score(np.maximum(_decay(carried, series_decay(kind, p, per_day), p), own))
    if kind == "score":
        return np.maximum(_decay(rank_score(carried), p), rank_score(own))
    return rank_score(np.maximum(_sliding_max(carried, int(p)), own))


def inverse_rank_score(score: float) -> float:
    """The statistic whose ``rank_score`` is ``score``."""
    half = 0.5 * SCALE
    return score * SCALE if score <= 0.5 else half - half * float(np.log(2.0 * (1.0 - score)))


def infer(
    deviations: np.ndarray, scores: np.ndarray, decay: float = 0.995, capped: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(remembered statistic ``best``, own-point-only warm-up z) per point. The batch gives
    ``deviations = max(best, warm-up z)`` but not which of the two it is; the C++ ``scores``
    of the rule in force (``rank = max(best, decay * rank)``, score ``rank_score(max(rank,
    warm-up))``) tell: a point whose statistic, remembered, would leave a later score above
    the C++ one was the warm-up's. There ``best`` (lower) is the tightest bound the later
    scores put on the memory (exact where a later score is the memory's), else 0. The check
    in ``main`` (largest |difference| to the C++ ``scores``) shows how exact that is. Where
    ``capped``, the score is the warm-up step's (``warmup_step``): it bounds the memory from
    above but does not tell that the memory is above the warm-up z."""
    dev = np.asarray(deviations, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64)
    n = len(dev)
    best = dev.copy()
    own = np.zeros(n)
    held = 0.0
    horizon = 4000  # 0.995**4000 * 1e3 < 1e-5: no statistic is remembered longer
    powers = decay ** np.arange(1, horizon + 1)
    usable = sc < 1.0 - 1e-9  # where the score's inverse is precise
    inverse = np.array([inverse_rank_score(s) if u else np.inf for s, u in zip(sc.tolist(), usable.tolist())])
    for i in range(n):
        if dev[i] <= decay * held:
            held = decay * held
            continue
        future = sc[i + 1 : i + 1 + horizon]
        k = len(future)
        if k and np.any(future < rank_score(powers[:k] * dev[i]) - 1e-12):
            own[i] = dev[i]
            above = sc[i] > float(rank_score(np.array([dev[i]]))[0]) + 1e-12
            if above and not (capped is not None and capped[i]):
                rank = inverse_rank_score(sc[i])  # the memory is above the warm-up z here
            else:
                rank = min(dev[i], float(np.min(inverse[i + 1 : i + 1 + k] / powers[:k])))
            rank = max(rank, decay * held)
            best[i] = rank if rank > decay * held + 1e-12 else 0.0
            held = rank
        else:
            held = dev[i]
    return best, own


def load_families(nab_dir: Path) -> dict[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]]:
    """Per family: (name, values, labels, timestamps in seconds or None)."""
    corpus = NabCorpus.load(nab_dir)
    nab = []
    for name, f in corpus.files.items():
        y = f.window_mask()
        if y.any():
            nab.append(
                (name, np.asarray(f.values, dtype=np.float64), y.astype(int), _epoch_seconds(f.timestamps))
            )
    kinds = [(f"{s.kind}-{i}", s.values, s.labels, s.timestamps) for i, s in enumerate(make_suite(3))]
    kpi = [(s.name, s.values, s.labels, s.timestamps) for s in make_kpi_suite(30)]
    short = short_cycles.families(3, 30)
    cycles, spikes = ([(name, v, y, ts) for name, v, ts, y in short[k]] for k in ("cycles", "hourly spikes"))
    return {
        "NAB": nab,
        "synthetic kinds": kinds,
        "KPI proxy": kpi,
        "short cycles": cycles,
        "hourly spikes": spikes,
    }


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nab", type=Path, default=here.parent / "shared" / "data" / "nab")
    p.add_argument("--write", type=Path, help="also write the markdown here")
    p.add_argument(
        "--in-force",
        default=IN_FORCE,
        help="the installed build's rule, a candidate's name (default %(default)s; 'stat 0.99' before session 16)",
    )
    args = p.parse_args(argv)
    rule = args.in_force
    fams = load_families(args.nab)
    cands = candidates()
    vus = {c: {f: [] for f in FAMILIES} for c in cands}
    ap = {c: {f: [] for f in FAMILIES} for c in cands}
    real = {f: [] for f in FAMILIES}
    worst = {f: 0.0 for f in FAMILIES}
    after = {f: 0.0 for f in FAMILIES}  # the same after the first LEARN points
    warm_points = {f: 0 for f in FAMILIES}
    for fam in FAMILIES:
        for name, values, labels, ts in fams[fam]:
            batch = StatisticalAnomalyDetector().detect_batch("s", values, ts)
            dev, cpp = np.asarray(batch.deviations), np.asarray(batch.scores)
            per_day = points_a_day(ts)
            step = rank_score(warmup_step(values))
            capped = (step > 0) & (step >= cpp - 1e-12)  # the warm-up's step set the C++ score
            carried, own = infer(dev, cpp, series_decay(*cands[rule], per_day), capped)
            warm_points[fam] += int(np.count_nonzero(own))
            window = sliding_window(values)
            real[fam].append(vus_pr(labels, cpp, window=window))
            for c, (kind, param) in cands.items():
                s = DIAGNOSES[c](dev) if c in DIAGNOSES else emulate(kind, param, carried, own, per_day)
                s = np.maximum(s, step)
                if c == rule:
                    worst[fam] = max(worst[fam], float(np.max(np.abs(s - cpp))))
                    after[fam] = max(after[fam], float(np.max(np.abs(s - cpp)[LEARN:], initial=0.0)))
                vus[c][fam].append(vus_pr(labels, s, window=window))
                ap[c][fam].append(average_precision(labels, s))
            print(f"{fam}: {name} done", file=sys.stderr)
    mean_v = {c: {f: float(np.mean(vus[c][f])) for f in FAMILIES} for c in cands}
    mean_a = {c: {f: float(np.mean(ap[c][f])) for f in FAMILIES} for c in cands}
    chosen = [c for c in cands if c not in DIAGNOSES]
    ranks = {
        f: {c: 1 + sorted(-mean_v[x][f] for x in chosen).index(-mean_v[c][f]) for c in chosen}
        for f in FAMILIES
    }
    lines = [
        f"Emulation of the C++ `scores` (the build's rule, `{rule}`), largest |difference| per family: "
        + ", ".join(
            f"{f} {worst[f]:.2g}, {after[f]:.2g} after the first {LEARN} points "
            f"({warm_points[f]} points scored by the warm-up z)"
            for f in FAMILIES
        )
        + "; C++ `scores` VUS-PR: "
        + ", ".join(f"{f} {np.mean(real[f]):.3f}" for f in FAMILIES)
        + ".",
        "",
        "| memory | " + " | ".join(f"{f} VUS-PR / AUC-PR (rank)" for f in FAMILIES) + " | mean VUS-PR |",
        "|---|" + "---|" * (len(FAMILIES) + 1),
    ]
    for c in cands:
        cells = [f"{mean_v[c][f]:.3f} / {mean_a[c][f]:.3f} ({ranks[f].get(c, '-')})" for f in FAMILIES]
        lines.append(f"| {c} | " + " | ".join(cells) + f" | {np.mean(list(mean_v[c].values())):.3f} |")
    lines += ["", "Leave one family out (chosen by the mean of the other families' mean VUS-PR):", ""]
    lines += [
        f"| held out | chosen on the others | its VUS-PR there | the previous rule ({PREVIOUS}) there |"
    ]
    lines += ["|---|---|---|---|"]
    for f in FAMILIES:
        others = [g for g in FAMILIES if g != f]
        best = max(chosen, key=lambda c: np.mean([mean_v[c][g] for g in others]))
        lines.append(f"| {f} | {best} | {mean_v[best][f]:.3f} | {mean_v[PREVIOUS][f]:.3f} |")
    text = "\n".join(lines)
    report(text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
