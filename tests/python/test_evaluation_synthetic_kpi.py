"""The web-service KPI proxy: deterministic per seed, and the properties its docstring claims."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_detection.evaluation.synthetic_kpi import (
    ANOMALY_KINDS,
    PROFILES,
    make_kpi_series,
    make_kpi_suite,
)

SUITE = make_kpi_suite(30)


def test_a_seed_gives_one_series_and_another_seed_another():
    a, b = make_kpi_series(7), make_kpi_series(7)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.incidents == b.incidents
    assert a.name == b.name
    c = make_kpi_series(8)
    assert len(c.values) != len(a.values) or not np.array_equal(c.values, a.values)


@pytest.mark.parametrize("s", SUITE, ids=lambda s: s.name)
def test_each_series_has_the_claimed_shape(s):
    n = len(s.values)
    assert len(s.timestamps) == len(s.labels) == n
    assert np.isfinite(s.values).all()
    assert (s.values >= 0).all()
    steps = np.diff(s.timestamps)
    assert (steps > 0).all()
    assert np.all(steps % s.step == 0)
    days = (s.timestamps[-1] - s.timestamps[0]) / 86_400
    if s.step == 60:
        assert 20_000 * 0.97 <= n <= 30_240
        assert 13.9 < days < 22
    else:
        assert s.step == 300
        assert 12_096 * 0.97 <= n <= 18_144
        assert 41.9 < days < 64
    # anomaly rate of a few percent, none in the first two days
    assert 0.005 <= s.anomaly_rate <= 0.06
    assert s.labels[s.timestamps < s.timestamps[0] + 2 * 86_400].sum() == 0


@pytest.mark.parametrize("s", SUITE, ids=lambda s: s.name)
def test_labels_are_the_incidents_segments(s):
    rebuilt = np.zeros(len(s.labels), dtype=np.int8)
    previous_end = 0
    for start, end, kind in s.incidents:
        assert kind in ANOMALY_KINDS
        assert previous_end < start < end  # ordered, apart (an hour of normal rows between)
        rebuilt[start:end] = 1
        previous_end = end
    np.testing.assert_array_equal(rebuilt, s.labels)
    edges = np.flatnonzero(np.diff(np.r_[0, s.labels, 0]))
    assert len(edges) == 2 * len(s.incidents)  # each incident one segment


def test_the_suite_covers_both_samplings_every_profile_and_kind_and_has_gaps():
    assert {s.step for s in SUITE} == {60.0, 300.0}
    assert {s.profile for s in SUITE} == set(PROFILES)
    assert {k for s in SUITE for *_, k in s.incidents} == set(ANOMALY_KINDS)
    assert sum(np.any(np.diff(s.timestamps) > s.step) for s in SUITE) >= 25  # missing rows
    assert any(np.diff(s.timestamps).max() >= 3600 for s in SUITE)  # an hour-long gap
    assert sum(len(s.incidents) > 1 for s in SUITE) == len(SUITE)
    rates = [s.anomaly_rate for s in SUITE]
    assert 0.02 < np.mean(rates) < 0.045


def _day_earlier_correlation(s):
    where = {t: i for i, t in enumerate(s.timestamps)}
    pairs = np.array([(i, where[t - 86_400]) for i, t in enumerate(s.timestamps) if t - 86_400 in where])
    normal = (s.labels[pairs[:, 0]] == 0) & (s.labels[pairs[:, 1]] == 0)
    return np.corrcoef(s.values[pairs[normal, 0]], s.values[pairs[normal, 1]])[0, 1]


def test_cyclic_profiles_repeat_daily_and_noise_scales_with_the_level():
    cyclic = [s for s in SUITE if s.profile in ("sine", "business", "evening")]
    assert cyclic
    assert min(_day_earlier_correlation(s) for s in cyclic) > 0.6
    # multiplicative noise: the step-to-step spread is larger where the level is high
    s = next(s for s in cyclic if s.step == 60)
    normal = s.labels[1:] == 0
    step = np.abs(np.diff(s.values))[normal]
    level = s.values[1:][normal]
    high, low = level > np.quantile(level, 0.8), level < np.quantile(level, 0.2)
    assert np.median(step[high]) > 1.5 * np.median(step[low])


def test_spikes_are_relative_to_the_cycle_not_only_global_extremes():
    # many spikes stay inside the series' own normal range: only the cycle at that hour shows them
    inside = total = 0
    for s in SUITE:
        lo, hi = np.quantile(s.values[s.labels == 0], [0.005, 0.995])
        for start, end, kind in s.incidents:
            if kind == "spike":
                total += 1
                inside += bool(((s.values[start:end] > lo) & (s.values[start:end] < hi)).all())
    assert total > 50
    assert inside / total > 0.2


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        make_kpi_series(seed)
