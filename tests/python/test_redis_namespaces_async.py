"""AsyncAnomalyRedisManager on a real redis-server: the twin of AnomalyRedisManager for redis.asyncio."""

from __future__ import annotations

import asyncio
import inspect

import pytest
import redis.asyncio
from test_redis_namespaces import EXPECTED_MAPPING, NEIGHBOURS, _fill_neighbours, _legacy, _snapshot

from anomaly_detection.config import Settings
from anomaly_detection.utils import AnomalyRedisManager, AnomalyRedisTTL, AsyncAnomalyRedisManager

SETTINGS = Settings(window_size=5, min_samples=2)


def run_async(redis_server, body, **client_kwargs):
    """Run ``await body(manager, client)`` on a fresh asyncio client of a flushed server."""

    async def main():
        client = redis.asyncio.Redis(host="127.0.0.1", port=redis_server.port, **client_kwargs)
        try:
            await client.flushall()
            return await body(AsyncAnomalyRedisManager(client, SETTINGS), client)
        finally:
            await client.aclose()

    return asyncio.run(main())


# Every public method, with data that gives deterministic results (heartbeat's time aside).
CALLS = [
    ("store_temp_data", ("s1", {"value": 1.5, "timestamp": 1}), {}),
    ("store_temp_data", ("s1", [{"value": i, "timestamp": i} for i in range(2, 9)]), {}),
    ("store_temp_data", ("s2", {"value": 0.5}), {"window_size": 2}),
    ("get_temp_data", ("s1",), {}),
    ("get_temp_data", ("s1", 1, 2), {}),
    ("clear_temp_data", ("s2",), {}),
    ("clear_temp_data", ("s2",), {}),
    ("store_analysis_result", ("a1", {"score": 0.5}), {}),
    ("get_analysis_result", ("a1",), {}),
    ("get_analysis_result", ("a9",), {}),
    ("store_alert", ("al1", {"sensor": "s1", "timestamp": 100.0}), {}),
    ("store_alert", ("al2", {"sensor": "s2"}), {"timestamp": 200.0}),
    ("store_alert", ("al3", {"sensor": "s3", "timestamp": 50.0}), {}),
    ("list_alerts", (), {}),
    ("list_alerts", (2,), {}),
    ("store_model", ("m1", bytes(range(256))), {}),
    ("load_model", ("m1",), {}),
    ("load_model", ("m2",), {}),
    ("set_config", ("window_size", 200), {}),
    ("get_config", ("window_size",), {}),
    ("get_config", ("missing",), {"default": "d"}),
    ("heartbeat", ("worker-1", {"pid": 42}), {}),
    ("get_system_health", (), {}),
    ("plan_legacy_migration", (), {}),
    ("migrate_legacy_keys", (), {"dry_run": True}),
    ("migrate_legacy_keys", ("anomaly_detector:*",), {}),
    ("get_temp_data", ("sensor1",), {}),
    ("purge_namespace", (), {"batch": 3}),
]


def _comparable(name, result):
    if name == "get_system_health":  # the heartbeat carries the time it was sent
        for info in result["components"].values():
            info.pop("timestamp")
    return result


def test_every_public_method_is_a_coroutine_twin():
    sync = {
        n for n, f in inspect.getmembers(AnomalyRedisManager, inspect.isfunction) if not n.startswith("_")
    }
    assert {name for name, _, _ in CALLS} == sync
    for name in sync:
        method = getattr(AsyncAnomalyRedisManager, name)
        assert inspect.iscoroutinefunction(method), name
        assert inspect.signature(method) == inspect.signature(getattr(AnomalyRedisManager, name)), name


def test_results_and_stored_data_equal_the_sync_managers(redis_server, redis_client):
    def stored(client):  # every key with its value (DUMP) and TTL, heartbeats aside (they hold the time)
        return {
            k: (client.dump(k), client.ttl(k))
            for k in sorted(client.scan_iter(match="*"))
            if not k.startswith(b"anomaly:health:")
        }

    _legacy(redis_client)
    sync_manager = AnomalyRedisManager(redis_client, SETTINGS)
    expected, expected_stored = [], None
    for name, args, kwargs in CALLS:
        if name == "purge_namespace":
            expected_stored = stored(redis_client)
        expected.append(_comparable(name, getattr(sync_manager, name)(*args, **kwargs)))

    async def body(manager, client):
        _legacy(redis_client)  # the same server, flushed by run_async
        results = []
        for name, args, kwargs in CALLS:
            if name == "purge_namespace":
                assert stored(redis_client) == expected_stored
            results.append(_comparable(name, await getattr(manager, name)(*args, **kwargs)))
        return results

    got = run_async(redis_server, body)
    for (name, _, _), mine, theirs in zip(CALLS, got, expected):
        assert mine == theirs, name
    # Spot checks that the shared results are the right ones, not merely equal.
    assert [p["value"] for p in got[3]] == [4, 5, 6, 7, 8]
    assert [a["id"] for a in got[14]] == ["al2", "al1"]
    assert got[16] == bytes(range(256))
    assert got[17] is None
    assert got[20] == "d"
    assert got[22]["components"] == {"worker-1": {"pid": 42}}
    assert got[24] == got[25] == EXPECTED_MAPPING  # dry run, then the real one
    assert [p["value"] for p in got[26]] == [1, 2]
    assert got[27] > 5
    assert expected_stored[b"anomaly:temp:data:s1:queue"][1] == AnomalyRedisTTL.TEMP_DATA
    assert not list(redis_client.scan_iter(match="anomaly:*"))


@pytest.mark.parametrize(
    ("name", "args", "match"),
    [
        ("store_analysis_result", ("a1", {"x": float("nan")}), "JSON"),
        ("set_config", ("c", {1, 2}), "JSON"),
        ("store_model", ("m", "not bytes"), "bytes"),
        ("store_temp_data", ("s1", []), "mapping"),
        ("store_temp_data", ("s1", {"value": 1}, 0), "window_size"),
        ("set_config", ("c", 1, 0), "ttl"),
        ("store_model", ("m", b"x", -5), "ttl"),
        ("list_alerts", (0,), "limit"),
        ("store_alert", ("a", {"x": 1}, float("inf")), "finite"),
        ("store_alert", ("a:b", {"x": 1}), "alert id"),
        ("store_alert", ("a", [1]), "mapping"),
        ("store_temp_data", ("s*", {"value": 1}), "sensor"),
        ("purge_namespace", (0,), "batch"),
        ("migrate_legacy_keys", ("*",), "pattern"),
        ("plan_legacy_migration", ("anomaly:*",), "pattern"),
    ],
)
def test_bad_input_raises_and_writes_nothing(redis_server, redis_client, name, args, match):
    async def body(manager, client):
        await client.set("nextauth:user:1", "u")
        with pytest.raises(ValueError, match=match):
            await getattr(manager, name)(*args)
        return [k async for k in client.scan_iter(match="*")]

    assert run_async(redis_server, body) == [b"nextauth:user:1"]


def test_corrupt_json_is_a_value_error(redis_server):
    async def body(manager, client):
        await client.set(manager.keys.config("c"), b"\xff{not json")
        with pytest.raises(ValueError, match="corruption"):
            await manager.get_config("c")

    run_async(redis_server, body)


def test_decode_responses_client_and_expired_alerts(redis_server):
    async def body(manager, client):
        blob = bytes(range(128))
        await manager.store_model("m", blob)
        assert await manager.load_model("m") == blob
        for i in range(5):
            await manager.store_alert(f"al{i}", {"n": i, "timestamp": float(i)})
        await client.delete(manager.keys.alert("al4"))
        assert [a["id"] for a in await manager.list_alerts(2)] == ["al3", "al2"]
        assert await client.zscore(manager.keys.alerts_index(), "al4") is None
        assert (await manager.get_system_health())["sensors"] == {}

    run_async(redis_server, body, decode_responses=True)


def test_purge_leaves_neighbours_untouched(redis_server, redis_client):
    async def body(manager, client):
        _fill_neighbours(redis_client)
        before = _snapshot(redis_client)
        for i in range(1200):
            await client.set(f"anomaly:cache:c:{i}", i)
        await client.set("anomaly_detector:x", 1)
        await manager.store_temp_data("temperature_sensor", {"value": 1})
        await manager.store_alert("al1", {"timestamp": 1.0})
        assert await manager.purge_namespace() == 1200 + 1 + 2
        assert [k async for k in client.scan_iter(match="anomaly:*")] == []
        assert await client.exists("anomaly_detector:x") == 1
        return before

    before = run_async(redis_server, body)
    assert _snapshot(redis_client) == before
    assert all(dump is not None for dump, _ in before.values())
    assert len(before) == len(NEIGHBOURS)


def test_migration_dry_run_then_real(redis_server, redis_client):
    async def body(manager, client):
        _legacy(redis_client)
        before = {k: redis_client.dump(k) for k in redis_client.scan_iter(match="*")}
        assert await manager.migrate_legacy_keys(dry_run=True) == EXPECTED_MAPPING
        plan = await manager.plan_legacy_migration()
        assert list(plan.skipped) == ["anomaly_detector:weird:thing:here"]
        assert {k: redis_client.dump(k) for k in redis_client.scan_iter(match="*")} == before

        await client.set("anomaly:config:window", "already")
        done = await manager.migrate_legacy_keys("anomaly_detector:*")
        assert done == {k: v for k, v in EXPECTED_MAPPING.items() if "config" not in k}
        assert [p["value"] for p in await manager.get_temp_data("sensor1")] == [1, 2]
        assert 490 <= await client.ttl("anomaly:temp:data:sensor1:queue") <= 500
        assert await manager.get_analysis_result("analysis1") == {"score": 1}
        assert await client.get("anomaly:config:window") == b"already"
        assert await client.exists("anomaly_detector:config:window", "nextauth:user:1") == 2

    run_async(redis_server, body)


def test_asyncio_redis_cluster(redis_cluster):
    from redis.asyncio.cluster import RedisCluster

    async def main():
        client = RedisCluster(host="127.0.0.1", port=redis_cluster.port)
        try:
            manager = AsyncAnomalyRedisManager(client, Settings(redis_hash_tag=True, window_size=10))
            await manager.purge_namespace()
            for i in range(6):
                assert await manager.store_temp_data(f"c{i}", [{"value": j} for j in range(i + 1)]) == i + 1
            await manager.store_alert("cal1", {"timestamp": 1.0})
            await manager.heartbeat("api")
            health = await manager.get_system_health()
            assert health["sensors"] == {f"c{i}": i + 1 for i in range(6)}
            assert set(health["components"]) == {"api"}
            assert [a["id"] for a in await manager.list_alerts()] == ["cal1"]
            # The sync manager runs the same steps on the sync cluster client.
            sync_client = redis_cluster.client()
            sync_manager = AnomalyRedisManager(sync_client, manager.settings)
            sync_manager.store_alert("cal2", {"timestamp": 2.0})
            sync_client.close()
            assert [a["id"] for a in await manager.list_alerts()] == ["cal2", "cal1"]
            assert await manager.purge_namespace() == 6 + 2 + 1 + 1
            assert [k async for k in client.scan_iter(match="anomaly:*")] == []
        finally:
            await client.aclose()

    asyncio.run(main())
