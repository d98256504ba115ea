"""HalfSpaceTrees: River parity, batch equals loop, determinism, inputs, serialisation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from anomaly_detection.forest import HalfSpaceTrees

river_anomaly = pytest.importorskip("river.anomaly")
sklearn_metrics = pytest.importorskip("sklearn.metrics")


def _stream(n: int = 1500, d: int = 3, seed: int = 0):
    """Uniform points in [0.3, 0.7]^d with 3 % outliers near a corner of [0, 1]^d."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.3, 0.7, size=(n, d))
    y = rng.random(n) < 0.03
    y[:300] = False
    X[y] = rng.uniform(0.0, 0.1, size=(int(y.sum()), d))
    return X, y


def _river_scores(X, **params):
    model = river_anomaly.HalfSpaceTrees(**params)
    scores = []
    for row in X:
        x = {f"f{j}": float(v) for j, v in enumerate(row)}
        scores.append(model.score_one(x))
        model.learn_one(x)
    return np.array(scores)


@pytest.mark.parametrize(
    ("params"), [{"seed": 42}, {"seed": 7, "n_trees": 5, "height": 4, "window_size": 50}]
)
def test_same_seed_gives_rivers_scores_exactly(params):
    X, _ = _stream()
    ours = HalfSpaceTrees(**params)
    scores = []
    for row in X:
        x = {f"f{j}": float(v) for j, v in enumerate(row)}
        scores.append(ours.score_one(x))
        ours.learn_one(x)
    np.testing.assert_array_equal(np.array(scores), _river_scores(X, **params))


def test_roc_auc_within_0_01_of_river_on_the_same_stream():
    X, y = _stream(3000, 4, seed=1)
    ours = HalfSpaceTrees(seed=3).score_learn_many(X)
    theirs = _river_scores(X, seed=3)
    auc_ours = sklearn_metrics.roc_auc_score(y[250:], ours[250:])
    auc_theirs = sklearn_metrics.roc_auc_score(y[250:], theirs[250:])
    assert auc_ours > 0.9
    assert abs(auc_ours - auc_theirs) < 0.01


def test_limits_and_missing_features_follow_river():
    rng = np.random.default_rng(5)
    limits = {"a": (0.0, 10.0), "b": (-5.0, 5.0)}
    ours = HalfSpaceTrees(n_trees=4, height=5, window_size=20, limits=limits, seed=11)
    theirs = river_anomaly.HalfSpaceTrees(n_trees=4, height=5, window_size=20, limits=limits, seed=11)
    for i in range(200):
        x = {"a": float(rng.uniform(0, 10)), "b": float(rng.uniform(-5, 5))}
        if i % 7 == 0:
            del x["b"]  # a missing feature takes the child with more window mass
        assert ours.score_one(x) == theirs.score_one(x)
        ours.learn_one(x)
        theirs.learn_one(x)


def test_batch_equals_loop():
    X, _ = _stream(800, 3)
    loop, batch = HalfSpaceTrees(seed=1, window_size=100), HalfSpaceTrees(seed=1, window_size=100)
    for row in X[:500]:
        loop.learn_one(row)
    batch.learn_many(X[:500])
    expected = np.array([loop.score_one(row) for row in X[500:]])
    np.testing.assert_array_equal(batch.score_many(X[500:]), expected)
    assert loop.to_bytes() == batch.to_bytes()
    progressive = HalfSpaceTrees(seed=1, window_size=100)
    stepwise = HalfSpaceTrees(seed=1, window_size=100)
    steps = []
    for row in X:
        steps.append(stepwise.score_one(row))
        stepwise.learn_one(row)
    np.testing.assert_array_equal(progressive.score_learn_many(X), np.array(steps))


def test_seeded_determinism_and_different_seeds_differ():
    X, _ = _stream(600, 2)
    a = HalfSpaceTrees(seed=5).score_learn_many(X)
    b = HalfSpaceTrees(seed=5).score_learn_many(X)
    c = HalfSpaceTrees(seed=6).score_learn_many(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_score_is_zero_during_the_first_window_and_in_range_after():
    X, _ = _stream(600, 2)
    scores = HalfSpaceTrees(seed=0, window_size=250).score_learn_many(X)
    assert (scores[:250] == 0.0).all()
    assert ((scores[250:] > 0.0) & (scores[250:] <= 1.0)).all()
    assert HalfSpaceTrees().score_one({"x": 0.5}) == 0.0
    np.testing.assert_array_equal(HalfSpaceTrees().score_many(np.zeros((3, 2))), np.zeros(3))


def test_float32_fortran_and_lists_agree():
    X, _ = _stream(400, 3)
    base = HalfSpaceTrees(seed=2, window_size=50)
    base.learn_many(X)
    Xf = np.asfortranarray(X[:50])
    np.testing.assert_array_equal(base.score_many(Xf), base.score_many(X[:50]))
    np.testing.assert_array_equal(base.score_many(X[:50].tolist()), base.score_many(X[:50]))
    other = HalfSpaceTrees(seed=2, window_size=50)
    other.learn_many(X.astype(np.float32))
    assert other.score_many(X[:5].astype(np.float32)).shape == (5,)


def test_input_is_not_modified():
    X, _ = _stream(300, 2)
    copy = X.copy()
    hst = HalfSpaceTrees(seed=0, window_size=100)
    hst.learn_many(X)
    hst.score_many(X)
    np.testing.assert_array_equal(X, copy)


@pytest.mark.parametrize(
    "bad",
    [
        np.array([[0.5, np.nan]]),
        np.array([[0.5, np.inf]]),
        np.zeros((2, 3)),
        np.zeros(2),
        np.array([["a", "b"]]),
    ],
)
def test_bad_rows_raise_value_error_and_change_nothing(bad):
    hst = HalfSpaceTrees(seed=0, window_size=10)
    hst.learn_many(np.full((15, 2), 0.5))
    before = hst.to_bytes()
    with pytest.raises(ValueError, match="X"):
        hst.learn_many(bad)
    with pytest.raises(ValueError, match="X"):
        hst.score_many(bad)
    assert hst.to_bytes() == before


def test_bad_dicts_and_mixing_kinds_raise_value_error():
    hst = HalfSpaceTrees(seed=0)
    with pytest.raises(ValueError, match="real number"):
        hst.learn_one({"a": "high"})
    with pytest.raises(ValueError, match="empty"):
        hst.learn_one({})
    hst.learn_one({"a": 0.2})
    with pytest.raises(ValueError, match="learned dicts"):
        hst.learn_one(np.array([0.2]))
    rows = HalfSpaceTrees(seed=0)
    rows.learn_one(np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match="learned NumPy rows"):
        rows.score_one({"a": 0.2})


@pytest.mark.parametrize(
    "params",
    [
        {"n_trees": 0},
        {"height": -1},
        {"window_size": 0},
        {"window_size": 2.5},
        {"window_size": 2**32 + 1},
        {"seed": "x"},
        {"limits": [(0, 1)]},
        {"limits": {"a": (1.0, 0.0)}},
        {"limits": {"a": (0.0, float("inf"))}},
        {"height": 40},
    ],
)
def test_invalid_parameters_raise_value_error(params):
    with pytest.raises(ValueError, match="expected"):
        HalfSpaceTrees(**params).learn_one({"a": 0.5})


def test_bytes_and_pickle_round_trip():
    X, _ = _stream(700, 2)
    hst = HalfSpaceTrees(seed=9, window_size=100, limits={0: (0.0, 2.0)})
    hst.learn_many(X[:450])
    restored = HalfSpaceTrees.from_bytes(hst.to_bytes())
    assert restored.limits == {0: (0.0, 2.0)}
    unpickled = pickle.loads(pickle.dumps(hst))
    expected = restored.score_learn_many(X[450:])
    np.testing.assert_array_equal(unpickled.score_learn_many(X[450:]), expected)
    np.testing.assert_array_equal(hst.score_learn_many(X[450:]), expected)
    named = HalfSpaceTrees(seed=1, window_size=5)
    for v in np.linspace(0, 1, 12):
        named.learn_one({"cpu": float(v), "mem": 0.5})
    again = HalfSpaceTrees.from_bytes(named.to_bytes())
    assert again.score_one({"cpu": 0.9, "mem": 0.5}) == named.score_one({"cpu": 0.9, "mem": 0.5})


def test_corrupt_bytes_raise_value_error():
    hst = HalfSpaceTrees(n_trees=2, height=3, window_size=5, seed=0)
    hst.learn_many(np.full((7, 2), 0.5))
    blob = hst.to_bytes()
    for bad in (b"", blob[:20], blob[:-1], blob + b"\0", bytes(len(blob))):
        with pytest.raises(ValueError, match="possible corruption"):
            HalfSpaceTrees.from_bytes(bad)
    flipped = bytearray(blob)
    flipped[-3] ^= 0x40
    with pytest.raises(ValueError, match="possible corruption"):
        HalfSpaceTrees.from_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="nothing to serialise"):
        HalfSpaceTrees().to_bytes()


def _dict_stream(n: int = 900, seed: int = 4):
    rng = np.random.default_rng(seed)
    return [{"b": float(rng.random()), "a": float(rng.random()), "c": float(rng.random())} for _ in range(n)]


def test_dicts_in_any_key_order_with_extra_missing_and_int_values_match_river():
    """The core reads dicts in one call; whatever their shape, scores stay River's."""
    rng = np.random.default_rng(9)
    ours = HalfSpaceTrees(n_trees=6, height=5, window_size=40, seed=3)
    theirs = river_anomaly.HalfSpaceTrees(n_trees=6, height=5, window_size=40, seed=3)
    for i, x in enumerate(_dict_stream()):
        if i % 5 == 1:
            x = dict(reversed(list(x.items())))  # another key order
        if i % 7 == 2:
            x["unused"] = 123.0  # a feature the trees do not know is ignored
        if i % 11 == 3:
            del x["a"]  # a missing feature
        if i % 13 == 4:
            x["c"] = int(rng.integers(0, 2))  # ints are numbers too
        if i % 17 == 5:
            x = {str(k): v for k, v in x.items()}  # equal keys, other objects
        if i % 19 == 6:
            x["b"] = np.float64(x["b"])  # a float subclass
        if i % 23 == 7:
            x["b"] = True  # not read by the core: the checked path handles it
        assert ours.score_one(x) == theirs.score_one(x)
        ours.learn_one(x)
        theirs.learn_one(x)


def test_a_dict_changed_between_score_and_learn_is_read_again():
    X = _dict_stream(400)
    ours = HalfSpaceTrees(n_trees=4, height=4, window_size=30, seed=1)
    theirs = river_anomaly.HalfSpaceTrees(n_trees=4, height=4, window_size=30, seed=1)
    x = dict(X[0])
    for row in X:
        assert ours.score_one(x) == theirs.score_one(x)
        x.update(row)  # the same dict object, new values
        ours.learn_one(x)
        theirs.learn_one(x)
    assert ours.score_one(x) == theirs.score_one(x)


def test_bad_dict_after_fitting_raises_and_learns_nothing():
    hst = HalfSpaceTrees(n_trees=3, height=3, window_size=5, seed=2)
    for x in _dict_stream(12):
        hst.learn_one(x)
    before = hst.to_bytes()
    for bad in ({"a": "x", "b": 0.1}, {"a": 10**400}, {"a": None}):
        with pytest.raises(ValueError, match="real number"):
            hst.learn_one(bad)
        with pytest.raises(ValueError, match="real number"):
            hst.score_one(bad)
    assert hst.to_bytes() == before


def test_nan_and_infinite_values_in_dicts_go_where_rivers_comparison_sends_them():
    ours = HalfSpaceTrees(n_trees=4, height=5, window_size=20, seed=3)
    theirs = river_anomaly.HalfSpaceTrees(n_trees=4, height=5, window_size=20, seed=3)
    rng = np.random.default_rng(9)
    specials = [float("nan"), float("inf"), -float("inf")]
    for i in range(300):
        x = {"a": float(rng.uniform()), "b": float(rng.uniform()), "c": float(rng.uniform())}
        if i % 5 == 0:
            x["b"] = specials[i % 3]
        if i % 11 == 0:
            del x["c"]
        assert ours.score_one(x) == theirs.score_one(x), i
        ours.learn_one(x)
        theirs.learn_one(x)


def test_dict_detector_restored_from_bytes_or_pickle_reads_dicts():
    X = _dict_stream(300)
    hst = HalfSpaceTrees(n_trees=4, height=4, window_size=25, seed=6)
    for x in X[:200]:
        hst.learn_one(x)
    for copy in (HalfSpaceTrees.from_bytes(hst.to_bytes()), pickle.loads(pickle.dumps(hst))):
        for x in X[200:]:
            assert copy.score_one(x) == hst.score_one(x)
        copy.learn_one(X[0])
    assert [hst.score_one(x) for x in X[:5]] == [
        hst.score_one(dict(reversed(list(x.items())))) for x in X[:5]
    ]


def test_dataframe_columns_are_kept_as_feature_names_and_others_refused():
    # A model that learned a DataFrame with columns [a, b] scored one with [b, a] silently, its
    # columns swapped; now as scikit-learn's estimators: feature_names_in_, and other names or
    # another order is a ValueError naming the difference (nothing learned); plain arrays pass.
    pd = pytest.importorskip("pandas")
    X, _ = _stream(n=400, d=2)
    X[:, 1] *= 0.5  # the two features differ, so a swap changes the scores
    frame = pd.DataFrame(X, columns=["a", "b"])
    hst = HalfSpaceTrees(n_trees=5, height=4, window_size=50, seed=1)
    hst.learn_many(frame)
    assert list(hst.feature_names_in_) == ["a", "b"]
    expected = hst.score_many(X)
    np.testing.assert_array_equal(hst.score_many(frame), expected)
    assert hst.score_one(frame.iloc[7]) == expected[7]
    before = pickle.dumps(hst)
    swapped, renamed = frame[["b", "a"]], frame.rename(columns={"b": "c"})
    for method in ("score_many", "learn_many", "score_learn_many"):
        with pytest.raises(ValueError, match=r"order.*\['a', 'b'\].*\['b', 'a'\]"):
            getattr(hst, method)(swapped)
        with pytest.raises(ValueError, match=r"unseen.*'c'.*missing.*'b'"):
            getattr(hst, method)(renamed)
    for method in ("score_one", "learn_one"):
        with pytest.raises(ValueError, match="order"):
            getattr(hst, method)(swapped.iloc[0])
    assert pickle.dumps(hst) == before  # nothing learned
    restored = pickle.loads(before)  # the names travel with a pickle
    with pytest.raises(ValueError, match="order"):
        restored.score_many(swapped)
    with pytest.raises(ValueError, match=r"feature_names_in_.*pickle"):  # not with the bytes
        hst.to_bytes()
    # a model that learned arrays has no names and takes any DataFrame of its width
    plain = HalfSpaceTrees(n_trees=5, height=4, window_size=50, seed=1)
    plain.learn_many(X)
    assert not hasattr(plain, "feature_names_in_")
    np.testing.assert_array_equal(plain.score_many(swapped), plain.score_many(X[:, ::-1]))
    # columns that are not all strings are no names (scikit-learn's rule): positions, as before
    numbered = HalfSpaceTrees(n_trees=5, height=4, window_size=50, seed=1)
    numbered.learn_many(pd.DataFrame(X))
    assert not hasattr(numbered, "feature_names_in_")
