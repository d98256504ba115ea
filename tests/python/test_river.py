"""River's own contracts, with River as the test oracle: HalfSpaceTrees in River
pipelines and evaluators, and the per-sensor River adapter of the statistical detector."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.forest import HalfSpaceTrees

river = pytest.importorskip("river")
from river import anomaly, compose, datasets, evaluate, metrics, preprocessing
from river.base import AnomalyDetector


def test_half_space_trees_is_a_river_anomaly_detector():
    hst = HalfSpaceTrees(seed=1)
    assert isinstance(hst, AnomalyDetector)
    assert not hst._supervised
    clone = hst.clone({"n_trees": 3})
    assert (clone.n_trees, clone.seed) == (3, 1)


def _pipelines(seed: int):
    ours = preprocessing.MinMaxScaler() | HalfSpaceTrees(n_trees=5, height=6, window_size=50, seed=seed)
    theirs = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
        n_trees=5, height=6, window_size=50, seed=seed
    )
    return ours, theirs


def test_min_max_scaler_pipeline_gives_rivers_scores_exactly():
    # The scaler gives NaN for a feature on its first appearance; River's trees send it right.
    ours, theirs = _pipelines(seed=4)
    assert isinstance(ours, compose.Pipeline)
    for x, _ in itertools.islice(datasets.Phishing(), 600):
        assert ours.score_one(x) == theirs.score_one(x)
        ours.learn_one(x)
        theirs.learn_one(x)


def test_progressive_val_score_gives_rivers_figure():
    ours, theirs = _pipelines(seed=7)
    got = evaluate.progressive_val_score(datasets.Phishing(), ours, metrics.ROCAUC())
    want = evaluate.progressive_val_score(datasets.Phishing(), theirs, metrics.ROCAUC())
    assert got.get() == want.get()
    assert 0.0 < got.get() < 1.0


def _series(n: int = 400, seed: int = 0) -> np.ndarray:
    return 20.0 + np.random.default_rng(seed).normal(0.0, 0.5, n)


@pytest.mark.parametrize("method", ["zscore", "mad", "iqr", "ewma", "cusum", "ensemble"])
def test_river_adapter_scores_each_key_as_the_detector_would(method):
    values = _series(700)
    values[600] += 15.0
    reference = StatisticalAnomalyDetector(detection_method=method, window_size=50, min_samples=10)
    expected = reference.detect_batch("temp", values, np.arange(len(values), dtype=float)).scores
    adapter = StatisticalAnomalyDetector(detection_method=method, window_size=50, min_samples=10).as_river()
    assert isinstance(adapter, AnomalyDetector)
    scores = []
    for t, v in enumerate(values):
        x = {"temp": float(v)}
        scores.append(adapter.score_one(x))
        assert adapter.score_one(x) == scores[-1]  # scoring learns nothing
        adapter.learn_one(x, t=float(t))
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)
    if method != "ensemble":  # (the ensemble still learns its calibration here)
        assert scores[600] == max(scores)


def test_river_adapter_keeps_one_sensor_per_key_and_the_highest_score():
    adapter = StatisticalAnomalyDetector(detection_method="zscore", window_size=30, min_samples=5).as_river()
    a, b = _series(100, 1), _series(100, 2)
    for t in range(100):
        adapter.learn_one({"a": float(a[t]), "b": float(b[t])}, t=float(t))
    assert adapter.detector.sensors() == ["a", "b"]
    calm = adapter.score_one({"a": 20.0, "b": 20.0})
    assert adapter.score_one({"a": 20.0, "b": 60.0}) > calm
    assert adapter.score_one({"a": 20.0, "b": 60.0}) == adapter.score_one({"b": 60.0})
    assert adapter.score_one({"new": 1.0}) == 0.0  # an unknown sensor has no window yet


def test_progressive_val_score_runs_with_the_adapter():
    adapter = StatisticalAnomalyDetector(detection_method="zscore", window_size=50, min_samples=10).as_river()
    stream = [({"v": float(v)}, bool(abs(v - 20.0) > 3)) for v in _series(500, 3)]
    for i in (200, 300, 400):
        stream[i] = ({"v": 40.0}, True)
    auc = evaluate.progressive_val_score(stream, adapter, metrics.ROCAUC())
    assert auc.get() > 0.9


def test_prime_learns_history_without_alerts():
    history = _series(200, 4)
    history[150] += 20.0  # an anomaly in the history: no alert for it
    alerts = []
    primed = StatisticalAnomalyDetector(detection_method="zscore", window_size=50, min_samples=10)
    primed.add_alert_listener(alerts.append)
    assert primed.prime("pump", history, np.arange(200.0)) == 200
    assert alerts == []
    plain = StatisticalAnomalyDetector(detection_method="zscore", window_size=50, min_samples=10)
    plain.detect_batch("pump", history, np.arange(200.0))
    np.testing.assert_array_equal(primed.get_window("pump").values, plain.get_window("pump").values)
    assert primed.detect("pump", 45.0, 200.0).is_anomaly
    assert len(alerts) == 1
    with pytest.raises(ValueError):
        primed.prime("pump", [1.0, float("nan")])
    assert primed.stats("pump")["points_seen"] == 201


class _Stream:
    """An offline stream for River's dataset checks (River's own anomaly set is a download):
    uniform points in [0.3, 0.7]^6, every 25th one an outlier near a corner (label True);
    six features, as some checks drop three at a time."""

    n_features = 6

    def __iter__(self):
        rng = np.random.default_rng(11)
        for i in range(600):
            outlier = i >= 300 and i % 25 == 0
            row = rng.uniform(0.0, 0.1, 6) if outlier else rng.uniform(0.3, 0.7, 6)
            yield {f"f{j}": float(v) for j, v in enumerate(row)}, outlier


def _river_checks(model):
    import inspect

    from river import checks

    for check in checks.yield_checks(model):
        check = getattr(check, "func", check)  # dataset checks come bound to River's downloads
        yield check.__name__, check, "dataset" in inspect.signature(check).parameters


@pytest.mark.parametrize(
    "model",
    [HalfSpaceTrees(n_trees=5, height=6, window_size=50, seed=1),
     StatisticalAnomalyDetector(detection_method="zscore", window_size=50, min_samples=10).as_river()],
    ids=["HalfSpaceTrees", "RiverAdapter"],
)  # fmt: skip
def test_rivers_own_check_suite_passes(model):
    ran = []
    for name, check, needs_data in _river_checks(model):
        if needs_data:
            check(model.clone(), dataset=_Stream())
        else:
            check(model.clone())
        ran.append(name)
    assert {"check_pickling", "check_clone_is_independent", "check_roc_auc", "check_predict_one_pure"} <= set(
        ran
    )
