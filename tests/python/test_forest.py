"""IsolationForest facade: scikit-learn parity, determinism, input handling, serialisation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomaly_detection.errors import NotFittedError
from anomaly_detection.forest import IsolationForest

sklearn_ensemble = pytest.importorskip("sklearn.ensemble")
sklearn_metrics = pytest.importorskip("sklearn.metrics")

PARITY_SETS = ["4_breastw", "14_glass", "18_Ionosphere", "29_Pima", "42_WBC", "6_cardio"]


def _blob(n: int = 300, d: int = 3, outliers: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(size=(n, d)), rng.normal(8.0, 1.0, size=(outliers, d))]


def _load(shared_data, name):
    path = shared_data / "adbench" / f"{name}.npz"
    if not path.exists():
        pytest.skip(f"ADBench data not found at {path}")
    with np.load(path) as data:
        return data["X"], data["y"]


@pytest.mark.parametrize("name", PARITY_SETS)
def test_roc_auc_and_mean_score_match_scikit_learn(shared_data, name):
    X, y = _load(shared_data, name)
    ours, theirs, ours_mean, theirs_mean = [], [], [], []
    for seed in range(5):
        a = IsolationForest(random_state=seed).fit(X).score_samples(X)
        b = sklearn_ensemble.IsolationForest(random_state=seed, n_jobs=1).fit(X).score_samples(X)
        ours.append(sklearn_metrics.roc_auc_score(y, -a))
        theirs.append(sklearn_metrics.roc_auc_score(y, -b))
        ours_mean.append(a.mean())
        theirs_mean.append(b.mean())
    assert abs(np.mean(ours) - np.mean(theirs)) < 0.03
    assert abs(np.mean(ours_mean) - np.mean(theirs_mean)) < 0.005


def test_contamination_offset_and_predict_match_scikit_learn_definitions():
    X = _blob(995, 2, 5)
    forest = IsolationForest(contamination=0.05, random_state=1).fit(X)
    scores = forest.score_samples(X)
    assert forest.offset_ == pytest.approx(np.percentile(scores, 5.0), abs=1e-12)
    np.testing.assert_allclose(forest.decision_function(X), scores - forest.offset_)
    labels = forest.predict(X)
    assert set(np.unique(labels)) == {-1, 1}
    assert (labels == -1).sum() == 50
    assert (labels[-5:] == -1).all()
    np.testing.assert_array_equal(IsolationForest(contamination=0.05, random_state=1).fit_predict(X), labels)


def test_auto_contamination_and_attributes():
    X = _blob(1000, 4, 0)
    forest = IsolationForest(random_state=0).fit(X)
    assert forest.offset_ == -0.5
    assert forest.max_samples_ == 256
    assert forest.n_features_in_ == 4
    assert IsolationForest(max_samples=0.5, random_state=0).fit(X).max_samples_ == 500
    assert IsolationForest(max_samples=1000, random_state=0).fit(X).max_samples_ == 1000


def test_max_samples_above_n_samples_warns_and_caps():
    X = _blob(50, 2, 0)
    with pytest.warns(UserWarning, match="max_samples"):
        forest = IsolationForest(max_samples=100, random_state=0).fit(X)
    assert forest.max_samples_ == 50


def test_same_seed_same_scores_and_threads_do_not_matter():
    X = _blob(3000, 5, 20)
    a = IsolationForest(random_state=7).fit(X).score_samples(X)
    b = IsolationForest(random_state=7, n_jobs=2).fit(X).score_samples(X)
    c = IsolationForest(random_state=8).fit(X).score_samples(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_none_random_state_follows_numpy_global_seed():
    X = _blob(200, 2, 0)
    np.random.seed(3)
    a = IsolationForest().fit(X).score_samples(X)
    np.random.seed(3)
    b = IsolationForest().fit(X).score_samples(X)
    np.testing.assert_array_equal(a, b)


def test_float32_fortran_int_list_and_dataframe_like_inputs_agree():
    X = _blob(400, 3, 4).astype(np.float32)
    forest = IsolationForest(random_state=2).fit(X)
    expected = forest.score_samples(X.astype(np.float64))
    np.testing.assert_array_equal(forest.score_samples(X), expected)
    np.testing.assert_array_equal(forest.score_samples(np.asfortranarray(X)), expected)
    np.testing.assert_array_equal(forest.score_samples(X.astype(np.float64).tolist()), expected)

    class FrameLike:  # what pandas offers through the array protocol
        def __init__(self, values):
            self.values = values
            self.columns = [f"c{i}" for i in range(values.shape[1])]

        def __array__(self, dtype=None, copy=None):
            return self.values if dtype is None else self.values.astype(dtype)

    np.testing.assert_array_equal(forest.score_samples(FrameLike(X)), expected)
    ints = np.arange(60).reshape(20, 3)
    assert IsolationForest(random_state=0).fit(ints).score_samples(ints).shape == (20,)


def test_input_is_not_modified():
    X = _blob(100, 2, 0)
    copy = X.copy()
    IsolationForest(random_state=0).fit(X).score_samples(X)
    np.testing.assert_array_equal(X, copy)


@pytest.mark.parametrize(
    "bad",
    [
        np.array([[0.0, np.nan]] * 5),
        np.array([[0.0, np.inf]] * 5),
        np.zeros(5),
        np.zeros((0, 2)),
        np.zeros((4, 0)),
        np.array([["a", "b"]] * 5),
        np.zeros((2, 2, 2)),
    ],
)
def test_bad_training_input_raises_value_error_and_keeps_the_model(bad):
    X = _blob(50, 2, 0)
    forest = IsolationForest(random_state=0).fit(X)
    before = forest.to_bytes()
    with pytest.raises(ValueError, match="X"):
        forest.fit(bad)
    assert forest.to_bytes() == before


def test_strided_float64_is_scored_in_place_and_equals_a_contiguous_copy():
    wide = np.random.default_rng(8).normal(size=(600, 8))
    X = wide[:, ::2]  # positive strides, not contiguous: read in place
    forest = IsolationForest(random_state=4, n_jobs=2).fit(np.ascontiguousarray(X))
    expected = forest.score_samples(np.ascontiguousarray(X))
    for view in (
        X,
        np.asfortranarray(X),
        wide[:, -2::-2][:, ::-1],
        X[::-1][::-1],
        np.round(X * 10).astype(np.int16),
    ):
        scores = forest.score_samples(view)
        if view.dtype == np.int16:
            np.testing.assert_array_equal(scores, forest.score_samples(view.astype(np.float64)))
        else:
            np.testing.assert_array_equal(scores, expected)
    np.testing.assert_array_equal(forest.score_samples(X[::-1]), expected[::-1])  # negative strides: copied
    np.testing.assert_array_equal(forest.decision_function(X), expected - forest.offset_)
    bad = np.asfortranarray(X.copy())
    bad[5, 2] = np.inf
    with pytest.raises(ValueError, match="row 5, column 2"):
        forest.score_samples(bad)


@pytest.mark.parametrize("contamination", ["auto", 0.05])
def test_float32_fortran_and_strided_views_fit_and_score_as_c_float64(contamination):
    # fit and scoring read float64 and float32 in place whatever the (positive) strides:
    # the same trees, offset and scores as the C-contiguous float64 array of the same values.
    wide = np.random.default_rng(11).normal(size=(700, 10)).astype(np.float32).astype(np.float64)
    X = np.ascontiguousarray(wide[:, 1::2])
    reference = IsolationForest(random_state=3, contamination=contamination).fit(X)
    expected = reference.score_samples(X)
    views = (
        np.asfortranarray(X),
        wide[:, 1::2],
        X.astype(np.float32),
        np.asfortranarray(X, dtype=np.float32),
        wide.astype(np.float32)[:, 1::2],
        np.asfortranarray(wide, dtype=np.float32)[::1, 1::2],
    )
    for view in views:
        assert not (view.dtype == np.float64 and view.flags.c_contiguous)
        forest = IsolationForest(random_state=3, contamination=contamination).fit(view)
        assert forest.to_bytes() == reference.to_bytes(), (view.dtype, view.strides)
        assert forest.offset_ == reference.offset_
        np.testing.assert_array_equal(reference.score_samples(view), expected)
        np.testing.assert_array_equal(forest.decision_function(view), expected - reference.offset_)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
def test_non_finite_value_in_any_row_is_found_in_place(dtype, order):
    # fit reads only the sampled rows to grow the trees, but checks every row first; scoring
    # checks each block of rows as it reads it: a NaN in the last block is found too.
    X = np.asarray(np.random.default_rng(2).normal(size=(5000, 4)), dtype=dtype, order=order)
    forest = IsolationForest(random_state=0, max_samples=16, n_estimators=3).fit(X)
    before = forest.to_bytes()
    for row, col, value in ((4321, 2, np.nan), (4999, 3, np.inf), (0, 0, -np.inf)):
        bad = X.copy(order=order)
        bad[row, col] = value
        with pytest.raises(ValueError, match=f"row {row}, column {col}"):
            forest.fit(bad)
        assert forest.to_bytes() == before
        with pytest.raises(ValueError, match=f"row {row}, column {col}"):
            forest.score_samples(bad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
def test_finiteness_check_finds_every_non_finite_value_in_every_lane(dtype, order):
    # The check folds the exponent bits of 32-byte vectors (AVX2 where the CPU has it; 4 at a
    # time, then single vectors, then a tail one value at a time) and tests them once per tile:
    # a NaN, +inf, -inf or a NaN whose payload is only in its low bits is found at every offset
    # of a run of values, in fit and in scoring; the largest, smallest and subnormal finite
    # values are accepted.
    X = np.asarray(np.random.default_rng(3).normal(size=(150, 70)), dtype=dtype, order=order)
    info = np.finfo(dtype)
    edge = X.copy(order=order)
    edge[0, :4] = [info.max, -info.max, info.smallest_subnormal, -0.0]
    edge[149, 66:] = [info.max, -info.max, -info.smallest_subnormal, 0.0]
    forest = IsolationForest(random_state=0, n_estimators=5).fit(edge)
    assert forest.estimators_[0].scoring_layout == "heap"
    assert np.isfinite(forest.score_samples(edge)).all()
    payload = np.array([0x7FF0000000000001 if dtype is np.float64 else 0x7F800001])
    quiet_low = payload.astype(np.uint64 if dtype is np.float64 else np.uint32).view(dtype)[0]
    # Every offset 0-69 along a row and 0-149 down a column (vector lanes, tails, tile edges).
    positions = [(r, (5 * r) % 70) for r in range(150)] + [(37, c) for c in range(70)]
    for i, (row, col) in enumerate(positions):
        bad = X.copy(order=order)
        bad[row, col] = (np.nan, np.inf, -np.inf, quiet_low)[i % 4]
        with pytest.raises(ValueError, match=f"row {row}, column {col}"):
            forest.score_samples(bad)
        if i % 8 == 0:
            with pytest.raises(ValueError, match=f"row {row}, column {col}"):
                IsolationForest(random_state=0, n_estimators=2).fit(bad)


def test_wide_input_heap_walk_reads_every_layout_in_tiles_and_checks_each():
    # Over 64 features the padded heap walk reads rows in place, in tiles of 64 rows with the
    # next tile prefetched and each feature an offset made per call from the strides: every
    # layout scores as the C float64 array, across task and tile boundaries, and a non-finite
    # value in any tile is reported where it is.
    rng = np.random.default_rng(21)
    X = rng.normal(size=(1000, 90)).astype(np.float32).astype(np.float64)
    forest = IsolationForest(random_state=5, n_estimators=20).fit(X)
    native = forest.estimators_[0]
    assert native.scoring_layout == "heap"
    expected = forest.score_samples(X)
    reference = np.array([forest.score_samples(X[i : i + 1])[0] for i in (0, 63, 64, 127, 128, 999)])
    np.testing.assert_array_equal(expected[[0, 63, 64, 127, 128, 999]], reference)
    wide = np.zeros((1000, 180))
    wide[:, ::2] = X
    for view in (
        np.asfortranarray(X),
        X.astype(np.float32),
        np.asfortranarray(X, dtype=np.float32),
        wide[:, ::2],
        np.asfortranarray(wide)[:, ::2],
    ):
        np.testing.assert_array_equal(forest.score_samples(view), expected, err_msg=str(view.strides))
        # fit reads the drawn feature of each node's rows in place: the same trees from any layout
        refit = IsolationForest(random_state=5, n_estimators=20).fit(view)
        assert refit.to_bytes() == forest.to_bytes(), view.strides
    for order in ("C", "F"):
        for row, col in ((700, 89), (999, 0), (64, 45)):
            bad = X.copy(order=order)
            bad[row, col] = np.nan
            with pytest.raises(ValueError, match=f"row {row}, column {col}"):
                forest.score_samples(bad)


@pytest.mark.parametrize("max_samples", [256, 100])
def test_wide_heap_walk_of_16_rows_equals_the_walk_of_one_row(max_samples):
    # Blocks of 16 rows take the unrolled walks (depth 8, max_samples="auto"'s, known at compile
    # time; a Fortran-order walk with one base and constant row displacements); a single row
    # takes the plain loop. Every row scores the same either way, in both orders.
    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 70))
    forest = IsolationForest(random_state=1, n_estimators=12, max_samples=max_samples).fit(X)
    assert forest.estimators_[0].scoring_layout == "heap"
    one_by_one = np.array([forest.score_samples(X[i : i + 1])[0] for i in range(len(X))])
    for view in (
        X,
        np.asfortranarray(X),
        np.asfortranarray(np.repeat(X, 2, axis=0))[::2],  # Fortran, rows 2 apart
    ):
        np.testing.assert_array_equal(forest.score_samples(view), one_by_one)
    assert len(np.unique(one_by_one)) > 100  # rows go down different paths


def test_fortran_float64_top_levels_by_avx2_equal_the_scalar_walk():
    # Fortran-ordered float64 rows over 64 features take levels 0-2 of each depth-8 tree by AVX2
    # (4 rows per load, the level 1-2 value and split picked by blends); set_vector_walk(False)
    # keeps the scalar walk. Same scores bit for bit, with features of few distinct values, a
    # constant feature, shallow trees whose top slots are +inf padding, and across tile boundaries.
    rng = np.random.default_rng(12)
    X = rng.integers(0, 3, size=(700, 80)).astype(np.float64)
    X[:, :8] = rng.normal(size=(700, 8))
    X[:, 8] = 1.0  # a constant feature: never split
    forest = IsolationForest(random_state=3, n_estimators=25).fit(X)
    natives = forest.estimators_
    assert natives[0].scoring_layout == "heap"
    F = np.asfortranarray(X)
    vector = forest.score_samples(F)
    previous = [native.set_vector_walk(False) for native in natives]
    try:
        scalar = forest.score_samples(F)
        c_order = forest.score_samples(X)
    finally:
        for native, was in zip(natives, previous):
            native.set_vector_walk(was)
    np.testing.assert_array_equal(vector, scalar)
    np.testing.assert_array_equal(vector, c_order)
    assert len(np.unique(vector)) > 50
    # Shallow trees of depth limit 8 (300 rows, 6 distinct): top slots padded with +inf.
    small = IsolationForest(random_state=0, n_estimators=10).fit(np.repeat(X[:6], 50, axis=0))
    assert small.estimators_[0].scoring_layout == "heap"
    expected = small.score_samples(X)
    np.testing.assert_array_equal(small.score_samples(F), expected)


def test_wide_float32_rows_compare_as_floats_with_the_split_values_rounded_down():
    # Over 64 features float32 rows are walked against each split value rounded down to a float:
    # exact for any float x. Values a few float ulps apart put every split between two adjacent
    # floats, with rows on both sides (rounding to nearest would send some rows the wrong way).
    rng = np.random.default_rng(4)
    ulp = np.float32(np.spacing(np.float32(1.0)))
    values = (np.float32(1.0) + rng.integers(0, 12, size=(500, 72)).astype(np.float32) * ulp).astype(
        np.float32
    )
    values[:, :3] *= np.float32(-3.0e38)  # and splits near the end of the float range
    exact = values.astype(np.float64)
    forest = IsolationForest(random_state=3, n_estimators=30).fit(exact)
    assert forest.estimators_[0].scoring_layout == "heap"
    expected = forest.score_samples(exact)
    assert len(np.unique(expected)) > 50
    for view in (values, np.asfortranarray(values), np.asfortranarray(np.repeat(values, 2, axis=0))[::2]):
        np.testing.assert_array_equal(forest.score_samples(view), expected, err_msg=str(view.strides))


@pytest.mark.parametrize(
    "dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64, np.uint32, ">i2"]
)
def test_integer_input_scores_as_its_float64_values(dtype):
    # Integers of up to 32 bits are ranked in place, without a float64 copy; the others
    # (and byte-swapped ones) are converted: the same scores as the values as float64.
    rng = np.random.default_rng(5)
    X = np.round(rng.normal(size=(700, 6)) * 20)
    X[:, 1] = np.round(rng.normal(size=700) * 3)
    X[:, 2] = rng.integers(0, 120, size=700)
    forest = IsolationForest(random_state=2, max_features=0.5, n_jobs=2).fit(X)
    Q = X.copy()
    Q[::7, 0] = np.arange(-127, 127, 2)[: len(Q[::7])]  # around and beyond the split values
    Q[0] = 127
    Q[1] = -128
    Q = np.abs(Q) if np.dtype(dtype).kind == "u" else Q
    for view in (
        Q.astype(dtype),
        np.asfortranarray(Q.astype(dtype)),
        Q.astype(dtype)[::3, :],
        Q.astype(dtype)[::-1],
    ):
        values = view.astype(np.float64)
        np.testing.assert_array_equal(forest.score_samples(view), forest.score_samples(values))
        np.testing.assert_array_equal(forest.decision_function(view), forest.decision_function(values))


@pytest.mark.parametrize("name", ["4_breastw", "30_satellite", "32_shuttle"])
def test_integer_sets_score_as_their_float64_values(shared_data, name):
    path = shared_data / "adbench" / f"{name}.npz"
    if not path.exists():
        pytest.skip(f"{path} not available")
    with np.load(path) as data:
        X = data["X"]
    assert X.dtype.kind in "iu"
    for params in ({}, {"max_features": 0.5, "bootstrap": True}, {"max_samples": min(2000, len(X))}):
        forest = IsolationForest(random_state=1, **params).fit(X)
        np.testing.assert_array_equal(forest.score_samples(X), forest.score_samples(X.astype(np.float64)))


def test_vector_walk_gives_the_scalar_walks_scores_on_every_set(shared_data):
    # The AVX2 walk (the top levels compared at once) is taken on AVX2 CPUs; the scalar rank
    # walk is the reference: equal scores, bit for bit. The switch is the forest's own.
    from anomaly_detection import _core

    paths = sorted((shared_data / "adbench").glob("*.npz"))
    if not paths:
        pytest.skip("no ADBench data")
    for path in paths:
        with np.load(path) as data:
            X = data["X"]
        for params in ({}, {"max_features": 0.5, "bootstrap": True}, {"max_samples": min(1001, len(X))}):
            forest = IsolationForest(random_state=0, **params).fit(X)
            native = forest.estimators_[0]
            if _core.IsolationForest.vector_walk_supported():
                assert native.scoring_layout.startswith("rank-avx2"), (
                    path.stem,
                    params,
                    native.scoring_layout,
                )
            vector = forest.score_samples(X)
            assert native.set_vector_walk(False) is True
            assert native.scoring_layout in ("rank", "heap", "node")
            other = IsolationForest(random_state=0, **params).fit(X).estimators_[0]
            assert other.scoring_layout == forest_layout_with_vector(other)  # another forest keeps its walk
            scalar = forest.score_samples(X)
            np.testing.assert_array_equal(vector, scalar, err_msg=f"{path.stem} {params}")


def forest_layout_with_vector(native) -> str:
    previous = native.set_vector_walk(True)
    layout = native.scoring_layout
    native.set_vector_walk(previous)
    return layout


def test_bad_scoring_input_raises_value_error():
    forest = IsolationForest(random_state=0).fit(_blob(50, 2, 0))
    with pytest.raises(ValueError, match="expecting 2 features"):  # scikit-learn's message
        forest.score_samples(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        forest.decision_function(np.array([[1.0, np.nan]]))


@pytest.mark.parametrize(
    "params",
    [
        {"n_estimators": 0},
        {"n_estimators": 2.5},
        {"max_samples": 0},
        {"max_samples": 1.5},
        {"max_samples": "all"},
        {"contamination": 0.6},
        {"contamination": 0.0},
        {"contamination": "high"},
        {"max_features": 0},
        {"max_features": 4},
        {"max_features": 1.5},
        {"bootstrap": "yes"},
        {"n_jobs": 0},
        {"random_state": -1},
        {"random_state": "seed"},
    ],
)
def test_invalid_parameters_raise_value_error_at_fit(params):
    with pytest.raises(ValueError, match=next(iter(params))):
        IsolationForest(**params).fit(_blob(50, 3, 0))


def test_not_fitted_error_before_fit():
    forest = IsolationForest()
    for call in (
        lambda: forest.score_samples(np.zeros((2, 2))),
        lambda: forest.predict(np.zeros((2, 2))),
        lambda: forest.offset_,
        forest.to_bytes,
    ):
        with pytest.raises(NotFittedError):
            call()


def test_get_and_set_params_follow_scikit_learn():
    forest = IsolationForest(n_estimators=10, random_state=0)
    params = forest.get_params()
    assert params["n_estimators"] == 10
    assert set(params) == set(sklearn_ensemble.IsolationForest().get_params())
    assert forest.set_params(n_estimators=20) is forest
    assert forest.n_estimators == 20
    with pytest.raises(ValueError, match="n_trees"):
        forest.set_params(n_trees=3)
    assert "n_estimators=20" in repr(forest)


def test_bytes_and_pickle_round_trip():
    X = _blob(500, 3, 5)
    forest = IsolationForest(n_estimators=50, max_samples=0.5, contamination=0.02, random_state=4).fit(X)
    restored = IsolationForest.from_bytes(forest.to_bytes())
    np.testing.assert_array_equal(restored.score_samples(X), forest.score_samples(X))
    assert restored.offset_ == forest.offset_
    assert restored.n_estimators == 50
    assert restored.max_samples == 252  # int(0.5 * 505), resolved
    assert restored.max_features == 1.0
    unpickled = pickle.loads(pickle.dumps(forest))
    np.testing.assert_array_equal(unpickled.predict(X), forest.predict(X))
    assert unpickled.get_params() == forest.get_params()
    assert pickle.loads(pickle.dumps(IsolationForest(n_estimators=3))).get_params()["n_estimators"] == 3


def test_corrupt_bytes_raise_value_error():
    blob = IsolationForest(n_estimators=5, random_state=0).fit(_blob(40, 2, 0)).to_bytes()
    for bad in (b"", blob[:10], blob[:-1], blob + b"\0", b"XXXX" + blob[4:], bytes(len(blob))):
        with pytest.raises(ValueError, match="possible corruption"):
            IsolationForest.from_bytes(bad)
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF
    with pytest.raises(ValueError, match="possible corruption"):
        IsolationForest.from_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="expected bytes"):
        IsolationForest.from_bytes("not bytes")


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 60),
    d=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    bootstrap=st.booleans(),
)
def test_scores_are_in_range_and_deterministic(n, d, seed, bootstrap):
    X = np.random.default_rng(seed).normal(size=(n, d)).round(1)  # rounding makes ties and constant features
    forest = IsolationForest(n_estimators=10, bootstrap=bootstrap, random_state=seed).fit(X)
    scores = forest.score_samples(X)
    assert scores.shape == (n,)
    assert np.all((scores < 0) & (scores >= -1))
    np.testing.assert_array_equal(
        IsolationForest(n_estimators=10, bootstrap=bootstrap, random_state=seed).fit(X).score_samples(X),
        scores,
    )
