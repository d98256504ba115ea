"""The metrics of TSB-AD (Liu & Paparrizos, NeurIPS 2024) in NumPy.

TSB-AD ranks time-series anomaly detectors by VUS-PR, the *volume under the
surface* of range-based precision/recall curves (Paparrizos et al., "Volume
Under the Surface", PVLDB 15(11), 2022). This module computes, for labels
``y`` (0/1 per point) and anomaly ``scores`` (higher is more anomalous):

* ``AUC-PR``, ``AUC-ROC`` -- point-wise average precision and ROC-AUC
  (:func:`~anomaly_detection.evaluation.metrics.average_precision`,
  :func:`~anomaly_detection.evaluation.metrics.roc_auc`).
* ``VUS-PR``, ``VUS-ROC`` -- :func:`vus`: range-based AUCs averaged over
  buffer windows ``0 .. window`` (TSB-AD's "opt" version, 250 thresholds).
  Each true range gets a buffer of ``w // 2`` points on either side whose
  label decays as ``sqrt(1 - d / w)`` with the distance ``d``; recall is
  weighted by the share of (buffered) ranges hit.
* ``R-based-F1`` -- :func:`range_f1`: range precision/recall of Tatbul et al.
  (NeurIPS 2018; existence weight 0.2, flat bias), best over 100 thresholds.
* ``PA-F1`` -- :func:`pa_f1`: point-adjusted F1, best over 100 thresholds.

The window is the series' dominant period as TSB-AD finds it
(:func:`sliding_window`: the highest local maximum of the autocorrelation of
the *values*, lags 3 to 400, else 125). The numbers equal those of the
``TSB-AD`` package's ``evaluation.metrics.get_metrics`` (version 1.5) within
1e-6; ``tests/python/fixtures/tsbad/`` holds cases computed by it
(``scripts/make_tsbad_fixtures.py``).

>>> import numpy as np
>>> y = np.zeros(200, dtype=int); y[100:110] = 1
>>> scores = np.zeros(200); scores[95:112] = 1.0
>>> round(vus_pr(y, scores, window=20), 4)
0.8624
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_detection.evaluation.metrics import (
    _binary,
    _scored,
    average_precision,
    point_adjust,
    point_prf,
    roc_auc,
    segments,
)
from anomaly_detection.evaluation.nab_corpus import _read_scores, _to_float, csv_text_columns

__all__ = [
    "TSBAD_METRIC_NAMES",
    "TsbadMetrics",
    "load_tsbad_dir",
    "load_tsbad_scores",
    "pa_f1",
    "range_f1",
    "range_prf",
    "read_tsbad_csv",
    "read_tsbad_timestamps",
    "sliding_window",
    "tsbad_metrics",
    "vus",
    "vus_pr",
    "vus_roc",
]

#: The names TSB-AD's ``get_metrics`` gives the metrics of :class:`TsbadMetrics`, in order.
TSBAD_METRIC_NAMES = ("AUC-PR", "AUC-ROC", "VUS-PR", "VUS-ROC", "R-based-F1", "PA-F1")

_N_THRESHOLDS_VUS = 250  # TSB-AD's ``thre``
_N_THRESHOLDS_F1 = 100  # TSB-AD's grid for the threshold-dependent metrics
_DEFAULT_WINDOW = 125  # TSB-AD's window when no period is found
_RANGE_ALPHA = 0.2  # weight of existence in range recall


@dataclass(frozen=True)
class TsbadMetrics:
    """TSB-AD's metrics of one series (see the module docstring)."""

    auc_pr: float
    auc_roc: float
    vus_pr: float
    vus_roc: float
    range_f1: float
    pa_f1: float
    window: int

    def to_dict(self) -> dict[str, float]:
        """The metrics under TSB-AD's names, plus ``window``."""
        values = asdict(self)
        window = values.pop("window")
        return {**dict(zip(TSBAD_METRIC_NAMES, values.values())), "window": window}


# --- the window ------------------------------------------------------------------------------------


def sliding_window(values: Any) -> int:
    """The buffer window TSB-AD uses for VUS: the series' dominant period.

    The lag (3 to 400) of the highest local maximum of the autocorrelation of
    the first 20,000 values; 125 when there is none or it lies outside
    [6, 303]. TSB-AD's ``find_length_rank(values, rank=1)``.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 2 and 1 in x.shape:
        x = x.ravel()
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"values: expected a non-empty 1-D series, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("values: expected finite numbers")
    x = x[:20000]
    centred = x - x.mean()
    var = float(centred @ centred)
    if var == 0.0:  # autocorrelation undefined (TSB-AD falls back on NaNs)
        return _DEFAULT_WINDOW
    # autocovariance by FFT, zero-padded beyond 2n so that it does not wrap around
    n_fft = 1 << int(2 * len(x)).bit_length()
    spectrum = np.fft.rfft(centred, n_fft)
    acov = np.fft.irfft(spectrum * spectrum.conj(), n_fft)[: min(len(x), 401)]
    acf = acov[3:] / acov[0]
    if len(acf) < 3:
        return _DEFAULT_WINDOW
    inner = acf[1:-1]
    peaks = np.flatnonzero((inner > acf[:-2]) & (inner > acf[2:])) + 1
    if len(peaks) == 0:
        return _DEFAULT_WINDOW
    best = peaks[np.argsort(acf[peaks])[::-1][0]]  # the same tie order as TSB-AD
    if best < 3 or best > 300:
        return _DEFAULT_WINDOW
    return int(best) + 3


# --- VUS -------------------------------------------------------------------------------------------


def _check_window(window: Any) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 0:
        raise ValueError(f"window: expected an integer >= 0, got {window!r}")
    return int(window)


def _buffer_weights(window: int) -> np.ndarray:
    """``T[w, d]``: the label at distance ``d`` (1 .. window // 2) from a range
    for buffer window ``w``: ``sqrt(1 - d / w)`` within ``w // 2``, else 0."""
    w = np.arange(window + 1, dtype=np.float64)[:, None]
    d = np.arange(1, window // 2 + 1, dtype=np.float64)[None, :]
    inside = d <= np.floor(w / 2)
    return np.where(inside, np.sqrt(np.clip(1.0 - d / np.maximum(w, 1.0), 0.0, None)), 0.0)


def vus(labels: Any, scores: Any, window: int = 100) -> tuple[float, float]:
    """``(VUS-ROC, VUS-PR)``: range-based ROC-AUC and AP averaged over buffer
    windows ``0 .. window`` (TSB-AD's ``RangeAUC_volume_opt``, 250 thresholds).

    ``window`` is usually :func:`sliding_window` of the series' values (TSB-AD's
    ``get_metrics`` defaults to 100). Raises ``ValueError`` unless labels are
    0/1 with both classes present and scores are finite, of the same length.
    """
    y, s = _scored(labels, scores)
    window = _check_window(window)
    n = len(y)
    n_thr = _N_THRESHOLDS_VUS
    half = window // 2
    segs = segments(y)  # half-open [start, end)
    starts, ends = segs[:, 0], segs[:, 1] - 1  # inclusive ends, as TSB-AD
    n_pos = float(np.count_nonzero(y))

    # Thresholds: the scores at 250 evenly spaced ranks. Predictions at threshold
    # k are nested, so each point has a first threshold k_i from which it counts.
    desc = np.sort(s)[::-1]
    thresholds = desc[np.linspace(0, n - 1, n_thr).astype(int)]
    first_k = np.searchsorted(-thresholds, -s, side="left")
    n_pred = np.cumsum(np.bincount(first_k, minlength=n_thr)).astype(np.float64)
    tp_true = np.cumsum(np.bincount(first_k[y], minlength=n_thr)).astype(np.float64)

    # The points outside the ranges but within `half` of one get buffer labels:
    # one (point, d) pair for each range that ends d points before it or starts d after.
    rows_d = np.arange(1, half + 1)
    after = (ends[:, None] + rows_d[None, :]).ravel()
    before = (starts[:, None] - rows_d[None, :]).ravel()
    dists = np.concatenate((np.tile(rows_d, len(segs)), np.tile(rows_d, len(segs))))
    where = np.concatenate((after, before))
    keep = (where >= 0) & (where < n)
    where, dists = where[keep], dists[keep]
    keep = ~y[where]
    where, dists = where[keep], dists[keep]
    tp_buffer = _buffer_tp(where, dists, first_k, n_thr, window)

    # Existence: buffered ranges (merged where their buffers meet) hit at threshold k.
    # The first threshold hitting range j with buffer h: a running minimum over h.
    min_k_true = _range_min(first_k, segs)
    hs = np.arange(half + 1)
    left = first_k[np.maximum(starts[:, None] - hs[None, :], 0)]
    right = first_k[np.minimum(ends[:, None] + hs[None, :], n - 1)]
    hit_at = np.minimum.accumulate(np.minimum(np.minimum(left, right), min_k_true[:, None]), axis=1)
    existence = np.empty((n_thr, half + 1))
    n_groups = np.empty(half + 1)
    for h in range(half + 1):
        new_group = np.concatenate(([True], ends[:-1] + h < starts[1:] - h))
        group_starts = np.flatnonzero(new_group)
        group_hit = np.minimum.reduceat(hit_at[:, h], group_starts)
        existence[:, h] = np.cumsum(np.bincount(group_hit, minlength=n_thr))
        n_groups[h] = len(group_starts)
    by_window = np.arange(window + 1) // 2
    existence_ratio = existence[:, by_window] / n_groups[by_window]

    tp = tp_true[:, None] + tp_buffer
    p_new = n_pos + tp_buffer / 2.0  # TSB-AD's (P + labelled) / 2
    tpr = np.minimum(tp / p_new, 1.0) * existence_ratio
    fpr = (n_pred[:, None] - tp) / (n - p_new)
    precision = tp / n_pred[:, None]

    ones = np.ones((1, window + 1))
    tpr_curve = np.vstack((0.0 * ones, tpr, ones))
    fpr_curve = np.vstack((0.0 * ones, fpr, ones))
    auc = np.sum(np.diff(fpr_curve, axis=0) * (tpr_curve[1:] + tpr_curve[:-1]) / 2.0, axis=0)
    ap = np.sum(np.diff(tpr_curve[:-1], axis=0) * precision, axis=0)
    return float(auc.mean()), float(ap.mean())


def _buffer_tp(
    where: np.ndarray, dists: np.ndarray, first_k: np.ndarray, n_thr: int, window: int
) -> np.ndarray:
    """``tp[k, w]``: the buffer labels of the points predicted at threshold ``k``
    (cumulative over ``k``) for each buffer window ``w``, from the pairs (point,
    distance to a range) of the points outside the ranges."""
    half = window // 2
    weights = _buffer_weights(window)  # (window + 1, half)
    per_k = np.zeros((n_thr, window + 1))
    _, slot, n_ranges = np.unique(where, return_inverse=True, return_counts=True)
    alone = n_ranges[slot] == 1
    if alone.any():  # one range within reach: the label is one weight, never capped
        hist = np.bincount(first_k[where[alone]] * half + dists[alone] - 1, minlength=n_thr * half)
        per_k += hist.reshape(n_thr, half).astype(np.float64) @ weights.T
    if not alone.all():  # several ranges within reach: their weights add up, capped at 1 as TSB-AD's
        shared, row = np.unique(where[~alone], return_inverse=True)
        counts = np.zeros((len(shared), half))
        np.add.at(counts, (row, dists[~alone] - 1), 1.0)
        label = np.minimum(counts @ weights.T, 1.0)
        k = first_k[shared]
        order = np.argsort(k, kind="stable")
        firsts = np.flatnonzero(np.concatenate(([True], k[order][1:] != k[order][:-1])))
        per_k[k[order][firsts]] += np.add.reduceat(label[order], firsts, axis=0)
    return np.cumsum(per_k, axis=0)


def _range_min(a: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """``a[start:end].min()`` for every half-open row of ``segs`` (non-empty, sorted)."""
    bounds = segs.ravel()
    if bounds[-1] == len(a):
        reduced = np.minimum.reduceat(a, bounds[:-1])
    else:
        reduced = np.minimum.reduceat(a, bounds)
    return reduced[::2]


def vus_pr(labels: Any, scores: Any, window: int = 100) -> float:
    """VUS-PR (see :func:`vus`)."""
    return vus(labels, scores, window)[1]


def vus_roc(labels: Any, scores: Any, window: int = 100) -> float:
    """VUS-ROC (see :func:`vus`)."""
    return vus(labels, scores, window)[0]


# --- threshold-dependent metrics ------------------------------------------------------------------


def _overlap_reward(real: np.ndarray, other: np.ndarray, other_cum: np.ndarray) -> float:
    """Sum over the ranges of ``real`` of (share of the range covered by ``other``)
    / (number of ``other`` ranges that overlap it): Tatbul et al.'s overlap
    reward, flat bias, reciprocal cardinality."""
    if len(real) == 0:
        return 0.0
    covered = other_cum[real[:, 1]] - other_cum[real[:, 0]]
    n_overlapping = np.searchsorted(other[:, 0], real[:, 1], side="left") - np.searchsorted(
        other[:, 1], real[:, 0], side="right"
    )
    share = covered / (real[:, 1] - real[:, 0])
    return float(np.sum(np.where(covered > 0, share / np.maximum(n_overlapping, 1), 0.0)))


def _range_prf_of(y: np.ndarray, pred: np.ndarray, true_segs: np.ndarray, y_cum: np.ndarray) -> tuple:
    pred_segs = segments(pred)
    if len(true_segs) == 0 or len(pred_segs) == 0:
        return 0.0, 0.0, 0.0
    pred_cum = np.concatenate(([0], np.cumsum(pred, dtype=np.int64)))
    existence = np.count_nonzero(pred_cum[true_segs[:, 1]] > pred_cum[true_segs[:, 0]])
    overlap = _overlap_reward(true_segs, pred_segs, pred_cum)
    recall = (_RANGE_ALPHA * existence + (1 - _RANGE_ALPHA) * overlap) / len(true_segs)
    precision = _overlap_reward(pred_segs, true_segs, y_cum) / len(pred_segs)
    f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
    return float(precision), float(recall), float(f1)


def range_prf(labels: Any, predictions: Any) -> tuple[float, float, float]:
    """``(precision, recall, F1)`` of binary predictions in the range-based
    model of Tatbul et al. as TSB-AD computes it: recall of a true range is
    0.2 x existence + 0.8 x overlap (flat bias, divided by the number of
    predicted ranges it meets); precision is the overlap of the predicted
    ranges with the true ones."""
    y = _binary(labels, "labels")
    pred = _binary(predictions, "predictions")
    if pred.shape != y.shape:
        raise ValueError(f"labels and predictions differ in length: {y.shape[0]} != {pred.shape[0]}")
    y_cum = np.concatenate(([0], np.cumsum(y, dtype=np.int64)))
    return _range_prf_of(y, pred, segments(y), y_cum)


def _f1_grid(s: np.ndarray) -> np.ndarray:
    """TSB-AD's thresholds for the threshold-dependent metrics (``score > t``)."""
    return np.linspace(s.min(), s.max(), _N_THRESHOLDS_F1)


def range_f1(labels: Any, scores: Any) -> float:
    """Range-based F1 (:func:`range_prf`) at the best of 100 evenly spaced
    thresholds between the lowest and the highest score (``score > t``)."""
    y, s = _scored(labels, scores)
    true_segs = segments(y)
    y_cum = np.concatenate(([0], np.cumsum(y, dtype=np.int64)))
    return max(_range_prf_of(y, s > t, true_segs, y_cum)[2] for t in _f1_grid(s))


def _pa_f1_of(y: np.ndarray, pred: np.ndarray) -> float:
    adjusted = point_adjust(y, pred)
    adjusted[0] = pred[0]  # TSB-AD's backward fill stops before index 0
    return point_prf(y, adjusted).f1


def pa_f1(labels: Any, scores: Any) -> float:
    """Point-adjusted F1 (a true range counts as found in full once one of its
    points is predicted) at the best of 100 evenly spaced thresholds.

    As in TSB-AD, the first point of the series keeps its own prediction.
    """
    y, s = _scored(labels, scores)
    return max(_pa_f1_of(y, s > t) for t in _f1_grid(s))


# --- all of them ----------------------------------------------------------------------------------


def tsbad_metrics(
    labels: Any,
    scores: Any,
    *,
    values: Any = None,
    window: int | None = None,
    predictions: Any = None,
) -> TsbadMetrics:
    """TSB-AD's metrics of one series, as its ``get_metrics``.

    The VUS window is ``window`` if given, else :func:`sliding_window` of
    ``values`` (the series itself, as TSB-AD evaluates), else 100 (the default
    of ``get_metrics``). With ``predictions`` (0/1 per point), R-based-F1 and
    PA-F1 are those of the predictions rather than the best over thresholds
    (TSB-AD's ``pred=``).
    """
    y, s = _scored(labels, scores)
    if window is None and values is not None:
        if np.size(values) != len(y):
            raise ValueError(f"values: expected {len(y)} values (one per label), got {np.size(values)}")
        window = sliding_window(values)
    elif window is None:
        window = 100
    window = _check_window(window)
    vus_roc_value, vus_pr_value = vus(y, s, window)
    if predictions is None:
        rf1, paf1 = range_f1(y, s), pa_f1(y, s)
    else:
        pred = _binary(predictions, "predictions")
        if pred.shape != y.shape:
            raise ValueError(f"predictions: expected length {len(y)}, got {pred.shape}")
        rf1, paf1 = range_prf(y, pred)[2], _pa_f1_of(y, pred)
    return TsbadMetrics(
        auc_pr=average_precision(y, s),
        auc_roc=roc_auc(y, s),
        vus_pr=vus_pr_value,
        vus_roc=vus_roc_value,
        range_f1=rf1,
        pa_f1=paf1,
        window=window,
    )


# --- folders in TSB-AD's format -------------------------------------------------------------------


def read_tsbad_csv(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(values, labels)`` of a univariate TSB-AD CSV: one value column (any
    name, ``Data`` in TSB-AD-U) and a ``Label`` column of 0/1."""
    raw = csv_text_columns(path)
    # the timestamp column is not parsed here (read_tsbad_timestamps reads it)
    cols = {name: _to_float(column) for name, column in raw.items() if name != "timestamp"}
    if "Label" not in cols:
        raise ValueError(f"{path}: no Label column (columns: {', '.join(cols)})")
    value_cols = [c for c in cols if c != "Label"]
    if len(value_cols) != 1:
        raise ValueError(f"{path}: expected one value column besides Label, got {value_cols}")
    values, labels = cols[value_cols[0]], cols["Label"]
    if len(values) == 0:
        raise ValueError(f"{path}: no rows")
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise ValueError(
            f"{path}: {len(bad)} missing or non-numeric value(s), first in data row {bad[0] + 1}"
        )
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError(f"{path}: Label must be 0 or 1 on every row")
    return values, labels.astype(np.int8)


def read_tsbad_timestamps(path: str | os.PathLike[str]) -> np.ndarray | None:
    """Epoch seconds from the ``timestamp`` column of a TSB-AD CSV, or None when it has
    none (TSB-AD-U's files have none). Numbers are epoch seconds (the AIOps KPI files'
    form); anything else is read as ISO-8601, naive taken as UTC. The detector's seasonal
    part needs real timestamps, so ``evaluate --tsbad`` passes them when the file has them."""
    column = csv_text_columns(path).get("timestamp")
    if column is None:
        return None
    raw = [t.strip() for t in column]
    try:
        return np.array(raw, dtype=np.float64)
    except ValueError:
        pass
    try:
        stamps = np.array([np.datetime64(t.replace("Z", ""), "ns") for t in raw])
    except ValueError as exc:
        raise ValueError(f"{path}: timestamp: expected epoch seconds or ISO-8601 ({exc})") from None
    return stamps.astype(np.int64) / 1e9


def _csv_names(folder: str | os.PathLike[str]) -> dict[str, Path]:
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*.csv"))}


def load_tsbad_dir(folder: str | os.PathLike[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every CSV under ``folder`` (:func:`read_tsbad_csv`), by relative path."""
    files = {name: read_tsbad_csv(path) for name, path in _csv_names(folder).items()}
    if not files:
        raise ValueError(f"{folder}: no CSV files")
    return files


def load_tsbad_scores(folder: str | os.PathLike[str], lengths: dict[str, int]) -> dict[str, np.ndarray]:
    """The ``anomaly_score`` column of ``folder/<name>`` for every name of ``lengths``
    (the data files' relative paths and row counts)."""
    found = _csv_names(folder)
    missing = [name for name in lengths if name not in found]
    if missing:
        raise FileNotFoundError(f"{folder}: no scores for {len(missing)} file(s), e.g. {missing[0]}")
    out = {}
    for name, n in lengths.items():
        out[name] = _read_scores(found[name])
        if len(out[name]) != n:
            raise ValueError(f"{found[name]}: {len(out[name])} scores for {n} data rows")
    return out
