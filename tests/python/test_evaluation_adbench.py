"""The ADBench harness: loading, scoring, and the README's scikit-learn reference."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_detection.evaluation import (
    AdbenchSet,
    anomaly_scores,
    evaluate_scores,
    load_adbench,
    run_adbench,
)

README_SETS = [
    "breastw", "cardio", "glass", "Ionosphere", "mammography", "Pima",
    "satellite", "shuttle", "thyroid", "WBC", "wine", "yeast",
]  # fmt: skip


class DistanceFromMean:
    """A minimal scikit-learn-style detector: farther from the mean is more anomalous."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, X):
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0) + 1e-12
        return self

    def score_samples(self, X):
        return -np.linalg.norm((X - self.mean_) / self.scale_, axis=1)


def test_loads_the_shared_sets_in_adbench_order(shared_data):
    sets = list(load_adbench(shared_data / "adbench"))
    assert [s.name for s in sets] == [
        "breastw", "cardio", "glass", "Ionosphere", "mammography", "Pima",
        "satellite", "shuttle", "thyroid", "WBC", "wine", "yeast",
    ]  # fmt: skip
    assert sorted(s.name for s in sets) == sorted(README_SETS)
    for name, X, y in sets:
        assert X.dtype == np.float64
        assert X.ndim == 2
        assert set(np.unique(y)) == {0, 1}, name
        assert len(X) == len(y)


def test_load_by_name(shared_data):
    (only,) = load_adbench(shared_data / "adbench", names=["WBC"])
    assert only.name == "WBC"
    assert only.X.shape == (223, 9)
    with pytest.raises(FileNotFoundError, match="nosuchset"):
        list(load_adbench(shared_data / "adbench", names=["nosuchset"]))


def test_evaluate_scores():
    y = np.array([0, 0, 1, 1])
    assert evaluate_scores(y, np.array([0.1, 0.2, 0.8, 0.9])) == {"roc_auc": 1.0, "pr_auc": 1.0}
    assert evaluate_scores(y, np.array([0.9, 0.8, 0.2, 0.1]))["roc_auc"] == 0.0


def test_harness_with_a_factory(tmp_path):
    rng = np.random.default_rng(0)
    for i, name in enumerate(["alpha", "beta"], start=1):
        X = rng.normal(size=(300, 4))
        y = np.zeros(300, dtype=int)
        y[:15] = 1
        X[:15] += 6.0
        np.savez(tmp_path / f"{i}_{name}.npz", X=X, y=y)
    calls = []
    table = run_adbench(
        DistanceFromMean, tmp_path, seeds=(0, 1), progress=lambda d, t, s: calls.append((d, t))
    )
    assert [(r.dataset, r.seed) for r in table.rows] == [("alpha", 0), ("alpha", 1), ("beta", 0), ("beta", 1)]
    assert table.mean_roc_auc > 0.99
    assert [d["dataset"] for d in table.per_dataset()] == ["alpha", "beta"]
    assert calls[0] == (0, 4)
    assert calls[-1] == (4, 4)
    md = table.to_markdown()
    assert "| alpha | 300 | 4 | 5.0% |" in md
    assert "**mean**" in md
    body = table.to_dict()
    assert set(body) == {"roc_auc", "pr_auc", "datasets", "rows"}
    # an iterable of sets works as well as a folder
    again = run_adbench(DistanceFromMean, [AdbenchSet("x", X, y)], seeds=[0])
    assert again.rows[0].dataset == "x"


def test_anomaly_scores_sign():
    class OnlyDecision:
        def decision_function(self, X):
            return np.array([1.0, -1.0])

    np.testing.assert_array_equal(anomaly_scores(OnlyDecision(), None), [-1.0, 1.0])
    with pytest.raises(TypeError):
        anomaly_scores(object(), None)


@pytest.mark.slow
def test_sklearn_reference_matches_the_readme(shared_data):
    pytest.importorskip("sklearn")
    from anomaly_detection.evaluation import sklearn_isolation_forest

    table = run_adbench(sklearn_isolation_forest, shared_data / "adbench", seeds=(0, 1, 2))
    assert len(table.rows) == 36
    assert table.mean_roc_auc == pytest.approx(0.827, abs=0.0015)
