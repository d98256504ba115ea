"""The single ``detect`` on a sync Redis client: one ``EVALSHA`` with one packed argument
(``codec.encode_append``, read by ``scripts.UNPACK_APPEND``), sent without redis-py's command
machinery on a kept connection; on a real redis-server."""

from __future__ import annotations

import logging
import struct

import numpy as np
import pytest
import redis

from anomaly_detection import Settings, StatisticalAnomalyDetector
from anomaly_detection.redis import AnomalyRedisKeys, scripts
from anomaly_detection.redis.codec import decode_packed, decode_points, encode_append, encode_append_point

KEYS = AnomalyRedisKeys()

# The fields UNPACK_APPEND defines, as the server reads them.
_ECHO = (
    scripts.UNPACK_APPEND
    + "return {tostring(w), ttl, tostring(total), tostring(seq), tostring(m), want, writer, new_vs, new_ts, joined}"
)


def _settings(**kw) -> Settings:
    return Settings(
        **{"detection_method": "zscore", "window_size": 10, "min_samples": 3, "redis_alerts": False, **kw}
    )


@pytest.mark.parametrize(
    ("n", "writer", "seq", "want"),
    [
        (1, "abcdef0123456789", 1, True),
        (3, "w1", 2**40 + 7, False),
        (10, "x" * 40, 12345, True),
        (0, "", 5, True),
    ],
)
def test_the_packed_argument_reads_back_on_the_server(redis_client, n, writer, seq, want):
    rng = np.random.default_rng(n)
    values = rng.normal(0, 1e6, n).round(int(rng.integers(0, 17)))
    values[: n // 2] *= -1e-300  # subnormals and signs survive
    stamps = 1.7e9 + rng.random(n) * 1e6
    arg = encode_append(10, 3600, 25, writer, seq, want, values, stamps)
    got = redis_client.eval(_ECHO, 0, arg)
    assert got[:6] == [b"10", b"3600", b"25", str(seq).encode(), str(n).encode(), 1 if want else 0]
    assert got[6] == writer.encode()
    np.testing.assert_array_equal(decode_packed(got[7], got[8])[0], values)
    np.testing.assert_array_equal(decode_packed(got[7], got[8])[1], stamps)
    joined = got[9].split(b"\n") if n else []
    read_values, read_stamps = decode_points(joined)
    np.testing.assert_array_equal(read_values, values)
    np.testing.assert_array_equal(read_stamps, stamps)


def test_the_point_argument_is_the_general_one_of_one_point():
    for value, stamp in [(20.1, 1.7e9), (-0.0, 0.5), (1e-310, 2e9 + 1 / 3)]:
        general = encode_append(100, 60, 1, "abcd", 9, True, np.array([value]), np.array([stamp]))
        assert encode_append_point(100, 60, b"abcd", 9, value, stamp) == general


def test_a_single_detect_is_one_evalsha_and_equals_the_embedded_store(redis_client):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(_settings())
    assert det.store._point is not None  # the point path serves this client
    values = np.random.default_rng(4).normal(20, 1, 40)
    values[25] = 40.0
    for script in (scripts.APPEND, scripts.COUNT_ONCE):  # a new server lacks them: a first call loads it
        redis_client.script_load(script)
    redis_client.config_resetstat()
    for i, v in enumerate(values.tolist()):
        got, want = det.detect("s", v, timestamp=float(i)), embedded.detect("s", v, timestamp=float(i))
        assert (got.is_anomaly, got.window_count, got.warming_up) == (
            want.is_anomaly,
            want.window_count,
            want.warming_up,
        )
        np.testing.assert_allclose([got.score, got.expected], [want.score, want.expected], rtol=1e-9)
    stats = redis_client.info("commandstats")
    # one append a detect; the one anomaly counted by a second script (COUNT_ONCE)
    assert stats["cmdstat_evalsha"]["calls"] == 40 + 1
    assert stats["cmdstat_evalsha"].get("failed_calls", 0) == 0
    assert det.stats("s")["anomalies"] == 1
    assert det.stats("s")["points_seen"] == 40


def test_a_script_the_server_lost_is_loaded_again_and_the_point_stored_once(redis_client):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    det.detect("s", 1.0, timestamp=1.0)
    redis_client.script_flush()
    det.detect("s", 2.0, timestamp=2.0)
    det.detect("s", 3.0, timestamp=3.0)
    assert [p for p in det.get_window("s").values] == [1.0, 2.0, 3.0]
    assert det.stats("s")["points_seen"] == 3


def test_bad_input_on_the_point_path_changes_nothing(redis_client):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    det.detect("s", 1.0, timestamp=1.0)
    with pytest.raises(ValueError, match="finite"):
        det.detect("s", float("nan"), timestamp=2.0)
    with pytest.raises(ValueError):
        det.detect("s", 2.0, timestamp=float("inf"))
    with pytest.raises(ValueError):
        det.detect("bad name\n", 2.0, timestamp=2.0)
    assert redis_client.llen(KEYS.window("s")) == 1
    assert redis_client.hget(KEYS.counters("s"), "seen") == b"1"


def test_a_mirror_of_the_wrong_length_is_rebuilt(redis_client):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(_settings())
    for i in range(12):
        det.detect("s", float(i % 5), timestamp=float(i))
        embedded.detect("s", float(i % 5), timestamp=float(i))
    redis_client.hset(KEYS.counters("s"), "values", b"garbage")
    got, want = det.detect("s", 9.0, timestamp=12.0), embedded.detect("s", 9.0, timestamp=12.0)
    np.testing.assert_allclose(got.score, want.score, rtol=1e-9)  # answered from the JSON list
    mirror = decode_packed(*redis_client.hmget(KEYS.counters("s"), "values", "stamps"))
    np.testing.assert_array_equal(mirror[0], decode_points(redis_client.lrange(KEYS.window("s"), 0, -1))[0])


@pytest.mark.parametrize("single", [True, False])
def test_a_mirror_of_unreadable_numbers_is_dropped_and_rebuilt_not_a_crash(redis_client, caplog, single):
    det = StatisticalAnomalyDetector(_settings(), redis_client=redis_client)
    embedded = StatisticalAnomalyDetector(_settings())
    for i in range(12):
        det.detect("s", float(i % 5), timestamp=float(i))
        embedded.detect("s", float(i % 5), timestamp=float(i))
    values = bytearray(redis_client.hget(KEYS.counters("s"), "values"))
    values[8:16] = struct.pack("<d", float("nan"))  # the right length, one number not a number
    redis_client.hset(KEYS.counters("s"), "values", bytes(values))
    with caplog.at_level(logging.WARNING, logger="anomaly_detection.stores.redis"):
        if single:
            got = det.detect("s", 9.0, timestamp=12.0)
        else:
            got = det.detect_batch("s", [9.0], [12.0])[0]
    embedded.detect("s", 9.0, timestamp=12.0)
    assert "compact mirror of s" in caplog.text
    assert np.isfinite(got.score)
    assert not redis_client.hexists(KEYS.counters("s"), "values")  # dropped
    got, want = det.detect("s", 2.0, timestamp=13.0), embedded.detect("s", 2.0, timestamp=13.0)
    np.testing.assert_allclose(got.score, want.score, rtol=1e-9)  # this one from the JSON list, exact
    mirror = decode_packed(*redis_client.hmget(KEYS.counters("s"), "values", "stamps"))
    np.testing.assert_array_equal(mirror[0], decode_points(redis_client.lrange(KEYS.window("s"), 0, -1))[0])


def test_the_point_path_keeps_one_connection_and_gives_it_back_on_close(redis_server):
    client = redis_server.client()
    client.flushall()
    det = StatisticalAnomalyDetector(_settings(), redis_client=client)
    pool = client.connection_pool
    for i in range(5):
        det.detect("s", float(i), timestamp=float(i))
    assert len(pool._in_use_connections) == 1  # the point path's
    det.store.close()
    assert len(pool._in_use_connections) == 0
    det.detect("s", 5.0, timestamp=5.0)  # still served, through the pool
    assert len(pool._in_use_connections) == 0
    assert det.stats("s")["points_seen"] == 6
    client.close()


def test_a_blocking_pool_lends_its_connections_only_for_the_call(redis_server):
    pool = redis.BlockingConnectionPool(
        host="127.0.0.1", port=redis_server.port, max_connections=1, timeout=1
    )
    client = redis.Redis(connection_pool=pool)
    client.flushall()
    det = StatisticalAnomalyDetector(_settings(), redis_client=client)
    for i in range(20):  # one connection in all: a kept one would starve the anomaly counter
        det.detect("s", 100.0 if i == 15 else float(i % 3), timestamp=float(i))
    assert det.stats("s")["points_seen"] == 20
    assert det.stats("s")["anomalies"] == 1
    client.close()


def test_a_kept_connection_the_server_dropped_is_replaced_without_opening_the_breaker(
    redis_server, redis_client
):
    from anomaly_detection.redis.client import redis_client_from_settings

    settings = _settings(redis_host="127.0.0.1", redis_port=redis_server.port)
    client = redis_client_from_settings(settings)  # no retries: a dropped connection would fail the call
    det = StatisticalAnomalyDetector(settings, redis_client=client)
    for i in range(3):
        det.detect("s", float(i), timestamp=float(i))
    assert redis_client.client_kill_filter(_type="normal", skipme=True) >= 1  # the kept connection among them
    det.detect("s", 3.0, timestamp=3.0)
    assert not det.store.degraded
    assert [float(v) for v in det.get_window("s").values] == [0.0, 1.0, 2.0, 3.0]
    assert det.stats("s")["points_seen"] == 4
    det.store.close()
    client.close()


def test_threads_share_the_kept_connection_and_the_pool(redis_client):
    import threading

    det = StatisticalAnomalyDetector(_settings(window_size=1000), redis_client=redis_client)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(150):
                det.detect(f"s{t % 2}", float(t * 1000 + i), timestamp=float(i))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for s, writers in (("s0", (0, 2)), ("s1", (1, 3))):
        stored = det.get_window(s).values
        assert det.stats(s)["points_seen"] == len(stored) == 300
        for t in writers:  # each thread's points once, in its order
            mine = stored[(stored >= t * 1000) & (stored < t * 1000 + 1000)]
            np.testing.assert_array_equal(mine, t * 1000 + np.arange(150.0))
