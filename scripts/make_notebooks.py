"""Write the example notebooks in notebooks/ (without outputs) from the cells below.

    python scripts/make_notebooks.py [--out notebooks]

The notebooks are generated so that their code stays reviewable as Python here; the
test suite executes each one (tests/python/test_notebooks.py). They read the shared
data from ``$ANOMALY_DATA_DIR`` (default ``../../shared/data`` from notebooks/).
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

DATA_CELL = """\
import os
from pathlib import Path

DATA = Path(os.environ.get("ANOMALY_DATA_DIR", "../../shared/data"))
assert (DATA / "nab").is_dir(), f"no NAB data under {DATA}: set ANOMALY_DATA_DIR"
"""

QUICKSTART = [
    (
        "md",
        """\
# Quickstart: detect an incident in a NAB series

`StatisticalAnomalyDetector` scores a stream point by point in its C++ core. Here it runs the
`ensemble` method over NAB's `machine_temperature_system_failure` series (an industrial machine that
overheats and fails) and we compare the flagged points with the windows NAB's labellers marked.""",
    ),
    ("code", DATA_CELL),
    (
        "code",
        """\
import numpy as np

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.evaluation import NabCorpus, score_corpus

NAME = "realKnownCause/machine_temperature_system_failure.csv"
corpus = NabCorpus.load(DATA / "nab", files=[NAME])
series = corpus.files[NAME]
seconds = series.timestamps.astype("datetime64[s]").astype(np.float64)
print(f"{len(series):,} points, {len(series.window_rows)} labelled windows")""",
    ),
    ("md", "One call scores the whole series, in order, exactly as `detect` would point by point:"),
    (
        "code",
        """\
detector = StatisticalAnomalyDetector(detection_method="ensemble")
result = detector.detect_batch("machine-temperature", series.values, seconds)
flagged = np.flatnonzero(result.is_anomaly)
print(f"{result.anomaly_count} points flagged")
for left, right in series.window_rows:
    hits = flagged[(flagged >= left) & (flagged <= right)]
    first = f"first at row {hits[0]} ({series.timestamps[hits[0]]})" if len(hits) else "missed"
    print(f"window rows {left}-{right}: {len(hits)} flagged, {first}")""",
    ),
    (
        "code",
        """\
%matplotlib inline
import matplotlib.pyplot as plt

times = series.timestamps.astype("datetime64[s]")
fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 6), sharex=True, height_ratios=[3, 1])
top.plot(times, series.values, lw=0.6, color="#4c72b0", label="temperature")
for i, (left, right) in enumerate(series.window_rows):
    top.axvspan(times[left], times[right], color="#dd8452", alpha=0.25, label="labelled window" if i == 0 else None)
top.scatter(times[flagged], series.values[flagged], color="#c44e52", s=18, zorder=3, label="flagged")
top.set_ylabel("value")
top.legend(loc="lower left")
bottom.plot(times, result.scores, lw=0.6, color="#55a868")
bottom.axhline(result.threshold, color="grey", ls="--", lw=0.8)
bottom.set_ylabel("score")
fig.tight_layout()""",
    ),
    (
        "md",
        """\
## Scored as NAB scores it

The NAB scorer rewards the earliest detection in each window and charges every detection outside
them (see `docs/evaluation.md`). On one file the score is normalised against detecting nothing on it.""",
    ),
    (
        "code",
        """\
nab = score_corpus(corpus, {NAME: result.scores}, "standard")
print(f"standard profile: {nab.score:.1f} (TP {nab.tp}, FP {nab.fp}, threshold {nab.threshold:.3f})")
assert nab.tp >= 1""",
    ),
]

SKETCHES = [
    (
        "md",
        """\
# Sketches: bounded memory summaries of a stream

Count-min (frequencies), HyperLogLog (distinct counts), t-digest (quantiles) and top-k (heavy
hitters) from `anomaly_detection.sketches`, each checked against the exact answer on a synthetic
stream of API calls. Every sketch takes a whole NumPy array in one call.""",
    ),
    (
        "code",
        """\
import numpy as np

from anomaly_detection.sketches import CountMinSketch, HyperLogLog, TDigest, TopK

rng = np.random.default_rng(7)
users = rng.zipf(1.3, 500_000) % 100_000           # a skewed stream of user ids
latency_ms = rng.lognormal(3.0, 0.6, 500_000)      # and a latency per request
keys, counts = np.unique(users, return_counts=True)
print(f"{len(users):,} events, {len(keys):,} distinct users")""",
    ),
    (
        "code",
        """\
cms = CountMinSketch.from_error(0.0005, 0.01)
cms.incrby(users)
heavy = keys[np.argsort(-counts)][:10]
estimate = cms.query(heavy)
truth = counts[np.argsort(-counts)][:10]
print(f"count-min {cms.width}x{cms.depth}: overcount on the 10 heaviest keys {estimate - truth}")
assert np.all(estimate >= truth)  # count-min never undercounts""",
    ),
    (
        "code",
        """\
hll = HyperLogLog(12)
hll.add(users)
print(f"HyperLogLog: {hll.count():,} distinct (exact {len(keys):,}), standard error {hll.standard_error:.2%}")
assert abs(hll.count() - len(keys)) / len(keys) < 0.05""",
    ),
    (
        "code",
        """\
td = TDigest(100)
td.add(latency_ms)
for q in (0.5, 0.9, 0.99, 0.999):
    print(f"p{q * 100:g}: t-digest {td.quantile(q):7.2f} ms, exact {np.quantile(latency_ms, q):7.2f} ms")""",
    ),
    (
        "md",
        """\
The far tail is the coarsest part at compression 100 (half a million points: the centroid around p99.9
holds a few hundred of them); a larger compression buys accuracy there for memory:""",
    ),
    (
        "code",
        """\
fine = TDigest(1000)
fine.add(latency_ms)
print(f"p99.9 at compression 1000: {fine.quantile(0.999):.2f} ms ({fine.info()['memory_bytes']:,} bytes "
      f"against {td.info()['memory_bytes']:,})")""",
    ),
    (
        "code",
        """\
%matplotlib inline
import matplotlib.pyplot as plt

qs = np.linspace(0.001, 0.999, 200)
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.plot(qs, np.abs(td.quantile(qs) - np.quantile(latency_ms, qs)) / np.quantile(latency_ms, qs))
ax.set_xlabel("quantile")
ax.set_ylabel("relative error")
ax.set_title("t-digest (compression 100) against the exact quantiles")
fig.tight_layout()""",
    ),
    (
        "code",
        """\
paths = np.array([f"/api/v1/item/{u % 500}" for u in users[:200_000]])
top = TopK(5, width=200, depth=5)
top.add(paths)
exact = [p for p, _ in sorted(zip(*np.unique(paths, return_counts=True)), key=lambda t: -t[1])[:5]]
print("top-5 endpoints:", top.list())
assert set(top.list()) == set(exact)""",
    ),
    (
        "md",
        """\
## Sketches travel as bytes

`to_bytes()` gives a checksummed serialisation (store it, send it, merge it elsewhere); sketches of the
same shape merge, so per-shard sketches add up to the sketch of the whole stream.""",
    ),
    (
        "code",
        """\
a, b = HyperLogLog(12), HyperLogLog(12)
a.add(users[:250_000])
b.add(users[250_000:])
restored = HyperLogLog.from_bytes(a.to_bytes())
restored.merge(b)
# A merged sketch counts by its registers (Ertl); the one-pass sketch also kept the more
# accurate HIP estimate. The registers themselves are the same.
print(f"merged from two halves: {restored.count():,} ({restored.estimator}); "
      f"one pass: {hll.count():,} ({hll.estimator}); {len(a.to_bytes()):,} bytes")
same_registers = HyperLogLog(12)
same_registers.merge(hll)
assert restored == same_registers""",
    ),
]

FOREST = [
    (
        "md",
        """\
# IsolationForest and HalfSpaceTrees on ADBench data

Tabular outlier detection with `anomaly_detection.forest`: a batch `IsolationForest` (scikit-learn's
API and defaults) and a streaming `HalfSpaceTrees` (River's algorithm) on ADBench's `6_cardio`
(cardiotocography records; the labelled anomalies are the pathological ones).""",
    ),
    ("code", DATA_CELL),
    (
        "code",
        """\
import importlib.util

import numpy as np

from anomaly_detection.evaluation import average_precision, roc_auc
from anomaly_detection.forest import HalfSpaceTrees, IsolationForest

with np.load(DATA / "adbench" / "6_cardio.npz") as data:
    X, y = data["X"], data["y"]
print(f"{X.shape[0]} rows, {X.shape[1]} features, {int(y.sum())} anomalies ({y.mean():.1%})")
if importlib.util.find_spec("anomaly_detection.fingerprints") is None:
    print("(anomaly_detection.fingerprints is not in this version: forests only)")""",
    ),
    (
        "code",
        """\
forest = IsolationForest(n_estimators=100, random_state=0).fit(X)
outlier_score = -forest.score_samples(X)           # higher = more anomalous
print(f"IsolationForest: ROC-AUC {roc_auc(y, outlier_score):.3f}, "
      f"average precision {average_precision(y, outlier_score):.3f}")
assert roc_auc(y, outlier_score) > 0.8""",
    ),
    (
        "md",
        """\
## Streaming: HalfSpaceTrees

HalfSpaceTrees expects features in [0, 1]; it scores each row, then learns it (progressive validation),
so the scores are what a live system would have seen. `score_learn_many` does that over an array.""",
    ),
    (
        "code",
        """\
order = np.random.default_rng(0).permutation(len(X))
Xs, ys = X[order], y[order]
low, span = Xs.min(axis=0), np.ptp(Xs, axis=0)
Xs = (Xs - low) / np.where(span > 0, span, 1.0)
hst = HalfSpaceTrees(seed=42)
stream_scores = hst.score_learn_many(Xs)
warm = slice(250, None)                             # the first window only fills the reference mass
print(f"HalfSpaceTrees (streaming): ROC-AUC {roc_auc(ys[warm], stream_scores[warm]):.3f}")""",
    ),
    (
        "code",
        """\
%matplotlib inline
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for ax, scores, labels, title in (
    (axes[0], outlier_score, y, "IsolationForest"),
    (axes[1], stream_scores[warm], ys[warm], "HalfSpaceTrees (streaming)"),
):
    bins = np.linspace(scores.min(), scores.max(), 40)
    ax.hist(scores[labels == 0], bins=bins, alpha=0.6, density=True, label="normal")
    ax.hist(scores[labels == 1], bins=bins, alpha=0.6, density=True, label="anomaly")
    ax.set_title(title)
    ax.set_xlabel("anomaly score")
axes[0].legend()
fig.tight_layout()""",
    ),
    (
        "code",
        """\
if importlib.util.find_spec("sklearn") is not None:
    from sklearn.ensemble import IsolationForest as SkIsolationForest

    sk = -SkIsolationForest(random_state=0).fit(X).score_samples(X)
    print(f"scikit-learn IsolationForest on the same data: ROC-AUC {roc_auc(y, sk):.3f}")
else:
    print("scikit-learn is not installed: no reference run")""",
    ),
]

NOTEBOOKS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_sketches.ipynb": SKETCHES,
    "03_fingerprints_and_forest.ipynb": FOREST,
}


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook(
        cells=[
            new_markdown_cell(textwrap.dedent(src)) if kind == "md" else new_code_cell(textwrap.dedent(src))
            for kind, src in cells
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(nb)
    return nb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "notebooks")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nb = build(cells)
        for i, cell in enumerate(nb.cells):  # stable ids: regenerating changes nothing
            cell["id"] = f"{Path(name).stem[:2]}-{i:02d}"
        nbformat.write(nb, args.out / name)
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
