"""The NAB corpus on disk: its files, labels and windows, the probation period, the cost
profiles, and results in NAB's CSV layout (read and written).

The scorer is :mod:`anomaly_detection.evaluation.nab`, which also re-exports these names.
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
    "NabCorpus",
    "NabFile",
    "derive_windows",
    "load_profiles",
    "load_scores_dir",
    "probation_length",
    "read_nab_csv",
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
    return {
        name: _parse_timestamps(raw) if name == "timestamp" else _to_float(raw)
        for name, raw in csv_text_columns(path).items()
    }


def csv_text_columns(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """A CSV's columns as text, by header name (a short row's missing cells are "")."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
            rows = [r for r in reader if r]
        except StopIteration:
            raise ValueError(f"{path}: empty CSV") from None
        except (csv.Error, UnicodeDecodeError) as exc:  # a field beyond the csv module's limit, not UTF-8 ...
            raise ValueError(f"{path}: unreadable CSV at line {reader.line_num}: {exc}") from None
    return {name: [r[j] if j < len(r) else "" for r in rows] for j, name in enumerate(header)}


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
        try:
            return json.load(f)
        except ValueError as exc:  # malformed JSON or text that is not UTF-8: say which file
            raise ValueError(f"{path}: {exc}") from None


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
