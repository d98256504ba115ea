"""Write the golden blobs of the detector formats into tests/python/golden, with what they hold.

    python scripts/make_golden.py                # every family below
    python scripts/make_golden.py ensemble       # only the ensemble's (EnsembleState, and the
                                                 # ensemble registry that embeds it)

Families: ``registry`` (the detector snapshot, ``StatisticalAnomalyDetector.to_bytes``),
``ensemble`` (``EnsembleState``, the Redis checkpoint), ``isolation_forest``, ``half_space_trees``.
Each blob is named after the format version in its header (``ensemble_state_v1.bin``), so when a
format gets a new version, running this script *adds* the new file and leaves the old one, which
``tests/python/test_golden_formats.py`` keeps loading; delete an old file only when that version is
no longer supported. ``formats.json`` records, per file, what the object holds (its parameters,
windows, counts) and what it answers next (scores), as computed when it was written.

Run it only when a format or a result changes on purpose, and say so in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_detection import HalfSpaceTrees, IsolationForest, StatisticalAnomalyDetector, _core

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "python" / "golden"
EXPECTED = GOLDEN / "formats.json"

# Inputs shared by the test: the points scored after loading.
NEXT_VALUES = [20.5, 21.0, 35.0, 20.2, 19.8]
PROBES = [[0.0, 0.0, 0.0], [3.0, -3.0, 0.5], [0.5, 0.2, -0.1], [-6.0, 6.0, 6.0]]


def version_of(blob: bytes) -> int:
    """The format version in a blob's header (after the 4-byte magic, little-endian u16)."""
    return int.from_bytes(blob[4:6], "little")


def _series(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = 20.0 + np.sin(np.arange(n) / 5.0) + rng.normal(0.0, 0.2, n)
    return values, 1.7e9 + 60.0 * np.arange(n)


def _next_stamps(stamps: np.ndarray) -> list[float]:
    return [float(stamps[-1] + 60.0 * (i + 1)) for i in range(len(NEXT_VALUES))]


def _registry(method: str, sensors: dict[str, int], window: int) -> tuple[bytes, dict[str, Any]]:
    det = StatisticalAnomalyDetector(detection_method=method, window_size=window, min_samples=3)
    for i, (sensor, n) in enumerate(sensors.items()):
        values, stamps = _series(n, seed=i)
        det.detect_batch(sensor, values, stamps)
    first = next(iter(sensors))
    _, stamps = _series(sensors[first], seed=0)
    blob = det.to_bytes()
    held = {
        "method": method,
        "window_size": window,
        "sensors": sorted(sensors),
        "windows": {s: det.get_window(s).values.tolist() for s in sorted(sensors)},
        "points_seen": {s: det.stats(s)["points_seen"] for s in sorted(sensors)},
        "next_sensor": first,
        "next_stamps": _next_stamps(stamps),
    }
    result = det.detect_batch(first, NEXT_VALUES, held["next_stamps"])
    held["next_scores"] = result.scores.tolist()
    held["next_flags"] = result.is_anomaly.tolist()
    return blob, held


def build_registry() -> dict[str, tuple[bytes, dict[str, Any]]]:
    """An ensemble registry in the current version. The older files stay as they were
    written: ``registry_v1.bin`` (a MAD registry; version 1 was version 2 without the
    ensemble, so it was made from a version 2 blob) and ``registry_v2.bin``."""
    blob, held = _registry("ensemble", {"pump": 400}, window=20)
    return {f"registry_v{version_of(blob)}.bin": (blob, held)}


def build_ensemble() -> dict[str, tuple[bytes, dict[str, Any]]]:
    """An EnsembleState after 400 points, and the scores of the next points resumed from it."""
    config = _core.DetectorConfig()
    config.method, config.window_size, config.threshold = "ensemble", 20, 0.5
    values, stamps = _series(400, seed=0)
    empty = np.empty(0)
    *_, state, _ = _core.detect_after_checkpoint(config, empty, empty, 0, values, stamps, None, 0)
    blob = state.to_bytes()
    next_stamps = _next_stamps(stamps)
    flags, scores, *_ = _core.detect_after_checkpoint(
        config, values[-20:], stamps[-20:], 400, np.array(NEXT_VALUES), np.array(next_stamps), state, 400
    )
    held = {
        "threshold": 0.5,
        "seen": 400,
        "window_values": values[-20:].tolist(),
        "window_stamps": stamps[-20:].tolist(),
        "next_stamps": next_stamps,
        "next_scores": scores.tolist(),
        "next_flags": flags.tolist(),
    }
    out = {f"ensemble_state_v{version_of(blob)}.bin": (blob, held)}
    # The ensemble registry embeds EnsembleState: it follows the ensemble's format.
    out.update(build_registry())
    return out


def _training() -> np.ndarray:
    return np.random.default_rng(11).normal(size=(64, 3))


def build_isolation_forest() -> dict[str, tuple[bytes, dict[str, Any]]]:
    forest = IsolationForest(n_estimators=8, max_samples=32, random_state=3).fit(_training())
    blob = forest.to_bytes()
    held = {
        "params": {k: forest.get_params()[k] for k in ("n_estimators", "max_samples", "random_state")},
        "n_features_in": forest.n_features_in_,
        "offset": forest.offset_,
        "scores": forest.score_samples(np.array(PROBES)).tolist(),
    }
    return {f"isolation_forest_v{version_of(blob)}.bin": (blob, held)}


def build_half_space_trees() -> dict[str, tuple[bytes, dict[str, Any]]]:
    hst = HalfSpaceTrees(n_trees=4, height=4, window_size=16, seed=7)
    hst.learn_many(_training())
    blob = hst.to_bytes()
    held = {
        "params": {k: hst.get_params()[k] for k in ("n_trees", "height", "window_size", "seed")},
        "scores": hst.score_many(np.array(PROBES)).tolist(),
    }
    return {f"half_space_trees_v{version_of(blob)}.bin": (blob, held)}


BUILDERS = {
    "registry": build_registry,
    "ensemble": build_ensemble,
    "isolation_forest": build_isolation_forest,
    "half_space_trees": build_half_space_trees,
}


def _resumed_registry(name: str, held: dict[str, Any]) -> tuple[list[float], list[bool]]:
    det = StatisticalAnomalyDetector.from_bytes((GOLDEN / name).read_bytes())
    result = det.detect_batch(held["next_sensor"], NEXT_VALUES, held["next_stamps"])
    return result.scores.tolist(), result.is_anomaly.tolist()


def _resumed_ensemble(name: str, held: dict[str, Any]) -> tuple[list[float], list[bool]]:
    state = _core.EnsembleState.from_bytes((GOLDEN / name).read_bytes(), held["threshold"])
    config = _core.DetectorConfig()
    config.method, config.window_size, config.threshold = "ensemble", 20, held["threshold"]
    flags, scores, *_ = _core.detect_after_checkpoint(
        config, np.array(held["window_values"]), np.array(held["window_stamps"]), held["seen"],
        np.array(NEXT_VALUES), np.array(held["next_stamps"]), state, held["seen"],
    )  # fmt: skip
    return scores.tolist(), flags.tolist()


def refresh_older_ensembles(expected: dict[str, Any]) -> None:
    """An older ensemble format still loads, but resumes with the current design (what it
    answered when written cannot be reproduced once the design changed on purpose): record
    what it answers now, so the golden test catches any later, unintended change."""
    for name, held in expected.items():
        if name.startswith("ensemble_state_v") or (
            name.startswith("registry_v") and held["method"] == "ensemble"
        ):
            resume = _resumed_ensemble if name.startswith("ensemble_state") else _resumed_registry
            held["next_scores"], held["next_flags"] = resume(name, held)


def main(families: list[str]) -> None:
    unknown = set(families) - set(BUILDERS)
    if unknown:
        sys.exit(f"unknown families {sorted(unknown)}; expected some of {sorted(BUILDERS)}")
    expected = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
    built = {name: out for family in families or list(BUILDERS) for name, out in BUILDERS[family]().items()}
    for name, (blob, held) in built.items():
        (GOLDEN / name).write_bytes(blob)
        expected[name] = held
        print(f"wrote {name} ({len(blob)} bytes)")
    if "ensemble" in families or not families:
        refresh_older_ensembles(expected)
    EXPECTED.write_text(json.dumps(dict(sorted(expected.items())), indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
