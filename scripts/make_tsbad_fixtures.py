"""Writes tests/python/fixtures/tsbad/: generated series, labels and scores with the
metrics the reference implementation (the ``TSB-AD`` package, Apache-2.0) gives
them, for ``tests/python/test_evaluation_tsbad.py``.

The reference is needed only to regenerate the fixtures, never at test time.
Install it in a scratch environment outside the work tree (no torch: the
evaluation module and the window search need only these)::

    python3 -m venv /tmp/tsbvenv && . /tmp/tsbvenv/bin/activate
    pip install --no-deps TSB-AD==1.5
    pip install 'numpy<2' 'pandas<3' scipy scikit-learn statsmodels
    python scripts/make_tsbad_fixtures.py

``cases.npz`` holds each case's ``<name>/values``, ``<name>/labels``,
``<name>/scores`` (and ``<name>/predictions`` where TSB-AD's ``pred`` is used);
``expected.json`` the window (``find_length_rank(values, rank=1)``) and the
metrics of ``get_metrics(scores, labels, slidingWindow=window[, pred=...])``.
"""

from __future__ import annotations

import json
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
from TSB_AD.evaluation.metrics import get_metrics
from TSB_AD.utils.slidingWindows import find_length_rank

OUT = Path(__file__).resolve().parents[1] / "tests" / "python" / "fixtures" / "tsbad"
METRICS = ("AUC-PR", "AUC-ROC", "VUS-PR", "VUS-ROC", "R-based-F1", "PA-F1")


def _ranges(n: int, spans: list[tuple[int, int]]) -> np.ndarray:
    y = np.zeros(n, dtype=np.int64)
    for a, b in spans:
        y[a:b] = 1
    return y


def _random_ranges(rng: np.random.Generator, n: int, k: int, longest: int) -> np.ndarray:
    y = np.zeros(n, dtype=np.int64)
    for a in rng.choice(n - longest, size=k, replace=False):
        y[a : a + rng.integers(1, longest + 1)] = 1
    return y


def _periodic(rng: np.random.Generator, n: int, period: float, noise: float = 0.1) -> np.ndarray:
    return np.sin(2 * np.pi * np.arange(n) / period) + rng.normal(0, noise, n)


def _scores_near(rng: np.random.Generator, y: np.ndarray, signal: float, spread: int = 3) -> np.ndarray:
    """Scores that rise around the labelled ranges (a little early or late) plus noise."""
    kernel = np.ones(2 * spread + 1) / (2 * spread + 1)
    near = np.convolve(y.astype(float), kernel, mode="same")
    return signal * np.roll(near, rng.integers(-spread, spread + 1)) + rng.random(len(y))


def cases() -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(20241)
    out: dict[str, dict[str, np.ndarray]] = {}

    def add(
        name: str, values: np.ndarray, labels: np.ndarray, scores: np.ndarray, pred: bool = False
    ) -> None:
        case = {"values": values.astype(np.float64), "labels": labels, "scores": scores.astype(np.float64)}
        if pred:  # TSB-AD's own rule in its main.py
            case["predictions"] = (scores > scores.mean() + 3 * scores.std()).astype(np.int64)
        out[name] = case

    for n in (40, 300, 2500):  # random labels and scores of several lengths
        y = (rng.random(n) < 0.15).astype(np.int64)
        add(f"random_{n}", rng.normal(size=n), y, rng.random(n))
    n = 1200  # random labels in runs, scores that see them
    y = _random_ranges(rng, n, 12, 25)
    add("random_ranges", _periodic(rng, n, 37.0), y, _scores_near(rng, y, 1.5))
    y = _random_ranges(rng, 600, 6, 15)  # ties: scores on a coarse grid
    add("ties", rng.normal(size=600), y, np.round(_scores_near(rng, y, 1.0), 1))
    add(
        "binary_scores",
        rng.normal(size=500),
        _ranges(500, [(100, 120), (300, 305)]),
        _ranges(500, [(95, 110), (250, 260), (301, 303)]).astype(float),
    )
    add("constant_scores", _periodic(rng, 400, 20.0), _ranges(400, [(200, 230)]), np.full(400, 0.5))
    n = 1000  # one anomaly range on a periodic series
    y = _ranges(n, [(610, 660)])
    add("one_range", _periodic(rng, n, 48.0), y, _scores_near(rng, y, 0.8, spread=10))
    n = 3000  # many ranges, some only a point or two apart (their buffers meet)
    y = _random_ranges(rng, n, 40, 20)
    y[1000:1003] = 1
    y[1004:1010] = 1
    y[1012] = 1
    add("many_ranges", _periodic(rng, n, 100.0, 0.3), y, _scores_near(rng, y, 1.2), pred=True)
    n = 800
    y = _ranges(n, [(0, 15), (400, 420)])  # a range at the start
    add("range_at_start", _periodic(rng, n, 30.0), y, _scores_near(rng, y, 1.0))
    y = _ranges(n, [(300, 310), (n - 12, n)])  # a range at the end
    add("range_at_end", _periodic(rng, n, 30.0), y, _scores_near(rng, y, 1.0), pred=True)
    y = _ranges(n, [(0, 3), (n - 2, n)])  # ranges at both ends, short
    add("ranges_at_both_ends", _periodic(rng, n, 64.0), y, _scores_near(rng, y, 2.0))
    y = np.zeros(n, dtype=np.int64)
    y[rng.choice(n, 8, replace=False)] = 1  # single-point anomalies
    add("points", rng.normal(size=n), y, _scores_near(rng, y, 1.0, spread=1))
    n = 5000  # periodic series whose period sets a wide window
    values = _periodic(rng, n, 150.0, 0.2)
    y = _random_ranges(rng, n, 10, 60)
    values[y == 1] += 1.5
    residual = np.abs(values - np.sin(2 * np.pi * np.arange(n) / 150.0))
    add("periodic_wide_window", values, y, residual + rng.random(n))
    add("constant_values", np.zeros(300), _ranges(300, [(100, 110)]), rng.random(300))  # window 125
    add(
        "trend_values",
        np.arange(700) * 0.1,
        _ranges(700, [(350, 380)]),
        _scores_near(rng, _ranges(700, [(350, 380)]), 1.0),
    )
    n = 60  # a window (125, constant values) longer than the series
    y = _ranges(n, [(5, 9), (40, 41)])
    add("window_longer_than_series", np.full(n, 3.0), y, _scores_near(rng, y, 1.0))
    n = 120  # fewer points than VUS thresholds
    y = _ranges(n, [(50, 58), (90, 91)])
    add("short", _periodic(rng, n, 12.0), y, _scores_near(rng, y, 1.0))
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    expected: dict[str, dict] = {}
    for name, case in cases().items():
        with warnings.catch_warnings():  # constant inputs make the reference warn
            warnings.simplefilter("ignore")
            window = int(find_length_rank(case["values"].reshape(-1, 1), rank=1))
            result = get_metrics(
                case["scores"], case["labels"], slidingWindow=window, pred=case.get("predictions")
            )
        expected[name] = {"window": window, **{m: float(result[m]) for m in METRICS}}
        arrays.update({f"{name}/{key}": value for key, value in case.items()})
        print(name, expected[name])
    np.savez_compressed(OUT / "cases.npz", **arrays)
    meta = {"reference": f"TSB-AD {version('TSB-AD')}", "numpy": np.__version__, "cases": expected}
    (OUT / "expected.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {OUT} ({len(expected)} cases)")


if __name__ == "__main__":
    main()
