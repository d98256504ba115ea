"""IsolationForest under scikit-learn's own contract: its check suite, Pipeline,
GridSearchCV with a real scorer, clone, joblib, feature names, sample weights and
warm start (scikit-learn is the test oracle here, and it is optional for the package)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from anomaly_detection.errors import NotFittedError
from anomaly_detection.forest import IsolationForest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

# scikit-learn declares the same two checks expected failures for its own IsolationForest.
_WEIGHTS_ARE_NOT_REPEATS = "sample_weight is not equivalent to removing/repeating samples."
EXPECTED_FAILED = {
    "check_sample_weight_equivalence_on_dense_data": _WEIGHTS_ARE_NOT_REPEATS,
    "check_sample_weight_equivalence_on_sparse_data": _WEIGHTS_ARE_NOT_REPEATS,
}


@parametrize_with_checks(
    [IsolationForest(n_estimators=5, random_state=0)], expected_failed_checks=lambda est: EXPECTED_FAILED
)
def test_scikit_learn_check_suite(estimator, check):
    check(estimator)


def _data(n: int = 400, outliers: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inliers (label 1) around the origin and outliers (label 0) far out, shuffled."""
    rng = np.random.default_rng(seed)
    X = np.r_[
        rng.normal(size=(n, 3)), rng.uniform(5, 8, size=(outliers, 3)) * rng.choice([-1, 1], (outliers, 3))
    ]
    y = np.r_[np.ones(n, dtype=int), np.zeros(outliers, dtype=int)]
    order = rng.permutation(len(y))
    return X[order], y[order]


def test_pipeline_exposes_every_scoring_method():
    X, _ = _data()
    pipe = make_pipeline(StandardScaler(), IsolationForest(random_state=0)).fit(X)
    forest = IsolationForest(random_state=0).fit(StandardScaler().fit_transform(X))
    Xs = StandardScaler().fit(X).transform(X)
    np.testing.assert_array_equal(pipe.score_samples(X), forest.score_samples(Xs))
    np.testing.assert_array_equal(pipe.decision_function(X), forest.decision_function(Xs))
    np.testing.assert_array_equal(pipe.predict(X), forest.predict(Xs))
    assert set(np.unique(pipe.fit_predict(X))) == {-1, 1}


def test_grid_search_with_a_real_scorer_finds_finite_scores():
    X, y = _data()
    pipe = make_pipeline(StandardScaler(), IsolationForest(random_state=0))
    grid = {"isolationforest__n_estimators": [5, 50], "isolationforest__max_samples": [16, "auto"]}
    search = GridSearchCV(pipe, grid, scoring="roc_auc", cv=3, error_score="raise").fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    assert search.best_score_ == scores.max() > 0.9  # the outliers are far out: the ranking is near perfect
    assert search.best_params_ in search.cv_results_["params"]


def test_clone_gives_an_unfitted_copy_with_the_same_parameters():
    X, _ = _data()
    forest = IsolationForest(n_estimators=20, contamination=0.05, random_state=3).fit(X)
    copy = clone(forest)
    assert copy.get_params() == forest.get_params()
    with pytest.raises(NotFittedError):
        copy.predict(X)
    np.testing.assert_array_equal(copy.fit(X).score_samples(X), forest.score_samples(X))


def test_joblib_round_trip(tmp_path):
    joblib = pytest.importorskip("joblib")
    X, _ = _data()
    forest = IsolationForest(n_estimators=30, contamination=0.1, random_state=1).fit(X)
    joblib.dump(forest, tmp_path / "forest.joblib")
    restored = joblib.load(tmp_path / "forest.joblib")
    np.testing.assert_array_equal(restored.decision_function(X), forest.decision_function(X))
    assert restored.offset_ == forest.offset_


def test_not_fitted_error_is_ours_and_scikit_learns():
    with pytest.raises(NotFittedError) as info:
        IsolationForest().score_samples(np.zeros((2, 2)))
    assert isinstance(info.value, SklearnNotFittedError)


def test_feature_names_are_kept_and_reordered_columns_refused():
    pd = pytest.importorskip("pandas")
    X, _ = _data()
    frame = pd.DataFrame(X, columns=["cpu", "mem", "disk"])
    forest = IsolationForest(random_state=0).fit(frame)
    assert list(forest.feature_names_in_) == ["cpu", "mem", "disk"]
    with pytest.warns(UserWarning, match="valid feature names"):  # scikit-learn's warning for a bare array
        np.testing.assert_array_equal(forest.score_samples(frame), forest.score_samples(X.copy()))
    with pytest.raises(ValueError, match="feature names"):
        forest.score_samples(frame[["mem", "cpu", "disk"]])
    before = forest.score_samples(frame)
    with pytest.raises(ValueError):
        forest.fit(frame.assign(cpu=np.nan))  # a failed fit keeps the model and its names
    assert list(forest.feature_names_in_) == ["cpu", "mem", "disk"]
    np.testing.assert_array_equal(forest.score_samples(frame), before)


def test_a_forest_fitted_on_named_columns_has_no_bytes_that_lose_the_names():
    # to_bytes kept no feature_names_in_: the model from_bytes gave back scored a DataFrame
    # with its columns in another order (or renamed) silently, where the original refused it.
    pd = pytest.importorskip("pandas")
    X, _ = _data()
    frame = pd.DataFrame(X, columns=["cpu", "mem", "disk"])
    forest = IsolationForest(n_estimators=20, random_state=0).fit(frame)
    with pytest.raises(ValueError, match="feature_names_in_"):
        forest.to_bytes()
    restored = pickle.loads(pickle.dumps(forest))  # the names travel with a pickle
    with pytest.raises(ValueError, match="feature names"):
        restored.score_samples(frame[["mem", "cpu", "disk"]])
    np.testing.assert_array_equal(restored.score_samples(frame), forest.score_samples(frame))
    array_fit = IsolationForest(n_estimators=20, random_state=0).fit(X)  # no names: bytes as before
    np.testing.assert_array_equal(
        IsolationForest.from_bytes(array_fit.to_bytes()).score_samples(X), array_fit.score_samples(X)
    )


def test_sparse_input_is_refused_by_scikit_learn():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="dense data is required"):
        IsolationForest().fit(sparse.csr_matrix(np.eye(5)))


def test_zero_weights_equal_removing_the_rows_and_weights_set_the_offset():
    X, _ = _data()
    weights = np.ones(len(X))
    weights[:50] = 0.0
    a = IsolationForest(random_state=2).fit(X, sample_weight=weights)
    b = IsolationForest(random_state=2).fit(X[50:])
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    # the offset is the weighted percentile of the training scores
    w = np.r_[np.full(100, 9.0), np.ones(len(X) - 100)]
    forest = IsolationForest(contamination=0.1, random_state=2).fit(X, sample_weight=w)
    scores = forest.score_samples(X)
    assert forest.offset_ == np.percentile(scores, 10.0, weights=w, method="inverted_cdf")
    assert forest.offset_ != IsolationForest(contamination=0.1, random_state=2).fit(X).offset_
    for bad in (np.ones(3), -weights, np.zeros(len(X))):
        with pytest.raises(ValueError, match=r"[Ss]ample.weight|[Nn]egative"):
            IsolationForest().fit(X, sample_weight=bad)


def test_warm_start_adds_trees_and_scores_as_one_forest():
    X, _ = _data()
    forest = IsolationForest(n_estimators=40, random_state=5, warm_start=True).fit(X)
    first = forest.score_samples(X)
    forest.set_params(n_estimators=100).fit(X)
    assert [f.n_trees for f in forest.estimators_] == [40, 60]
    combined = forest.score_samples(X)
    assert not np.array_equal(combined, first)
    # the mean path length over all trees, as one forest of 100 trees would have it
    depth = (
        40 * forest.estimators_[0].mean_path_length(X) + 60 * forest.estimators_[1].mean_path_length(X)
    ) / 100
    single = forest.estimators_[1].score_samples(X)
    c = -forest.estimators_[1].mean_path_length(X) / np.log2(-single)
    np.testing.assert_allclose(combined, -np.exp2(-depth / c), rtol=1e-12)
    with pytest.warns(UserWarning, match="does not fit new trees"):
        forest.fit(X)
    with pytest.raises(ValueError, match="n_estimators"):
        forest.set_params(n_estimators=10).fit(X)
    assert sum(f.n_trees for f in forest.estimators_) == 100
    with pytest.raises(ValueError, match="use pickle"):
        forest.to_bytes()
    cold = IsolationForest(n_estimators=100, random_state=5).fit(X)
    assert len(cold.estimators_) == 1
    cold.fit(X)
    assert len(cold.estimators_) == 1  # without warm start every fit starts over


def test_array_api_dispatch_with_numpy_inputs_changes_nothing():
    # The suite above skips this check unless SCIPY_ARRAY_API was set before SciPy was
    # imported, so it runs here in a fresh interpreter that sets it.
    import subprocess
    import sys

    from servers import package_env

    code = (
        "from sklearn.utils.estimator_checks import check_array_api_input\n"
        "from anomaly_detection.forest import IsolationForest\n"
        "check_array_api_input('IsolationForest', IsolationForest(n_estimators=5, random_state=0),\n"
        "                      array_namespace='numpy', expect_only_array_outputs=False)\n"
        "print('ok')\n"
    )
    env = {**package_env(), "SCIPY_ARRAY_API": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
