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

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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

#: The files of the full NAB v1.1 corpus (58 series in 7 categories).
NAB_V11_FILES: frozenset[str] = frozenset(
    f"{category}/{stem}.csv"
    for category, stems in {
        "artificialNoAnomaly": (
            "art_daily_no_noise",
            "art_daily_perfect_square_wave",
            "art_daily_small_noise",
            "art_flatline",
            "art_noisy",
        ),
        "artificialWithAnomaly": (
            "art_daily_flatmiddle",
            "art_daily_jumpsdown",
            "art_daily_jumpsup",
            "art_daily_nojump",
            "art_increase_spike_density",
            "art_load_balancer_spikes",
        ),
        "realAWSCloudwatch": (
            "ec2_cpu_utilization_24ae8d",
            "ec2_cpu_utilization_53ea38",
            "ec2_cpu_utilization_5f5533",
            "ec2_cpu_utilization_77c1ca",
            "ec2_cpu_utilization_825cc2",
            "ec2_cpu_utilization_ac20cd",
            "ec2_cpu_utilization_c6585a",
            "ec2_cpu_utilization_fe7f93",
            "ec2_disk_write_bytes_1ef3de",
            "ec2_disk_write_bytes_c0d644",
            "ec2_network_in_257a54",
            "ec2_network_in_5abac7",
            "elb_request_count_8c0756",
            "grok_asg_anomaly",
            "iio_us-east-1_i-a2eb1cd9_NetworkIn",
            "rds_cpu_utilization_cc0c53",
            "rds_cpu_utilization_e47b3b",
        ),
        "realAdExchange": (
            "exchange-2_cpc_results",
            "exchange-2_cpm_results",
            "exchange-3_cpc_results",
            "exchange-3_cpm_results",
            "exchange-4_cpc_results",
            "exchange-4_cpm_results",
        ),
        "realKnownCause": (
            "ambient_temperature_system_failure",
            "cpu_utilization_asg_misconfiguration",
            "ec2_request_latency_system_failure",
            "machine_temperature_system_failure",
            "nyc_taxi",
            "rogue_agent_key_hold",
            "rogue_agent_key_updown",
        ),
        "realTraffic": (
            "TravelTime_387",
            "TravelTime_451",
            "occupancy_6005",
            "occupancy_t4013",
            "speed_6005",
            "speed_7578",
            "speed_t4013",
        ),
        "realTweets": (
            "Twitter_volume_AAPL",
            "Twitter_volume_AMZN",
            "Twitter_volume_CRM",
            "Twitter_volume_CVS",
            "Twitter_volume_FB",
            "Twitter_volume_GOOG",
            "Twitter_volume_IBM",
            "Twitter_volume_KO",
            "Twitter_volume_PFE",
            "Twitter_volume_UPS",
        ),
    }.items()
    for stem in stems
)

#: Labelled windows in the full NAB v1.1 corpus. NAB's runner normalises with the
#: null detector's stored result on that corpus, ``-fn_weight * 116``, whatever
#: subset of files it scores (see :func:`score_corpus`, ``baseline="nab"``).
NAB_V11_WINDOWS = 116

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750  # 0.15 * 5000, as in NAB
WINDOW_FRACTION = 0.10


@dataclass(frozen=True)
class CostProfile:
    """The weights of one NAB application profile (its ``CostMatrix``)."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float

    @classmethod
    def from_cost_matrix(cls, name: str, matrix: Mapping[str, float]) -> CostProfile:
        return cls(name, float(matrix["tpWeight"]), float(matrix["fpWeight"]), float(matrix["fnWeight"]))


PROFILE_NAMES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")

#: NAB's three profiles (as in its ``config/profiles.json``).
PROFILES: dict[str, CostProfile] = {
    "standard": CostProfile("standard", 1.0, 0.11, 1.0),
    "reward_low_FP_rate": CostProfile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    "reward_low_FN_rate": CostProfile("reward_low_FN_rate", 1.0, 0.11, 2.0),
}


def load_profiles(path: str | os.PathLike[str]) -> dict[str, CostProfile]:
    """Read a NAB ``profiles.json`` (``{name: {"CostMatrix": {...}}}``)."""
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    return {name: CostProfile.from_cost_matrix(name, body["CostMatrix"]) for name, body in raw.items()}


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


def probation_length(n_rows: int) -> int:
    """Rows at the start of a file that are not scored: ``min(floor(0.15 n), 750)``."""
    return int(min(math.floor(PROBATION_FRACTION * n_rows), PROBATION_MAX_ROWS))


# --- reading and writing NAB CSVs ----------------------------------------------------------------


def _parse_timestamps(raw: list[str]) -> np.ndarray:
    try:
        return np.array(raw, dtype="datetime64[ns]")
    except ValueError:
        return np.array([np.datetime64(s.strip().replace("Z", "")) for s in raw], dtype="datetime64[ns]")


def read_nab_csv(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a NAB CSV into columns: ``timestamp`` as datetime64[ns], every other
    column as float64 (empty cells and unparsable text become NaN)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ValueError(f"{path}: empty CSV") from None
        rows = [r for r in reader if r]
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        raw = [r[j] if j < len(r) else "" for r in rows]
        if name == "timestamp":
            cols[name] = _parse_timestamps(raw)
        else:
            cols[name] = _to_float(raw)
    return cols


def _to_float(raw: list[str]) -> np.ndarray:
    try:
        return np.array(raw, dtype=np.float64)
    except ValueError:
        return np.array([_float_or_nan(s) for s in raw], dtype=np.float64)


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _format_timestamps(ts: np.ndarray) -> list[str]:
    # NAB writes "YYYY-MM-DD HH:MM:SS"; keep sub-second digits only when present.
    text = np.datetime_as_string(ts.astype("datetime64[us]"), unit="us")
    return [s.replace("T", " ").removesuffix(".000000") for s in text]


def write_results_csv(
    path: str | os.PathLike[str],
    timestamps: np.ndarray,
    values: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
) -> None:
    """Write one file of results in NAB's format: ``timestamp,value,anomaly_score,label``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value", "anomaly_score", "label"])
        for t, v, s, lab in zip(
            _format_timestamps(np.asarray(timestamps)),
            np.asarray(values, dtype=np.float64).tolist(),
            np.asarray(scores, dtype=np.float64).tolist(),
            np.asarray(labels).astype(int).tolist(),
            strict=True,
        ):
            w.writerow([t, repr(v), repr(s), lab])


# --- the corpus ----------------------------------------------------------------------------------


@dataclass
class NabFile:
    """One series of the corpus with its labels and windows.

    ``windows`` are ``(start, end)`` timestamps; ``window_rows`` the same as
    inclusive row indices ``(left, right)``, sorted and non-overlapping.
    """

    name: str
    timestamps: np.ndarray
    values: np.ndarray
    labels: np.ndarray
    windows: list[tuple[np.datetime64, np.datetime64]]
    window_rows: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.window_rows = _window_rows(self.timestamps, self.windows)

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def probation(self) -> int:
        return probation_length(len(self))

    def window_mask(self) -> np.ndarray:
        """1 for rows inside a labelled window, else 0 (NAB's ``label`` column)."""
        mask = np.zeros(len(self), dtype=np.int8)
        for left, right in self.window_rows:
            mask[left : right + 1] = 1
        return mask


def _window_rows(timestamps: np.ndarray, windows: Iterable[tuple[Any, Any]]) -> np.ndarray:
    """Inclusive row ranges of windows, as NAB finds them: a window starts at the
    first row whose timestamp reaches its start and ends at the first row from
    there that reaches its end (the last row when none does). Rows are taken in
    file order, so files whose timestamps step back now and then (NAB has one)
    are handled as NAB handles them."""
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    n = len(ts)
    rows: list[tuple[int, int]] = []
    for start, end in sorted((np.datetime64(a, "ns"), np.datetime64(b, "ns")) for a, b in windows):
        reached = np.flatnonzero(ts >= start)
        if len(reached) == 0:
            continue
        left = int(reached[0])
        if rows and left <= rows[-1][1]:
            raise ValueError(f"overlapping windows at {start}")
        after = np.flatnonzero(ts[left:] >= end)
        if len(after) == 0:
            right = n - 1
        else:
            right = left + int(after[0])
            if ts[right] != end:
                right -= 1
        if left <= right:
            rows.append((left, right))
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def derive_windows(
    timestamps: np.ndarray, labels: Iterable[Any]
) -> list[tuple[np.datetime64, np.datetime64]]:
    """Windows for a file from its anomaly labels, as NAB's labeller makes them.

    Each label is centred in a window of ``int(0.1 * n / len(labels))`` rows
    (half on either side, clipped to the file); overlapping windows are merged.
    """
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    label_ts = np.sort(np.array([np.datetime64(x) for x in labels], dtype="datetime64[ns]"))
    n = len(ts)
    if n == 0 or len(label_ts) == 0:
        return []
    half = int(WINDOW_FRACTION * n / len(label_ts)) // 2
    idx = [int(np.argmax(ts >= t)) if (ts >= t).any() else n - 1 for t in label_ts]
    spans: list[list[int]] = []
    for i in idx:
        left, right = max(int(i) - half, 0), min(int(i) + half, n - 1)
        if spans and left <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], right)
        else:
            spans.append([left, right])
    return [(ts[a], ts[b]) for a, b in spans]


@dataclass
class NabCorpus:
    """The files of a corpus in NAB's layout, with their labels and windows.

    ``files`` maps a relative path such as ``realKnownCause/nyc_taxi.csv`` to a
    :class:`NabFile`; ``profiles`` holds the cost profiles (NAB's three unless
    the corpus ships a ``profiles.json``).
    """

    files: dict[str, NabFile]
    profiles: dict[str, CostProfile] = field(default_factory=lambda: dict(PROFILES))
    root: Path | None = None

    @classmethod
    def load(cls, data_dir: str | os.PathLike[str], *, files: Iterable[str] | None = None) -> NabCorpus:
        """Load ``data_dir`` laid out as NAB: ``data/<category>/<file>.csv``,
        ``labels/combined_windows.json`` and/or ``labels/combined_labels.json``,
        optionally ``profiles.json`` (here or under ``config/``).

        ``files`` restricts the corpus to those relative paths. Files with no
        entry in the label files have no windows.
        """
        root = Path(data_dir)
        data_root = root / "data"
        if not data_root.is_dir():
            raise FileNotFoundError(f"{root}: not a NAB corpus (no data/ folder)")
        windows_json = _read_json(root / "labels" / "combined_windows.json")
        labels_json = _read_json(root / "labels" / "combined_labels.json")
        wanted = set(files) if files is not None else None
        out: dict[str, NabFile] = {}
        for path in sorted(data_root.rglob("*.csv")):
            rel = path.relative_to(data_root).as_posix()
            if wanted is not None and rel not in wanted:
                continue
            cols = read_nab_csv(path)
            if "timestamp" not in cols or "value" not in cols:
                raise ValueError(f"{path}: expected columns timestamp,value")
            ts = cols["timestamp"]
            labels = np.array(
                [np.datetime64(x) for x in (labels_json or {}).get(rel, [])], dtype="datetime64[ns]"
            )
            if windows_json is not None and rel in windows_json:
                wins = [(np.datetime64(a, "ns"), np.datetime64(b, "ns")) for a, b in windows_json[rel]]
            else:
                wins = derive_windows(ts, labels)
            out[rel] = NabFile(rel, ts, cols["value"], labels, wins)
        if wanted is not None and (missing := wanted - set(out)):
            raise FileNotFoundError(f"{root}: no data file for {sorted(missing)}")
        if not out:
            raise FileNotFoundError(f"{root}: no CSV files under data/")
        profiles = dict(PROFILES)
        for candidate in (root / "profiles.json", root / "config" / "profiles.json"):
            if candidate.is_file():
                profiles = load_profiles(candidate)
                break
        return cls(out, profiles, root)

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self):
        return iter(self.files.values())

    @property
    def n_windows(self) -> int:
        return sum(len(f.window_rows) for f in self.files.values())

    @property
    def is_nab_subset(self) -> bool:
        """True when every file is one of the NAB v1.1 corpus's 58 files."""
        return all(name in NAB_V11_FILES for name in self.files)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_scores_dir(
    scores_dir: str | os.PathLike[str], corpus: NabCorpus | None = None
) -> dict[str, np.ndarray]:
    """Read a folder of per-file results in NAB's layout.

    Each CSV has an ``anomaly_score`` column (``timestamp,anomaly_score`` or
    NAB's ``timestamp,value,anomaly_score,label``). A file may be named as the
    data file (``<category>/<file>.csv``) or as NAB names its results
    (``<category>/<detector>_<file>.csv``). With ``corpus``, the result holds
    exactly the corpus's files (a missing one raises ``FileNotFoundError``);
    without, every CSV under the folder, keyed by its relative path.
    """
    root = Path(scores_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    found = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*.csv"))}
    if corpus is None:
        return {rel: _read_scores(p) for rel, p in found.items()}
    out: dict[str, np.ndarray] = {}
    missing = []
    for rel in corpus.files:
        path = found.get(rel)
        if path is None:
            category, _, base = rel.rpartition("/")
            prefix = f"{category}/" if category else ""
            hits = [
                p
                for r, p in found.items()
                if r.startswith(prefix) and r.endswith("_" + base) and "/" not in r[len(prefix) :]
            ]
            if len(hits) > 1:
                raise ValueError(f"{root}: several results for {rel}: {[str(h) for h in hits]}")
            path = hits[0] if hits else None
        if path is None:
            missing.append(rel)
            continue
        out[rel] = _read_scores(path)
    if missing:
        raise FileNotFoundError(f"{root}: no results for {len(missing)} corpus file(s): {missing}")
    return out


def _read_scores(path: Path) -> np.ndarray:
    cols = read_nab_csv(path)
    if "anomaly_score" not in cols:
        raise ValueError(f"{path}: no anomaly_score column")
    return cols["anomaly_score"]


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
