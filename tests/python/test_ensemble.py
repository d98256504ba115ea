"""The ensemble method: NAB score, batch == loop, save/restore, warm-up, validation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomaly_detection import StatisticalAnomalyDetector
from anomaly_detection.config.settings import METHODS, Settings
from anomaly_detection.evaluation import NabCorpus, leave_one_category_out, score_all_profiles
from anomaly_detection.evaluation.cli import default_detector_factory, run_detector_on_corpus

LEARN = 300  # points the ensemble learns before its likelihoods score
# Floors, not the goal (issue 15 asks for 75 / 70): what the design reached on
# the 58 NAB files, on the whole corpus and leave-one-category-out
# (docs/evaluation.md). A change that loses ground fails here.
NAB_FLOOR = {"standard": 70.5, "reward_low_FP_rate": 58.4, "reward_low_FN_rate": 76.7}
LOCO_FLOOR = 70.0


def daily(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 10 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.5, n), t * 300.0


def ensemble(**kw) -> StatisticalAnomalyDetector:
    return StatisticalAnomalyDetector(detection_method="ensemble", **kw)


@pytest.mark.slow
def test_nab_scores_hold_on_the_whole_corpus_and_left_out(shared_data):
    corpus = NabCorpus.load(shared_data / "nab")
    assert len(corpus) == 58
    scores = run_detector_on_corpus(corpus, default_detector_factory, {"detection_method": "ensemble"})
    results = score_all_profiles(corpus, scores)
    for profile, floor in NAB_FLOOR.items():
        assert results[profile].score >= floor, profile
    assert leave_one_category_out(corpus, {"default": scores}).score >= LOCO_FLOOR


def test_a_change_of_scale_that_no_point_shows_is_flagged():
    # A noisy daily cycle (noise sd 2) turns quiet (sd 0.2): every value stays inside the
    # cycle's range and moves less than before; only the scale feature sees it.
    flagged = 0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        t = np.arange(4000)
        x = (
            50
            + 10 * np.sin(2 * np.pi * t / 288)
            + np.where(t < 3000, rng.normal(0, 2, 4000), rng.normal(0, 0.2, 4000))
        )
        flags = np.asarray(ensemble().detect_batch("s", x, 1.7e9 + 300.0 * t).is_anomaly)
        flagged += bool(flags[3000:3100].any())
    assert flagged >= 3


def test_a_notch_off_the_local_line_ranks_above_the_noise():
    # A notch of 1.5 (15 noise sd) into a cycle of amplitude 10: every value stays well inside
    # the range and near the cycle; the local-forecast residual (polyres) ranks it above every
    # noise point after the learning (before it, each of these four seeds ranked it below).
    for seed in range(4):
        rng = np.random.default_rng(seed)
        t = np.arange(3000)
        x = 10 * np.sin(2 * np.pi * t / 300) + rng.normal(0, 0.1, 3000)
        x[2000:2006] -= [0.5, 1.0, 1.5, 1.5, 1.0, 0.5]
        scores = np.asarray(ensemble().detect_batch("s", x, 1.7e9 + 60.0 * t).scores)
        assert scores[2000:2030].max() > scores[2 * LEARN : 2000].max(), seed


def test_settings_know_the_ensemble():
    assert "ensemble" in METHODS
    s = Settings(detection_method="ensemble")
    assert s.threshold == 0.5
    assert Settings(detection_method="ensemble", ensemble_threshold=0.8).threshold == 0.8
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="ensemble_threshold"):
            Settings(detection_method="ensemble", ensemble_threshold=bad)


def test_warm_up_flags_only_clear_outliers():
    values, ts = daily(LEARN)
    result = ensemble().detect_batch("s", values, ts)
    assert not result.is_anomaly.any()  # a daily wave with noise: nothing
    assert (result.scores < 0.5).all()
    values[150] = 1e6
    result = ensemble().detect_batch("s", values, ts)
    assert list(result.anomaly_indices) == [150]


@pytest.mark.parametrize("method", [None, "ensemble"])
def test_a_spike_after_a_hundred_readings_is_flagged(method):
    # 100 readings of 20 +- 0.3 and then 95.0, with default settings
    rng = np.random.default_rng(1)
    values = np.r_[20 + rng.uniform(-0.3, 0.3, 100), 95.0]
    kw = {} if method is None else {"detection_method": method}
    batch = StatisticalAnomalyDetector(**kw).detect_batch("s", values, np.arange(101.0))
    assert batch.is_anomaly[-1]
    assert batch.scores[-1] >= 0.5
    assert not batch.is_anomaly[:-1].any()
    loop = StatisticalAnomalyDetector(**kw)
    results = [loop.detect("s", float(v), timestamp=float(i)) for i, v in enumerate(values)]
    assert results[-1].is_anomaly
    assert results[-1].score == batch.scores[-1]


def test_scores_rank_and_alert_scores_raise_one_alarm_per_incident():
    values, ts = daily(3000, seed=2)
    values[2000:2040] += 30  # one incident, forty points long
    batch = ensemble().detect_batch("s", values, ts)
    assert batch.alert_scores.shape == batch.scores.shape
    own = np.minimum(batch.deviations / 10, 1.0)  # the point's own score, on the alarm scale
    assert (batch.alert_scores <= own + 1e-12).all()
    assert (batch.scores >= np.minimum(own, 0.5) - 1e-12).all()
    # the score fades after the incident: still above the clean part's for a while
    assert batch.scores[2040:2100].min() > np.quantile(batch.scores[LEARN:2000], 0.99)
    inside = batch.scores[2000:2040]
    assert inside.max() > np.quantile(batch.scores[LEARN:2000], 0.999)  # the incident ranks on top
    assert batch.is_anomaly[2000:2040].sum() == 1  # one alarm
    assert ((batch.alert_scores >= 0.5) == batch.is_anomaly).all()


def _statistic_of_score(scores: np.ndarray) -> np.ndarray:
    """The inverse of the ensemble's ``rank_score`` (linear to 5 -> 0.5, then 1 - 0.5 e^-(s-5)/5)."""
    s = np.asarray(scores, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(s <= 0.5, 10 * s, 5 - 5 * np.log(2 * (1 - s)))


def test_scores_remember_a_statistic_fading_by_one_percent_a_point():
    # issue 15: the ranking score's memory, chosen leave-one-family-out (scripts/rank_memory.py):
    # the statistic behind the score fades by 1% a point (it was 0.5%: a 24-point outage kept
    # the score >= 0.5 for 458 points), so a past incident's tail is ~ln(peak / 5) / 0.01 points
    values, ts = daily(3000, seed=4)
    values[2000:2024] = 0.0  # a 24-point outage
    batch = ensemble().detect_batch("s", values, ts)
    remembered = _statistic_of_score(batch.scores)
    own = np.asarray(batch.deviations)
    after = np.arange(2030, 2600)
    # where the point's own statistic is below the memory, the memory is the last one x 0.99
    fading = after[(own[after] < 0.99 * remembered[after - 1] - 1e-9) & (batch.scores[after - 1] < 1 - 1e-9)]
    assert len(fading) > 100
    np.testing.assert_allclose(remembered[fading], 0.99 * remembered[fading - 1], rtol=1e-9)
    # the outage ranks on top while it lasts, and its tail ends within the bound
    assert batch.scores[2000:2024].max() > np.quantile(batch.scores[LEARN:2000], 0.999)
    peak = int(np.argmax(remembered[2000:2030])) + 2000
    tail = int(np.ceil(np.log(remembered[peak] / 5) / np.log(1 / 0.99)))
    assert (batch.scores[peak + tail + 1 : peak + tail + 50] < 0.5).all()


def test_finds_a_spike_and_scores_in_unit_interval():
    values, ts = daily(3000, seed=1)
    values[2500] += 40
    result = ensemble().detect_batch("s", values, ts)
    assert result.is_anomaly[2500]
    assert result.method == "ensemble"
    assert ((result.scores >= 0) & (result.scores <= 1)).all()
    assert result.is_anomaly[:2500].sum() <= 3


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 900), spike=st.floats(-1e3, 1e3))
def test_batch_equals_loop(seed, n, spike):
    values, ts = daily(n, seed)
    values[n // 2] += spike
    batch = ensemble().detect_batch("s", values, ts)
    det = ensemble()
    loop = [det.detect("s", float(v), timestamp=float(t)) for v, t in zip(values, ts)]
    assert [r.score for r in loop] == batch.scores.tolist()
    assert [r.deviation for r in loop] == batch.deviations.tolist()
    assert [r.is_anomaly for r in loop] == batch.is_anomaly.tolist()


@pytest.mark.parametrize("cut", [10, 51, 301, 1500])
def test_save_restore_continues_identically(cut):
    values, ts = daily(2500, seed=2)
    values[2000] -= 30
    a = ensemble(ensemble_threshold=0.6)
    a.detect_batch("s", values[:cut], ts[:cut])
    b = StatisticalAnomalyDetector.from_bytes(a.to_bytes())
    c = pickle.loads(pickle.dumps(a))
    assert b.method == "ensemble"
    assert b.threshold == 0.6
    expected = a.detect_batch("s", values[cut:], ts[cut:]).scores
    np.testing.assert_array_equal(b.detect_batch("s", values[cut:], ts[cut:]).scores, expected)
    np.testing.assert_array_equal(c.detect_batch("s", values[cut:], ts[cut:]).scores, expected)


def test_corrupt_bytes_raise_value_error():
    det = ensemble()
    det.detect_batch("s", *daily(700))
    blob = det.to_bytes()
    # (the last 9 bytes flipped, not zeroed: a timed state's last ones are zeros already)
    for bad in (blob[:-1], blob[:40], blob[:-9] + bytes(b ^ 0xFF for b in blob[-9:]), b""):
        with pytest.raises(ValueError, match="corruption"):
            StatisticalAnomalyDetector.from_bytes(bad)


def test_bad_input_changes_nothing():
    det = ensemble()
    values, ts = daily(400)
    det.detect_batch("s", values, ts)
    before = det.to_bytes()
    with pytest.raises(ValueError):
        det.detect_batch("s", [1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError):
        det.detect("s", float("inf"))
    assert det.to_bytes() == before


@pytest.mark.parametrize(("scale", "offset"), [(1000.0, 0.0), (1e-3, 5.0), (1.0, -1e4)])
def test_units_and_offset_do_not_change_the_verdicts(scale, offset):
    values, ts = daily(3000, seed=3)
    values[2200:2230] += 15  # a level shift for half an hour
    values[2600] -= 25
    base = ensemble().detect_batch("s", values, ts)
    moved = ensemble().detect_batch("s", values * scale + offset, ts + 1e6)
    assert base.is_anomaly.any()
    np.testing.assert_array_equal(moved.is_anomaly, base.is_anomaly)
    np.testing.assert_allclose(moved.scores, base.scores, atol=1e-6)


def test_redis_store_equals_embedded_within_one_window(redis_client):
    # On a shared store the ensemble is rebuilt from the window at each call, so it
    # equals the embedded store while the window still holds the whole history.
    s = Settings(detection_method="ensemble", window_size=1200, min_samples=5)
    shared = StatisticalAnomalyDetector(s, redis_client=redis_client)
    local = StatisticalAnomalyDetector(s)
    values, ts = daily(1100, seed=5)
    values[1000:1010] += 15  # a level shift for 50 minutes
    for lo, hi in [(0, 400), (400, 401), (401, 1100)]:
        a = shared.detect_batch("s", values[lo:hi], ts[lo:hi])
        b = local.detect_batch("s", values[lo:hi], ts[lo:hi])
        np.testing.assert_array_equal(a.is_anomaly, b.is_anomaly)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-12)
    assert b.is_anomaly[1000 - 401 : 1010 - 401].any()


@pytest.mark.parametrize("seed", range(4))
def test_no_alarm_when_the_detectors_start(seed):
    # The seasonal detector starts a day (288 points) in, the transitions after the
    # 300 learning points: neither raises an alarm on a clean cycle.
    values, ts = daily(1500, seed=seed)
    assert not ensemble().detect_batch("s", values, ts).is_anomaly.any()


# --- the default method -----------------------------------------------------------------


def test_the_ensemble_is_the_default_and_each_method_keeps_its_own_threshold(monkeypatch):
    monkeypatch.delenv("ANOMALY_DETECTION_METHOD", raising=False)
    s = Settings()
    assert s.detection_method == "ensemble"
    assert s.threshold == s.ensemble_threshold == 0.5
    det = StatisticalAnomalyDetector()
    assert (det.method, det.threshold) == ("ensemble", 0.5)
    # Choosing z-score without a threshold gives z-score's usual 3, not the ensemble's 0.5.
    z = StatisticalAnomalyDetector(detection_method="zscore")
    assert (z.method, z.threshold) == ("zscore", 3.0)
    assert Settings(detection_method="mad").threshold == 3.5
    with pytest.raises(ValueError, match="ensemble_threshold"):
        Settings(ensemble_threshold=4.0)


def test_the_command_line_default_finds_the_example_incidents(capsys):
    from pathlib import Path

    from anomaly_detection.cli import main

    example = Path(__file__).resolve().parents[2] / "examples" / "sensors.csv"
    assert main(["detect", str(example)]) == 0
    out, err = capsys.readouterr()
    rows = [line.split(",") for line in out.splitlines()[1:]]
    flagged = {(int(r[0]), r[2]) for r in rows}
    # scripts/make_example_data.py injects a spike at row 1501, an overheating episode from
    # row 2601 (temperature) and a pressure drop from row 3501 (rows count from 1).
    assert (1501, "temperature") in flagged
    assert any(s == "temperature" and 2601 <= r <= 2661 for r, s in flagged)
    assert any(s == "pressure" and 3501 <= r <= 3511 for r, s in flagged)
    # at most two false alarms in 8,640 points: the pressure sensor's range is young in its
    # first hours, and two new extremes there are flagged (the price of scoring new extremes,
    # which carries the most weight on NAB: docs/evaluation.md)
    assert len(flagged) <= 5
    assert "(ensemble, window 100, threshold 0.5)" in err


# --- missing values (missing="skip") -----------------------------------------------------------


@pytest.mark.parametrize("method", ["ensemble", "zscore", "mad"])
def test_skipped_missing_values_change_nothing(method):
    values, ts = daily(1200, seed=4)
    values[700] += 30
    gappy = values.copy()
    holes = [5, 100, 101, 699, 701, 1199]
    gappy[holes] = np.nan
    skip = StatisticalAnomalyDetector(detection_method=method, missing="skip").detect_batch("s", gappy, ts)
    keep = np.setdiff1d(np.arange(1200), holes)
    clean = StatisticalAnomalyDetector(detection_method=method).detect_batch("s", values[keep], ts[keep])
    np.testing.assert_array_equal(skip.scores[keep], clean.scores)
    np.testing.assert_array_equal(skip.is_anomaly[keep], clean.is_anomaly)
    assert np.isnan(skip.scores[holes]).all()
    assert np.isnan(skip.alert_scores[holes]).all()
    assert not skip.is_anomaly[holes].any()
    # one point at a time, with None and NaN, gives the same
    det = StatisticalAnomalyDetector(detection_method=method, missing="skip")
    for i in range(1200):
        v = None if i == 100 else float(gappy[i])
        r = det.detect("s", v, timestamp=float(ts[i]))
        if i in holes:
            assert not r.is_anomaly
            assert np.isnan(r.score)
        else:
            assert r.score == skip.scores[i]


def test_missing_values_raise_by_default_and_change_nothing():
    det = StatisticalAnomalyDetector()
    det.detect_batch("s", [1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"values\[1\]"):
        det.detect_batch("s", [1.0, float("nan")], [3.0, 4.0])
    with pytest.raises(ValueError, match="finite"):
        det.detect("s", float("nan"))
    assert det.stats("s")["points_seen"] == 3
    # infinities are errors under "skip" too, and None in a list is missing
    skip = StatisticalAnomalyDetector(missing="skip")
    with pytest.raises(ValueError, match="finite"):
        skip.detect_batch("s", [1.0, float("inf")])
    batch = skip.detect_batch("s", [1.0, None, 3.0], [0.0, 1.0, 2.0])
    assert list(np.isnan(batch.scores)) == [False, True, False]
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    assert np.isnan(skip.detect_batch("m", masked, [0.0, 1.0, 2.0]).scores[1])
    with pytest.raises(ValueError, match="missing"):
        Settings(missing="ignore")


def test_irregular_sampling_keeps_the_daily_season():
    # a quarter of a day stuck at the mean where the cycle peaks: only the seasonal
    # detector sees it; sampled at random intervals (mean 5 minutes) with a 6-hour gap
    for seed in range(3):
        rng = np.random.default_rng(seed)
        t = np.cumsum(rng.exponential(300, 8000))
        t[3000:] += 6 * 3600
        x = 50 + 10 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 0.5, len(t))
        peak = t[5000] + (86400 / 4 - t[5000] % 86400) % 86400
        stuck = (t >= peak - 3 * 3600) & (t <= peak + 3 * 3600)
        x[stuck] = 50 + rng.normal(0, 0.5, stuck.sum())
        batch = ensemble().detect_batch("s", x, t)
        assert batch.is_anomaly[stuck].any(), seed
        assert batch.is_anomaly[~stuck].sum() <= 1, seed


def test_alert_cooldown_is_a_setting_on_alerts_not_on_scores():
    values, ts = daily(3000, seed=2)
    values[2000] += 30
    values[2050] += 35  # a second, larger spike 50 points later
    short = ensemble(alert_cooldown=10).detect_batch("s", values, ts)
    long = ensemble(alert_cooldown=300).detect_batch("s", values, ts)
    np.testing.assert_array_equal(short.scores, long.scores)  # the score ranks either way
    assert short.is_anomaly[2000]
    assert short.is_anomaly[2050]
    assert long.is_anomaly[2000]
    assert not long.is_anomaly[2050]  # inside the cooldown: no second alarm
    # kept in a snapshot, and refused out of range
    again = StatisticalAnomalyDetector.from_bytes(ensemble(alert_cooldown=7).to_bytes())
    assert again.settings.alert_cooldown == 7
    with pytest.raises(ValueError, match="alert_cooldown"):
        Settings(alert_cooldown=-1)


def test_likelihoods_wait_as_long_in_time_at_one_minute_as_at_five():
    """Issue 15 (scripts/kpi_one_minute.py): 150 points are 12.5 hours at five minutes but
    2.5 at one, where the first daily rise then scored as news. The likelihoods now wait
    12.5 hours at one minute too; five minutes and points without timestamps are unchanged."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 1400)
    x[500:530] += 0.9  # a shift inside the range: not a clear outlier
    x[1100:1130] += 0.9
    dev = {
        step: np.asarray(
            StatisticalAnomalyDetector().detect_batch("s", x, 1.7e9 + step * np.arange(len(x))).deviations
        )
        for step in (60.0, 300.0)
    }
    untimed = np.asarray(StatisticalAnomalyDetector().detect_batch("s", x).deviations)
    assert np.all(dev[60.0][300:750] == 0.0)  # at one minute: 5 to 12.5 hours in, still warming up
    assert dev[300.0][500:530].max() > 5.0  # at five minutes the early shift is found, as before
    assert untimed[500:530].max() > 5.0  # and without timestamps
    assert dev[60.0][1100:1130].max() > 5.0  # at one minute, 18 hours in: found
    assert np.any(dev[60.0][750:] > 0.0)


_LARGEST = float(np.finfo(np.float64).max)


@pytest.mark.parametrize("at", [5, 120, 320, 700])
@pytest.mark.parametrize(
    "extreme",
    [[_LARGEST], [-_LARGEST, _LARGEST], [1e308] * 3, [1e160, -1e160], [5e-324, _LARGEST]],
    ids=["largest", "both signs", "1e308 thrice", "1e160", "tiny then largest"],
)
def test_values_near_the_largest_double_leave_a_state_that_saves_and_loads(at, extreme):
    """Finite values whose squares or differences overflow (the learning, after the warm-up, the
    daily reference): the detector's snapshot loads and goes on with the scores of one that
    never stopped. Before, the moments went to inf and every snapshot was refused as corrupt
    (and on Redis each checkpoint was dropped and rebuilt: other scores than the embedded store)."""
    v = np.sin(np.arange(900) * 2 * np.pi / 288) + 0.01 * (np.arange(900) % 7)
    v[at : at + len(extreme)] = extreme
    t = 1.7e9 + 300.0 * np.arange(900)
    full = np.asarray(ensemble().detect_batch("s", v, t).scores)
    assert np.isfinite(full).all()
    for cut in (at + len(extreme), at + len(extreme) + 150):
        first = ensemble()
        head = np.asarray(first.detect_batch("s", v[:cut], t[:cut]).scores)
        restored = StatisticalAnomalyDetector.from_bytes(first.to_bytes())
        tail = np.asarray(restored.detect_batch("s", v[cut:], t[cut:]).scores)
        np.testing.assert_array_equal(np.concatenate([head, tail]), full)
