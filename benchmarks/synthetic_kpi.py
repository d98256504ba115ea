"""The default detector on a proxy for operational web-service KPIs, beside TSB-AD's methods.

    nice python -m benchmarks.synthetic_kpi [--seeds 30] [--no-tsbad] [--write FILE] [--plot DIR]

Series from ``anomaly_detection.evaluation.synthetic_kpi`` (one or five minutes, two to
nine weeks, daily cycles of five shapes, weekends, drift, noise that scales with the
level, missing rows, anomalies at 1-5% labelled as segments): data no design choice of
the default was made on. Per series and as the mean: VUS-PR and AUC-PR (TSB-AD's metrics,
``anomaly_detection.evaluation.tsbad``, the window from each series' period as TSB-AD
chooses it) for

a. ours, the default ``StatisticalAnomalyDetector()``, ``detect_batch`` with the series'
   timestamps, raw ``scores`` (streaming and causal);
b. ours as ``anomaly-detection evaluate --tsbad`` runs it on TSB-AD's own CSVs: the
   same values without timestamps (every point is stamped now, so the ensemble takes
   its period from the values: ``benchmarks/untimed.py``);
c. ours ranked by the batch's ``deviations`` instead of ``scores`` (the point's own
   statistic, ``-log10`` of its smallest tail probability, without the scores' fading
   by 1% a point, 0.5% before issue 15's leave-one-family-out choice): a diagnosis row,
   what the fading costs on segment labels;
d. the plain z-score (``detection_method="zscore"``), with timestamps;
e. TSB-AD's POLY, Sub-PCA and Sub-IForest (``model_wrapper`` with its ``HP_list``
   hyper-parameters; offline: they see the whole series). Optional, as in
   ``benchmarks/tsbad_nab.py``.

Then, per anomaly kind, the share of labelled segments whose highest score (over the
segment) fewer than 1% of the normal points (those more than an hour from any label)
reach: "caught in the top 1%" (ties count against). ``--plot DIR`` draws the series with
the most negative VUS-PR gap between ours and the best TSB-AD method (needs matplotlib).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, report
from tsbad_nab import load_tsbad_wrappers

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.evaluation import average_precision, sliding_window, vus_pr
from anomaly_detection.evaluation.synthetic_kpi import ANOMALY_KINDS, KpiSeries, make_kpi_suite

PEERS = ("POLY", "Sub_PCA", "Sub_IForest")
OURS = "ours (default)"
OURS_NO_TS = "ours, no timestamps"
OURS_POINT = "ours, deviations"
ZSCORE = "z-score"
FADES = (0.9, 0.98, 0.995)  # per point; ``scores`` fade by 0.99 (0.995 before)

Scorer = Callable[[KpiSeries], np.ndarray]


def _ours(s: KpiSeries) -> np.ndarray:
    return StatisticalAnomalyDetector().detect_batch("s", s.values, s.timestamps).scores


def _ours_point(s: KpiSeries) -> np.ndarray:
    return np.asarray(StatisticalAnomalyDetector().detect_batch("s", s.values, s.timestamps).deviations)


def _ours_no_ts(s: KpiSeries) -> np.ndarray:
    return StatisticalAnomalyDetector().detect_batch("s", s.values).scores


def _zscore(s: KpiSeries) -> np.ndarray:
    return (
        StatisticalAnomalyDetector(detection_method="zscore").detect_batch("s", s.values, s.timestamps).scores
    )


def _peer(method: str, wrappers, hp) -> Scorer:
    run = getattr(wrappers, f"run_{method}")

    def score(s: KpiSeries) -> np.ndarray:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = np.asarray(run(s.values.reshape(-1, 1), **hp[method]), dtype=np.float64)
        except Exception:  # noqa: BLE001 - scored as no ranking, as TSB-AD's runner reports a failure
            return np.zeros(len(s.values))
        return out if np.isfinite(out).all() else np.zeros(len(s.values))

    return score


def faded(statistic: np.ndarray, rate: float) -> np.ndarray:
    """The running ``max(x_t, rate * previous)``: a fading like the one of ``scores``,
    applied to another statistic (a diagnosis of what the fading does)."""
    out = np.empty_like(statistic)
    held = 0.0
    for i, x in enumerate(statistic.tolist()):
        held = max(x, held * rate)
        out[i] = held
    return out


def caught(s: KpiSeries, scores: np.ndarray) -> list[tuple[str, bool]]:
    """(kind, whether fewer than 1% of the normal points (those more than an hour from any
    label) score at least the segment's top score): ties count against, so a score that
    saturates at its maximum on normal points catches nothing by it."""
    near = np.zeros(len(scores), dtype=bool)
    hour = int(3600 / s.step)
    for start, end, _ in s.incidents:
        near[max(start - hour, 0) : end + hour] = True
    normal = np.sort(scores[~near])
    out = []
    for start, end, kind in s.incidents:
        at_least = len(normal) - np.searchsorted(normal, scores[start:end].max(), side="left")
        out.append((kind, bool(at_least < 0.01 * len(normal))))
    return out


def plot(s: KpiSeries, scores: dict[str, np.ndarray], path: Path, around: int | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(scores)
    fig, axes = plt.subplots(1 + len(names), 1, figsize=(14, 2.0 * (1 + len(names))), sharex=True)
    lo, hi = (
        (0, len(s.values)) if around is None else (max(around - 1500, 0), min(around + 1500, len(s.values)))
    )
    x = np.arange(lo, hi)
    axes[0].plot(x, s.values[lo:hi], lw=0.5, color="k")
    axes[0].set_title(f"{s.name}: anomaly rate {s.anomaly_rate:.3f}", fontsize=9)
    for ax in axes:
        for start, end, kind in s.incidents:
            if end > lo and start < hi:
                ax.axvspan(start, end, color="red", alpha=0.25, lw=0)
                if ax is axes[0]:
                    ax.text(start, ax.get_ylim()[1], kind, fontsize=6, va="top")
    for ax, name in zip(axes[1:], names):
        ax.plot(x, scores[name][lo:hi], lw=0.5)
        ax.set_ylabel(name, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=30, help="series (default 30)")
    p.add_argument("--no-tsbad", action="store_true", help="skip TSB-AD's methods")
    p.add_argument("--write", type=Path, help="also write the markdown here")
    p.add_argument("--plot", type=Path, help="draw the series where ours loses most, into this folder")
    args = p.parse_args(argv)
    suite = make_kpi_suite(args.seeds)
    scorers: dict[str, Scorer] = {
        OURS: _ours,
        OURS_NO_TS: _ours_no_ts,
        OURS_POINT: _ours_point,
        ZSCORE: _zscore,
    }
    note = ""
    if not args.no_tsbad:
        try:
            wrappers, hp, version = load_tsbad_wrappers()
            importlib.import_module("TSB_AD.models.IForest")
            scorers.update({f"{m} (offline)": _peer(m, wrappers, hp) for m in PEERS})
            note = f"TSB-AD {version}, hyper-parameters of its HP_list. "
        except ImportError as exc:
            note = f"TSB-AD's rows skipped: {exc}. "
    names = list(scorers)
    vus = {n: [] for n in names}
    ap = {n: [] for n in names}
    seconds = dict.fromkeys(names, 0.0)
    hits = {n: {k: [0, 0] for k in ANOMALY_KINDS} for n in names}
    all_scores: list[dict[str, np.ndarray]] = []
    fade_vus: dict[float, list[float]] = {rate: [] for rate in FADES}
    for s in suite:
        window = sliding_window(s.values)
        kept = {}
        for name, scorer in scorers.items():
            start = time.perf_counter()
            scores = np.asarray(scorer(s), dtype=np.float64)
            seconds[name] += time.perf_counter() - start
            kept[name] = scores
            vus[name].append(vus_pr(s.labels, scores, window=window))
            ap[name].append(average_precision(s.labels, scores))
            for kind, ok in caught(s, scores):
                hits[name][kind][0] += ok
                hits[name][kind][1] += 1
        all_scores.append(kept)
        for rate in FADES:
            fade_vus[rate].append(vus_pr(s.labels, faded(kept[OURS_POINT], rate), window=window))
    points = sum(len(s.values) for s in suite)
    lines = [
        (
            f"Synthetic KPI proxy, {len(suite)} series ({points:,} points; "
            f"{sum(s.step == 60 for s in suite)} at one minute, the rest at five; mean anomaly rate "
            f"{np.mean([s.anomaly_rate for s in suite]):.3f}); {note}Machine: {machine()}."
        ),
        "",
        "| method | mean VUS-PR | mean AUC-PR | series where it is best (VUS-PR) | scoring time (s) |",
        "|---|---|---|---|---|",
    ]
    table = np.array([vus[n] for n in names])
    best = np.argmax(table, axis=0)
    for i, n in enumerate(names):
        lines.append(
            f"| {n} | **{np.mean(vus[n]):.3f}** | {np.mean(ap[n]):.3f} | {int(np.sum(best == i))} | {seconds[n]:.1f} |"
        )
    lines += [
        "",
        (
            "Labelled segments caught in the top 1% (fewer than 1% of the normal points score at "
            "least the segment's highest score; ties count against), per kind:"
        ),
        "",
        "| kind | segments | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for kind in ANOMALY_KINDS:
        total = hits[names[0]][kind][1]
        cells = [f"{hits[n][kind][0] / total:.2f}" if total else "-" for n in names]
        lines.append(f"| {kind} | {total} | " + " | ".join(cells) + " |")
    steps = sorted({s.step for s in suite})
    lines += [
        "",
        "Mean VUS-PR by sampling interval:",
        "",
        "| method | "
        + " | ".join(f"{int(st)} s ({sum(s.step == st for s in suite)} series)" for st in steps)
        + " |",
        "|---|" + "---|" * len(steps),
    ]
    for n in names:
        cells = [f"{np.mean([v for v, s in zip(vus[n], suite) if s.step == st]):.3f}" for st in steps]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Diagnosis: ours' `deviations` with a fading like that of `scores` (running max of the statistic "
        "and the previous value times the rate), mean VUS-PR: "
        + ", ".join(f"{rate} a point {np.mean(fade_vus[rate]):.3f}" for rate in FADES)
        + f" (none {np.mean(vus[OURS_POINT]):.3f}; the real `scores` {np.mean(vus[OURS]):.3f}).",
    ]
    lines += [
        "",
        "Per series, VUS-PR:",
        "",
        "| series | points | rate | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for j, s in enumerate(suite):
        cells = [f"**{vus[n][j]:.3f}**" if best[j] == i else f"{vus[n][j]:.3f}" for i, n in enumerate(names)]
        lines.append(f"| {s.name} | {len(s.values):,} | {s.anomaly_rate:.3f} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    report(text, args.write)
    if args.plot:
        args.plot.mkdir(parents=True, exist_ok=True)
        peers = [n for n in names if n.endswith("(offline)")] or [ZSCORE]
        gaps = [max(vus[n][j] for n in peers) - vus[OURS][j] for j in range(len(suite))]
        for j in np.argsort(gaps)[::-1][:4]:
            s = suite[j]
            shown = {n: all_scores[j][n] for n in (OURS, OURS_POINT, *peers)}
            plot(s, shown, args.plot / f"{s.name}.png")
            print(f"plotted {s.name} (gap {gaps[j]:+.3f})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
