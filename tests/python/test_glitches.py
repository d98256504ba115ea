"""One glitch must not blind a classic detector (issue 16, item 6): after a single
finite outlier, even 1e308, no verdict changes beyond the window that held it, no
score or deviation is ever NaN, and a spike after the glitch has left is flagged.
Each series is run twice, with the glitch and with the point it replaced."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anomaly_detection import StatisticalAnomalyDetector

CLASSIC = ["zscore", "mad", "iqr", "ewma", "cusum"]
THRESHOLD = {"zscore": 3.0, "mad": 3.5, "iqr": 1.5, "ewma": 3.0, "cusum": 5.0}
MAX = float(np.finfo(np.float64).max)

glitches = st.one_of(
    st.sampled_from([1e308, -1e308, MAX, -MAX, 1e6, -1e6, 1e154, 1e200]),
    st.floats(1e3, MAX).flatmap(lambda v: st.sampled_from([v, -v])),
)


def run(method: str, window: int, values: np.ndarray, batch: bool):
    det = StatisticalAnomalyDetector(detection_method=method, window_size=window, min_samples=10)
    if batch:
        return det.detect_batch("s", values, np.arange(len(values), dtype=float))
    out = [det.detect("s", float(v), timestamp=float(i)) for i, v in enumerate(values)]
    return (np.array([r.is_anomaly for r in out]), np.array([r.deviation for r in out]),
            np.array([r.score for r in out]))  # fmt: skip


def tolerance(method: str, window: int, jump: float = 1.0) -> float:
    """How far a deviation after the glitch may be from the clean run's: rounding, and
    for EWMA the chart's memory of the glitch once it left the window, alpha (1 - alpha)^window
    of its size in sigmas (``jump``), capped at 1e-3 (a glitch large enough to hold nearly all
    of the window's spread restarts the chart and leaves nothing)."""
    if method != "ewma":
        return 1e-6
    return 1e-6 + min(1e-3, 10 * 0.7**window * max(1.0, jump))


def clear_of_threshold(deviation: np.ndarray, method: str, window: int, jump: float = 1.0) -> np.ndarray:
    """Points whose verdict cannot flip by that difference alone."""
    margin = tolerance(method, window, jump) * np.maximum(1.0, np.abs(deviation))
    return np.abs(np.abs(deviation) - THRESHOLD[method]) > margin


@pytest.mark.parametrize("method", CLASSIC)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    glitch=glitches,
    window=st.integers(10, 80),
    level=st.floats(-1e4, 1e4),
    sigma=st.floats(0.01, 100.0),
    seed=st.integers(0, 2**32 - 1),
    at=st.integers(0, 150),
)
def test_one_glitch_changes_nothing_beyond_its_window(method, glitch, window, level, sigma, seed, at):
    if method == "ewma":
        # The chart keeps (1 - alpha)^window of what left its window: a glitch too small
        # to hold nearly all of the window's spread (which restarts the chart) still
        # weighs that much. From 60 points on (alpha 0.3) that is below 1e-9.
        window = max(window, 60)
    rng = np.random.default_rng(seed)
    n = at + 3 * window + 40
    clean = level + sigma * rng.standard_normal(n)
    spike = at + window + 20  # after the glitch has left the window
    clean[spike] = level + 40 * sigma
    glitched = clean.copy()
    glitched[at] = glitch

    a = run(method, window, clean, batch=True)
    b = run(method, window, glitched, batch=True)
    for arr in (b.scores, b.deviations, b.expected):
        assert not np.isnan(arr).any(), "NaN after a glitch"
    assert ((b.scores >= 0) & (b.scores <= 1)).all()
    assert b.is_anomaly[spike], "a spike after the glitch left the window was missed"

    after = np.arange(len(clean)) > at + window
    if method == "cusum":
        # CUSUM's sums restart when the glitch leaves (the clean run's need not be 0
        # there): verdicts agree once both statistics are back at 0.
        both_zero = np.flatnonzero(after & (a.deviations == 0) & (b.deviations == 0))
        after &= np.arange(len(clean)) >= (both_zero[0] if len(both_zero) else len(clean))
    jump = abs(glitch - level) / sigma
    check = after & clear_of_threshold(a.deviations, method, window, jump)
    np.testing.assert_array_equal(a.is_anomaly[check], b.is_anomaly[check])
    if method in ("mad", "iqr"):  # order statistics forget the glitch exactly
        np.testing.assert_array_equal(a.deviations[after], b.deviations[after])
    else:
        tol = tolerance(method, window, jump)
        np.testing.assert_allclose(b.deviations[after], a.deviations[after], rtol=tol, atol=tol)


@pytest.mark.parametrize("method", CLASSIC)
@settings(max_examples=25, deadline=None)
@given(glitch=glitches, window=st.integers(10, 40), seed=st.integers(0, 2**32 - 1), at=st.integers(0, 80))
def test_batch_equals_loop_through_a_glitch(method, glitch, window, seed, at):
    values = 20.0 + np.random.default_rng(seed).standard_normal(at + 2 * window + 10)
    values[at] = glitch
    batch = run(method, window, values, batch=True)
    flags, deviations, scores = run(method, window, values, batch=False)
    np.testing.assert_array_equal(batch.is_anomaly, flags)
    np.testing.assert_array_equal(batch.deviations, deviations)
    np.testing.assert_array_equal(batch.scores, scores)


@pytest.mark.parametrize("method", CLASSIC)
@pytest.mark.parametrize("glitch", [1e308, 1e6])
def test_spike_a_day_later_is_flagged(method, glitch):
    """The issue's case: minute data around 20, one glitch, a spike 1,440 points later."""
    values = 20.0 + 0.5 * np.random.default_rng(7).standard_normal(3000)
    values[500] = glitch
    values[500 + 1440] = 35.0
    result = run(method, 100, values, batch=True)
    assert result.is_anomaly[500 + 1440]
    assert not np.isnan(result.scores).any()
    assert not np.isnan(result.deviations).any()
    # Beyond the window, flags are those of the same series without the glitch.
    values[500] = 20.0
    clean = run(method, 100, values, batch=True)
    np.testing.assert_array_equal(clean.is_anomaly[601:], result.is_anomaly[601:])
