"""Detection metrics: hand-checked cases, and the AUCs against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomaly_detection.evaluation import (
    PRF,
    average_precision,
    event_prf,
    point_adjust,
    point_adjusted_prf,
    point_prf,
    roc_auc,
    segments,
)

sk_metrics = pytest.importorskip("sklearn.metrics")

Y = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1])
P = np.array([0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1])


def test_segments():
    np.testing.assert_array_equal(segments(Y), [[1, 4], [6, 8], [11, 12]])
    assert segments(np.zeros(5, dtype=int)).shape == (0, 2)
    np.testing.assert_array_equal(segments([1, 1]), [[0, 2]])


def test_point_level():
    # 2 of 5 predictions are in anomalies; 2 of 6 anomalous points predicted
    assert point_prf(Y, P) == pytest.approx(PRF(2 / 5, 2 / 6, 2 * (0.4 * 1 / 3) / (0.4 + 1 / 3)))


def test_point_adjusted():
    adjusted = point_adjust(Y, P)
    np.testing.assert_array_equal(adjusted, [0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1])
    # segments [1,4) and [11,12) are hit: 4 of 6 anomalous points, 4 of 7 predictions correct
    prf = point_adjusted_prf(Y, P)
    assert prf.recall == pytest.approx(4 / 6)
    assert prf.precision == pytest.approx(4 / 7)


def test_event_level():
    # true events: [1,4), [6,8), [11,12); predicted events: [2,3), [5,6), [9,12)
    prf = event_prf(Y, P)
    assert prf.recall == pytest.approx(2 / 3)
    assert prf.precision == pytest.approx(2 / 3)
    assert prf.f1 == pytest.approx(2 / 3)


def test_empty_cases_are_zero_not_errors():
    zeros = np.zeros(6, dtype=int)
    assert point_prf(zeros, zeros) == PRF(0.0, 0.0, 0.0)
    assert event_prf(zeros, zeros) == PRF(0.0, 0.0, 0.0)
    assert point_adjusted_prf(Y, np.zeros_like(Y)).recall == 0.0


def test_input_validation():
    with pytest.raises(ValueError, match="differ in length"):
        point_prf([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="0/1"):
        point_prf([0, 2], [0, 1])
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="both classes"):
        average_precision([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        roc_auc([0, 1], [0.1, np.nan])


@st.composite
def labelled_scores(draw):
    n = draw(st.integers(2, 200))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    if y.min() == y.max():
        y[draw(st.integers(0, n - 1))] ^= 1
    if draw(st.booleans()):  # many ties
        scores = np.array(draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)), dtype=float)
    else:
        scores = np.array(
            draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=n, max_size=n)), dtype=float
        )
    return y, scores


@settings(max_examples=200, deadline=None)
@given(labelled_scores())
def test_roc_auc_matches_sklearn(data):
    y, scores = data
    assert roc_auc(y, scores) == pytest.approx(sk_metrics.roc_auc_score(y, scores), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(labelled_scores())
def test_average_precision_matches_sklearn(data):
    y, scores = data
    assert average_precision(y, scores) == pytest.approx(
        sk_metrics.average_precision_score(y, scores), abs=1e-12
    )


@settings(max_examples=200, deadline=None)
@given(labelled_scores(), st.floats(0, 1))
def test_point_prf_matches_sklearn(data, q):
    y, scores = data
    pred = (scores >= np.quantile(scores, q)).astype(int)
    p, r, f, _ = sk_metrics.precision_recall_fscore_support(y, pred, average="binary", zero_division=0.0)
    assert point_prf(y, pred) == pytest.approx(PRF(p, r, f), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 1), min_size=1, max_size=80),
    st.lists(st.integers(0, 1), min_size=80, max_size=80),
)
def test_point_adjust_against_a_loop(y, p):
    y = np.array(y)
    p = np.array(p[: len(y)])
    expected = p.astype(bool).copy()
    i = 0
    while i < len(y):
        if y[i]:
            j = i
            while j < len(y) and y[j]:
                j += 1
            if p[i:j].any():
                expected[i:j] = True
            i = j
        else:
            i += 1
    np.testing.assert_array_equal(point_adjust(y, p), expected)
