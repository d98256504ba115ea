"""Golden blobs of the detector formats (tests/python/golden): every version still loads, holds what
it held, answers as it did; bytes of the current version are reproduced by saving again.

The blobs and formats.json come from scripts/make_golden.py (run it, e.g. ``python
scripts/make_golden.py ensemble``, only when a format or a result changes on purpose).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anomaly_detection import HalfSpaceTrees, IsolationForest, StatisticalAnomalyDetector, _core

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = json.loads((GOLDEN / "formats.json").read_text())
NEXT_VALUES = [20.5, 21.0, 35.0, 20.2, 19.8]
PROBES = np.array([[0.0, 0.0, 0.0], [3.0, -3.0, 0.5], [0.5, 0.2, -0.1], [-6.0, 6.0, 6.0]])


def version_of(blob: bytes) -> int:
    return int.from_bytes(blob[4:6], "little")


def _current_version(family: str) -> int:
    """The version today's code writes for ``family``."""
    if family == "registry":
        return version_of(StatisticalAnomalyDetector(detection_method="zscore").to_bytes())
    if family == "ensemble_state":
        return version_of(_core.EnsembleState(0.5).to_bytes())
    if family == "isolation_forest":
        return version_of(IsolationForest(n_estimators=2, random_state=0).fit(np.zeros((4, 1))).to_bytes())
    hst = HalfSpaceTrees(n_trees=1, height=1, window_size=1, seed=0)
    hst.learn_one(np.zeros(1))
    return version_of(hst.to_bytes())


def _files(family: str) -> list[str]:
    return sorted(p.name for p in GOLDEN.glob(f"{family}_v*.bin"))


FAMILIES = ("registry", "ensemble_state", "isolation_forest", "half_space_trees")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_its_current_version_and_every_file_is_described(family):
    files = _files(family)
    assert f"{family}_v{_current_version(family)}.bin" in files, "run scripts/make_golden.py"
    for name in files:
        assert name in EXPECTED, name
        assert version_of((GOLDEN / name).read_bytes()) == int(name.rsplit("_v", 1)[1][:-4])


def _load_detector(name: str) -> tuple[StatisticalAnomalyDetector, dict]:
    return StatisticalAnomalyDetector.from_bytes((GOLDEN / name).read_bytes()), EXPECTED[name]


@pytest.mark.parametrize("name", _files("registry"))
def test_registry_snapshots_load_with_their_windows_and_counts(name):
    det, held = _load_detector(name)
    assert det.method == held["method"]
    assert det.settings.window_size == held["window_size"]
    assert det.sensors() == held["sensors"]
    for sensor in held["sensors"]:
        assert det.get_window(sensor).values.tolist() == held["windows"][sensor]
        assert det.stats(sensor)["points_seen"] == held["points_seen"][sensor]
    result = det.detect_batch(held["next_sensor"], NEXT_VALUES, held["next_stamps"])
    np.testing.assert_allclose(result.scores, held["next_scores"], rtol=1e-12, atol=1e-15)
    assert result.is_anomaly.tolist() == held["next_flags"]
    assert any(held["next_flags"]), "the golden points include an anomaly"


@pytest.mark.parametrize("name", _files("registry"))
def test_saving_a_loaded_registry_writes_the_current_version_of_the_same_payload(name):
    blob = (GOLDEN / name).read_bytes()
    det, _ = _load_detector(name)
    current = _current_version("registry")
    if version_of(blob) == current:
        assert det.to_bytes() == blob
    else:  # an older layout is written in the current one, and loads back the same
        saved = det.to_bytes()
        assert version_of(saved) == current
        assert StatisticalAnomalyDetector.from_bytes(saved).to_bytes() == saved


@pytest.mark.parametrize("name", _files("ensemble_state"))
def test_ensemble_states_load_and_resume_as_before(name):
    blob = (GOLDEN / name).read_bytes()
    held = EXPECTED[name]
    state = _core.EnsembleState.from_bytes(blob, held["threshold"])
    assert (state.seen, state.threshold) == (held["seen"], held["threshold"])
    if version_of(blob) == _current_version("ensemble_state"):
        assert state.to_bytes() == blob
    config = _core.DetectorConfig()
    config.method, config.window_size, config.threshold = "ensemble", 20, held["threshold"]
    flags, scores, *_ = _core.detect_after_checkpoint(
        config,
        np.array(held["window_values"]),
        np.array(held["window_stamps"]),
        held["seen"],
        np.array(NEXT_VALUES),
        np.array(held["next_stamps"]),
        state,
        held["seen"],
    )
    np.testing.assert_allclose(scores, held["next_scores"], rtol=1e-12, atol=1e-15)
    assert flags.tolist() == held["next_flags"]


@pytest.mark.parametrize("name", _files("isolation_forest"))
def test_isolation_forests_load_and_score_as_before(name):
    blob = (GOLDEN / name).read_bytes()
    held = EXPECTED[name]
    forest = IsolationForest.from_bytes(blob)
    assert {k: forest.get_params()[k] for k in held["params"]} == held["params"]
    assert forest.n_features_in_ == held["n_features_in"]
    assert forest.offset_ == held["offset"]
    np.testing.assert_allclose(forest.score_samples(PROBES), held["scores"], rtol=1e-12)
    if version_of(blob) == _current_version("isolation_forest"):
        assert forest.to_bytes() == blob


@pytest.mark.parametrize("name", _files("half_space_trees"))
def test_half_space_trees_load_and_score_as_before(name):
    blob = (GOLDEN / name).read_bytes()
    held = EXPECTED[name]
    hst = HalfSpaceTrees.from_bytes(blob)
    assert {k: hst.get_params()[k] for k in held["params"]} == held["params"]
    np.testing.assert_allclose(hst.score_many(PROBES), held["scores"], rtol=1e-12)
    if version_of(blob) == _current_version("half_space_trees"):
        assert hst.to_bytes() == blob


@pytest.mark.parametrize(
    ("name", "load"),
    [
        ("registry_v2.bin", StatisticalAnomalyDetector.from_bytes),
        ("ensemble_state_v1.bin", lambda b: _core.EnsembleState.from_bytes(b, 0.5)),
        ("isolation_forest_v1.bin", IsolationForest.from_bytes),
        ("half_space_trees_v1.bin", HalfSpaceTrees.from_bytes),
    ],
)
def test_a_flipped_byte_or_a_future_version_is_refused(name, load):
    blob = (GOLDEN / name).read_bytes()
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x40
    with pytest.raises(ValueError, match="corruption"):
        load(bytes(flipped))
    future = blob[:4] + (version_of(blob) + 50).to_bytes(2, "little") + blob[6:]
    with pytest.raises(ValueError, match="version"):
        load(future)
