"""TSB-AD's metrics against the reference implementation's numbers.

The fixtures were computed by the ``TSB-AD`` package (its ``get_metrics`` and
``find_length_rank``) with ``scripts/make_tsbad_fixtures.py``; the reference is
not needed here.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import numpy as np
import pytest

from anomaly_detection.evaluation import (
    TSBAD_METRIC_NAMES,
    TsbadMetrics,
    pa_f1,
    range_f1,
    range_prf,
    sliding_window,
    tsbad_metrics,
    vus,
    vus_pr,
    vus_roc,
)
from anomaly_detection.evaluation import tsbad as tsbad_module

FIXTURES = Path(__file__).parent / "fixtures" / "tsbad"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())["cases"]
TOL = 1e-6


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "cases.npz") as data:
        return {key: data[key] for key in data.files}


def _case(arrays: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    prefix = f"{name}/"
    return {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}


def test_fixtures_cover_the_cases_the_brief_names():
    names = set(EXPECTED)
    assert {"ties", "constant_scores", "one_range", "many_ranges", "range_at_start", "range_at_end"} <= names
    assert {"random_40", "random_300", "random_2500", "short", "periodic_wide_window"} <= names
    assert "window_longer_than_series" in names
    assert len({EXPECTED[n]["window"] for n in names}) >= 8  # windows of many sizes, 125 included
    assert any(EXPECTED[n]["window"] == 125 for n in names)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_metrics_equal_the_reference(arrays, name):
    case, expected = _case(arrays, name), EXPECTED[name]
    result = tsbad_metrics(
        case["labels"], case["scores"], values=case["values"], predictions=case.get("predictions")
    )
    assert result.window == expected["window"]
    got = result.to_dict()
    for metric in TSBAD_METRIC_NAMES:
        assert got[metric] == pytest.approx(expected[metric], abs=TOL), metric


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_function_alone_equals_the_reference(arrays, name):
    case, expected = _case(arrays, name), EXPECTED[name]
    y, s, w = case["labels"], case["scores"], expected["window"]
    assert sliding_window(case["values"]) == w
    assert vus_pr(y, s, window=w) == pytest.approx(expected["VUS-PR"], abs=TOL)
    assert vus_roc(y, s, window=w) == pytest.approx(expected["VUS-ROC"], abs=TOL)
    if "predictions" in case:
        assert range_prf(y, case["predictions"])[2] == pytest.approx(expected["R-based-F1"], abs=TOL)
    else:
        assert range_f1(y, s) == pytest.approx(expected["R-based-F1"], abs=TOL)
        assert pa_f1(y, s) == pytest.approx(expected["PA-F1"], abs=TOL)


def test_vus_depends_on_the_order_of_scores_only(arrays):
    case = _case(arrays, "many_ranges")
    y, s = case["labels"], case["scores"]
    assert vus(y, np.exp(3 * s) - 7.0, 40) == pytest.approx(vus(y, s, 40), abs=1e-12)
    assert vus(y, -s, 40) != pytest.approx(vus(y, s, 40), abs=1e-3)


def test_window_zero_is_the_plain_range_auc():
    y = np.zeros(100, dtype=int)
    y[40:50] = 1
    s = np.zeros(100)
    s[45:55] = 1.0
    roc0, pr0 = vus(y, s, 0)
    # no buffer: the range is found at the top thresholds (existence 1), half its points
    assert 0 < pr0 < 1
    assert 0 < roc0 < 1
    assert vus(y, s, 20)[1] > pr0  # a buffer credits the late points after the range


def test_to_dict_uses_tsbad_names():
    m = TsbadMetrics(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, window=7)
    assert m.to_dict() == {
        "AUC-PR": 0.1, "AUC-ROC": 0.2, "VUS-PR": 0.3, "VUS-ROC": 0.4,
        "R-based-F1": 0.5, "PA-F1": 0.6, "window": 7,
    }  # fmt: skip


def test_default_window_is_get_metrics_default(arrays):
    case = _case(arrays, "one_range")
    assert tsbad_metrics(case["labels"], case["scores"]).window == 100
    assert tsbad_metrics(case["labels"], case["scores"], window=5).vus_pr == pytest.approx(
        vus_pr(case["labels"], case["scores"], window=5)
    )


@pytest.mark.parametrize(
    ("labels", "scores", "window", "match"),
    [
        ([0, 1, 0], [0.1, float("nan"), 0.2], 2, "finite"),
        ([0, 1, 0], [0.1, 0.2], 2, "length 3"),
        ([0, 0, 0], [0.1, 0.2, 0.3], 2, "both classes"),
        ([1, 1, 1], [0.1, 0.2, 0.3], 2, "both classes"),
        ([0, 2, 0], [0.1, 0.2, 0.3], 2, "0/1"),
        ([0, 1, 0], [0.1, 0.2, 0.3], -1, "window"),
        ([0, 1, 0], [0.1, 0.2, 0.3], 2.5, "window"),
    ],
)
def test_bad_input_is_a_clear_error(labels, scores, window, match):
    with pytest.raises(ValueError, match=match):
        vus(labels, scores, window)
    with pytest.raises(ValueError, match=match):
        tsbad_metrics(labels, scores, window=window)


def test_bad_values_and_predictions():
    with pytest.raises(ValueError, match="finite"):
        sliding_window([1.0, float("inf"), 2.0])
    with pytest.raises(ValueError, match="1-D"):
        sliding_window(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="predictions"):
        tsbad_metrics([0, 1, 0], [0.1, 0.2, 0.3], window=2, predictions=[0, 1])
    with pytest.raises(ValueError, match="one per label"):
        tsbad_metrics([0, 1, 0], [0.1, 0.2, 0.3], values=[1.0, 2.0])


def test_inputs_are_not_changed(arrays):
    case = _case(arrays, "range_at_start")
    copies = {k: v.copy() for k, v in case.items()}
    tsbad_metrics(case["labels"], case["scores"], values=case["values"])
    for key, value in case.items():
        np.testing.assert_array_equal(value, copies[key])


def test_docstring_example_runs():
    assert doctest.testmod(tsbad_module).failed == 0
