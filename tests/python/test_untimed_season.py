"""Points without timestamps (a batch stamped "now" throughout: every interval 0) get a season
from their values: the ensemble estimates the period from their autocorrelation and spaces
them a day / that period apart (docs/ensemble.md, "Points without timestamps")."""

from __future__ import annotations

import numpy as np

from anomaly_detection import Settings, StatisticalAnomalyDetector

DAY = 288  # points a day at five minutes
START = 1.7e9


def _sine_with_a_contextual_anomaly(seed: int = 0) -> tuple[np.ndarray, slice]:
    """Ten days of a daily sine with noise; on day 8 one crest is turned into a trough: the
    values stay within the range, their steps keep their size, only the season is wrong."""
    rng = np.random.default_rng(seed)
    n = 10 * DAY
    t = np.arange(n)
    values = 50.0 + 10.0 * np.sin(2 * np.pi * t / DAY) + rng.normal(0.0, 0.3, n)
    crest = slice(8 * DAY, 8 * DAY + DAY // 2)  # sin > 0 over the first half-day
    values[crest] = 50.0 - 10.0 * np.sin(2 * np.pi * t[crest] / DAY) + rng.normal(0.0, 0.3, DAY // 2)
    return values, crest


def _sine_inverted_smoothly(seed: int = 0) -> tuple[np.ndarray, slice]:
    """Ten days of a daily sine with noise; on day 8 the wave turns upside down and back
    smoothly (its amplitude follows 1 - 2 sin^2 over the day: the crest becomes a trough with
    no kink), so no value leaves the range, no step changes size and the local shape stays a
    smooth wave (the local-forecast residual sees a crest flipped at once): only the season is
    wrong."""
    rng = np.random.default_rng(seed)
    n = 10 * DAY
    t = np.arange(n)
    envelope = np.ones(n)
    day = slice(8 * DAY, 9 * DAY)
    envelope[day] = 1.0 - 2.0 * np.sin(np.pi * (t[day] - 8 * DAY) / DAY) ** 2
    values = 50.0 + 10.0 * np.sin(2 * np.pi * t / DAY) * envelope + rng.normal(0.0, 0.3, n)
    return values, day


def _share_of_normal_points_at_least(scores: np.ndarray, span: slice) -> float:
    """The share of the points after the first four days, away from `span`, that score at
    least the span's highest score (0: the anomaly ranks above every normal point)."""
    normal = np.ones(len(scores), dtype=bool)
    normal[: 4 * DAY] = False
    normal[span.start - 20 : span.stop + DAY // 2] = False
    return float(np.mean(scores[normal] >= scores[span].max()))


def test_a_sine_without_timestamps_gets_its_season() -> None:
    values, crest = _sine_inverted_smoothly()
    untimed = StatisticalAnomalyDetector().detect_batch("s", values).scores
    timed = (
        StatisticalAnomalyDetector().detect_batch("s", values, START + 300.0 * np.arange(len(values))).scores
    )
    # Without a season (one second apart: 86,400 points a day, beyond the largest period) the
    # day turned upside down does not stand out: the control that the case needs a season.
    seasonless = StatisticalAnomalyDetector().detect_batch("s", values, START + np.arange(len(values))).scores
    assert _share_of_normal_points_at_least(seasonless, crest) > 0.01
    assert _share_of_normal_points_at_least(timed, crest) < 0.01
    assert _share_of_normal_points_at_least(untimed, crest) < 0.01
    assert StatisticalAnomalyDetector().detect_batch("s", values).is_anomaly[crest].any()


def test_timestamped_points_keep_their_own_season() -> None:
    # Real timestamps are used as given: shifting a series' clock changes nothing.
    values, _ = _sine_with_a_contextual_anomaly(1)
    stamps = 300.0 * np.arange(len(values))
    a = StatisticalAnomalyDetector().detect_batch("s", values, START + stamps)
    b = StatisticalAnomalyDetector().detect_batch("s", values, 1.0e9 + stamps)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.alert_scores, b.alert_scores)


def test_untimed_batch_equals_a_loop_of_detect() -> None:
    values, _ = _sine_with_a_contextual_anomaly(2)
    values = values[: 4 * DAY]
    batch = StatisticalAnomalyDetector().detect_batch("s", values)
    loop_detector = StatisticalAnomalyDetector()
    loop = [loop_detector.detect("s", float(v), timestamp=START) for v in values]
    np.testing.assert_array_equal(batch.scores, [r.score for r in loop])
    np.testing.assert_array_equal(batch.is_anomaly, [r.is_anomaly for r in loop])


def test_noise_without_timestamps_gets_no_period() -> None:
    # No cycle in the values, no period: the same scores as points one second apart (no
    # season either: 86,400 points a day is beyond the largest period).
    rng = np.random.default_rng(4)
    values = 10.0 + rng.normal(0.0, 1.0, 3000) + 0.001 * np.arange(3000)
    values[2500] += 8.0
    untimed = StatisticalAnomalyDetector().detect_batch("s", values).scores
    seasonless = StatisticalAnomalyDetector().detect_batch("s", values, START + np.arange(3000)).scores
    np.testing.assert_array_equal(untimed, seasonless)
    assert np.argmax(untimed[1000:]) + 1000 == 2500


def test_the_redis_store_gives_the_embedded_scores_without_timestamps(redis_client) -> None:
    # The estimate lives in the ensemble's checkpoint beside the window: a batch without
    # timestamps through Redis, then one more untimed batch resumed from the checkpoint
    # (stamped with the first's instant, so that it stays untimed), scores as embedded.
    values, crest = _sine_with_a_contextual_anomaly(5)
    settings = Settings(detection_method="ensemble", window_size=100, redis_alerts=False)
    shared = StatisticalAnomalyDetector(settings, redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(settings)
    cut = 2000
    a = shared.detect_batch("untimed", values[:cut], np.full(cut, START))
    b = embedded.detect_batch("untimed", values[:cut], np.full(cut, START))
    np.testing.assert_array_equal(a.scores, b.scores)
    rest = len(values) - cut
    a = shared.detect_batch("untimed", values[cut:], np.full(rest, START)).scores
    b = embedded.detect_batch("untimed", values[cut:], np.full(rest, START)).scores
    np.testing.assert_array_equal(a, b)
    span = slice(crest.start - cut, crest.stop - cut)
    assert b[span].max() > np.quantile(np.r_[b[: span.start - 20], b[span.stop + DAY // 2 :]], 0.99)


def test_untimed_batches_each_stamped_another_now_score_as_one_batch() -> None:
    # detect_batch(sensor, values) called chunk after chunk: every chunk is stamped its own
    # "now", and the season estimated from the values goes on across the chunks.
    values, _ = _sine_with_a_contextual_anomaly(3)  # ten days: the season joins after a few
    whole = StatisticalAnomalyDetector().detect_batch("s", values)
    det = StatisticalAnomalyDetector()
    parts = [det.detect_batch("s", chunk) for chunk in np.array_split(values, 9)]
    np.testing.assert_array_equal(np.concatenate([p.scores for p in parts]), whole.scores)
    np.testing.assert_array_equal(np.concatenate([p.is_anomaly for p in parts]), whole.is_anomaly)
