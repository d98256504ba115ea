"""Detection metrics in NumPy: precision, recall and F1 at the point, point-adjusted
and event level for time series, and ROC-AUC and PR-AUC (average precision) for
scored tabular data.

Labels are arrays of 0/1 (or booleans); an *event* (a segment) is a maximal run
of consecutive 1s. The AUCs treat tied scores as scikit-learn does: ROC-AUC
gives a tied positive/negative pair one half, average precision steps once per
distinct score.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "PRF",
    "average_precision",
    "event_prf",
    "point_adjust",
    "point_adjusted_prf",
    "point_prf",
    "roc_auc",
    "segments",
]


class PRF(NamedTuple):
    """Precision, recall and F1 (0 where a ratio has nothing to divide by)."""

    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict[str, float]:
        return self._asdict()


def _binary(y: Any, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.dtype != bool:
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name}: expected only 0/1 or booleans")
        arr = arr.astype(bool)
    return arr


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape[0]} != {p.shape[0]}")
    return t, p


def _prf(tp: int, n_pred: int, n_true: int) -> PRF:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(float(precision), float(recall), float(f1))


def segments(y: Any) -> np.ndarray:
    """The runs of 1s in ``y`` as a ``(k, 2)`` array of half-open ``[start, end)`` rows."""
    b = _binary(y, "y").astype(np.int8)
    edges = np.diff(np.concatenate(([0], b, [0])))
    return np.column_stack((np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def point_prf(y_true: Any, y_pred: Any) -> PRF:
    """Point-wise precision, recall and F1."""
    t, p = _pair(y_true, y_pred)
    return _prf(int(np.count_nonzero(t & p)), int(np.count_nonzero(p)), int(np.count_nonzero(t)))


def point_adjust(y_true: Any, y_pred: Any) -> np.ndarray:
    """Predictions after point adjustment: every point of a true anomaly segment
    in which at least one point is predicted counts as predicted."""
    t, p = _pair(y_true, y_pred)
    out = p.copy()
    segs = segments(t)
    if len(segs):
        csum = np.concatenate(([0], np.cumsum(p, dtype=np.int64)))
        hit = csum[segs[:, 1]] > csum[segs[:, 0]]
        # mark every point of a hit segment: +1 at its start, -1 at its end, cumulative sum
        marks = np.zeros(len(p) + 1, dtype=np.int64)
        np.add.at(marks, segs[hit, 0], 1)
        np.add.at(marks, segs[hit, 1], -1)
        out |= np.cumsum(marks[:-1]) > 0
    return out


def point_adjusted_prf(y_true: Any, y_pred: Any) -> PRF:
    """Precision, recall and F1 on point-adjusted predictions (:func:`point_adjust`)."""
    return point_prf(y_true, point_adjust(y_true, y_pred))


def event_prf(y_true: Any, y_pred: Any) -> PRF:
    """Event-level scores: recall is the share of true segments with at least one
    predicted point; precision the share of predicted segments that overlap a
    true segment."""
    t, p = _pair(y_true, y_pred)
    true_segs, pred_segs = segments(t), segments(p)
    ct = np.concatenate(([0], np.cumsum(t, dtype=np.int64)))
    cp = np.concatenate(([0], np.cumsum(p, dtype=np.int64)))
    detected = int(np.count_nonzero(cp[true_segs[:, 1]] - cp[true_segs[:, 0]])) if len(true_segs) else 0
    correct = int(np.count_nonzero(ct[pred_segs[:, 1]] - ct[pred_segs[:, 0]])) if len(pred_segs) else 0
    precision = correct / len(pred_segs) if len(pred_segs) else 0.0
    recall = detected / len(true_segs) if len(true_segs) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(float(precision), float(recall), float(f1))


# --- ranking metrics -----------------------------------------------------------------------------


def _scored(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _binary(y_true, "y_true")
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or s.shape[0] != y.shape[0]:
        raise ValueError(f"scores: expected a 1-D array of length {y.shape[0]}, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores: expected finite numbers")
    n_pos = int(np.count_nonzero(y))
    if n_pos == 0 or n_pos == len(y):
        raise ValueError("y_true: both classes must be present")
    return y, s


def _average_ranks(s: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    new_group = np.concatenate(([True], sorted_s[1:] != sorted_s[:-1]))
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], len(s))  # exclusive
    mean_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(s))
    ranks[order] = mean_rank[group]
    return ranks


def roc_auc(y_true: Any, scores: Any) -> float:
    """Area under the ROC curve (higher scores = more anomalous), ties counted as half.

    The Mann-Whitney statistic on average ranks; equal to scikit-learn's
    ``roc_auc_score``. Raises ``ValueError`` unless both classes are present.
    """
    y, s = _scored(y_true, scores)
    ranks = _average_ranks(s)
    n_pos = int(np.count_nonzero(y))
    n_neg = len(y) - n_pos
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision(y_true: Any, scores: Any) -> float:
    """Average precision (PR-AUC): ``sum_k (R_k - R_{k-1}) P_k`` over the distinct
    scores from high to low, as scikit-learn's ``average_precision_score``.
    Raises ``ValueError`` unless both classes are present."""
    y, s = _scored(y_true, scores)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.flatnonzero(np.append(s_sorted[1:] != s_sorted[:-1], True))  # end of each tie run
    tps = np.cumsum(y_sorted, dtype=np.float64)[last]
    predicted = last + 1.0
    precision = tps / predicted
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.concatenate(([0.0], recall))) * precision))
