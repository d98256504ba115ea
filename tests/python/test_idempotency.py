"""Retries only where safe (issue 19, item 6): the SDK's idempotency keys and retry policy, and
the server storing a write once per ``Idempotency-Key`` (in memory, or in Redis for every
worker). Real parts only: the app over HTTP, a fault-injecting proxy in front of it, redis-server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time

import httpx
import pytest
from fault_proxy import FaultProxy
from test_api_support import LiveServer

from anomaly_detection import Settings
from anomaly_detection.api import create_app
from anomaly_detection.client import AnomalyClient, AnomalyClientError, AsyncAnomalyClient
from anomaly_detection.redis.keys import AnomalyRedisKeys, AnomalyRedisTTL
from anomaly_detection.stores.idempotency import (
    MemoryIdempotencyStore,
    RedisIdempotencyStore,
    StoredResponse,
)

KEY = "idem-test-key"


def _settings(**kw) -> Settings:
    return Settings(api_keys=[KEY], detection_method="zscore", window_size=5000, min_samples=5, **kw)


@pytest.fixture(scope="module")
def served():
    app = create_app(_settings())
    with LiveServer(app) as url:
        yield url, app.state.anomaly_service


def _stored(service, sensor: str) -> int:
    """Points in the sensor's window (window_size is larger than any test sends)."""
    try:
        return len(service.detector.get_window(sensor).values)
    except KeyError:
        return 0


def _points(sensor: str, n: int) -> list[dict]:
    return [{"type": "point", "sensor_name": sensor, "value": 10.0 + (i % 7) * 0.1} for i in range(n)]


# --- the client through a proxy that fails after the server stored -----------------------------


def test_a_batch_whose_response_was_lost_is_stored_once(served):
    url, service = served
    port = int(url.rsplit(":", 1)[1])
    with (
        FaultProxy(port, faults=["drop"]) as proxy,
        AnomalyClient(proxy.url, api_key=KEY, timeout=10) as client,
    ):
        [response] = client.send_batch(_points("idem-drop", 40), batch_id="batch-drop-1")
    assert response["points"] == 40
    assert response["batch_id"] == "batch-drop-1"
    posts = proxy.posts()
    assert len(posts) == 2  # the first attempt was stored, then its connection dropped
    assert {p[3] for p in posts} == {"batch-drop-1"}  # the batch id is the key, on both attempts
    assert _stored(service, "idem-drop") == 40  # not 80


def test_retry_after_is_honoured_and_the_batch_stored_once(served):
    url, service = served
    port = int(url.rsplit(":", 1)[1])
    with (
        FaultProxy(port, faults=["503"], retry_after=1) as proxy,
        AnomalyClient(proxy.url, api_key=KEY, timeout=10, backoff=0.01) as client,
    ):
        start = time.monotonic()
        [response] = client.send_batch(_points("idem-503", 25))
        elapsed = time.monotonic() - start
    posts = proxy.posts()
    assert len(posts) == 2
    assert posts[0][3] == posts[1][3] is not None  # a generated key, reused by the retry
    gap = posts[1][0] - posts[0][0]
    assert 1.0 <= gap < 3.0, gap  # the server asked for 1 s; backoff alone would be ~0.01 s
    assert elapsed >= 1.0
    assert response["points"] == 25
    assert _stored(service, "idem-503") == 25


def test_a_write_without_a_key_is_not_retried(served):
    url, service = served
    port = int(url.rsplit(":", 1)[1])
    body = {"metrics": _points("idem-nokey", 10)}
    for fault in ("503", "drop"):
        with (
            FaultProxy(port, faults=[fault]) as proxy,
            AnomalyClient(proxy.url, api_key=KEY, timeout=5, max_retries=5) as client,
            pytest.raises(AnomalyClientError) as e,
        ):
            client.request("POST", "/api/batch", json=body)
        assert len(proxy.posts()) == 1, fault
        assert e.value.status_code == (503 if fault == "503" else None)
    assert _stored(service, "idem-nokey") == 20  # each attempt reached the server once


def test_a_read_is_retried_after_the_servers_wait(served):
    url, _ = served
    port = int(url.rsplit(":", 1)[1])
    with (
        FaultProxy(port, faults=["503"], retry_after=1) as proxy,
        AnomalyClient(proxy.url, timeout=5) as client,
    ):
        assert client.health()["status"] == "ok"
    assert [r[1:3] for r in proxy.requests] == [("GET", "/health"), ("GET", "/health")]
    assert proxy.requests[1][0] - proxy.requests[0][0] >= 1.0


def test_async_client_retries_a_lost_batch_once(served):
    url, service = served
    port = int(url.rsplit(":", 1)[1])

    async def main():
        async with AsyncAnomalyClient(proxy.url, api_key=KEY, timeout=10) as client:
            return await client.detect("idem-async", 1.5)

    with FaultProxy(port, faults=["drop"]) as proxy:
        result = asyncio.run(main())
    assert result["value"] == 1.5
    assert len(proxy.posts()) == 2
    assert _stored(service, "idem-async") == 1


# --- the server: repeats, different bodies, bad keys, failures -------------------------------


def _post(url: str, path: str, body: dict, key: str | None, api_key: str = KEY) -> httpx.Response:
    headers = {"X-API-Key": api_key}
    if key is not None:
        headers["Idempotency-Key"] = key
    return httpx.post(url + path, json=body, headers=headers, timeout=10)


def test_a_repeat_gets_the_first_response_and_stores_nothing(served):
    url, service = served
    body = {"sensor_name": "idem-rep", "values": [1.0, 2.0, 3.0]}
    first = _post(url, "/api/detect/batch", body, "rep-1")
    again = _post(url, "/api/detect/batch", body, "rep-1")
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _stored(service, "idem-rep") == 3
    other = _post(url, "/api/detect/batch", body, "rep-2")  # another key: another write
    assert other.status_code == 200
    assert _stored(service, "idem-rep") == 6


def test_a_key_reused_for_another_request_is_refused(served):
    url, service = served
    assert _post(url, "/api/detect", {"sensor_name": "idem-mis", "value": 1.0}, "mis-1").status_code == 200
    r = _post(url, "/api/detect", {"sensor_name": "idem-mis", "value": 2.0}, "mis-1")
    assert r.status_code == 422
    assert "different request" in r.json()["detail"]
    r = _post(url, "/api/detect/batch", {"sensor_name": "idem-mis", "values": [1.0]}, "mis-1")
    assert r.status_code == 422  # same key on another path
    assert _stored(service, "idem-mis") == 1


@pytest.mark.parametrize("bad", ["a:b", "with space", "x" * 201, "glob*"])
def test_a_bad_key_is_refused_and_nothing_stored(served, bad):
    url, service = served
    r = _post(url, "/api/detect", {"sensor_name": "idem-bad", "value": 1.0}, bad)
    assert r.status_code == 422
    assert "Idempotency-Key" in r.json()["detail"]
    assert _stored(service, "idem-bad") == 0


def test_a_failed_write_releases_its_key(served):
    url, service = served
    bad = _post(url, "/api/batch", {"metrics": [{"type": "point", "sensor_name": "idem-rel"}]}, "rel-1")
    assert bad.status_code == 422  # no value: nothing stored, the key is free again
    good = _post(url, "/api/batch", {"metrics": _points("idem-rel", 3)}, "rel-1")
    assert good.status_code == 200
    assert "idempotent-replayed" not in good.headers
    assert _stored(service, "idem-rel") == 3


def test_a_wrong_api_key_never_gets_a_stored_response(served):
    url, _ = served
    body = {"sensor_name": "idem-auth", "value": 1.0}
    assert _post(url, "/api/detect", body, "auth-1").status_code == 200
    r = _post(url, "/api/detect", body, "auth-1", api_key="wrong")
    assert r.status_code == 403
    assert "idempotent-replayed" not in r.headers


def test_concurrent_repeats_store_once(served):
    url, service = served
    body = {"metrics": _points("idem-conc", 2000)}
    results: list[httpx.Response] = []
    barrier = threading.Barrier(6)

    def send() -> None:
        barrier.wait()
        results.append(_post(url, "/api/batch", body, "conc-1"))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [r.status_code for r in results] == [200] * 6
    assert len({r.content for r in results}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in results) == 1
    assert _stored(service, "idem-conc") == 2000


# --- the stores ----------------------------------------------------------------------------------


def test_memory_store_claims_once_expires_and_is_bounded():
    async def main():
        store = MemoryIdempotencyStore(ttl=0.2, maxsize=2)
        assert (await store.claim("k1", "d1")).state == "claimed"
        assert (await store.claim("k1", "d1")).state == "pending"
        assert (await store.claim("k1", "d2")).state == "mismatch"
        await store.complete("k1", "d1", StoredResponse(200, "application/json", b"{}"))
        done = await store.claim("k1", "d1")
        assert done.state == "done"
        assert done.response == StoredResponse(200, "application/json", b"{}")
        await asyncio.sleep(0.3)
        assert (await store.claim("k1", "d1")).state == "claimed"  # expired: a new claim
        await store.claim("k2", "d")
        await store.claim("k3", "d")
        assert len(store) == 2
        with pytest.raises(ValueError, match="Idempotency-Key"):
            await store.claim("a:b", "d")

    asyncio.run(main())


def test_redis_store_is_shared_by_workers(redis_server, redis_client):
    keys = AnomalyRedisKeys()

    async def main():
        worker_a = RedisIdempotencyStore(redis_server.client(), keys)
        worker_b = RedisIdempotencyStore(redis_server.client(), keys)
        assert (await worker_a.claim("job-1", "d")).state == "claimed"
        assert (await worker_b.claim("job-1", "d")).state == "pending"
        await worker_a.complete("job-1", "d", StoredResponse(201, "text/plain", b"hi"))
        assert (await worker_b.claim("job-1", "d")) == ("done", StoredResponse(201, "text/plain", b"hi"))
        assert (await worker_b.claim("job-1", "other")).state == "mismatch"
        assert (await worker_a.claim("job-2", "d")).state == "claimed"
        await worker_b.release("job-2", "other")  # not its claim: kept
        assert (await worker_b.claim("job-2", "d")).state == "pending"
        await worker_a.release("job-2", "d")
        assert (await worker_b.claim("job-2", "d")).state == "claimed"

    asyncio.run(main())
    assert keys.idempotency("job-1") == "anomaly:idempotency:job-1"
    ttl = redis_client.pttl("anomaly:idempotency:job-1")
    assert 0 < ttl <= AnomalyRedisTTL.IDEMPOTENCY * 1000
    assert json.loads(redis_client.get("anomaly:idempotency:job-1"))["state"] == "done"


def test_redis_store_made_by_a_factory_works_on_each_event_loop_and_in_a_forked_child(redis_server):
    # The service's store makes its redis.asyncio client on first use. That client belongs to
    # the loop that made it (and its sockets to the process): the store kept one for good, so
    # a child forked while the parent's loop was open claimed on the parent's client from a
    # loop of its own and failed ("attached to a different loop"), on the parent's sockets.
    import os

    from anomaly_detection.redis.client import async_client_like, redis_client_from_settings

    settings = Settings(redis_url=redis_server.url)
    sync = redis_client_from_settings(settings)
    store = RedisIdempotencyStore(lambda: async_client_like(sync, settings, 2.0), AnomalyRedisKeys())

    async def claim_and_close(key: str) -> str:
        try:
            return (await store.claim(key, "d")).state
        finally:
            await store.aclose()

    async def claim(key: str) -> str:
        return (await store.claim(key, "d")).state

    assert asyncio.run(claim_and_close("loop-1")) == "claimed"
    parent_loop = asyncio.new_event_loop()
    try:
        assert parent_loop.run_until_complete(claim("before-fork")) == "claimed"
        pid = os.fork()
        if pid == 0:  # the child: a loop and a client of its own, never the parent's
            code = 1
            try:
                code = 0 if asyncio.run(claim_and_close("child")) == "claimed" else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert parent_loop.run_until_complete(claim("child")) == "pending"  # the child's claim
        assert parent_loop.run_until_complete(claim("after-fork")) == "claimed"
        parent_loop.run_until_complete(store.aclose())
    finally:
        parent_loop.close()
        sync.close()


def test_two_workers_on_one_redis_store_a_repeat_once(redis_server, redis_client):
    settings = _settings(store_backend="redis", redis_url=redis_server.url)
    app_a, app_b = create_app(settings), create_app(settings)
    body = {"metrics": _points("idem-redis", 30)}
    with LiveServer(app_a) as url_a, LiveServer(app_b) as url_b:
        first = _post(url_a, "/api/batch", body, "redis-1")
        again = _post(url_b, "/api/batch", body, "redis-1")
        assert first.status_code == again.status_code == 200
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        window = app_b.state.anomaly_service.detector.get_window("idem-redis")
        assert len(window.values) == 30


def test_a_repeat_waits_for_the_request_in_flight_on_another_worker(redis_server, redis_client):
    """Another worker holds the key (claimed, not answered): the repeat waits for its answer,
    and answers 409 with Retry-After if none comes within the wait."""
    settings = _settings(store_backend="redis", redis_url=redis_server.url)
    app = create_app(settings)
    body = {"metrics": _points("idem-flight", 5)}
    raw = json.dumps(body).encode()
    digest = hashlib.sha256(b"/api/batch\0" + raw).hexdigest()
    other = RedisIdempotencyStore(redis_server.client())
    answer = StoredResponse(200, "application/json", b'{"from": "the other worker"}')

    async def claim(key: str) -> None:
        assert (await other.claim(key, digest)).state == "claimed"

    headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
    with LiveServer(app) as url:
        asyncio.run(claim("flight-1"))
        answered = threading.Thread(target=asyncio.run, args=(_later(other, "flight-1", digest, answer),))
        answered.start()
        r = httpx.post(url + "/api/batch", content=raw, headers={**headers, "Idempotency-Key": "flight-1"})
        answered.join()
        assert r.status_code == 200
        assert r.json() == {"from": "the other worker"}
        asyncio.run(claim("flight-2"))  # never answered
        start = time.monotonic()
        r = httpx.post(
            url + "/api/batch", content=raw, headers={**headers, "Idempotency-Key": "flight-2"}, timeout=30
        )
        assert r.status_code == 409
        assert r.headers["retry-after"] == "1"
        assert time.monotonic() - start >= 4.5  # it waited for the other worker first
    assert redis_client.llen(AnomalyRedisKeys().window("idem-flight")) == 0  # stored by nobody here


async def _later(store: RedisIdempotencyStore, key: str, digest: str, answer: StoredResponse) -> None:
    await asyncio.sleep(0.5)
    await store.complete(key, digest, answer)


def test_keys_live_in_the_process_while_redis_is_unreachable(caplog):
    from servers import free_port

    settings = _settings(
        store_backend="redis", redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )  # nothing there
    app = create_app(settings)
    with LiveServer(app) as url:
        body = {"sensor_name": "idem-down", "value": 1.0}
        first = _post(url, "/api/detect", body, "down-1")
        again = _post(url, "/api/detect", body, "down-1")
        after = _post(url, "/api/detect", body, "down-2")
    assert first.status_code == again.status_code == after.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert after.json()["window_count"] == first.json()["window_count"] + 1  # the repeat added no point
    fell_back = [r for r in caplog.records if "keys of this worker only" in r.getMessage()]
    # the first claim found Redis down; then the store's breaker was open and Redis was not tried
    assert len(fell_back) == 1


# --- a corrupt record in Redis (bytes another client wrote under the key) --------------------


@pytest.mark.parametrize(
    "garbage",
    [b"\x80\x81not utf-8", b"\xff\xfe\x00utf-16?", b"{not json", b"[1, 2]", b'{"digest": 5, "state": "done"}',
     b'{"digest": "d", "state": "done", "status": 200, "content_type": "x", "body": "%%%"}'],
    ids=["not utf-8", "a bom", "not json", "a list", "wrong fields", "body not base64"],
)  # fmt: skip
def test_a_corrupt_record_is_replaced_and_the_write_stored_once(redis_server, redis_client, caplog, garbage):
    """A record under the key that is not one the store writes was taken for Redis being down
    ("Redis unavailable (UnicodeDecodeError)"): the key was claimed in the worker's memory, or
    the write answered 422 until the record expired. It is corrupt, not a sign of an outage:
    it is logged as such, replaced by this request's claim, and the retry replays the answer."""
    settings = _settings(store_backend="redis", redis_url=redis_server.url)
    redis_key = AnomalyRedisKeys().idempotency("corrupt-1")
    redis_client.set(redis_key, garbage, px=60_000)
    body = {"metrics": _points("idem-corrupt", 12)}
    app = create_app(settings)
    with LiveServer(app) as url, caplog.at_level("WARNING"):
        first = _post(url, "/api/batch", body, "corrupt-1")
        again = _post(url, "/api/batch", body, "corrupt-1")
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["points"] == 12
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert redis_client.llen(AnomalyRedisKeys().window("idem-corrupt")) == 12  # stored once
    assert json.loads(redis_client.get(redis_key))["state"] == "done"  # the record is the store's again
    messages = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert not [m for m in messages if "unavailable" in m], messages
    corrupt = [m for m in messages if "corrupt" in m]
    assert len(corrupt) == 1, messages
    assert redis_key in corrupt[0]


def test_a_corrupt_record_rewritten_meanwhile_by_another_worker_is_not_replaced(redis_server, redis_client):
    """The corrupt record is replaced only if it is still the same bytes: a valid record that
    another worker wrote between this worker's read and its replace is kept and answered."""
    from anomaly_detection.redis.driver import Script

    keys = AnomalyRedisKeys()
    redis_key = keys.idempotency("corrupt-race")
    redis_client.set(redis_key, b"\xffgarbage", px=60_000)
    theirs = StoredResponse(200, "application/json", b'{"from": "the other worker"}')
    store = RedisIdempotencyStore(redis_server.client(), keys)
    other = RedisIdempotencyStore(redis_server.client(), keys)
    original = store._claim_steps
    raced = []

    def racing(*args):
        steps = original(*args)
        reply = None
        try:
            while True:
                op = steps.send(reply)
                if isinstance(op, Script) and not raced:  # the replace: another worker answered first
                    asyncio.run(other.complete("corrupt-race", "d", theirs))
                    raced.append(redis_client.get(redis_key))
                reply = yield op
        except StopIteration as stop:
            return stop.value

    store._claim_steps = racing

    async def main():
        return await store.claim("corrupt-race", "d")

    assert asyncio.run(main()) == ("done", theirs)
    assert raced  # the replace was tried, after the other worker's write
    assert redis_client.get(redis_key) == raced[0]  # theirs, not replaced


def test_the_replace_script_replaces_only_the_same_bytes(redis_server, redis_client):
    keys = AnomalyRedisKeys()
    store = RedisIdempotencyStore(redis_server.client(), keys)
    redis_key = keys.idempotency("corrupt-direct")
    redis_client.set(redis_key, b"\xffold", px=60_000)
    redis_client.set(redis_key, b"\xffnew", px=60_000)  # changed after a read of b"\xffold"

    async def claim_on(raw_seen: bytes) -> bool:
        seen = hashlib.sha1(raw_seen).hexdigest()
        return await store._run(store._replace_steps(redis_key, seen, "d"))

    assert asyncio.run(claim_on(b"\xffold")) is False
    assert redis_client.get(redis_key) == b"\xffnew"
    assert asyncio.run(claim_on(b"\xffnew")) is True
    assert json.loads(redis_client.get(redis_key)) == {"digest": "d", "state": "pending"}
    assert 0 < redis_client.pttl(redis_key) <= AnomalyRedisTTL.IDEMPOTENCY * 1000
    redis_client.delete(redis_key)
    assert asyncio.run(claim_on(b"\xffnew")) is False  # gone: nothing written
    assert redis_client.exists(redis_key) == 0


def test_a_corrupt_record_is_replaced_through_a_client_that_decodes(redis_server, redis_client, caplog):
    # A redis.asyncio client made with decode_responses=True cannot read bytes that are not UTF-8
    # (its GET raises UnicodeDecodeError): the record's SHA-1 is read by a script instead.
    import redis.asyncio as aredis

    keys = AnomalyRedisKeys()
    redis_key = keys.idempotency("corrupt-decoded")
    redis_client.set(redis_key, b"\x80\x81garbage", px=60_000)

    async def main():
        client = aredis.Redis(host="127.0.0.1", port=redis_server.port, decode_responses=True)
        try:
            store = RedisIdempotencyStore(client, keys)
            first = await store.claim("corrupt-decoded", "d")
            await store.complete("corrupt-decoded", "d", StoredResponse(200, "text/plain", b"ok"))
            return first, await store.claim("corrupt-decoded", "d")
        finally:
            await client.aclose()

    with caplog.at_level("WARNING"):
        first, again = asyncio.run(main())
    assert first.state == "claimed"
    assert again == ("done", StoredResponse(200, "text/plain", b"ok"))
    corrupt = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(corrupt) == 1
    assert redis_key in corrupt[0]
    assert "not UTF-8" in corrupt[0]


def test_a_store_error_that_is_not_an_outage_is_logged_as_a_bug(caplog, monkeypatch):
    """Any exception of the store was logged as "Redis unavailable"; only connection and
    timeout errors are an outage. The request is still answered from this worker's memory."""
    app = create_app(_settings())
    service = app.state.anomaly_service

    async def broken_claim(key, digest):
        raise KeyError("a bug in the store")

    monkeypatch.setattr(service.idempotency, "claim", broken_claim)
    with LiveServer(app) as url, caplog.at_level("WARNING"):
        body = {"sensor_name": "idem-bug", "value": 1.0}
        first = _post(url, "/api/detect", body, "bug-1")
        again = _post(url, "/api/detect", body, "bug-1")
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"  # answered as in an outage
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "unavailable" in m], messages
    bugs = [r for r in caplog.records if "idempotency store failed unexpectedly" in r.getMessage()]
    assert len(bugs) == 2, messages
    assert all(r.levelname == "ERROR" and r.exc_info for r in bugs)
