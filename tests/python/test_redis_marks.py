"""The writers' exactly-once marks in a sensor's counters hash (``w:<writer id>``, ``a:<writer id>``)
stay bounded: a service whose workers restart (new writer ids) must not grow every sensor's hash
forever. Marks carry the generation they were written in; a new writer begins the next generation
once the current one is ``scripts.MARK_HORIZON`` old and drops the marks two generations old
(``scripts._MARKS``). Time is moved on by rewinding the start of the current generation in the
hash (the field ``marks``), on a real redis-server."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_detection import Settings, StatisticalAnomalyDetector
from anomaly_detection.redis import AnomalyRedisKeys, scripts
from anomaly_detection.redis.codec import encode_append

COUNTERS = AnomalyRedisKeys().counters("s")


def _settings(**overrides) -> Settings:
    base = {"detection_method": "zscore", "window_size": 5, "min_samples": 3, "redis_alerts": False}
    return Settings(**{**base, **overrides})


def _marks(client) -> dict[bytes, bytes]:
    return {f: v for f, v in client.hgetall(COUNTERS).items() if f[:2] in (b"w:", b"a:")}


def _horizon_passes(client) -> None:
    """The current generation of the marks began MARK_HORIZON (and a second) ago."""
    gen = client.hget(COUNTERS, "marks")
    number = int(gen.split(b":")[0]) if gen is not None else 0
    now = int(client.time()[0])
    client.hset(COUNTERS, "marks", f"{number}:{now - scripts.MARK_HORIZON - 1}")


def _writer_appends(det: StatisticalAnomalyDetector, start: float) -> bool:
    """One writer (a worker process) appends single points, a spike (with z-score an anomaly,
    counted through COUNT_ONCE: an 'a:' mark) and a batch; whether the spike was flagged."""
    for i in range(6):
        det.detect("s", 20.0 + 0.1 * (i % 2), timestamp=start + i)
    flagged = det.detect("s", 500.0, timestamp=start + 6).is_anomaly
    det.detect_batch("s", np.full(3, 20.0), start + 7 + np.arange(3.0))
    return flagged


@pytest.mark.parametrize("method", ["zscore", "ensemble"])
def test_writers_that_come_and_go_leave_a_bounded_counters_hash(redis_client, method):
    # Waves of workers restarting: each wave's writers append, then a horizon passes. Without a
    # bound every writer leaves two fields behind for good (on main: 2 x 60 marks after 6 waves).
    wave, waves = 10, 6
    start = 0.0
    sizes = []
    flagged = 0
    for _ in range(waves):
        for _ in range(wave):
            det = StatisticalAnomalyDetector(_settings(detection_method=method), redis_client=redis_client)
            flagged += _writer_appends(det, start)
            det.store.close()
            start += 10.0
        sizes.append(len(_marks(redis_client)))
        _horizon_passes(redis_client)
    # at most the marks of two generations (this wave's and the previous one's): w: and a: each
    assert max(sizes) <= 2 * 2 * wave, sizes
    assert sizes[-1] <= 2 * 2 * wave
    # the counters themselves are intact
    assert int(redis_client.hget(COUNTERS, "seen")) == waves * wave * 10
    assert int(redis_client.hget(COUNTERS, "anomalies") or 0) == flagged
    if method == "zscore":
        assert flagged == waves * wave


def _append(client, script, writer: str, seq: int, values: np.ndarray) -> list:
    keys = AnomalyRedisKeys()
    arg = encode_append(20, 3600, len(values), writer, seq, True, values, np.arange(float(len(values))))
    return script(keys=[keys.window("s"), keys.counters("s"), keys.mirror("s")], args=[arg])


def test_a_retry_within_the_horizon_is_still_refused_and_a_live_writer_keeps_its_mark(redis_client):
    script = redis_client.register_script(scripts.APPEND)
    window = AnomalyRedisKeys().window("s")
    _append(redis_client, script, "retrying", 1, np.array([1.0, 2.0]))
    _append(redis_client, script, "alive", 1, np.array([3.0]))
    # a horizon passes, a new writer begins the next generation: the older marks stay one more
    _horizon_passes(redis_client)
    _append(redis_client, script, "new-1", 1, np.array([4.0]))
    assert redis_client.hexists(COUNTERS, "w:retrying")
    reply = _append(redis_client, script, "retrying", 1, np.array([1.0, 2.0]))  # its reply was lost
    assert int(reply[2]) == 1  # a repeat: stored nothing
    assert redis_client.llen(window) == 4
    # the live writer appends in this generation: its mark moves with it
    _append(redis_client, script, "alive", 2, np.array([5.0]))
    _horizon_passes(redis_client)
    _append(redis_client, script, "new-2", 1, np.array([6.0]))
    assert redis_client.hexists(COUNTERS, "w:alive")
    assert int(_append(redis_client, script, "alive", 2, np.array([5.0]))[2]) == 1
    # the writer silent for two generations (a horizon at least) is gone: the documented limit
    assert not redis_client.hexists(COUNTERS, "w:retrying")
    assert redis_client.llen(window) == 6
    assert int(redis_client.hget(COUNTERS, "seen")) == 6


def test_marks_written_without_a_generation_still_read(redis_client):
    # An earlier version's marks: 'w:<id>' = '<seq>:<seen before>', 'a:<id>' = '<seq>'.
    script = redis_client.register_script(scripts.APPEND)
    count = redis_client.register_script(scripts.COUNT_ONCE)
    window = AnomalyRedisKeys().window("s")
    _append(redis_client, script, "before", 1, np.array([1.0, 2.0, 3.0]))
    redis_client.hdel(COUNTERS, "marks")
    redis_client.hset(COUNTERS, mapping={"w:old": "7:3", "a:old": "7"})
    redis_client.rpush(window, '{"value":4.0,"timestamp":3.0}')  # what the old writer's append 7 stored
    redis_client.hset(COUNTERS, "seen", 4)
    reply = _append(redis_client, script, "old", 7, np.array([4.0]))
    assert int(reply[2]) == 1  # its retry stores nothing
    assert int(reply[0]) == 3  # answered as the first time: 3 points before it
    assert count(keys=[COUNTERS], args=["old", 7, 1, 3600]) == 0  # counted already
    assert redis_client.llen(window) == 4
    # its next append is stored, with a generation now
    assert int(_append(redis_client, script, "old", 8, np.array([5.0]))[2]) == 0
    assert redis_client.llen(window) == 5
    assert redis_client.hget(COUNTERS, "w:old").count(b":") == 2
    assert count(keys=[COUNTERS], args=["old", 8, 1, 3600]) == 1
    assert redis_client.hget(COUNTERS, "a:old").count(b":") == 1
    assert int(redis_client.hget(COUNTERS, "anomalies")) == 1
    # marks of the earlier version that nobody rewrites are generation 0: dropped two generations on
    redis_client.hset(COUNTERS, mapping={"w:gone": "3:1", "a:gone": "3"})
    _append(redis_client, script, "new-0", 1, np.array([6.0]))  # a new writer: the first generation
    assert redis_client.hget(COUNTERS, "marks").startswith(b"0:")
    _horizon_passes(redis_client)
    _append(redis_client, script, "new-1", 1, np.array([7.0]))
    assert redis_client.hexists(COUNTERS, "w:gone")  # one generation on: kept
    _horizon_passes(redis_client)
    _append(redis_client, script, "new-2", 1, np.array([8.0]))
    assert not redis_client.hexists(COUNTERS, "w:gone")
    assert not redis_client.hexists(COUNTERS, "a:gone")


def test_a_writer_stalled_across_a_new_generation_writes_back_once():
    # Writer A's append times out in a stall (DEBUG SLEEP 3 s, socket timeout 0.5 s) and runs when
    # the server wakes: A scores on its fallback and buffers the point, its write-back due at the next
    # probe. Meanwhile a horizon passes and a new writer begins the next generation: A's mark is one
    # generation old and stays, so the write-back of the stalled append is a repeat, stored once.
    import threading
    import time

    from servers import RedisServer

    from anomaly_detection.redis.client import redis_client_from_settings

    server = RedisServer("--enable-debug-command", "yes").start()
    try:
        settings = _settings(
            window_size=100, redis_url=server.url, redis_socket_timeout=0.5, redis_probe_interval=12.0
        )
        client = redis_client_from_settings(settings)  # redis-py's retries off: the store's write-back
        admin = server.client()
        a = StatisticalAnomalyDetector(settings, redis_client=client)
        for i in range(10):
            a.detect("s", 20.0 + 0.1 * (i % 2), timestamp=float(i))
        stall = threading.Thread(target=admin.execute_command, args=("DEBUG", "SLEEP", "3"))
        stall.start()
        time.sleep(0.3)  # the sleep has begun, with margins for a loaded machine
        a.detect("s", 20.0, timestamp=10.0)  # times out; runs when the server wakes
        assert a.health()["degraded"]
        a.detect("s", 20.1, timestamp=11.0)  # buffered behind it
        stall.join()
        # The stalled append runs as the server wakes: on a loaded machine the server may take
        # this LLEN first (both in one read of its event loop), so wait for it, well before the probe.
        deadline = time.monotonic() + 5
        while admin.llen(AnomalyRedisKeys().window("s")) != 11:
            assert time.monotonic() < deadline, "the stalled append did not run"
            time.sleep(0.02)
        _horizon_passes(admin)
        b = StatisticalAnomalyDetector(_settings(window_size=100), redis_client=admin)
        b.detect("s", 20.0, timestamp=12.0)  # a new writer: the next generation
        assert admin.hget(COUNTERS, "marks").startswith(b"1:")
        assert admin.hexists(COUNTERS, f"w:{a.store.writer_id}")
        assert a.health()["degraded"], "the write-back must come after the new generation"
        deadline = time.monotonic() + 30
        while a.health()["degraded"]:
            assert time.monotonic() < deadline, "the probe did not write the buffer back"
            time.sleep(0.05)
        stamps = a.get_window("s").timestamps.tolist()
        assert sorted(stamps) == [float(i) for i in range(13)]  # each point once
        assert int(admin.hget(COUNTERS, "seen")) == 13
        a.store.close()
    finally:
        server.stop()


def test_a_server_clock_gone_back_does_not_hold_the_generation_for_the_skew(redis_client):
    # A generation begun by a clock ahead (a server restored on another host, a clock stepped
    # back): its start is in the server's future, so 'now - since < horizon' held until the clock
    # caught up and no marks were dropped for as long as the skew (ten horizons here). The next
    # new writer takes the start back to now (same generation: nothing dropped early).
    script = redis_client.register_script(scripts.APPEND)
    _append(redis_client, script, "first", 1, np.array([1.0]))
    now = int(redis_client.time()[0])
    redis_client.hset(COUNTERS, "marks", f"3:{now + 10 * scripts.MARK_HORIZON}")
    _append(redis_client, script, "second", 1, np.array([2.0]))
    number, since = (int(x) for x in redis_client.hget(COUNTERS, "marks").split(b":"))
    assert number == 3
    assert since <= int(redis_client.time()[0])
    assert redis_client.hexists(COUNTERS, "w:first")
