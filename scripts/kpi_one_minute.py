"""Why the default loses on one-minute KPI series, and the learning span counted in time (issue 15).

    nice python scripts/kpi_one_minute.py [--nab DIR] [--json FILE] [--resample] [--ranges]

Scores the installed build's default ``StatisticalAnomalyDetector()`` (``detect_batch``,
raw ``scores``; TSB-AD VUS-PR, window from each series' period) on every family the team
judges a design choice on, one line each: NAB's 52 files with a labelled window (with
their timestamps and without), the synthetic kinds (``make_suite(3)``, 24 series, timed and
untimed), the KPI proxy's seeds 0-29 (by sampling: one minute / five minutes; timed and
untimed) and the fresh seeds 100-159 (held out: not looked at while choosing). ``--json``
writes the figures so two builds can be compared side by side.

``--ranges``: per KPI series, the share of points after the learning span that fall
outside the transition bins' range (the 1%-99% range of the first 300 points) and outside
the shape detector's (that range widened by half of it on each side, clipped), with 300
points and with one day of points.

``--resample``: the sampling check on the one-minute KPI series (seeds 0-29): each series
as given; aggregated to five minutes (the mean of each five points, a point labelled when
any of its five is); decimated to five minutes (every fifth point, its own label: the
noise per point unchanged); scored by ours (``scores`` and ``deviations``) and POLY.

``--detectors`` (needs numba: ``scripts/ensemble_design.py``'s model of the C++, the
references by timestamp): per sampling interval, the model's statistic's VUS-PR with each
base detector taken out in turn; which detector sets the statistic of the normal points
(more than an hour from any label) in the top 1%, and of each segment's top point; per
anomaly kind, the share of segments caught in the top 1% by ``deviations`` and ``scores``
(the C++ batch).

``--time-spans``: the candidates that count the ensemble's spans in time, fixed before
looking (on the model, the statistic faded as ``scores`` are; r = the series' points a day
/ 288, at least 1, so series sampled every five minutes or slower, NAB's and the synthetic
kinds' among them, are unchanged): T0 as now; T1 the EW spans (value, difference, season,
level's slow and fast means, scale's short and long means, cusum's) x r; T2 the
likelihood's short average and long window x r; T3 both; T4 T3 and the fading per time
(0.99 a five minutes: ``0.99 ** (1 / r)`` a point). Added after the diagnosis (the first
two days hold 16% of the normal points that outrank incidents at one minute, none at
five): T5 the likelihoods' warm-up (the averages a detector needs before it scores, 150)
x r. Seeds 0-29 and, held out, 100-159.

``--metric``: the metric's share: per sampling interval, AUC-PR (no buffer), VUS-PR with
TSB-AD's window (``sliding_window``: the dominant period when it lies within 3-300 lags
of the first 400, else 125: a day at five minutes, 10-172 points at one minute) and
VUS-PR with a window of two hours at both (120 / 24 points), for ours (``scores``,
``deviations``) and TSB-AD's POLY, Sub-PCA and Sub-IForest (``--seeds``, default 0:30).

``--composition``: per sampling interval (seeds 0-29): incidents per series, the share of
the labelled points per anomaly kind and each kind's AUC-PR (its segments against the
normal points) for ours and POLY; the noise per point (MAD of the normal points'
first differences / sqrt 2, over the median level) and of the residual against a day
earlier; where the normal points that outrank the median incident's top lie (the first
day, the second, an hour after an incident, an hour after a gap of more than five
intervals, elsewhere); VUS-PR scored from the third day on.

``--speed``: ``detect_batch`` of 1,000,000 points of a noisy daily cycle at one minute and at
five, the ensemble beside the z-score, three runs each, points per second of CPU time
(install the build before and after in turn to compare them).

``--plot FILE``: per anomaly kind, the share of labelled points ranked in the top 1% of
the normal points (by ``deviations`` and by ``scores``), against the minutes since the
incident's start, one minute beside five (seeds 0-29; needs matplotlib).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.evaluation import NabCorpus, sliding_window, vus_pr
from anomaly_detection.evaluation.cli import _epoch_seconds
from anomaly_detection.evaluation.synthetic import make_suite
from anomaly_detection.evaluation.synthetic_kpi import ANOMALY_KINDS, make_kpi_series

ROOT = Path(__file__).resolve().parent.parent


def _vus(values, labels, ts) -> float:
    b = StatisticalAnomalyDetector().detect_batch("s", values, ts)
    return vus_pr(labels, np.asarray(b.scores), window=sliding_window(values))


def families(nab_dir: Path) -> dict[str, float]:
    out: dict[str, list[float]] = {}

    def add(key: str, v: float) -> None:
        out.setdefault(key, []).append(v)

    corpus = NabCorpus.load(nab_dir)
    for f in corpus.files.values():
        y = f.window_mask().astype(int)
        if not y.any():
            continue
        x = np.asarray(f.values, dtype=np.float64)
        add("nab timed", _vus(x, y, _epoch_seconds(f.timestamps)))
        add("nab untimed", _vus(x, y, None))
    for s in make_suite(3):
        add("kinds timed", _vus(s.values, s.labels, s.timestamps))
        add("kinds untimed", _vus(s.values, s.labels, None))
    for seeds, tag in ((range(30), "kpi 0-29"), (range(100, 160), "kpi 100-159")):
        for seed in seeds:
            s = make_kpi_series(seed)
            minute = "1 min" if s.step == 60 else "5 min"
            v = _vus(s.values, s.labels, s.timestamps)
            add(f"{tag} timed", v)
            add(f"{tag} timed {minute}", v)
            u = _vus(s.values, s.labels, None)
            add(f"{tag} untimed", u)
            add(f"{tag} untimed {minute}", u)
    means = {k: float(np.mean(v)) for k, v in out.items()}
    return means | {f"n {k}": len(v) for k, v in out.items()} | {f"series {k}": v for k, v in out.items()}


def ranges() -> None:
    for seed in range(30):
        s = make_kpi_series(seed)
        v = s.values
        cells = []
        for span in (300, max(300, int(86_400 / s.step))):
            lo, hi = np.quantile(v[:span], [0.01, 0.99])
            r = hi - lo
            rest = v[span:]
            bins = np.mean((rest < lo) | (rest >= hi))
            shape = np.mean((rest < lo - 0.5 * r) | (rest > hi + 0.5 * r))
            cells.append(f"{bins:.2f} / {shape:.2f}")
        print(f"| {s.name} | " + " | ".join(cells) + " |")


def _poly():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from tsbad_nab import load_tsbad_wrappers

    wrappers, hp, _ = load_tsbad_wrappers()

    def run(x: np.ndarray) -> np.ndarray:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(wrappers.run_POLY(x.reshape(-1, 1), **hp["POLY"]), dtype=np.float64)

    return run


def resample() -> None:
    poly = _poly()
    rows: dict[str, dict[str, list[float]]] = {}
    for seed in range(30):
        s = make_kpi_series(seed)
        if s.step != 60:
            continue
        n = len(s.values) // 5 * 5
        ways = {
            "one minute (as given)": (s.values, s.labels, s.timestamps),
            "aggregated to 5 min (mean of 5)": (
                s.values[:n].reshape(-1, 5).mean(axis=1),
                s.labels[:n].reshape(-1, 5).max(axis=1),
                s.timestamps[:n:5],
            ),
            "decimated to 5 min (every 5th)": (s.values[::5], s.labels[::5], s.timestamps[::5]),
        }
        for way, (x, y, ts) in ways.items():
            if not y.any():
                continue
            w = sliding_window(x)
            b = StatisticalAnomalyDetector().detect_batch("s", x, ts)
            r = rows.setdefault(way, {"scores": [], "deviations": [], "POLY": []})
            r["scores"].append(vus_pr(y, np.asarray(b.scores), window=w))
            r["deviations"].append(vus_pr(y, np.asarray(b.deviations), window=w))
            r["POLY"].append(vus_pr(y, poly(x), window=w))
    print("| one-minute KPI series | series | ours `scores` | ours `deviations` | POLY |")
    print("|---|---|---|---|---|")
    for way, r in rows.items():
        print(f"| {way} | {len(r['scores'])} | " + " | ".join(f"{np.mean(r[k]):.3f}" for k in r) + " |")


DETECTORS = ("value", "diff", "season", "spatial", "markov", "level", "context", "shape", "scale", "cusum")


def detectors() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    sys.path.insert(0, str(ROOT))
    import ensemble_design as ed
    from benchmarks.synthetic_kpi import caught

    p = {**ed.BASE, **ed._CHOMP, "season_time": True}
    suite = [make_kpi_series(seed) for seed in range(30)]
    steps = (60.0, 300.0)
    vus: dict[tuple[str, float], list[float]] = {}
    top_normal = {st: {} for st in steps}
    top_segment = {st: {} for st in steps}
    kinds = {(k, st, w): [0, 0] for k in ANOMALY_KINDS for st in steps for w in ("deviations", "scores")}
    for s in suite:
        x = np.asarray(s.values, float)
        ts = np.asarray(s.timestamps, float)
        w = sliding_window(x)
        _, which, best = ed.detect(x, ts, p, explain=True)
        vus.setdefault(("model", s.step), []).append(vus_pr(s.labels, best, window=w))
        for d in DETECTORS:
            b = ed.detect(x, ts, {**p, "drop": (d,), "return_best": True})
            vus.setdefault((f"without {d}", s.step), []).append(vus_pr(s.labels, b, window=w))
        near = np.zeros(len(x), bool)
        hour = int(3600 / s.step)
        for a, e, _ in s.incidents:
            near[max(a - hour, 0) : e + hour] = True
        normal = np.flatnonzero(~near)
        cut = np.quantile(best[normal], 0.99)
        for name in which[normal[best[normal] >= cut]]:
            top_normal[s.step][name] = top_normal[s.step].get(name, 0) + 1
        for a, e, _ in s.incidents:
            name = which[a + int(np.argmax(best[a:e]))]
            top_segment[s.step][name] = top_segment[s.step].get(name, 0) + 1
        batch = StatisticalAnomalyDetector().detect_batch("s", s.values, s.timestamps)
        for way, sc in (("deviations", np.asarray(batch.deviations)), ("scores", np.asarray(batch.scores))):
            for kind, ok in caught(s, sc):
                kinds[(kind, s.step, way)][0] += ok
                kinds[(kind, s.step, way)][1] += 1
    print("| model statistic | 1 min (18) | 5 min (12) |\n|---|---:|---:|")
    for row in ["model"] + [f"without {d}" for d in DETECTORS]:
        print(f"| {row} | " + " | ".join(f"{np.mean(vus[(row, st)]):.3f}" for st in steps) + " |")
    for title, table in (("normal points in the top 1%", top_normal), ("segments' top points", top_segment)):
        print(f"\n| detector setting the statistic: {title} | 1 min | 5 min |\n|---|---:|---:|")
        names = sorted({n for st in steps for n in table[st]})
        for n in names:
            cells = [f"{table[st].get(n, 0) / max(sum(table[st].values()), 1):.2f}" for st in steps]
            print(f"| {n} | " + " | ".join(cells) + " |")
    print(
        "\n| kind | segments 1 min / 5 min | caught by deviations 1 min / 5 min | by scores 1 min / 5 min |"
    )
    print("|---|---|---|---|")
    for k in ANOMALY_KINDS:
        segs = " / ".join(str(kinds[(k, st, "deviations")][1]) for st in steps)
        cells = [
            " / ".join(f"{kinds[(k, st, way)][0] / max(kinds[(k, st, way)][1], 1):.2f}" for st in steps)
            for way in ("deviations", "scores")
        ]
        print(f"| {k} | {segs} | " + " | ".join(cells) + " |")


def time_spans() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import ensemble_design as ed

    base = {**ed.BASE, **ed._CHOMP, "season_time": True}

    def variant(name: str, r: float) -> tuple[dict, float]:
        p = dict(base)
        if name in ("T1", "T3", "T4"):
            p.update(span=round(p["span"] * r), level_fast=round(10 * r), scale=(round(25 * r),))
        if name in ("T2", "T3", "T4"):
            p.update(short=round(p["short"] * r), long=round(p["long"] * r))
        if name == "T5":
            p.update(llearn=round(p["llearn"] * r))
        return p, (0.99 ** (1 / r) if name == "T4" else 0.99)

    names = ("T0", "T1", "T2", "T3", "T4", "T5")
    out: dict[tuple[str, str], list[float]] = {}
    for tag, seeds in (("0-29", range(30)), ("100-159", range(100, 160))):
        for seed in seeds:
            s = make_kpi_series(seed)
            x = np.asarray(s.values, float)
            ts = np.asarray(s.timestamps, float)
            r = max(1.0, 86_400 / float(np.median(np.diff(ts[:50]))) / 288)
            w = sliding_window(x)
            minute = "1 min" if s.step == 60 else "5 min"
            for name in names:
                if r == 1.0 and name != "T0":
                    v = out[(f"{tag} {minute}", "T0")][-1]
                else:
                    p, decay = variant(name, r)
                    best = ed.detect(x, ts, {**p, "return_best": True})
                    v = vus_pr(s.labels, ed.fading_max(best, decay), window=w)
                out.setdefault((f"{tag} {minute}", name), []).append(v)
                out.setdefault((f"{tag} all", name), []).append(v)
            print(f"{s.name} done", file=sys.stderr)
    groups = sorted({g for g, _ in out})
    print("| candidate | " + " | ".join(f"KPI seeds {g}" for g in groups) + " |")
    print("|---|" + "---:|" * len(groups))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{np.mean(out[(g, name)]):.3f}" for g in groups) + " |")


def plot_recall(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = ("dip", "level_shift", "variance", "flat_peak")
    horizon = 240  # minutes
    acc = {(k, st, w): [np.zeros(horizon), np.zeros(horizon)] for k in kinds for st in (60.0, 300.0)
           for w in ("deviations", "scores")}  # fmt: skip
    for seed in range(30):
        s = make_kpi_series(seed)
        b = StatisticalAnomalyDetector().detect_batch("s", s.values, s.timestamps)
        near = np.zeros(len(s.values), bool)
        hour = int(3600 / s.step)
        for a, e, _ in s.incidents:
            near[max(a - hour, 0) : e + hour] = True
        for way, sc in (("deviations", np.asarray(b.deviations)), ("scores", np.asarray(b.scores))):
            cut = np.quantile(sc[~near], 0.99)
            for a, e, kind in s.incidents:
                if kind not in kinds:
                    continue
                minutes = ((s.timestamps[a:e] - s.timestamps[a]) / 60).astype(int)
                keep = minutes < horizon
                hit, seen = acc[(kind, s.step, way)]
                np.add.at(hit, minutes[keep], (sc[a:e][keep] > cut).astype(float))
                np.add.at(seen, minutes[keep], 1.0)
    fig, axes = plt.subplots(1, len(kinds), figsize=(16, 3.6), sharey=True)
    for ax, kind in zip(axes, kinds):
        for (st, way), style in {
            (60.0, "deviations"): ("C0", "-"), (300.0, "deviations"): ("C1", "-"),
            (60.0, "scores"): ("C0", ":"), (300.0, "scores"): ("C1", ":"),
        }.items():  # fmt: skip
            hit, seen = acc[(kind, st, way)]
            m = seen > 0
            x = np.flatnonzero(m)
            ax.plot(x, hit[m] / seen[m], color=style[0], ls=style[1], lw=1,
                    label=f"{int(st // 60)} min, {way}")  # fmt: skip
        ax.set_title(kind, fontsize=9)
        ax.set_xlabel("minutes since the incident's start", fontsize=8)
    axes[0].set_ylabel("labelled points in the normal top 1%", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def metric(first: int, last: int) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import warnings

    from tsbad_nab import load_tsbad_wrappers

    from anomaly_detection.evaluation import average_precision

    wrappers, hp, _ = load_tsbad_wrappers()
    ways = ("AUC-PR", "VUS-PR, TSB-AD's window", "VUS-PR, a 2-hour window")
    out: dict[tuple[str, float, str], list[float]] = {}
    windows: dict[float, list[int]] = {}
    for seed in range(first, last):
        s = make_kpi_series(seed)
        b = StatisticalAnomalyDetector().detect_batch("s", s.values, s.timestamps)
        scored = {"ours `scores`": np.asarray(b.scores), "ours `deviations`": np.asarray(b.deviations)}
        for m in ("POLY", "Sub_PCA", "Sub_IForest"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scored[m] = np.asarray(getattr(wrappers, f"run_{m}")(s.values.reshape(-1, 1), **hp[m]), float)
        w = sliding_window(s.values)
        windows.setdefault(s.step, []).append(w)
        for name, sc in scored.items():
            out.setdefault((name, s.step, ways[0]), []).append(average_precision(s.labels, sc))
            out.setdefault((name, s.step, ways[1]), []).append(vus_pr(s.labels, sc, window=w))
            out.setdefault((name, s.step, ways[2]), []).append(
                vus_pr(s.labels, sc, window=int(7200 / s.step))
            )
        print(f"{s.name} done", file=sys.stderr)
    print("TSB-AD's windows: " + "; ".join(f"{int(st)} s: {sorted(ws)}" for st, ws in windows.items()) + "\n")
    names = sorted({n for n, _, _ in out}, key=lambda n: (not n.startswith("ours"), n))
    head = " | ".join(f"{w} 1 min / 5 min" for w in ways)
    print(f"| method | {head} |\n|---|" + "---|" * len(ways))
    for n in names:
        cells = [" / ".join(f"{np.mean(out[(n, st, w)]):.3f}" for st in (60.0, 300.0)) for w in ways]
        print(f"| {n} | " + " | ".join(cells) + " |")


def composition() -> None:
    import warnings

    poly = _poly()
    steps = (60.0, 300.0)
    share = {(st, k): 0 for st in steps for k in ANOMALY_KINDS}
    ap: dict[tuple, list[float]] = {}
    noise: dict[float, list[tuple[float, float]]] = {st: [] for st in steps}
    incidents: dict[float, list[int]] = {st: [] for st in steps}
    where: dict[tuple, dict[str, int]] = {}
    late: dict[tuple, list[float]] = {}
    from anomaly_detection.evaluation import average_precision

    for seed in range(30):
        s = make_kpi_series(seed)
        x, n, st = s.values, len(s.values), s.step
        y = s.labels.astype(bool)
        b = StatisticalAnomalyDetector().detect_batch("s", x, s.timestamps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scored = {"scores": np.asarray(b.scores), "deviations": np.asarray(b.deviations), "POLY": poly(x)}
        incidents[st].append(len(s.incidents))
        d = np.diff(x)[~y[1:] & ~y[:-1]]
        day = int(86_400 / st)
        r = (x[day:] - x[:-day])[~y[day:] & ~y[:-day]]
        mad = lambda v: 1.4826 * float(np.median(np.abs(v - np.median(v))))
        noise[st].append((mad(d) / np.sqrt(2) / np.median(x), mad(r) / np.median(x)))
        for k in ANOMALY_KINDS:
            m = np.zeros(n, bool)
            for a, e, kk in s.incidents:
                if kk == k:
                    m[a:e] = True
            share[(st, k)] += int(m.sum())
            if m.any():
                keep = m | ~y
                for way, sc in scored.items():
                    ap.setdefault((st, k, way), []).append(average_precision(m[keep].astype(int), sc[keep]))
        after = np.zeros(n, bool)
        for _a, e, _ in s.incidents:
            after[e : e + int(3600 / st)] = True
        gap = np.zeros(n, bool)
        for g in np.flatnonzero(np.diff(s.timestamps) > 5 * st):
            gap[g + 1 : g + 1 + int(3600 / st)] = True
        w = sliding_window(x)
        for way in ("scores", "deviations"):
            sc = scored[way]
            top = (sc >= np.median([sc[a:e].max() for a, e, _ in s.incidents])) & ~y
            first, second = np.zeros(n, bool), np.zeros(n, bool)
            first[:day], second[day : 2 * day] = True, True
            parts = {
                "day 1": top & first,
                "day 2": top & second,
                "an hour after an incident": top & after & ~first & ~second,
                "an hour after a gap": top & gap & ~after & ~first & ~second,
            }
            counts = {k: int(v.sum()) for k, v in parts.items()}
            counts["elsewhere"] = int(top.sum()) - sum(counts.values())
            acc = where.setdefault((st, way), {})
            for k, v in counts.items():
                acc[k] = acc.get(k, 0) + v
            late.setdefault((st, way, "all"), []).append(vus_pr(s.labels, sc, window=w))
            late.setdefault((st, way, "day 3 on"), []).append(
                vus_pr(s.labels[2 * day :], sc[2 * day :], window=w)
            )
    for st in steps:
        nz = np.array(noise[st])
        total = sum(share[(st, k)] for k in ANOMALY_KINDS)
        print(
            f"{int(st)} s: {np.mean(incidents[st]):.1f} incidents a series; noise per point / level median "
            f"{np.median(nz[:, 0]):.3f} ({nz[:, 0].min():.3f}-{nz[:, 0].max():.3f}), against a day earlier "
            f"{np.median(nz[:, 1]):.3f}; {total} labelled points"
        )
    print("\n| kind | share of labelled points 1 min / 5 min | AUC-PR `scores` | `deviations` | POLY |")
    print("|---|---|---|---|---|")
    for k in ANOMALY_KINDS:
        tot = {st: sum(share[(st, kk)] for kk in ANOMALY_KINDS) for st in steps}
        cells = [" / ".join(f"{share[(st, k)] / tot[st]:.2f}" for st in steps)]
        cells += [
            " / ".join(f"{np.mean(ap[(st, k, way)]):.3f}" for st in steps)
            for way in ("scores", "deviations", "POLY")
        ]
        print(f"| {k} | " + " | ".join(cells) + " |")
    print(
        "\n| normal points above the median incident's top | 1 min `scores` | 1 min `deviations` | 5 min `scores` | 5 min `deviations` |"
    )
    print("|---|---:|---:|---:|---:|")
    keys = list(where[(60.0, "scores")])
    for k in keys:
        cells = []
        for st in steps:
            for way in ("scores", "deviations"):
                acc = where[(st, way)]
                cells.append(f"{acc[k] / max(sum(acc.values()), 1):.2f}")
        print(f"| {k} | " + " | ".join(cells) + " |")
    print("| VUS-PR, all / from day 3 | " + " | ".join(
        f"{np.mean(late[(st, way, 'all')]):.3f} / {np.mean(late[(st, way, 'day 3 on')]):.3f}"
        for st in steps for way in ("scores", "deviations")
    ) + " |")  # fmt: skip


def speed() -> None:
    n = 1_000_000
    rng = np.random.default_rng(0)
    t = np.arange(n)
    for step in (60.0, 300.0):
        v = 50 + 10 * np.sin(2 * np.pi * t * step / 86_400) + rng.normal(0, 1, n)
        ts = 1.7e9 + t * step
        rates: dict[str, list[float]] = {"ensemble": [], "zscore": []}
        for _ in range(3):
            for method, got in rates.items():
                start = time.process_time()
                StatisticalAnomalyDetector(detection_method=method).detect_batch("s", v, ts)
                got.append(n / (time.process_time() - start) / 1e6)
        e, z = rates["ensemble"], rates["zscore"]
        print(
            f"step {step:.0f} s: ensemble {min(e):.2f}-{max(e):.2f} M points/s (CPU), "
            f"zscore {min(z):.1f}-{max(z):.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nab", type=Path, default=ROOT.parent / "shared" / "data" / "nab")
    p.add_argument("--json", type=Path, help="write the family figures here")
    p.add_argument("--resample", action="store_true")
    p.add_argument("--ranges", action="store_true")
    p.add_argument("--detectors", action="store_true")
    p.add_argument("--time-spans", action="store_true")
    p.add_argument("--plot", type=Path)
    p.add_argument("--metric", action="store_true")
    p.add_argument("--composition", action="store_true")
    p.add_argument("--speed", action="store_true")
    p.add_argument("--seeds", default="0:30", help="with --metric: the KPI proxy's seeds, FIRST:END")
    args = p.parse_args(argv)
    if args.speed:
        speed()
        return 0
    if args.composition:
        composition()
        return 0
    if args.metric:
        first, _, last = args.seeds.partition(":")
        metric(int(first), int(last))
        return 0
    if args.plot:
        plot_recall(args.plot)
        return 0
    if args.time_spans:
        time_spans()
        return 0
    if args.detectors:
        detectors()
        return 0
    if args.ranges:
        ranges()
        return 0
    if args.resample:
        resample()
        return 0
    start = time.perf_counter()
    figures = families(args.nab)
    for k, v in figures.items():
        if not k.startswith(("n ", "series ")):
            print(f"{k:28s} {v:.3f}  ({figures['n ' + k]} series)")
    print(f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
