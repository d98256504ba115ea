"""The anomaly: key layout, TTLs and AnomalyRedisManager on a real redis-server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from anomaly_detection.config import Settings
from anomaly_detection.utils.redis_namespaces import (
    AnomalyRedisKeys,
    AnomalyRedisManager,
    AnomalyRedisTTL,
)

PACKAGE = Path(__file__).resolve().parents[2] / "python" / "anomaly_detection"


@pytest.fixture
def manager(redis_client):
    return AnomalyRedisManager(redis_client, Settings(window_size=5, min_samples=2))


def ttl(client, key: str) -> int:
    return int(client.ttl(key))


# --- keys and TTLs ----------------------------------------------------------------


def test_every_key_kind_follows_the_layout():
    k = AnomalyRedisKeys()
    assert k.window("temperature_sensor") == "anomaly:temp:data:temperature_sensor:queue"
    assert k.processing_queue("batch-12345") == "anomaly:queue:processing:batch-12345"
    assert k.analysis_result("analysis-abc123") == "anomaly:results:analysis:analysis-abc123"
    assert k.cache("thresholds", "sensor_001") == "anomaly:cache:thresholds:sensor_001"
    assert k.model("anomaly_detector_v1") == "anomaly:model:anomaly_detector_v1"
    assert k.health("statistical_detector") == "anomaly:health:statistical_detector"
    assert k.metrics("processing_time", "hourly") == "anomaly:metrics:processing_time:hourly"
    assert k.alert("high_temp_alert_001") == "anomaly:alerts:high_temp_alert_001"
    assert k.config("window_size") == "anomaly:config:window_size"
    assert k.sketch("cms") == "anomaly:sketch:cms"
    assert k.stream("logs") == "anomaly:stream:logs"
    assert k.alerts_stream() == "anomaly:stream:alerts"
    assert k.alerts_channel() == "anomaly:channel:alerts"
    assert k.pattern("window") == "anomaly:temp:data:*:queue"
    assert k.pattern("cache") == "anomaly:cache:*:*"


def test_prefix_and_hash_tag_from_settings():
    k = AnomalyRedisKeys.from_settings(Settings(redis_key_prefix="ad", redis_hash_tag=True))
    assert k.window("s1") == "ad:temp:data:{s1}:queue"
    assert k.parse_sensor("ad:temp:data:{s1}:queue") == "s1"
    assert k.parse_sensor(b"ad:temp:data:s2:queue") == "s2"
    assert k.parse_sensor("anomaly:temp:data:s2:queue") is None


@pytest.mark.parametrize("bad", ["a:b", "a*", "a?", "a[1]", "{a}", "a b", "a\tb", "", "x" * 201, 7])
def test_every_variable_part_is_validated(bad):
    k = AnomalyRedisKeys()
    for build in (
        k.window,
        k.processing_queue,
        k.analysis_result,
        k.model,
        k.health,
        k.alert,
        k.config,
        k.sketch,
        k.stream,
        lambda v: k.cache(v, "ok"),
        lambda v: k.cache("ok", v),
        lambda v: k.metrics(v, "1h"),
        lambda v: k.metrics("ok", v),
    ):
        with pytest.raises(ValueError):
            build(bad)


@pytest.mark.parametrize("prefix", ["", "a:b", "a*", "x" * 65])
def test_bad_prefix_or_kind(prefix):
    with pytest.raises(ValueError, match="prefix"):
        AnomalyRedisKeys(prefix)
    with pytest.raises(ValueError, match="key kind"):
        AnomalyRedisKeys().pattern("nope")


def test_ttls_are_design_values():
    assert AnomalyRedisTTL.as_dict() | {} == {
        "TEMP_DATA": 3600,
        "TEMP_STATE": 3600,
        "PROCESSING_QUEUE": 1800,
        "ANALYSIS_RESULT": 86400,
        "RESULTS": 86400,
        "CACHE": 3600,
        "MODEL": 86400,
        "HEALTH": 300,
        "METRICS": 3600,
        "ALERTS": 604800,
        "CONFIG": 86400,
        "SKETCH": 86400,
        "IDEMPOTENCY": 3600,
    }


# --- manager: every kind stored under its key with its TTL ---------------------------


def test_every_kind_round_trips_with_its_ttl(manager, redis_client):
    k = manager.keys
    assert manager.store_temp_data("s1", {"value": 1.5, "timestamp": 1}) == 1
    assert manager.store_temp_data("s1", [{"value": i, "timestamp": i} for i in range(2, 9)]) == 5
    assert [p["value"] for p in manager.get_temp_data("s1")] == [4, 5, 6, 7, 8]
    assert ttl(redis_client, k.window("s1")) == AnomalyRedisTTL.TEMP_DATA

    manager.store_analysis_result("a1", {"score": 0.5})
    assert manager.get_analysis_result("a1") == {"score": 0.5}
    assert ttl(redis_client, k.analysis_result("a1")) == AnomalyRedisTTL.ANALYSIS_RESULT

    blob = bytes(range(256))
    manager.store_model("m1", blob)
    assert manager.load_model("m1") == blob
    assert manager.load_model("m2") is None
    assert ttl(redis_client, k.model("m1")) == AnomalyRedisTTL.MODEL

    manager.set_config("window_size", 200)
    assert manager.get_config("window_size") == 200
    assert manager.get_config("missing", default="d") == "d"
    assert ttl(redis_client, k.config("window_size")) == AnomalyRedisTTL.CONFIG

    manager.heartbeat("worker-1", {"pid": 42})
    assert ttl(redis_client, k.health("worker-1")) == AnomalyRedisTTL.HEALTH

    manager.store_alert("al1", {"sensor": "s1", "timestamp": 100.0})
    assert manager.list_alerts() == [{"id": "al1", "sensor": "s1", "timestamp": 100.0}]
    assert ttl(redis_client, k.alert("al1")) == AnomalyRedisTTL.ALERTS

    # Nothing outside the prefix.
    assert all(key.startswith(b"anomaly:") for key in redis_client.scan_iter(match="*"))
    assert manager.clear_temp_data("s1") is True
    assert manager.clear_temp_data("s1") is False
    assert manager.get_temp_data("s1") == []


def test_bad_values_raise_and_change_nothing(manager, redis_client):
    with pytest.raises(ValueError, match="JSON"):
        manager.store_analysis_result("a1", {"x": float("nan")})
    with pytest.raises(ValueError, match="JSON"):
        manager.set_config("c", {1, 2})
    with pytest.raises(ValueError, match="bytes"):
        manager.store_model("m", "not bytes")
    with pytest.raises(ValueError, match="mapping"):
        manager.store_temp_data("s1", [])
    with pytest.raises(ValueError, match="window_size"):
        manager.store_temp_data("s1", {"value": 1}, window_size=0)
    with pytest.raises(ValueError, match="ttl"):
        manager.set_config("c", 1, ttl=0)
    with pytest.raises(ValueError, match="limit"):
        manager.list_alerts(0)
    with pytest.raises(ValueError, match="finite"):
        manager.store_alert("al1", {"x": 1}, timestamp=float("inf"))
    with pytest.raises(ValueError):
        manager.store_alert("a:b", {"x": 1})
    assert redis_client.dbsize() == 0


def test_corrupt_stored_json_is_a_value_error(manager, redis_client):
    redis_client.set(manager.keys.config("c"), b"\xff{not json")
    with pytest.raises(ValueError, match="corruption"):
        manager.get_config("c")


def test_list_alerts_newest_first_and_bounded(redis_client):
    manager = AnomalyRedisManager(redis_client, Settings(), alerts_index_size=10)
    for i in range(25):
        manager.store_alert(f"al{i:02d}", {"n": i, "timestamp": 1000.0 + i})
    alerts = manager.list_alerts(limit=4)
    assert [a["id"] for a in alerts] == ["al24", "al23", "al22", "al21"]
    assert alerts[0]["n"] == 24
    assert redis_client.zcard(manager.keys.alerts_index()) == 10
    assert [a["n"] for a in manager.list_alerts(limit=100)] == list(range(24, 14, -1))
    # An expired alert drops out of the list and the index.
    redis_client.delete(manager.keys.alert("al24"))
    assert manager.list_alerts(limit=1)[0]["id"] == "al23"
    assert redis_client.zscore(manager.keys.alerts_index(), "al24") is None


def test_system_health_found_with_scan(redis_client):
    manager = AnomalyRedisManager(redis_client, Settings(redis_hash_tag=True, window_size=50))
    for i in range(30):
        manager.store_temp_data(f"s{i}", [{"value": j} for j in range(i + 1)])
    manager.heartbeat("detector", {"status": "ok"})
    redis_client.set("fastapi:temp:data:batch-1", "x")
    health = manager.get_system_health()
    assert health["sensors"] == {f"s{i}": i + 1 for i in range(30)}
    assert health["components"]["detector"]["status"] == "ok"
    assert set(health["components"]) == {"detector"}


def test_purge_only_our_prefix(manager, redis_client):
    for i in range(1200):
        redis_client.set(f"anomaly:cache:c:{i}", i)
    redis_client.set("anomaly_detector:x", 1)
    redis_client.set("anomalyX:y", 1)
    assert manager.purge_namespace() == 1200
    assert sorted(redis_client.scan_iter(match="*")) == [b"anomalyX:y", b"anomaly_detector:x"]


# --- migration ------------------------------------------------------------------


def _legacy(redis_client):
    redis_client.rpush("anomaly_detector:temp:data:sensor1", '{"value": 1}', '{"value": 2}')
    redis_client.expire("anomaly_detector:temp:data:sensor1", 500)
    redis_client.set("anomaly_detector:results:analysis1", '{"score": 1}', ex=900)
    redis_client.set("anomaly_detector:config:window", "5")
    redis_client.set("anomaly_detector:weird:thing:here", "1")
    redis_client.set("nextauth:user:1", "u")


EXPECTED_MAPPING = {
    "anomaly_detector:temp:data:sensor1": "anomaly:temp:data:sensor1:queue",
    "anomaly_detector:results:analysis1": "anomaly:results:analysis:analysis1",
    "anomaly_detector:config:window": "anomaly:config:window",
}


def test_migration_dry_run_changes_nothing(manager, redis_client):
    _legacy(redis_client)
    before = {k: redis_client.dump(k) for k in redis_client.scan_iter(match="*")}
    assert manager.migrate_legacy_keys(dry_run=True) == EXPECTED_MAPPING
    plan = manager.plan_legacy_migration()
    assert list(plan.skipped) == ["anomaly_detector:weird:thing:here"]
    assert {k: redis_client.dump(k) for k in redis_client.scan_iter(match="*")} == before


def test_migration_renames_and_keeps_ttls(manager, redis_client):
    _legacy(redis_client)
    redis_client.set("anomaly:config:window", "already")  # never overwritten
    done = manager.migrate_legacy_keys("anomaly_detector:*")
    assert done == {k: v for k, v in EXPECTED_MAPPING.items() if "config" not in k}
    assert [p["value"] for p in manager.get_temp_data("sensor1")] == [1, 2]
    assert 490 <= redis_client.ttl("anomaly:temp:data:sensor1:queue") <= 500
    assert 890 <= redis_client.ttl("anomaly:results:analysis:analysis1") <= 900
    assert manager.get_analysis_result("analysis1") == {"score": 1}
    assert redis_client.get("anomaly:config:window") == b"already"
    assert redis_client.exists("anomaly_detector:config:window", "nextauth:user:1") == 2


@pytest.mark.parametrize("pattern", ["*", "anomaly:*", "*:temp:*", "nopattern", "a b:*"])
def test_migration_refuses_broad_patterns(manager, pattern):
    with pytest.raises(ValueError, match="pattern"):
        manager.migrate_legacy_keys(pattern)


# --- neighbours and KEYS ----------------------------------------------------------

NEIGHBOURS = {
    "nextauth:user:12345678-1234-1234-1234-123456789abc": ("string", '{"id":"u"}'),
    "nextauth:session:abcdef12-3456-7890-abcd-ef1234567890": ("string", '{"s":1}'),
    "nextauth:account:azure:user@example.com": ("hash", {"provider": "azure"}),
    "nextauth:account:by-user-id:12345678": ("string", "azure:user@example.com"),
    "nextauth:email:user@example.com": ("string", "12345678"),
    "nextauth:token:verif-1": ("string", "t"),
    "fabric:user:12345678-1234-1234-1234-123456789abc:tokens": ("string", '{"access":"a"}'),
    "fabric:data:chart:co2-flow:realtime": ("list", ["1", "2", "3"]),
    "fabric:data:chart:temperature:historical": ("zset", {"a": 1.0, "b": 2.0}),
    "fabric:cache:query:plant-overview": ("string", "rows"),
    "fabric:test:connection": ("string", "ok"),
    "fastapi:temp:data:batch-12345": ("list", ['{"value":1}']),
    "fastapi:queue:processing:item-67890": ("set", {"x", "y"}),
    "fastapi:results:analysis:analysis-abc123": ("string", '{"score":1}'),
    "fastapi:cache:model:anomaly-detector": ("string", "bytes"),
}


def _fill_neighbours(client):
    for key, (kind, value) in NEIGHBOURS.items():
        if kind == "string":
            client.set(key, value, ex=3300)
        elif kind == "hash":
            client.hset(key, mapping=value)
        elif kind == "list":
            client.rpush(key, *value)
        elif kind == "zset":
            client.zadd(key, value)
        else:
            client.sadd(key, *value)


def _snapshot(client):
    return {key: (client.dump(key), client.ttl(key) > 0) for key in NEIGHBOURS}


def test_neighbours_are_never_touched(manager, redis_client):
    _fill_neighbours(redis_client)
    before = _snapshot(redis_client)
    assert all(dump is not None for dump, _ in before.values())

    manager.store_temp_data("temperature_sensor", {"value": 1})
    manager.get_temp_data("temperature_sensor")
    manager.store_analysis_result("analysis-abc123", {"s": 1})
    manager.get_analysis_result("analysis-abc123")
    manager.store_model("anomaly-detector", b"m")
    manager.load_model("anomaly-detector")
    manager.set_config("c", 1)
    manager.get_config("c")
    manager.heartbeat("api")
    manager.store_alert("a1", {"x": 1})
    manager.list_alerts()
    manager.get_system_health()
    manager.migrate_legacy_keys("anomaly_detector:*")
    manager.clear_temp_data("temperature_sensor")
    assert manager.purge_namespace() > 0
    assert not list(redis_client.scan_iter(match="anomaly:*"))

    assert _snapshot(redis_client) == before


def test_keys_command_is_used_nowhere():
    offenders = []
    patterns = [
        re.compile(r"\.keys\(\s*[^)\s]"),  # client.keys(pattern): dict.keys() takes no argument
        re.compile(
            r"['\"]KEYS['\"]", re.IGNORECASE
        ),  # execute_command("KEYS", ...) / redis.call('keys', ...)
        re.compile(r"redis\.call\(\s*['\"]keys['\"]", re.IGNORECASE),
    ]
    sources = sorted(PACKAGE.rglob("*.py")) + sorted(PACKAGE.rglob("*.lua"))
    assert len(sources) > 5
    for path in sources:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(p.search(line) for p in patterns):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert offenders == []


# --- CLI pieces --------------------------------------------------------------------


def _run_cli(argv):
    import argparse

    from anomaly_detection.utils.redis_cli import add_redis_parsers

    parser = argparse.ArgumentParser()
    add_redis_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_migrate_keys_and_health(redis_server, redis_client, capsys):
    _legacy(redis_client)
    url = redis_server.url
    assert _run_cli(["migrate-keys", "--from", "anomaly_detector:*", "--dry-run", "--url", url]) == 0
    out = capsys.readouterr().out
    assert "would rename  anomaly_detector:temp:data:sensor1 -> anomaly:temp:data:sensor1:queue" in out
    assert "skipped  anomaly_detector:weird:thing:here" in out
    assert redis_client.exists("anomaly:temp:data:sensor1:queue") == 0

    assert _run_cli(["migrate-keys", "--from", "anomaly_detector:*", "--url", url]) == 0
    assert "3 key(s) renamed" in capsys.readouterr().out
    assert redis_client.llen("anomaly:temp:data:sensor1:queue") == 2

    AnomalyRedisManager(redis_client, Settings()).heartbeat("worker-1", {"pid": 7})
    assert _run_cli(["health", "--url", url]) == 0
    out = capsys.readouterr().out
    assert "sensor1" in out
    assert "worker-1" in out
    assert "pid=7" in out
    with pytest.raises(ValueError, match="pattern"):
        _run_cli(["migrate-keys", "--from", "*", "--url", url])


# --- migrate-keys moves only this package's declared legacy keys (issue 16, item 7) ---------


def _everything(client):
    return {k: (client.type(k), client.dump(k), client.ttl(k) > 0) for k in client.scan_iter(match="*")}


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("nextauth:*", "another application"),
        ("fabric:*", "another application"),
        ("fastapi:*", "another application"),
        ("fabric:data:chart:*", "another application"),
        ("anomaly:*", "own live prefix"),
        ("anomaly:temp:data:*", "own live prefix"),
        ("other_app:*", "not a declared legacy prefix"),
        ("anomaly_detector_v0:*", "not a declared legacy prefix"),
    ],
)
def test_migration_refuses_neighbours_live_keys_and_undeclared_prefixes(manager, redis_client, pattern, why):
    _fill_neighbours(redis_client)
    _legacy(redis_client)
    redis_client.set("other_app:temp:data:s1", "x")  # same shape as a legacy key, not ours
    manager.store_temp_data("live", {"value": 1.0})
    before = _everything(redis_client)
    for call in (manager.plan_legacy_migration, manager.migrate_legacy_keys):
        with pytest.raises(ValueError, match=why):
            call(pattern)
    with pytest.raises(ValueError, match=why):
        manager.migrate_legacy_keys(pattern, dry_run=True)
    assert _everything(redis_client) == before


def test_migration_with_neighbours_present_moves_only_the_legacy_keys(manager, redis_client):
    _fill_neighbours(redis_client)
    _legacy(redis_client)
    neighbours = _snapshot(redis_client)
    done = manager.migrate_legacy_keys("anomaly_detector:*")
    assert done == EXPECTED_MAPPING
    assert _snapshot(redis_client) == neighbours
    left = {k.decode() for k in redis_client.scan_iter(match="*") if not k.startswith(b"anomaly:")}
    assert left == set(NEIGHBOURS) | {"anomaly_detector:weird:thing:here", "nextauth:user:1"}


def test_cli_migrate_keys_refuses_a_neighbours_pattern(redis_server, redis_client, capsys):
    from anomaly_detection.cli import main

    _fill_neighbours(redis_client)
    before = _everything(redis_client)
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    for pattern in ("fabric:*", "nextauth:*", "fastapi:*"):
        assert main(["migrate-keys", "--from", pattern, "--url", url]) == 2
        err = capsys.readouterr().err
        assert "another application" in err
        assert "renamed" not in err
    assert _everything(redis_client) == before


def test_health_reports_foreign_keys_as_problems_instead_of_failing(redis_client):
    # One key under the prefix written by another client failed the whole health report
    # (and `anomaly-detection health`): a string where a window list goes was 'Redis
    # unavailable: ... WRONGTYPE', a heartbeat that is not JSON a ValueError, a key name
    # that is not UTF-8 a UnicodeDecodeError. They are listed under 'problems' now (a
    # non-UTF-8 name, which this package cannot have written, is skipped with a warning).
    manager = AnomalyRedisManager(redis_client, Settings(window_size=50))
    manager.store_temp_data("ok", [{"value": 1.0}])
    manager.heartbeat("detector", {"status": "ok"})
    redis_client.set("anomaly:temp:data:s2:queue", "not a list")
    redis_client.set("anomaly:health:api", "garbage")
    redis_client.hset("anomaly:health:worker", "a", "b")
    redis_client.set("anomaly:health:number", "5")
    redis_client.set(b"anomaly:temp:data:\xff:queue", "1")
    health = manager.get_system_health()
    assert health["sensors"] == {"ok": 1}
    assert list(health["components"]) == ["detector"]
    assert sorted(health["problems"]) == [
        "anomaly:health:api", "anomaly:health:number", "anomaly:health:worker", "anomaly:temp:data:s2:queue",
    ]  # fmt: skip
    assert "WRONGTYPE" in health["problems"]["anomaly:temp:data:s2:queue"]
