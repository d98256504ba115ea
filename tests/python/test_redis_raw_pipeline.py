"""Pipelines of scripts sent on a pool connection without redis-py's Pipeline (Driver._evalshas),
and the Redis store's batch path that uses them, on the real redis-server."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import redis

from anomaly_detection import Settings, StatisticalAnomalyDetector
from anomaly_detection.redis.client import redis_client_from_settings
from anomaly_detection.redis.driver import Batch, Driver, Script, command
from anomaly_detection.redis.keys import AnomalyRedisKeys

ECHO = "return {KEYS[1], ARGV[1]}"
FAIL = "return redis.error_reply('BAD ' .. ARGV[1])"


def _steps(op):
    return (yield op)


@pytest.fixture
def client(redis_server, redis_client):
    c = redis_client_from_settings(Settings(redis_url=redis_server.url))
    yield c
    c.close()


def _ops(client):
    echo, fail = client.register_script(ECHO), client.register_script(FAIL)
    return [Script(echo, ["k:1"], [b"a"]), Script(fail, ["k:2"], ["x"]), Script(echo, ["k:3"], [7])]


def _through_redis_py(client, ops):
    pipe = client.pipeline(transaction=False)
    for op in ops:
        pipe.evalsha(op.script.sha, len(op.keys), *op.keys, *op.args)
    return pipe.execute(raise_on_error=False)


def test_replies_and_error_replies_as_redis_pys_pipeline(client):
    driver = Driver(client)
    assert driver._raw_pool is client.connection_pool
    ops = _ops(client)
    for op in ops:
        client.script_load(op.script.script)
    raw = driver._evalshas(ops)
    ref = _through_redis_py(client, ops)
    assert raw[0] == ref[0] == [b"k:1", b"a"]
    assert raw[2] == ref[2] == [b"k:3", b"7"]
    assert isinstance(raw[1], redis.ResponseError)
    assert "BAD x" in str(raw[1])
    # run_many hands each steps its own reply, the error thrown into its steps
    outcomes = driver.run_many([_steps(op) for op in ops])
    assert outcomes[0] == [b"k:1", b"a"]
    assert isinstance(outcomes[1], redis.ResponseError)
    assert outcomes[2] == [b"k:3", b"7"]
    # the connection went back to the pool in sync: a plain command after it is answered
    assert client.ping() is True
    assert client.connection_pool._in_use_connections == set()


def test_a_lost_script_is_loaded_again_and_run_once(client):
    driver = Driver(client)
    ops = _ops(client)
    client.script_flush()
    outcomes = driver.run_many([_steps(op) for op in ops])  # NOSCRIPT: each sent again by the script
    assert outcomes[0] == [b"k:1", b"a"]
    assert outcomes[2] == [b"k:3", b"7"]
    # a Batch of evalsha commands raises the first error reply (NOSCRIPT for the caller to load)
    client.script_flush()
    batch = Batch(
        tuple(command("evalsha", op.script.sha, len(op.keys), *op.keys, *op.args) for op in ops), False
    )
    with pytest.raises(redis.exceptions.NoScriptError):
        driver.run(_steps(batch))
    for op in ops:
        client.script_load(op.script.script)
    with pytest.raises(redis.ResponseError, match="BAD x"):
        driver.run(_steps(batch))
    assert driver.run(_steps(Batch((batch.ops[0], batch.ops[2]), False))) == [[b"k:1", b"a"], [b"k:3", b"7"]]


def test_other_ops_and_other_clients_keep_redis_pys_pipeline(client, redis_server):
    driver = Driver(client)
    assert driver._evalshas([command("set", "k", 1)]) is None
    assert driver._evalshas([]) == []
    single = redis.Redis.from_url(redis_server.url, single_connection_client=True)
    assert Driver(single)._raw_pool is None
    single.close()


def test_a_dropped_connection_fails_the_round_and_the_next_one_reconnects(client, redis_server):
    driver = Driver(client)
    ops = _ops(client)
    for op in ops:
        client.script_load(op.script.script)
    conn = client.connection_pool.get_connection()
    client.connection_pool.release(conn)
    redis_server.client().client_kill_filter(_type="normal", skipme=True)
    # redis-py's pool notices the closed socket before lending it, or the round fails with a
    # connection error: either way the next round is answered on a fresh connection
    with contextlib.suppress(redis.ConnectionError):
        driver._evalshas(ops)
    assert driver._evalshas(ops)[0] == [b"k:1", b"a"]


def test_detect_many_on_redis_refuses_non_finite_input_and_changes_nothing(redis_client):
    det = StatisticalAnomalyDetector(Settings(detection_method="zscore", redis_alerts=False),
                                     redis_client=redis_client)  # fmt: skip
    det.detect_many({"a": np.arange(30.0), "b": np.arange(30.0)})
    keys = [k for s in ("a", "b") for k in AnomalyRedisKeys().sensor_keys(s)]
    before = {k: redis_client.dump(k) for k in keys}
    good = np.arange(3.0)
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError, match=r"values\[1\]: expected a finite number"):
            det.detect_many({"a": good, "b": np.array([1.0, bad])})
        with pytest.raises(ValueError, match="timestamps: expected finite numbers"):
            det.detect_many({"a": good, "b": good}, {"a": good, "b": np.array([1.0, bad, 3.0])})
    assert {k: redis_client.dump(k) for k in keys} == before
    assert det.stats("a")["points_seen"] == 30
