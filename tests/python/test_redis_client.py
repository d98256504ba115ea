"""The package's sync Redis client: a pipeline goes to the socket in one write (redis/client.py)."""

from __future__ import annotations

import pytest
import redis

from anomaly_detection import Settings
from anomaly_detection.redis import client as client_module
from anomaly_detection.redis.client import one_write_connection, redis_client_from_settings


def _commands(n: int, size: int) -> list[tuple[object, ...]]:
    return [("SET", f"ow:{i}", bytes([65 + i % 26]) * size) for i in range(n)]


def test_a_pipeline_of_large_arguments_is_one_write_with_the_same_bytes(redis_server):
    client = redis_client_from_settings(Settings(redis_url=redis_server.url))
    conn = client.connection_pool.make_connection()
    commands = _commands(10, 7000)  # each over redis-py's 6,000-byte cutoff: 10 writes without the subclass
    plain = redis.Connection().pack_commands(commands)
    assert len(plain) >= 10
    packed = conn.pack_commands(commands)
    assert len(packed) == 1
    assert packed[0] == b"".join(plain)
    # and through the real server: every value back as sent
    pipe = client.pipeline(transaction=False)
    for args in commands:
        pipe.execute_command(*args)
    assert pipe.execute() == [True] * 10
    assert client.mget([f"ow:{i}" for i in range(10)]) == [args[2] for args in commands]
    client.delete(*[f"ow:{i}" for i in range(10)])
    client.close()


def test_one_write_is_bounded_and_keeps_the_order(monkeypatch):
    monkeypatch.setattr(client_module, "ONE_WRITE_BYTES", 20_000)
    commands = _commands(10, 7000)
    packed = one_write_connection(redis.Connection)().pack_commands(commands)
    assert len(packed) == 5  # two commands of ~7,030 bytes a piece
    assert all(len(piece) <= 20_000 for piece in packed)
    assert b"".join(packed) == b"".join(redis.Connection().pack_commands(commands))


def test_the_connection_kind_of_the_url_is_kept():
    tls = redis_client_from_settings(Settings(redis_url="rediss://127.0.0.1:1/0"))
    assert issubclass(tls.connection_pool.connection_class, redis.SSLConnection)
    unix = redis_client_from_settings(Settings(redis_url="unix:///tmp/nowhere.sock"))
    assert issubclass(unix.connection_pool.connection_class, redis.UnixDomainSocketConnection)
    plain = redis_client_from_settings(Settings(redis_host="127.0.0.1", redis_port=1))
    assert plain.connection_pool.connection_class is one_write_connection(redis.Connection)
    assert one_write_connection(redis.Connection).__name__ == "Connection"


def _mixed() -> list[tuple[object, ...]]:
    """Commands with every argument type a caller may pass: plain (bytes, str, int) and others."""
    return [
        ("EVALSHA", "a" * 40, 3, "k:é", b"k2", "k3", b"\x00\xff" * 4000, -7, 10**20, 0),
        (b"HINCRBY", "c", "n", 3),
        ("SET", "f", 1.5),  # a float: redis-py's repr
        ("SET", "f", 0.1),
        ("SET", "m", memoryview(b"view")),
        ("SET", "b", bytearray(b"arr")),
        ("SCRIPT LOAD", "return 1"),  # a name of two words, split by redis-py
        (b"CONFIG GET", b"maxmemory"),
    ]


def test_packing_by_hiredis_gives_redis_pys_bytes():
    fast = one_write_connection(redis.Connection)()
    plain = redis.Connection()
    commands = _mixed()
    assert b"".join(fast.pack_commands(commands)) == b"".join(plain.pack_commands(commands))
    for args in commands:  # each alone, and each through pack_command
        assert b"".join(fast.pack_commands([args])) == b"".join(plain.pack_commands([args]))
        assert b"".join(fast.pack_command(*args)) == b"".join(plain.pack_command(*args))
    # the plain commands do go through hiredis (None: redis-py's packer)
    assert client_module._packed_by_hiredis(fast, commands[:2]) is not None
    assert client_module._packed_by_hiredis(fast, commands[2:3]) is None
    assert client_module._packed_by_hiredis(fast, commands[6:7]) is None


def test_packing_keeps_redis_pys_errors_and_encoding():
    fast = one_write_connection(redis.Connection)()
    for bad in (True, None, object()):
        try:
            redis.Connection().pack_command("SET", "k", bad)
        except redis.DataError as e:
            expected = str(e)
        with pytest.raises(redis.DataError) as got:
            fast.pack_command("SET", "k", bad)
        assert str(got.value) == expected
    with pytest.raises(UnicodeEncodeError):
        fast.pack_commands([("SET", "k", "\ud800")])
    latin = one_write_connection(redis.Connection)(encoding="latin-1")
    assert client_module._packed_by_hiredis(latin, [("SET", "k", "é")]) is None
    assert latin.pack_command("SET", "k", "é") == redis.Connection(encoding="latin-1").pack_command(
        "SET", "k", "é"
    )


# --- a Redis URL given by a user is read as written, or refused (one validator) --------------

#: URLs whose database redis-py would not read as written: a path that is not a number was
#: database 0, silently; a negative or too large one failed at the first command.
BAD_URLS = [
    ("redis://127.0.0.1:6379/abc", "'abc'"),
    ("redis://:s3cret@127.0.0.1:6379/abc", "'abc'"),
    ("redis://127.0.0.1:6379/-1", "'-1'"),
    ("redis://127.0.0.1:6379/2147483648", "'2147483648'"),
    ("rediss://127.0.0.1:6379/1.5", "'1.5'"),
    ("redis://127.0.0.1:6379/0?db=x", "'x'"),
    ("redis://127.0.0.1:6379?db=-3", "'-3'"),
    ("unix:///tmp/redis.sock?db=abc", "'abc'"),
    ("http://127.0.0.1:6379/0", "redis://, rediss:// or unix://"),
]

#: Valid forms, and the database each names.
GOOD_URLS = [
    ("redis://127.0.0.1:6379", 0),
    ("redis://127.0.0.1:6379/", 0),
    ("redis://127.0.0.1:6379/15", 15),
    ("redis://127.0.0.1:6379/2147483647", 2147483647),
    ("rediss://:pw@127.0.0.1:6380/2", 2),
    ("redis://127.0.0.1?db=3", 3),
    ("unix:///tmp/redis.sock", 0),
    ("unix:///tmp/redis.sock?db=2", 2),
    ("redis://127.0.0.1:6379/2?db=4", 4),  # redis-py: ?db= wins over the path (as redis_url_database)
]


@pytest.mark.parametrize(("url", "named"), BAD_URLS)
def test_a_redis_url_with_a_bad_database_is_refused_by_settings_and_the_factory(url, named, monkeypatch):
    with pytest.raises(ValueError, match=named):
        Settings(redis_url=url)
    monkeypatch.setenv("ANOMALY_REDIS_URL", url)
    with pytest.raises(ValueError, match=named):
        Settings()
    monkeypatch.delenv("ANOMALY_REDIS_URL")
    with pytest.raises(ValueError, match=named) as caught:
        redis_client_from_settings(Settings(), url)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(("url", "db"), GOOD_URLS)
def test_the_valid_forms_of_a_redis_url_keep_working(url, db):
    client = redis_client_from_settings(Settings(redis_url=url))
    assert client.connection_pool.connection_kwargs.get("db", 0) == db
    assert redis_client_from_settings(Settings(), url).connection_pool.connection_kwargs.get("db", 0) == db


def test_redis_db_is_refused_out_of_range_as_in_a_url():
    for db in (-1, 2**31):
        with pytest.raises(ValueError, match="redis_db"):
            Settings(redis_db=db)
    assert Settings(redis_db=2**31 - 1).redis_db == 2**31 - 1


def test_a_cluster_with_a_database_other_than_0_is_refused_before_connecting():
    # A Redis Cluster has database 0 only: redis_db=3 or a URL's /2 or ?db=5 failed at the first
    # command (or while fetching the slots) with redis-py's error; now one ValueError, at once.
    for settings in (
        {"redis_db": 3},
        {"redis_url": "redis://127.0.0.1:7000/2"},
        {"redis_url": "redis://h:1/0?db=5"},
    ):
        with pytest.raises(ValueError, match="database 0 only"):
            Settings(redis_cluster=True, **settings)
    assert Settings(redis_cluster=True, redis_url="redis://127.0.0.1:7000/0").redis_cluster
    assert Settings(redis_db=3).redis_db == 3  # a single node has its databases
    with pytest.raises(ValueError, match="database 0 only"):  # port 1: nothing is contacted
        redis_client_from_settings(Settings(redis_cluster=True), "redis://127.0.0.1:1/5")
