"""A scorer for the Numenta Anomaly Benchmark (NAB) protocol, in NumPy.

Written from the protocol's published description (see ``docs/evaluation.md``):

* every labelled anomaly sits in a window (NAB ships the windows in
  ``labels/combined_windows.json``; when that file is absent they are derived
  from ``labels/combined_labels.json``: each label centred in a window of
  ``int(0.1 * n / number_of_labels)`` rows, clipped to the file, overlapping
  windows merged);
* the first ``min(floor(0.15 n), 750)`` rows of a file are a probation period
  and are not scored;
* a row whose anomaly score reaches the threshold is a detection. Inside a
  window only the earliest detection counts, worth ``tp_weight`` times a scaled
  sigmoid of its position (1 at the window's first row, falling to 0 at its
  last); a window without a detection costs ``fn_weight``; a detection outside
  every window costs ``fp_weight`` scaled by the same sigmoid of its distance
  past the previous window (the full weight where no window came before, or
  three window widths or more after one);
* one threshold is chosen for the whole corpus, the one that maximises the
  summed raw score, and the result is normalised as
  ``100 * (raw - null) / (perfect - null)``, where the null detector detects
  nothing (``-fn_weight`` per window) and the perfect detector detects every
  window at its first row (``tp_weight`` per window).

The threshold search is exact: every distinct score in the corpus is a
candidate, and the total score at all of them comes from one sort and one
cumulative sum of per-row score changes, so a whole corpus is optimised in
milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# The corpus on disk (files, labels, windows, profiles, result CSVs) is nab_corpus's; its
# names stay importable from here.
from anomaly_detection.evaluation.nab_corpus import (
    NAB_V11_FILES,
    NAB_V11_WINDOWS,
    PROFILE_NAMES,
    PROFILES,
    CostProfile,
    NabCorpus,
    NabFile,
    derive_windows,
    load_profiles,
    load_scores_dir,
    probation_length,
    read_nab_csv,
    write_results_csv,
)

__all__ = [
    "NAB_V11_FILES",
    "NAB_V11_WINDOWS",
    "PROFILES",
    "PROFILE_NAMES",
    "CostProfile",
    "FileScore",
    "NabCorpus",
    "NabFile",
    "NabResult",
    "derive_windows",
    "load_profiles",
    "load_scores_dir",
    "optimize_threshold",
    "probation_length",
    "read_nab_csv",
    "scaled_sigmoid",
    "score_all_profiles",
    "score_corpus",
    "write_results_csv",
]


def _as_profile(profile: CostProfile | str, profiles: Mapping[str, CostProfile] | None = None) -> CostProfile:
    if isinstance(profile, CostProfile):
        return profile
    table = profiles if profiles is not None else PROFILES
    try:
        return table[profile]
    except KeyError:
        raise ValueError(f"unknown NAB profile {profile!r}; expected one of {sorted(table)}") from None


# --- the scaled sigmoid --------------------------------------------------------------------------


def scaled_sigmoid(position: np.ndarray | float) -> np.ndarray:
    """NAB's scaled sigmoid ``2 / (1 + exp(5 x)) - 1``, and -1 from ``x >= 3`` on.

    ``x = -1`` is a window's left edge (0.9866), ``x = 0`` its right edge (0),
    positive ``x`` is past the window (towards -1).
    """
    x = np.asarray(position, dtype=np.float64)
    with np.errstate(over="ignore"):
        val = 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0
    return np.where(x >= 3.0, -1.0, val)


_MAX_TP = float(scaled_sigmoid(-1.0))


# --- per-file sweep weights ----------------------------------------------------------------------


@dataclass
class _Prepared:
    """Per-row quantities of one file that do not depend on the profile."""

    name: str
    scores: np.ndarray  # float64, NaN replaced by -inf (never detected)
    start: int  # first scored row (end of probation)
    windows: np.ndarray  # (k, 2) inclusive scored rows of windows with at least one scored row
    tp_sweep: np.ndarray  # per row: the TP sweep value (in [0, 1]) for rows in windows, else 0
    fp_sweep: np.ndarray  # per row: the FP sweep value (in [-1, 0]) for rows outside windows, else 0
    in_window: np.ndarray  # bool per row


def _prepare(nab_file: NabFile, scores: Any) -> _Prepared:
    s = np.asarray(scores, dtype=np.float64).ravel()
    n = len(nab_file)
    if s.shape[0] != n:
        raise ValueError(f"{nab_file.name}: {s.shape[0]} scores for {n} rows")
    s = np.where(np.isnan(s), -np.inf, s)
    start = nab_file.probation
    rows = nab_file.window_rows
    idx = np.arange(n)
    in_window = np.zeros(n, dtype=bool)
    tp = np.zeros(n)
    for left, right in rows:
        width = right - left + 1
        seg = idx[left : right + 1]
        in_window[left : right + 1] = True
        tp[left : right + 1] = scaled_sigmoid(-(right - seg + 1) / width) / _MAX_TP
    # distance past the previous window, in (its width - 1)
    fp = np.full(n, -1.0)
    if len(rows):
        rights = rows[:, 1]
        widths = rows[:, 1] - rows[:, 0] + 1
        prev = np.searchsorted(rights, idx, side="left") - 1  # last window whose right edge < row
        has_prev = (prev >= 0) & ~in_window
        p = prev[has_prev]
        denom = np.maximum(widths[p] - 1, 1).astype(np.float64)
        fp[has_prev] = scaled_sigmoid((idx[has_prev] - rights[p]) / denom)
    fp[in_window] = 0.0
    scored_windows = np.array([(max(a, start), b) for a, b in rows if b >= start], dtype=np.int64).reshape(
        -1, 2
    )
    return _Prepared(nab_file.name, s, start, scored_windows, tp, fp, in_window)


def _events(p: _Prepared, profile: CostProfile) -> tuple[np.ndarray, np.ndarray]:
    """Score changes of one file as the threshold falls: ``(thresholds, deltas)``.

    Lowering the threshold to ``t`` adds every row with score ``t``: a row
    outside the windows adds its FP cost; a row inside a window changes the
    window's value only when it becomes the window's earliest detection, i.e.
    when its score beats every earlier score of the window (a prefix-maximum
    record). The first record reached (the window's highest score) turns the
    FN cost into a TP reward; each later one (earlier in time) raises the reward.
    """
    s, start = p.scores, p.start
    outside = ~p.in_window
    outside[:start] = False
    thr = [s[outside]]
    delta = [profile.fp_weight * p.fp_sweep[outside]]
    for left, right in p.windows:
        seg = s[left : right + 1]
        prefix_max = np.maximum.accumulate(seg)
        is_record = np.empty(len(seg), dtype=bool)
        is_record[0] = True
        is_record[1:] = seg[1:] > prefix_max[:-1]
        rec = np.flatnonzero(is_record & np.isfinite(seg))
        if len(rec) == 0:
            continue
        w = profile.tp_weight * p.tp_sweep[left + rec]
        d = np.empty(len(rec))
        d[:-1] = w[:-1] - w[1:]
        d[-1] = w[-1] + profile.fn_weight
        thr.append(seg[rec])
        delta.append(d)
    t = np.concatenate(thr)
    d = np.concatenate(delta)
    keep = np.isfinite(t)
    return t[keep], d[keep]


@dataclass(frozen=True)
class FileScore:
    """One file's result at the corpus threshold.

    ``score`` is the raw NAB score; ``tp`` the windows detected, ``fn`` the
    windows missed, ``fp`` the detections outside every window (after
    probation); ``detections`` all scored rows at or above the threshold.
    """

    name: str
    score: float
    tp: int
    fp: int
    fn: int
    detections: int
    windows: int
    null: float
    perfect: float
    first_detections: tuple[int, ...] = ()

    @property
    def normalized(self) -> float:
        """This file alone, normalised like the corpus (NaN without windows)."""
        if self.perfect == self.null:
            return math.nan
        return 100.0 * (self.score - self.null) / (self.perfect - self.null)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.name,
            "score": self.score,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "detections": self.detections,
            "windows": self.windows,
            "normalized": None if math.isnan(self.normalized) else self.normalized,
        }


def _score_file(p: _Prepared, profile: CostProfile, threshold: float) -> FileScore:
    s = p.scores
    detected = s >= threshold
    detected[: p.start] = False
    tp_score, tp, fn, firsts = 0.0, 0, 0, []
    for left, right in p.windows:
        hit = np.flatnonzero(detected[left : right + 1])
        if len(hit):
            tp += 1
            first = left + int(hit[0])
            firsts.append(first)
            tp_score += profile.tp_weight * float(p.tp_sweep[first])
        else:
            fn += 1
    fp_rows = detected & ~p.in_window
    fp_score = profile.fp_weight * float(p.fp_sweep[fp_rows].sum())
    k = len(p.windows)
    return FileScore(
        name=p.name,
        score=tp_score + fp_score - profile.fn_weight * fn,
        tp=tp,
        fp=int(fp_rows.sum()),
        fn=fn,
        detections=int(detected.sum()),
        windows=k,
        null=-profile.fn_weight * k,
        perfect=profile.tp_weight * k,
        first_detections=tuple(firsts),
    )


# --- corpus scoring ------------------------------------------------------------------------------


@dataclass
class NabResult:
    """A detector's NAB result on a corpus under one profile.

    ``score`` is normalised, ``100 * (raw - null) / (perfect - null)``: 100 is
    the perfect detector, 0 the null detector of ``baseline`` (see
    :func:`score_corpus`). ``threshold`` is the corpus-wide threshold (a row is
    a detection when its score is ``>= threshold``; ``inf``: nothing detected).
    """

    profile: str
    score: float
    threshold: float
    raw: float
    null: float
    perfect: float
    baseline: str
    files: list[FileScore]

    @property
    def windows(self) -> int:
        return sum(f.windows for f in self.files)

    @property
    def score_vs_corpus_null(self) -> float:
        """The score normalised against the null detector on this corpus itself
        (``-fn_weight`` per window of these files): 0 means "no better than
        detecting nothing here". Equal to ``score`` when ``baseline == "corpus"``."""
        null = sum(f.null for f in self.files)
        return 100.0 * (self.raw - null) / (self.perfect - null) if self.perfect != null else math.nan

    @property
    def tp(self) -> int:
        return sum(f.tp for f in self.files)

    @property
    def fp(self) -> int:
        return sum(f.fp for f in self.files)

    @property
    def fn(self) -> int:
        return sum(f.fn for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "score": _json_float(self.score),
            "score_vs_corpus_null": _json_float(self.score_vs_corpus_null),
            "baseline": self.baseline,
            "threshold": _json_float(self.threshold),
            "raw": self.raw,
            "null": self.null,
            "perfect": self.perfect,
            "windows": self.windows,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "files": [f.to_dict() for f in self.files],
        }

    def table(self) -> str:
        """The per-file table as aligned text (``norm``: the file alone against its own null)."""
        width = max([len("file"), *(len(f.name) for f in self.files)])
        head = f"{'file':<{width}}  {'raw':>8}  {'norm':>7}  {'TP':>3}  {'FN':>3}  {'FP':>5}  {'det':>6}"
        lines = [head, "-" * len(head)]
        for f in self.files:
            norm = "-" if math.isnan(f.normalized) else f"{f.normalized:7.2f}"
            lines.append(
                f"{f.name:<{width}}  {f.score:8.3f}  {norm:>7}  {f.tp:3d}  {f.fn:3d}  {f.fp:5d}  {f.detections:6d}"
            )
        lines.append("-" * len(head))
        total = "-" if math.isnan(self.score_vs_corpus_null) else f"{self.score_vs_corpus_null:7.2f}"
        lines.append(
            f"{'total':<{width}}  {self.raw:8.3f}  {total:>7}  {self.tp:3d}  {self.fn:3d}  "
            f"{self.fp:5d}  {sum(f.detections for f in self.files):6d}"
        )
        return "\n".join(lines)


def _json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _prepare_corpus(corpus: NabCorpus, scores_by_file: Mapping[str, Any]) -> list[_Prepared]:
    missing = [name for name in corpus.files if name not in scores_by_file]
    if missing:
        raise ValueError(f"no scores for {len(missing)} corpus file(s): {missing}")
    return [_prepare(f, scores_by_file[name]) for name, f in corpus.files.items()]


def _optimize(prepared: list[_Prepared], profile: CostProfile) -> tuple[float, float]:
    n_windows = sum(len(p.windows) for p in prepared)
    base = -profile.fn_weight * n_windows
    parts = [_events(p, profile) for p in prepared]
    t = np.concatenate([x[0] for x in parts]) if parts else np.empty(0)
    d = np.concatenate([x[1] for x in parts]) if parts else np.empty(0)
    if len(t) == 0:
        return math.inf, base
    order = np.argsort(-t, kind="stable")
    t, d = t[order], d[order]
    total = base + np.cumsum(d)
    # the total at threshold t counts every event with score >= t: the last of each run of equal t
    last = np.flatnonzero(np.append(t[1:] != t[:-1], True))
    totals = np.concatenate(([base], total[last]))
    thresholds = np.concatenate(([math.inf], t[last]))
    best = int(np.argmax(totals))  # the first maximum: the highest threshold among equals
    return float(thresholds[best]), float(totals[best])


def optimize_threshold(
    corpus: NabCorpus, scores_by_file: Mapping[str, Any], profile: CostProfile | str = "standard"
) -> tuple[float, float]:
    """The corpus-wide threshold that maximises the summed raw score: ``(threshold, raw)``.

    Exact: every distinct score is tried (one sort, one cumulative sum).
    ``threshold`` is ``inf`` when detecting nothing is best.
    """
    prof = _as_profile(profile, corpus.profiles)
    return _optimize(_prepare_corpus(corpus, scores_by_file), prof)


def _baseline_windows(corpus: NabCorpus, baseline: str | int) -> tuple[str, int | None]:
    if isinstance(baseline, bool):
        raise TypeError("baseline: expected 'auto', 'nab', 'corpus' or a number of windows")
    if isinstance(baseline, int):
        return f"{baseline} windows", baseline
    if baseline == "auto":
        baseline = "nab" if corpus.is_nab_subset else "corpus"
    if baseline == "nab":
        return "nab", NAB_V11_WINDOWS
    if baseline == "corpus":
        return "corpus", None
    raise ValueError(f"baseline: expected 'auto', 'nab', 'corpus' or a number of windows, got {baseline!r}")


def _result(
    prepared: list[_Prepared], profile: CostProfile, threshold: float | None, baseline: tuple[str, int | None]
) -> NabResult:
    if threshold is None:
        threshold, _ = _optimize(prepared, profile)
    files = [_score_file(p, profile, threshold) for p in prepared]
    raw = math.fsum(f.score for f in files)
    n_windows = sum(f.windows for f in files)
    label, null_windows = baseline
    null = -profile.fn_weight * (n_windows if null_windows is None else null_windows)
    perfect = profile.tp_weight * n_windows
    score = 100.0 * (raw - null) / (perfect - null) if perfect != null else math.nan
    return NabResult(profile.name, score, threshold, raw, null, perfect, label, files)


def score_corpus(
    corpus: NabCorpus,
    scores_by_file: Mapping[str, Any],
    profile: CostProfile | str = "standard",
    *,
    threshold: float | None = None,
    baseline: str | int = "auto",
) -> NabResult:
    """Score a detector's per-file anomaly scores on a corpus under one profile.

    ``scores_by_file`` maps each corpus file (``category/file.csv``) to its
    anomaly scores, one per row, in file order. The threshold is optimised over
    the corpus unless given.

    ``baseline`` is the null detector of the normalisation. The perfect score
    is always ``tp_weight`` per window of this corpus.

    * ``"corpus"``: the null detector on this corpus, ``-fn_weight`` per window
      of these files, so 0 means "no better than detecting nothing here".
    * ``"nab"``: what NAB's own runner reports: it normalises with the null
      detector's stored result for the full 58-file corpus (116 windows),
      whatever subset it scores. The README's anchor table for the 18 shared
      files is on this scale (there a detector that detects nothing scores
      64.54 on the standard profile, 70.82 on reward_low_FN_rate).
    * ``"auto"`` (default): ``"nab"`` when every file is a NAB v1.1 file,
      ``"corpus"`` otherwise. On the full NAB corpus the two agree.
    * an int: the null detector on that many windows.

    :attr:`NabResult.score_vs_corpus_null` always gives the ``"corpus"`` figure.
    The normalised score is NaN for a corpus without windows.
    """
    prof = _as_profile(profile, corpus.profiles)
    return _result(
        _prepare_corpus(corpus, scores_by_file), prof, threshold, _baseline_windows(corpus, baseline)
    )


def score_all_profiles(
    corpus: NabCorpus,
    scores_by_file: Mapping[str, Any],
    profiles: Iterable[str] | None = None,
    *,
    baseline: str | int = "auto",
) -> dict[str, NabResult]:
    """:func:`score_corpus` for several profiles (default: all of the corpus's)."""
    prepared = _prepare_corpus(corpus, scores_by_file)
    names = list(profiles) if profiles is not None else list(corpus.profiles)
    base = _baseline_windows(corpus, baseline)
    return {name: _result(prepared, _as_profile(name, corpus.profiles), None, base) for name in names}
