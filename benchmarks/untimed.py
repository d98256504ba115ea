"""What the default detector loses on points without timestamps, and what a period from the values could win back.

    nice python -m benchmarks.untimed [--families kpi,kinds,nab] [--kpi-seeds 30] [--kinds-seeds 3]
                                      [--variants timed,untimed,true-step,estimated] [--write FILE]

TSB-AD's CSVs (a value column and ``Label``) carry no timestamps, and ``detect_batch(sensor,
values)`` without timestamps stamps every point "now": all intervals are 0, so the default
ensemble never learns its period (points a day, from the intervals) and its seasonal
detectors never run. For three families of labelled series, VUS-PR (TSB-AD's metric, the
window from each series' period as TSB-AD chooses it) of the raw ``scores`` of a fresh
default ``StatisticalAnomalyDetector()`` per series, four ways:

* ``timed``: with the series' real timestamps (what the other benchmarks run);
* ``untimed``: without timestamps (as ``anomaly-detection evaluate --tsbad`` runs a file
  that has no timestamp column): the product, whose ensemble now estimates the period
  of untimed points itself, as the prototype below does (before, it had no season);
* ``true-step``: without timestamps, but positions stamped with the series' TRUE sampling
  step (its median interval): the upper bound of any period estimate from the values;
* ``estimated``: the Python prototype (a cross-check of the product's C++) of a causal period from
  the values alone: the autocorrelation of the points seen so far (a bounded buffer of
  the last ``--buffer`` points), estimated at 256 points and again each time the count
  grew by half; an estimate without a period keeps the last one found; until a period is found the points stay untimed (intervals 0, as today),
  then each point is stamped one period / (points a day) after the previous one, so that
  the ensemble's own season machinery (the interval tracking) takes the estimate as
  "a day". Each estimate sees only the past.

Families: the KPI proxy (``anomaly_detection.evaluation.synthetic_kpi``), the synthetic
anomaly kinds (``anomaly_detection.evaluation.synthetic``), NAB's files with a labelled
window (``--nab``), and ``cycles``: short cycles (24, 50, 100 and 144 points, as hourly
days, machines' or heartbeats' cycles; ``--kinds-seeds`` series each) with four anomalies each
(``benchmarks.short_cycles.cycle_case``; not in the default ``--families``). Prints the mean per family and per group (KPI profile, synthetic kind,
NAB category), and the period each estimate found against the true one.

``--speed``: instead, ``detect_batch`` of 1,000,000 points of a noisy daily cycle with
timestamps and without (the period estimate's cost), side by side, ``--repeats`` times:
points per second of wall time and of CPU time, each repeat and the range.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, report
from short_cycles import CYCLES, cycle_case
from tsbad_nab import _default_data

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.evaluation import NabCorpus, sliding_window, vus_pr
from anomaly_detection.evaluation.synthetic import make_suite
from anomaly_detection.evaluation.synthetic_kpi import make_kpi_suite

DAY = 86400.0
VARIANTS = ("timed", "untimed", "true-step", "estimated")
FIRST_ESTIMATE = 256
HARMONIC = 0.6  # a divisor lag's peak holding this share of the best is the period
GROWTH = 1.5  # the next estimate at 1.5 times the count of the last


@dataclass
class Case:
    family: str
    group: str
    name: str
    values: np.ndarray
    timestamps: np.ndarray  # epoch seconds
    labels: np.ndarray

    @property
    def step(self) -> float:
        return float(np.median(np.diff(self.timestamps)))


def cases(families: set[str], kpi_seeds: int, kinds_seeds: int, nab: Path) -> Iterator[Case]:
    if "kpi" in families:
        for s in make_kpi_suite(kpi_seeds):
            yield Case("kpi", s.profile, s.name, s.values, np.asarray(s.timestamps, float), s.labels)
    if "kinds" in families:
        for s in make_suite(kinds_seeds):
            yield Case("kinds", s.kind, s.name, s.values, np.asarray(s.timestamps, float), s.labels)
    if "cycles" in families:
        for cycle in CYCLES:
            for seed in range(kinds_seeds):
                values, timestamps, labels = cycle_case(cycle, seed)
                yield Case("cycles", f"{cycle} a cycle", f"cycle{cycle}_{seed}", values, timestamps, labels)
    if "nab" in families:
        corpus = NabCorpus.load(nab)
        for name, f in corpus.files.items():
            y = f.window_mask()
            if not y.any():
                continue
            ts = f.timestamps.astype("datetime64[ns]").astype(np.int64) / 1e9
            yield Case("nab", name.split("/")[0], name, f.values, ts, y.astype(int))


def acf_period(x: np.ndarray, min_lag: int = 4, strength: float = 0.3) -> int:
    """The lag of the autocorrelation's first strong peak in ``x`` (linear trend removed),
    or 0 when there is none: the highest peak beyond the first zero crossing, up to half
    the buffer, at least ``strength``; then its shortest divisor lag whose peak holds 60%
    of it (a day, not the week that also peaks), again from that lag until none does."""
    n = len(x)
    t = np.arange(n, dtype=np.float64)
    c = x - np.polyval(np.polyfit(t, x, 1), t)
    var = float(c @ c)
    if var <= 0:
        return 0
    n_fft = 1 << int(2 * n).bit_length()
    spec = np.fft.rfft(c, n_fft)
    acf = np.fft.irfft(spec * spec.conj(), n_fft)[: n // 2 + 1] / var
    # unbiased: lag k sums n - k products
    acf = acf * n / (n - np.arange(len(acf)))
    below = np.flatnonzero(acf[min_lag:] < 0)
    if len(below) == 0:
        return 0
    start = min_lag + int(below[0])
    if start >= len(acf) - 1:
        return 0
    inner = acf[start:-1]
    peaks = np.flatnonzero((inner > acf[start - 1 : -2]) & (inner >= acf[start + 1 :])) + start
    if len(peaks) == 0:
        return 0
    best = int(peaks[np.argmax(acf[peaks])])
    if acf[best] < strength:
        return 0
    peak_set = set(peaks.tolist())
    period, reduced = best, True
    while reduced:  # the fundamental of a harmonic (a day in a week), again from there until none
        reduced = False
        for k in range(10, 1, -1):
            lag = period / k
            if lag < start:
                continue
            lo, hi = max(int(lag * 0.9), 1), min(int(np.ceil(lag * 1.1)) + 1, len(acf))
            j = lo + int(np.argmax(acf[lo:hi]))
            if j < period and acf[j] >= HARMONIC * acf[best] and j in peak_set:
                period, reduced = j, True
                break
    return period


def estimated_timestamps(values: np.ndarray, buffer: int, now: float) -> tuple[np.ndarray, list[int]]:
    """Causal synthetic timestamps: intervals 0 until the first period is found, then
    a day / period; periods estimated at 256, 384, 576, ... points on the last ``buffer``."""
    n = len(values)
    out = np.empty(n)
    step, t, found = 0.0, now, []
    check = FIRST_ESTIMATE
    for i in range(n):
        if i == check:
            p = acf_period(values[max(0, i - buffer) : i])
            found.append(p)
            if p:  # an estimate without a period keeps the last one found
                step = DAY / p
            check = int(check * GROWTH)
        if i:
            t += step
        out[i] = t
    return out, found


def run(case: Case, variant: str, buffer: int) -> tuple[np.ndarray, list[int]]:
    det = StatisticalAnomalyDetector()
    found: list[int] = []
    if variant == "timed":
        ts = case.timestamps
    elif variant == "untimed":
        ts = None
    elif variant == "true-step":
        ts = time.time() + np.arange(len(case.values)) * case.step
    else:
        ts, found = estimated_timestamps(case.values, buffer, time.time())
    return np.asarray(det.detect_batch("s", case.values, ts).scores, dtype=np.float64), found


def speed(repeats: int, n: int = 1_000_000) -> str:
    rng = np.random.default_rng(0)
    i = np.arange(n)
    values = 50 + 10 * np.sin(2 * np.pi * i / 288) + rng.normal(0, 0.5, n)
    stamps = 1.7e9 + 300.0 * i
    runs: dict[str, list[tuple[float, float]]] = {"timestamps": [], "no timestamps": []}
    for _ in range(repeats):
        for name, args in (("timestamps", (values, stamps)), ("no timestamps", (values,))):
            det = StatisticalAnomalyDetector()
            wall, cpu = time.perf_counter(), time.process_time()
            det.detect_batch("s", *args)
            runs[name].append((n / (time.perf_counter() - wall) / 1e6, n / (time.process_time() - cpu) / 1e6))
    lines = [
        f"Machine: {machine()}. detect_batch, {n:,} points, {repeats} repeats side by side (M points/s).",
        "",
        "| timestamps | wall, each | wall range | CPU, each | CPU range |",
        "|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        w, c = [x[0] for x in r], [x[1] for x in r]
        lines.append(
            f"| {name} | {' '.join(f'{x:.2f}' for x in w)} | {min(w):.2f}-{max(w):.2f} "
            f"| {' '.join(f'{x:.2f}' for x in c)} | {min(c):.2f}-{max(c):.2f} |"
        )
    ratios = [u[1] / t[1] for u, t in zip(runs["no timestamps"], runs["timestamps"])]
    lines.append(f"\nCPU ratio without / with timestamps: {min(ratios):.2f}-{max(ratios):.2f}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", default="kpi,kinds,nab")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--kpi-seeds", type=int, default=30)
    p.add_argument("--kinds-seeds", type=int, default=3)
    p.add_argument("--nab", type=Path, default=_default_data())
    p.add_argument("--buffer", type=int, default=8192, help="points the estimate sees (default 8192)")
    p.add_argument("--write", type=Path)
    p.add_argument(
        "--speed", action="store_true", help="time detect_batch with and without timestamps instead"
    )
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    if args.speed:
        print(speed(args.repeats))
        return 0
    variants = args.variants.split(",")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        p.error(f"--variants: unknown {sorted(unknown)}")
    rows: list[tuple[Case, dict[str, float], list[int]]] = []
    for case in cases(set(args.families.split(",")), args.kpi_seeds, args.kinds_seeds, args.nab):
        window = sliding_window(case.values)
        res, found = {}, []
        for v in variants:
            scores, f = run(case, v, args.buffer)
            found = f or found
            res[v] = vus_pr(case.labels, scores, window=window)
        rows.append((case, res, found))
        print(
            f"{case.name}: "
            + " ".join(f"{v} {res[v]:.3f}" for v in variants)
            + f" | true {DAY / case.step:.0f}/day, estimates {found}",
            file=sys.stderr,
        )
    mean: Callable[[list[float]], str] = lambda xs: f"{np.mean(xs):.3f}" if xs else "-"
    lines = [
        f"Machine: {machine()}. Estimate buffer {args.buffer} points, first estimate at {FIRST_ESTIMATE}.",
        "",
        "| family | group | series | " + " | ".join(variants) + " |",
        "|---|---|---|" + "---|" * len(variants),
    ]
    for fam in dict.fromkeys(c.family for c, _, _ in rows):
        fam_rows = [(c, r) for c, r, _ in rows if c.family == fam]
        lines.append(
            f"| **{fam}** | all | {len(fam_rows)} | "
            + " | ".join(f"**{mean([r[v] for _, r in fam_rows])}**" for v in variants)
            + " |"
        )
        for g in dict.fromkeys(c.group for c, _ in fam_rows):
            g_rows = [r for c, r in fam_rows if c.group == g]
            lines.append(
                f"| {fam} | {g} | {len(g_rows)} | "
                + " | ".join(mean([r[v] for r in g_rows]) for v in variants)
                + " |"
            )
    if "estimated" in variants:
        lines += ["", "Estimated periods (points a day: true, then each estimate; 0 = none):", ""]
        for c, _, found in rows:
            lines.append(f"- {c.name}: true {DAY / c.step:.0f}; {found}")
    text = "\n".join(lines)
    report(text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
