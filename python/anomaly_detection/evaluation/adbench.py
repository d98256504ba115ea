"""A harness for the classical tabular sets of ADBench (``<n>_<name>.npz`` with
arrays ``X`` and ``y``, 1 = anomaly).

:func:`run_adbench` fits any scikit-learn-style outlier detector on every set
and seed, the ADBench way: fitted and scored on all of ``X``, unsupervised.
The estimator is built by a factory ``factory(seed) -> estimator``, so the
project's own forest and scikit-learn's plug in alike; anomaly scores are
``-estimator.score_samples(X)`` (scikit-learn's sign: higher ``score_samples``
is more normal) unless another ``scorer`` is given.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from anomaly_detection.evaluation.metrics import average_precision, roc_auc

__all__ = [
    "AdbenchRow",
    "AdbenchSet",
    "AdbenchTable",
    "anomaly_scores",
    "evaluate_scores",
    "load_adbench",
    "run_adbench",
    "sklearn_isolation_forest",
]

_NPZ_NAME = re.compile(r"^(?:(\d+)_)?(.+)\.npz$")


class AdbenchSet(NamedTuple):
    """One data set: its name (``"cardio"`` for ``6_cardio.npz``), ``X`` (float64,
    rows x features) and ``y`` (int8, 1 = anomaly)."""

    name: str
    X: np.ndarray
    y: np.ndarray


def _sort_key(path: Path) -> tuple[int, str]:
    m = _NPZ_NAME.match(path.name)
    number = int(m.group(1)) if m and m.group(1) else 1 << 30
    return number, path.name.lower()


def load_adbench(
    data_dir: str | os.PathLike[str], names: Iterable[str] | None = None
) -> Iterator[AdbenchSet]:
    """Yield ``(name, X, y)`` for each ``.npz`` file in ``data_dir``, in ADBench's
    numbering. ``names`` (case-insensitive, e.g. ``["cardio", "wbc"]``) restricts
    the sets; an unknown name raises ``FileNotFoundError``."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    paths = sorted(root.glob("*.npz"), key=_sort_key)
    if not paths:
        raise FileNotFoundError(f"{root}: no .npz files")
    wanted = {n.lower() for n in names} if names is not None else None
    if wanted is not None:
        known = {_set_name(p).lower() for p in paths}
        if missing := wanted - known:
            raise FileNotFoundError(f"{root}: no data set named {sorted(missing)}")
    for path in paths:
        name = _set_name(path)
        if wanted is not None and name.lower() not in wanted:
            continue
        with np.load(path, allow_pickle=False) as data:
            if "X" not in data or "y" not in data:
                raise ValueError(f"{path}: expected arrays X and y")
            X = np.asarray(data["X"], dtype=np.float64)
            y = np.asarray(data["y"]).astype(np.int8).ravel()
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise ValueError(f"{path}: X of shape {X.shape} does not match y of length {y.shape[0]}")
        yield AdbenchSet(name, X, y)


def _set_name(path: Path) -> str:
    m = _NPZ_NAME.match(path.name)
    return m.group(2) if m else path.stem


def evaluate_scores(y: Any, scores: Any) -> dict[str, float]:
    """``{"roc_auc": ..., "pr_auc": ...}`` for anomaly scores (higher = more anomalous)."""
    return {"roc_auc": roc_auc(y, scores), "pr_auc": average_precision(y, scores)}


def anomaly_scores(estimator: Any, X: np.ndarray) -> np.ndarray:
    """Anomaly scores (higher = more anomalous) from a fitted scikit-learn-style
    detector: ``-score_samples(X)``, else ``-decision_function(X)``."""
    if hasattr(estimator, "score_samples"):
        return -np.asarray(estimator.score_samples(X), dtype=np.float64)
    if hasattr(estimator, "decision_function"):
        return -np.asarray(estimator.decision_function(X), dtype=np.float64)
    raise TypeError(f"{type(estimator).__name__} has neither score_samples nor decision_function")


def sklearn_isolation_forest(seed: int) -> Any:
    """The README's reference: scikit-learn's ``IsolationForest(n_estimators=100,
    n_jobs=1, random_state=seed)``. Needs scikit-learn (the ``bench`` extra)."""
    from sklearn.ensemble import IsolationForest

    return IsolationForest(n_estimators=100, n_jobs=1, random_state=seed)


@dataclass(frozen=True)
class AdbenchRow:
    """One fit of one estimator on one data set with one seed."""

    dataset: str
    seed: int
    n_samples: int
    n_features: int
    anomaly_rate: float
    roc_auc: float
    pr_auc: float
    fit_seconds: float
    score_seconds: float


@dataclass
class AdbenchTable:
    """Results of :func:`run_adbench`: one row per data set and seed."""

    rows: list[AdbenchRow] = field(default_factory=list)

    def per_dataset(self) -> list[dict[str, Any]]:
        """Means over seeds for each data set, in run order."""
        out: dict[str, list[AdbenchRow]] = {}
        for r in self.rows:
            out.setdefault(r.dataset, []).append(r)
        summary = []
        for name, rows in out.items():
            roc = np.array([r.roc_auc for r in rows])
            summary.append(
                {
                    "dataset": name,
                    "n_samples": rows[0].n_samples,
                    "n_features": rows[0].n_features,
                    "anomaly_rate": rows[0].anomaly_rate,
                    "seeds": len(rows),
                    "roc_auc": float(roc.mean()),
                    "roc_auc_std": float(roc.std()),
                    "pr_auc": float(np.mean([r.pr_auc for r in rows])),
                    "fit_seconds": float(np.mean([r.fit_seconds for r in rows])),
                    "score_seconds": float(np.mean([r.score_seconds for r in rows])),
                }
            )
        return summary

    @property
    def mean_roc_auc(self) -> float:
        """ROC-AUC averaged over seeds, then over data sets (the README's figure)."""
        per = self.per_dataset()
        return float(np.mean([d["roc_auc"] for d in per])) if per else math.nan

    @property
    def mean_pr_auc(self) -> float:
        per = self.per_dataset()
        return float(np.mean([d["pr_auc"] for d in per])) if per else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "roc_auc": self.mean_roc_auc,
            "pr_auc": self.mean_pr_auc,
            "datasets": {d["dataset"]: d for d in self.per_dataset()},
            "rows": [asdict(r) for r in self.rows],
        }

    def to_markdown(self) -> str:
        lines = [
            "| data set | rows | features | anomalies | ROC-AUC | (sd) | PR-AUC | fit s | score s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines.extend(
            f"| {d['dataset']} | {d['n_samples']} | {d['n_features']} | {100 * d['anomaly_rate']:.1f}% | "
            f"{d['roc_auc']:.3f} | {d['roc_auc_std']:.3f} | {d['pr_auc']:.3f} | "
            f"{d['fit_seconds']:.3f} | {d['score_seconds']:.3f} |"
            for d in self.per_dataset()
        )
        lines.append(f"| **mean** | | | | **{self.mean_roc_auc:.3f}** | | **{self.mean_pr_auc:.3f}** | | |")
        return "\n".join(lines)


def run_adbench(
    estimator_factory: Callable[[int], Any],
    data: str | os.PathLike[str] | Iterable[AdbenchSet],
    seeds: Sequence[int] = (0, 1, 2),
    *,
    scorer: Callable[[Any, np.ndarray], np.ndarray] = anomaly_scores,
    progress: Callable[[int, int, str], None] | None = None,
) -> AdbenchTable:
    """Fit ``estimator_factory(seed)`` on all of ``X`` of every set and seed and
    score the same rows.

    ``data`` is a folder of ``.npz`` files or an iterable of :class:`AdbenchSet`.
    ``progress(done, total, label)`` is called before each fit.
    """
    sets = list(load_adbench(data)) if isinstance(data, str | os.PathLike) else list(data)
    seeds = list(seeds)
    total = len(sets) * len(seeds)
    table = AdbenchTable()
    done = 0
    for name, X, y in sets:
        for seed in seeds:
            if progress is not None:
                progress(done, total, f"{name} seed {seed}")
            est = estimator_factory(seed)
            t0 = time.perf_counter()
            est.fit(X)
            t1 = time.perf_counter()
            scores = np.asarray(scorer(est, X), dtype=np.float64)
            t2 = time.perf_counter()
            m = evaluate_scores(y, scores)
            table.rows.append(
                AdbenchRow(
                    name,
                    int(seed),
                    int(X.shape[0]),
                    int(X.shape[1]),
                    float(np.mean(y)),
                    m["roc_auc"],
                    m["pr_auc"],
                    t1 - t0,
                    t2 - t1,
                )
            )
            done += 1
    if progress is not None:
        progress(done, total, "done")
    return table
