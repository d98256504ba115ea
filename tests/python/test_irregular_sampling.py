"""The ensemble's seasonal part follows the sampling interval over time, not only the
first 50 timestamps: a series that starts with a burst, then settles, keeps its daily and
weekly seasons. (That a regular series with jitter and gaps never moves its period is the
C++ test Ensemble.ThePeriodFollowsTheSampling.)"""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_detection import StatisticalAnomalyDetector

DAY = 288  # five-minute points
BURST = 50  # the points sampled differently at the start (as many as the first estimate reads)


def stamps(n: int, burst_interval: float | None) -> np.ndarray:
    """Five-minute timestamps; the first BURST points `burst_interval` seconds apart."""
    gaps = np.full(n, 300.0)
    if burst_interval is not None:
        gaps[:BURST] = burst_interval
    return 1.7e9 + np.concatenate([[0.0], np.cumsum(gaps[:-1])])


def daily(ts: np.ndarray, seed: int) -> np.ndarray:
    """100 +- 10 over the day, by time, with noise."""
    phase = 2 * np.pi * (ts - ts[0]) / 86400
    return 100 + 10 * np.sin(phase) + np.random.default_rng(seed).normal(0, 0.5, len(ts))


def with_wrong_hour(ts: np.ndarray, values: np.ndarray, day: int) -> tuple[np.ndarray, np.ndarray]:
    """Three hours of the trough of day `day` at the crest's level: every value is within
    the range of the series, but wrong for its hour."""
    start = np.searchsorted(ts, ts[0] + day * 86400 + 0.65 * 86400)
    span = np.arange(start, start + 36)
    odd = values.copy()
    odd[span] = 108 + np.random.default_rng(7).normal(0, 0.5, len(span))
    assert odd[span].max() < values.max()  # normal in level
    return odd, span


@pytest.mark.parametrize("burst_interval", [None, 10.0, 1.0])
def test_a_value_wrong_for_its_hour_is_flagged_after_a_burst_at_the_start(burst_interval):
    # 10 s gives 8,640 points a day from the first 50 timestamps; 1 s, 86,400: beyond the
    # season's limit, which used to switch the seasonal part off for good.
    ts = stamps(8 * DAY, burst_interval)
    values = daily(ts, seed=1)
    odd, span = with_wrong_hour(ts, values, day=6)
    result = StatisticalAnomalyDetector().detect_batch("s", odd, ts)
    assert result.is_anomaly[span[0] : span[-1] + 30].any()
    clean = StatisticalAnomalyDetector().detect_batch("s", values, ts)
    assert result.scores[span].max() > 0.8 > clean.scores[span].max()
    assert not result.is_anomaly[3 * DAY : span[0]].any()


def test_a_weekly_season_is_found_after_a_burst_at_the_start():
    # The first 50 points 10 s apart gave 8,640 points a day, too many to keep a week of:
    # the weekly reference never came. Now the period follows the five-minute sampling.
    n = 42 * DAY
    ts = stamps(n, 10.0)
    t = (ts - ts[0]) / 300.0
    cycle = np.sin(2 * np.pi * t / DAY)
    weekday = 100 + 10 * cycle
    weekend = (t // DAY) % 7 >= 5
    values = np.where(weekend, 100 + 2 * cycle, weekday) + np.random.default_rng(0).normal(0, 0.5, n)
    saturday = np.searchsorted(t, 33 * DAY)
    span = np.arange(saturday + 36, saturday + 108)
    odd = values.copy()
    odd[span] = weekday[span] + np.random.default_rng(99).normal(0, 0.5, len(span))
    result = StatisticalAnomalyDetector().detect_batch("s", odd, ts)
    assert result.is_anomaly[span[0] : span[-1] + 30].any()
    assert not result.is_anomaly[19 * DAY : span[0]].any()


def test_a_sampling_change_later_moves_the_period():
    # A week at five minutes, then one-minute sampling: the day stays a day.
    gaps = np.concatenate([np.full(7 * DAY, 300.0), np.full(4 * 5 * DAY, 60.0)])
    ts = 1.7e9 + np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    values = daily(ts, seed=3)
    odd, span = with_wrong_hour(ts, values, day=10)
    result = StatisticalAnomalyDetector().detect_batch("s", odd, ts)
    assert result.is_anomaly[span[0] : span[-1] + 150].any()
    assert not result.is_anomaly[np.searchsorted(ts, ts[0] + 9 * 86400) : span[0]].any()


@pytest.mark.parametrize("cut", [BURST + 30, BURST + 64 + 17, 3 * DAY + 5])
def test_a_snapshot_mid_series_resumes_as_an_uninterrupted_run(cut):
    ts = stamps(6 * DAY, 10.0)
    values, _ = with_wrong_hour(ts, daily(ts, seed=2), day=4)
    whole = StatisticalAnomalyDetector().detect_batch("s", values, ts)
    first = StatisticalAnomalyDetector()
    first.detect_batch("s", values[:cut], ts[:cut])
    again = StatisticalAnomalyDetector.from_bytes(first.to_bytes())
    rest = again.detect_batch("s", values[cut:], ts[cut:])
    np.testing.assert_array_equal(rest.scores, whole.scores[cut:])
    np.testing.assert_array_equal(rest.is_anomaly, whole.is_anomaly[cut:])
