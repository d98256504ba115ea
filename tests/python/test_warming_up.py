"""``warming_up`` on results: the detector had learned too few points of the sensor (fewer than
``min_samples``; for the ensemble, fewer than its 300 learning points, and on series sampled faster
than every five minutes, until its likelihoods went live: 750 points at one minute)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from anomaly_detection import Settings, StatisticalAnomalyDetector


def _values(n: int, seed: int = 0) -> np.ndarray:
    return 20.0 + np.random.default_rng(seed).normal(size=n)


@pytest.mark.parametrize("method", ["zscore", "mad", "ewma"])
def test_points_warm_up_until_min_samples(method):
    det = StatisticalAnomalyDetector(detection_method=method, window_size=20, min_samples=8)
    flags = [det.detect("s", float(v), timestamp=float(i)).warming_up for i, v in enumerate(_values(12))]
    assert flags == [True] * 8 + [False] * 4
    det.reset("s")
    assert det.detect("s", 20.0, timestamp=100.0).warming_up is True


def test_the_ensemble_warms_up_for_300_points_beyond_its_window():
    det = StatisticalAnomalyDetector(detection_method="ensemble", window_size=50)
    flags = [det.detect("s", float(v), timestamp=300.0 * i).warming_up for i, v in enumerate(_values(320))]
    assert flags == [True] * 300 + [False] * 20
    det.reset("s")
    assert det.detect("s", 20.0, timestamp=1e6).warming_up is True


def _daily(n: int, step: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    ts = step * np.arange(n)
    return 20.0 + 3.0 * np.sin(2 * np.pi * ts / 86_400) + 0.2 * np.random.default_rng(seed).normal(size=n), ts


@pytest.mark.parametrize(("step", "learn"), [(300.0, 300), (60.0, 750), (30.0, 1500)])
def test_the_ensemble_warms_up_until_its_likelihoods_score(step, learn):
    # At one minute the likelihoods score from the 750th point on (150 x 1440 / 288): before it
    # only clear outliers are scored, so a point is still warming up (on main: not after 300).
    values, ts = _daily(learn + 40, step)
    det = StatisticalAnomalyDetector(detection_method="ensemble", window_size=50)
    flags = [det.detect("s", float(v), timestamp=float(t)).warming_up for v, t in zip(values, ts)]
    assert flags == [True] * learn + [False] * 40
    batch_det = StatisticalAnomalyDetector(detection_method="ensemble", window_size=50)
    cuts = [7, len(values) // 2]
    parts = [batch_det.detect_batch("s", v, t) for v, t in zip(np.split(values, cuts), np.split(ts, cuts))]
    assert np.concatenate([p.warming_up for p in parts]).tolist() == flags


def test_stats_say_whether_the_next_point_warms_up():
    values, ts = _daily(800, 60.0)
    det = StatisticalAnomalyDetector(detection_method="ensemble")
    det.detect_batch("s", values[:400], ts[:400])
    assert det.stats("s")["warming_up"] is True  # 400 points at one minute: on main, False
    det.detect_batch("s", values[400:750], ts[400:750])
    # STATS
    det.detect_batch("s", values[750:], ts[750:])
    assert det.stats("s")["warming_up"] is False
    z = StatisticalAnomalyDetector(detection_method="zscore", min_samples=5)
    z.detect_batch("s", values[:4], ts[:4])
    assert z.stats("s")["warming_up"] is True
    z.detect("s", 20.0, timestamp=1e6)
    assert z.stats("s")["warming_up"] is False


@pytest.mark.parametrize(("method", "learn"), [("zscore", 10), ("ensemble", 300)])
def test_batch_equals_the_loop(method, learn):
    values = _values(400, seed=1)
    ts = 300.0 * np.arange(400)
    batch_det = StatisticalAnomalyDetector(detection_method=method, min_samples=10)
    first = batch_det.detect_batch("s", values[:150], ts[:150])
    second = batch_det.detect_batch("s", values[150:], ts[150:])
    warming = np.concatenate([first.warming_up, second.warming_up])
    loop_det = StatisticalAnomalyDetector(detection_method=method, min_samples=10)
    loop = [loop_det.detect("s", float(v), float(t)).warming_up for v, t in zip(values, ts)]
    assert warming.tolist() == loop
    assert int(warming.sum()) == learn
    assert second[0].warming_up is bool(second.warming_up[0])
    assert first.to_dict()["warming_up"] == first.warming_up.tolist()


def test_missing_values_do_not_count_as_learned():
    det = StatisticalAnomalyDetector(Settings(detection_method="zscore", min_samples=3, missing="skip"))
    batch = det.detect_batch("s", [1.0, None, 2.0, np.nan, 3.0, 4.0], timestamps=range(6))
    assert batch.warming_up.tolist() == [True, True, True, True, True, False]
    assert det.detect("s", None, timestamp=7).warming_up is False
    assert StatisticalAnomalyDetector(Settings(missing="skip")).detect("t", None).warming_up is True


def test_to_dict_carries_warming_up():
    det = StatisticalAnomalyDetector(detection_method="zscore", min_samples=2)
    assert det.detect("s", 1.0, timestamp=0).to_dict()["warming_up"] is True


@pytest.mark.parametrize(("method", "learn"), [("zscore", 5), ("ensemble", 300)])
def test_on_redis_too(redis_client, method, learn):
    det = StatisticalAnomalyDetector(redis_client=redis_client, detection_method=method, min_samples=5)
    batch = det.detect_batch("r", _values(302, seed=2), 300.0 * np.arange(302))
    assert int(batch.warming_up.sum()) == learn
    assert batch.warming_up[:learn].all()
    assert det.detect("r", 20.0, timestamp=300.0 * 302).warming_up is False


def _ensemble(client) -> StatisticalAnomalyDetector:
    return StatisticalAnomalyDetector(redis_client=client, detection_method="ensemble", redis_alerts=False)


def test_one_minute_on_redis_from_every_process(redis_client):
    # The process that scored reads its own cached state (no I/O); another process reads the
    # counters and the checkpoint (replayed over the window while not live).
    values, ts = _daily(800, 60.0)
    det = _ensemble(redis_client)
    other = _ensemble(redis_client)
    flags = []
    for v, t in zip(np.split(values, [5, 300, 420, 700]), np.split(ts, [5, 300, 420, 700])):
        flags += det.detect_batch("r", v, t).warming_up.tolist()
        assert other.stats("r")["warming_up"] is det.stats("r")["warming_up"]
    assert flags == [True] * 750 + [False] * 50
    assert det.stats("r")["warming_up"] is False
    # a sensor in the middle of its one-minute warm-up, read by a process that never scored it
    det.detect_batch("q", values[:400], ts[:400])
    assert _ensemble(redis_client).stats("q")["warming_up"] is True
    # single points through a second process: it goes on from the checkpoint, live at 750
    third = _ensemble(redis_client)
    more = [
        third.detect("q", float(v), timestamp=float(t)).warming_up for v, t in zip(values[400:], ts[400:])
    ]
    assert more == [True] * 350 + [False] * 50


def test_another_process_reads_the_checkpoint_and_the_points_after_it(redis_client):
    # Single points: the checkpoint trails the count by up to half a window; a process that never
    # scored the sensor replays the points after it (only those are read) to tell where it stands.
    values, ts = _daily(800, 60.0)
    det = _ensemble(redis_client)
    reader = _ensemble(redis_client)
    det.detect_batch("r", values[:30], ts[:30])
    assert reader.stats("r")["warming_up"] is True  # no checkpoint yet: rebuilt from the window
    det.detect_batch("r", values[30:700], ts[30:700])
    seen = []
    for v, t in zip(values[700:], ts[700:]):
        seen.append(det.detect("r", float(v), timestamp=float(t)).warming_up)
        assert reader.stats("r")["warming_up"] is det.stats("r")["warming_up"]
    assert seen == [True] * 50 + [False] * 50
    ckpt = int(redis_client.hget("anomaly:temp:data:r:state", "seen"))
    assert 0 < 800 - ckpt <= 50  # the reader's last reads did replay points after the checkpoint


def test_one_minute_on_an_asyncio_client(redis_server):
    import redis.asyncio

    values, ts = _daily(780, 60.0)

    async def run() -> tuple[list[bool], list[bool]]:
        client = redis.asyncio.Redis(host="127.0.0.1", port=redis_server.port)
        try:
            await client.flushall()
            det = _ensemble(client)
            flags = [
                (await det.adetect("a", float(v), timestamp=float(t))).warming_up for v, t in zip(values, ts)
            ]
            parts = [
                await det.adetect_batch("b", v, t)
                for v, t in zip(np.split(values, [50, 500]), np.split(ts, [50, 500]))
            ]
            return flags, np.concatenate([p.warming_up for p in parts]).tolist()
        finally:
            await client.aclose()

    flags, batched = asyncio.run(run())
    assert flags == [True] * 750 + [False] * 30  # on main: the window's fill (100 points)
    assert batched == flags


@pytest.mark.parametrize("method", ["zscore", "ewma", "cusum", "mad", "iqr"])
@pytest.mark.parametrize("include_anomalies", [True, False])
def test_batch_warm_up_is_the_counts_below_min_samples(method, include_anomalies):
    # detect_batch finds the warm-up as a prefix (the counts never fall within a batch):
    # the same as comparing every count, in batches that start cold, mid warm-up and warm,
    # with spikes that an excluding window leaves out (its count then stands still).
    values = _values(300, seed=2)
    values[[3, 5, 6, 40, 41]] += 30.0
    det = StatisticalAnomalyDetector(
        detection_method=method, window_size=16, min_samples=12, include_anomalies_in_window=include_anomalies
    )
    for part in np.split(values, [7, 9, 60]):
        batch = det.detect_batch("s", part, np.arange(len(part), dtype=float))
        assert batch.warming_up.dtype == bool
        assert batch.warming_up.tolist() == (batch.window_counts < 12).tolist()
        assert np.all(np.diff(batch.window_counts.astype(np.int64)) >= 0)


def test_a_sensor_reset_by_another_process_warms_up_again(redis_client):
    # The facade remembers sensors past their warm-up; a sensor another process reset (or whose
    # keys expired) starts afresh and must warm up again (on main: warming_up stayed False).
    values, ts = _daily(320, 300.0)
    det = _ensemble(redis_client)
    assert det.detect_batch("s", values[:310], ts[:310]).warming_up.sum() == 300
    assert det.detect("s", float(values[310]), timestamp=float(ts[310])).warming_up is False
    assert _ensemble(redis_client).reset("s")
    assert det.detect("s", float(values[311]), timestamp=float(ts[311])).warming_up is True
    assert det.detect_batch("s", values[312:], ts[312:]).warming_up.all()


def test_an_expired_embedded_sensor_warms_up_again_and_the_memory_is_bounded():
    values, ts = _daily(320, 300.0)
    det = StatisticalAnomalyDetector(detection_method="ensemble")
    det.LEARNED_KEPT = 3
    det.detect_batch("s", values[:310], ts[:310])
    assert det.detect("s", float(values[310]), timestamp=float(ts[310])).warming_up is False
    det.store.registry.reset("s")  # what the store's TTL does to an idle sensor
    assert det.detect("s", float(values[311]), timestamp=float(ts[311])).warming_up is True
    for name in ("a", "b", "c", "d"):
        det.detect_batch(name, values[:302], ts[:302])
        assert len(det._learned) <= 3


@pytest.mark.parametrize("method", ["ensemble", "zscore"])
def test_the_warm_up_reads_no_window(redis_client, monkeypatch, method):
    # warming_up used to call the store's summary (the whole window's LRANGE and JSON) after every
    # ensemble call until the sensor was past its warm-up, and for every skipped missing value.
    det = StatisticalAnomalyDetector(
        redis_client=redis_client, detection_method=method, missing="skip", redis_alerts=False
    )
    values, ts = _daily(60, 60.0)
    det.detect_batch("s", values[:30], ts[:30])

    def refused(*args, **kwargs):
        raise AssertionError("the warm-up read the window")

    monkeypatch.setattr(det.store.client, "lrange", refused)
    flags = [det.detect("s", float(v), timestamp=float(t)).warming_up for v, t in zip(values[30:], ts[30:])]
    flags += det.detect_batch("s", [1.0, None, 2.0], ts[-1] + 60.0 * np.arange(1, 4)).warming_up.tolist()
    flags.append(det.detect("s", None, timestamp=ts[-1] + 300.0).warming_up)
    assert flags == [method == "ensemble"] * 34


@pytest.mark.parametrize(
    ("window", "step", "learned", "refill"), [(100, 300.0, 310, 150), (1000, 60.0, 800, 400)]
)
def test_a_sensor_refilled_by_another_process_warms_up_again(redis_client, window, step, learned, refill):
    # The memory of learned sensors is trusted while a point's window is as full as a learned
    # sensor's. The default window of 100 is smaller than the ensemble's 300 learning points, and
    # at one minute a window of 1,000 holds 400 points long before the likelihoods' 750: a sensor
    # another process reset and refilled has a full window, but is warming up (on main: False).
    values, ts = _daily(learned + refill + 20, step)
    det, other = (
        StatisticalAnomalyDetector(
            redis_client=redis_client, detection_method="ensemble", redis_alerts=False, window_size=window
        )
        for _ in range(2)
    )
    det.detect_batch("s", values[:learned], ts[:learned])
    assert det.detect("s", float(values[learned]), timestamp=float(ts[learned])).warming_up is False
    assert other.reset("s")
    cut = learned + 1 + refill
    other.detect_batch("s", values[learned + 1 : cut], ts[learned + 1 : cut])
    assert other.stats("s")["warming_up"] is True
    assert det.detect("s", float(values[cut]), timestamp=float(ts[cut])).warming_up is True
    assert det.detect_batch("s", values[cut + 1 :], ts[cut + 1 :]).warming_up.all()


def test_stats_of_a_process_that_scored_follow_what_others_wrote_since(redis_client):
    # stats() reads the counters from Redis; its warming_up came from this process's cached state
    # after its last call, stale once another process reset the sensor or went on with it (on
    # main: points_seen 150 beside warming_up False, and 500 beside True).
    values, ts = _daily(1000, 60.0)
    det, other = _ensemble(redis_client), _ensemble(redis_client)
    det.detect_batch("s", values[:800], ts[:800])
    assert det.stats("s")["warming_up"] is False
    assert other.reset("s")
    other.detect_batch("s", values[:150], ts[:150])
    stats = det.stats("s")
    assert (stats["points_seen"], stats["warming_up"]) == (150, True)
    det.detect_batch("t", values[:100], ts[:100])
    assert det.stats("t")["warming_up"] is True
    other.detect_batch("t", values[100:800], ts[100:800])
    stats = det.stats("t")
    assert (stats["points_seen"], stats["warming_up"]) == (800, False)
    assert det.detect("t", float(values[800]), timestamp=float(ts[800])).warming_up is False


def test_stats_of_the_process_that_scored_restore_no_checkpoint_when_nobody_wrote(redis_client, monkeypatch):
    # The fresh read compares this process's cached state with the counters (epoch and count): when
    # nobody wrote since, the cached state answers (a checkpoint's restore is ~0.4 ms).
    values, ts = _daily(800, 60.0)
    det = _ensemble(redis_client)
    det.detect_batch("s", values[:700], ts[:700])
    for v, t in zip(values[700:760], ts[700:760]):
        det.detect("s", float(v), timestamp=float(t))

    def refused(*args, **kwargs):
        raise AssertionError("a checkpoint was restored")

    monkeypatch.setattr(det.store.checkpoints, "restored", refused)
    assert det.stats("s")["warming_up"] is False
