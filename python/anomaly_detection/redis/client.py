"""The package's Redis client factory: what the service, the CLI and users build from ``Settings``."""

from __future__ import annotations

from typing import Any

__all__ = ["async_client_like", "one_write_connection", "redis_client_from_settings"]


def redis_client_from_settings(settings: Any, url: str | None = None) -> Any:
    """A redis-py client for ``url``, else ``settings.redis_url``, else host/port/db/password/ssl.

    Connecting and every reply are bounded by ``settings.redis_socket_timeout``, and a failed
    call is not retried: redis-py's default (ten retries of a refused connection, 3-5 s per
    call) would stall every caller during an outage, while the store's fallback answers at
    once. With ``settings.redis_cluster`` the client is a ``redis.cluster.RedisCluster`` that
    retries a failed call once, at once, after refreshing its slot map (its default retries
    three times with a growing backoff: seconds per call while a master is down, then fails
    all the same). The retry finds a replica already promoted, or a live node in place of a
    dead default node (the one ``PING`` goes to); a master that is still down fails the call,
    the store detects on its fallback, and its probe writes the points back once the replica
    took over. Redirections (``MOVED``, ``ASK``, ``TRYAGAIN`` during a slot migration) are
    not failures: RedisCluster follows them within the call.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.cluster import RedisCluster
    from redis.retry import Retry

    from anomaly_detection.config.settings import check_cluster_database, check_redis_url, redis_url_database

    url = check_redis_url(url or settings.redis_url or "")
    timeout = settings.redis_socket_timeout
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }
    if settings.redis_ssl_ca_certs:
        options["ssl_ca_certs"] = settings.redis_ssl_ca_certs
    if settings.redis_cluster:
        check_cluster_database(redis_url_database(url) if url else settings.redis_db)
        options["retry"] = Retry(NoBackoff(), 1)
        if url:
            return RedisCluster.from_url(url, **options)
        return RedisCluster(
            host=settings.redis_host,
            port=settings.redis_port,
            password=settings.redis_password,
            ssl=settings.redis_ssl,
            **options,
        )
    if url:
        client = redis.Redis.from_url(url, **options)
    else:
        client = redis.Redis(
            host=settings.redis_host,
            port=settings.redis_port,
            db=settings.redis_db,
            password=settings.redis_password,
            ssl=settings.redis_ssl,
            **options,
        )
    pool = client.connection_pool
    pool.connection_class = one_write_connection(pool.connection_class)
    return client


#: Up to this many bytes of a pipeline go to the socket in one write (see one_write_connection).
ONE_WRITE_BYTES = 1 << 20
_one_write_classes: dict[type, type] = {}


def one_write_connection(cls: type) -> type:
    """A subclass of the redis-py connection class ``cls`` whose ``pack_commands`` hands a
    pipeline to the socket in one piece (up to :data:`ONE_WRITE_BYTES` a piece), and whose
    packing hands plain arguments to hiredis at once (:func:`_packed_by_hiredis`).

    redis-py sends every argument over 6,000 bytes with a ``sendall`` of its own: a pipeline
    of the Redis store's appends (one ~6 KB argument per sensor) then costs a system call,
    and a wake-up of redis-server, per sensor. One write costs less in both processes
    (benchmarks/README.md: ``/api/batch`` on Redis); the bytes on the wire are the same.
    """
    made = _one_write_classes.get(cls)
    if made is None:

        def pack_commands(self: Any, commands: Any) -> list[Any]:
            chunks = _packed_by_hiredis(self, commands)
            if chunks is None:
                chunks = super(made, self).pack_commands(commands)  # type: ignore[arg-type]
            if len(chunks) < 2:
                return chunks
            out: list[Any] = []
            piece: list[Any] = []
            size = 0
            for chunk in chunks:
                if piece and size + len(chunk) > ONE_WRITE_BYTES:
                    out.append(b"".join(piece))
                    piece, size = [], 0
                piece.append(chunk)
                size += len(chunk)
            out.append(b"".join(piece))
            return out

        def pack_command(self: Any, *args: Any) -> list[Any]:
            chunks = _packed_by_hiredis(self, (args,))
            return chunks if chunks is not None else super(made, self).pack_command(*args)  # type: ignore[arg-type]

        made = _one_write_classes[cls] = type(
            cls.__name__,
            (cls,),
            {"pack_commands": pack_commands, "pack_command": pack_command, "__module__": __name__},
        )
    return made


try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # hiredis is optional: redis-py's own packer then
    _hiredis_pack = None

#: The argument types packed alike by hiredis and by redis-py's encoder (utf-8, strict).
_PLAIN = frozenset((bytes, str, int))


def _packed_by_hiredis(conn: Any, commands: Any) -> list[bytes] | None:
    """A pipeline's ``commands`` packed by hiredis's ``pack_command`` straight from their
    arguments (one piece a command); None (redis-py packs them) unless every argument is of a type
    both pack to the same bytes (``bytes``, ``str`` as utf-8, ``int``), the command names
    hold no space and the connection encodes ``str`` as strict utf-8.

    redis-py hands hiredis each argument after its encoder (~1 us a Python call each); the
    Redis store's pipelines carry ~150 arguments a request (benchmarks/README.md round 5).
    """
    encoder = getattr(conn, "encoder", None)
    if (
        _hiredis_pack is None
        or encoder is None
        or encoder.encoding.lower().replace("_", "-") not in ("utf-8", "utf8")
        or encoder.encoding_errors != "strict"
    ):
        return None
    plain = _PLAIN.__contains__
    for args in commands:
        first = args[0]
        if not all(map(plain, map(type, args))) or (b" " if type(first) is bytes else " ") in first:
            return None
    return [_hiredis_pack(args) for args in commands]


def async_client_like(sync_client: Any, settings: Any, socket_timeout: float) -> Any:
    """A ``redis.asyncio`` client to the same server as ``sync_client`` (for blocking reads);
    connecting is bounded by ``settings.redis_socket_timeout`` and a failed call is not retried."""
    import redis
    import redis.asyncio as aredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    if type(sync_client).__name__ == "RedisCluster":
        node = sync_client.get_default_node()
        return aredis.RedisCluster(
            host=node.host, port=node.port, password=settings.redis_password, socket_timeout=socket_timeout
        )
    kw = sync_client.connection_pool.connection_kwargs
    common = {"db": kw.get("db", 0), "username": kw.get("username"), "password": kw.get("password"),
              "socket_timeout": socket_timeout, "socket_connect_timeout": settings.redis_socket_timeout,
              "retry": Retry(NoBackoff(), 0)}  # fmt: skip
    if kw.get("path"):
        return aredis.Redis(unix_socket_path=kw["path"], **common)
    ssl = issubclass(sync_client.connection_pool.connection_class, redis.SSLConnection)
    return aredis.Redis(host=kw.get("host", "localhost"), port=kw.get("port", 6379), ssl=ssl, **common)
