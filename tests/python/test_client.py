"""The client SDK against the real app served by uvicorn on a free port."""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest
from fastapi import FastAPI, Request, Response
from servers import HOST, free_port
from test_api_support import LiveServer

from anomaly_detection import Settings
from anomaly_detection.api import create_app
from anomaly_detection.client import AnomalyClient, AnomalyClientError, AsyncAnomalyClient

KEY = "client-test-key"


@pytest.fixture(scope="module")
def server():
    app = create_app(Settings(api_keys=[KEY], min_samples=5))
    with LiveServer(app) as url:
        yield url, app.state.anomaly_service


def _sensors(service) -> list[str]:
    return service.detector.sensors()


def test_seed_calls(server):
    url, service = server
    with AnomalyClient(url, api_key=KEY) as client:
        r = client.send_metric({"service": "payment-processor", "endpoint": "POST:/api/payments",
                                "metrics": {"response_time": 245, "status_code": 200}})  # fmt: skip
        assert r["points"] == 2
        r = client.send_business_metric("daily_revenue", 45000, [40000, 60000])
        assert r["sensors"] == ["business.daily_revenue"]
        r = client.send_business_metric({"metric_type": "revenue", "value": 15420.5, "currency": "USD"})
        assert r["sensors"] == ["business.revenue"]
        assert client.send_log("ERROR", "Database connection timeout", "user-service")["records"] == 1
        assert client.send_log({"log_level": "INFO", "message": "ok", "service": "auth"})["records"] == 1
        r = client.send_batch(
            [{"type": "point", "sensor_name": "sdk-b", "value": float(i)} for i in range(250)]
        )
        assert [x["points"] for x in r] == [100, 100, 50]
        assert client.detect("sdk-d", 1.0)["sensor_name"] == "sdk-d"
        assert client.health()["status"] == "ok"
    assert {"payment-processor.POST_api_payments.response_time", "sdk-b", "sdk-d"} <= set(_sensors(service))


def test_errors_are_raised_not_retried(server):
    url, _ = server
    with AnomalyClient(url, api_key="wrong") as client:
        with pytest.raises(AnomalyClientError) as e:
            client.detect("x", 1.0)
        assert e.value.status_code == 403
    with AnomalyClient(url, api_key=KEY) as client, pytest.raises(AnomalyClientError) as e:
        client.detect("bad:name", 1.0)
    assert e.value.status_code == 422
    assert repr(AnomalyClient(url, api_key=KEY)).find(KEY) == -1


def test_batching_flushes_on_interval_and_on_close(server):
    url, service = server
    client = AnomalyClient(url, api_key=KEY, batching=True, flush_interval=0.1, batch_size=1000)
    try:
        assert (
            client.send_metric(service="batched", endpoint="/a", response_time=10) is None
        )  # queued, not sent
        deadline = time.monotonic() + 10
        # the server stores the record before the client's thread counts it as sent: wait for both
        while "batched.a.response_time" not in _sensors(service) or client.sent < 1:
            assert time.monotonic() < deadline, "the flusher never sent the queued record"
            time.sleep(0.05)
        assert client.sent == 1
        client.flush_interval = 3600  # only close() flushes from now on
        time.sleep(0.2)
        client.send_business_metric("batched_kpi", 3.0)
    finally:
        client.close()
    assert "business.batched_kpi" in _sensors(service)
    assert client.dropped == 0


def test_retries_with_backoff_then_success():
    calls = []
    flaky = FastAPI()

    @flaky.get("/health")
    def health() -> Response:
        calls.append(time.monotonic())
        if len(calls) < 3:
            return Response('{"detail": "busy"}', status_code=503, media_type="application/json")
        return Response('{"status": "ok"}', media_type="application/json")

    with LiveServer(flaky) as url:
        with AnomalyClient(url, timeout=5, max_retries=3, backoff=0.05) as client:
            assert client.health() == {"status": "ok"}
        assert len(calls) == 3
        assert calls[2] - calls[1] >= calls[1] - calls[0]  # exponential: the second pause is the longer
        calls.clear()
        with (
            AnomalyClient(url, timeout=5, max_retries=1, backoff=0.01) as client,
            pytest.raises(AnomalyClientError) as e,
        ):
            client.health()
        assert e.value.status_code == 503
        assert len(calls) == 2


def test_unreachable_server_fails_within_the_deadline():
    url = f"http://{HOST}:{free_port()}"  # nothing listens there
    with (
        AnomalyClient(url, timeout=0.5, max_retries=10, backoff=0.05) as client,
        pytest.raises(AnomalyClientError),
    ):
        client.health()
    # batching never raises to the caller: the records are counted as dropped
    client = AnomalyClient(url, timeout=0.3, batching=True, flush_interval=3600)
    client.send_log("ERROR", "x", "svc")
    client.close()
    assert client.dropped == 1


def test_bad_options():
    with pytest.raises(ValueError, match="timeout"):
        AnomalyClient("http://127.0.0.1:1", timeout=0)
    with pytest.raises(ValueError, match="batch_size"):
        AnomalyClient("http://127.0.0.1:1", batch_size=0)


def test_async_client(server):
    url, service = server

    async def main():
        async with AsyncAnomalyClient(url, api_key=KEY) as client:
            r = await client.send_metric(
                {"service": "async-svc", "endpoint": "/q", "metrics": {"latency": 3}}
            )
            assert r["sensors"] == ["async-svc.q.latency"]
            assert (await client.send_business_metric("async_kpi", 1.0, [0, 2]))["anomalies"] == []
            assert (await client.send_log("WARN", "slow", "async-svc"))["records"] == 1
            r = await client.send_batch([{"type": "point", "sensor_name": "async-b", "value": 1.0}])
            assert r[0]["points"] == 1
            assert (await client.detect("async-d", 2.0))["value"] == 2.0
            assert (await client.health())["status"] == "ok"
        batching = AsyncAnomalyClient(url, api_key=KEY, batching=True, flush_interval=0.05)
        await batching.send_metric(service="async-batched", response_time=1)
        for _ in range(200):
            if batching.sent:
                break
            await asyncio.sleep(0.02)
        await batching.aclose()
        return batching.sent

    assert asyncio.run(main()) == 1
    assert {"async-svc.q.latency", "async-b", "async-d", "async-batched.response_time"} <= set(
        _sensors(service)
    )


def test_the_async_client_has_every_method_of_the_sync_one(server):
    # docs/api.md: "AsyncAnomalyClient has the same methods as coroutines" (close is aclose).
    public = {n for n in dir(AnomalyClient) if not n.startswith("_")} - {"close"}
    missing = sorted(n for n in public if not hasattr(AsyncAnomalyClient, n))
    assert missing == []
    for name in public:
        assert inspect.iscoroutinefunction(getattr(AsyncAnomalyClient, name)), name
    url, _ = server

    async def main():
        async with AsyncAnomalyClient(url, api_key=KEY) as client:
            r = await client.detect_batch("async-db", [1.0, 2.0, 3.0], timestamps=[10.0, 20.0, 30.0])
            health = await client.health_check()
        return r, health

    r, health = asyncio.run(main())
    assert r["sensor_name"] == "async-db"
    assert (r["values"], r["timestamps"]) == ([1.0, 2.0, 3.0], [10.0, 20.0, 30.0])
    assert health["status"] == "ok"


def test_aclose_lets_a_flush_in_progress_finish_instead_of_losing_its_records():
    # aclose() cancelled the flusher task: a record it had taken from the queue and was
    # retrying (a 503 with Retry-After) was never sent, and counted neither sent nor dropped.
    stored = []
    attempts = []
    app = FastAPI()

    @app.post("/api/batch")
    async def batch(request: Request) -> Response:
        body = await request.json()
        attempts.append(request.headers["idempotency-key"])
        if len(attempts) == 1:
            return Response('{"detail": "busy"}', status_code=503, headers={"Retry-After": "0.3"},
                            media_type="application/json")  # fmt: skip
        stored.extend(body["metrics"])
        return Response('{"records": 1}', media_type="application/json")

    async def main(url: str) -> AsyncAnomalyClient:
        client = AsyncAnomalyClient(url, batching=True, batch_size=1, flush_interval=0.01, timeout=5)
        await client.send_log("ERROR", "m0", "svc")
        for _ in range(200):  # the flusher took the record and waits to retry it
            if attempts:
                break
            await asyncio.sleep(0.01)
        await client.aclose()
        return client

    with LiveServer(app) as url:
        client = asyncio.run(main(url))
    assert (client.sent, client.dropped) == (1, 0)
    assert [r["message"] for r in stored] == ["m0"]
    assert len(set(attempts)) == 1  # one key: a retry the server had stored would not store twice


def test_a_gateway_s_json_that_is_no_object_or_no_json_is_a_client_error():
    # A 502 whose JSON body is a list raised AttributeError ('list' object has no attribute
    # 'get') instead of AnomalyClientError, so it was not retried either; a 200 declared JSON
    # whose body is not raised json's JSONDecodeError.
    calls = []
    app = FastAPI()

    @app.get("/health")
    def health() -> Response:
        calls.append(1)
        return Response('["upstream", "down"]', status_code=502, media_type="application/json")

    @app.get("/api/anomalies")
    def anomalies() -> Response:
        return Response("<html>proxy</html>", media_type="application/json")

    with LiveServer(app) as url, AnomalyClient(url, timeout=5, max_retries=1, backoff=0.01) as client:
        with pytest.raises(AnomalyClientError) as e:
            client.health()
        assert (e.value.status_code, e.value.detail) == (502, ["upstream", "down"])
        assert len(calls) == 2  # retried as any 502
        with pytest.raises(AnomalyClientError, match="not JSON"):
            client.anomalies()


def test_a_record_json_cannot_carry_is_refused_at_send_not_killing_the_flusher(server):
    # With batching, a NaN value was queued; its flush raised ValueError in the flusher
    # thread, which died: the record was lost uncounted and every later record waited in
    # the queue until close(). It is refused at the call now, as an unbatched send is.
    url, service = server
    client = AnomalyClient(url, api_key=KEY, batching=True, batch_size=1, flush_interval=0.02)
    with pytest.raises(ValueError, match="JSON"):
        client.send_metric(service="nan-svc", response_time=float("nan"))
    with pytest.raises(ValueError, match="JSON"):
        client.send_log("ERROR", object(), "nan-svc")
    client.send_metric(service="nan-svc", response_time=1.0)
    for _ in range(250):
        if client.sent:
            break
        time.sleep(0.02)
    assert client._flusher.is_alive()
    assert (client.sent, client.dropped) == (1, 0)  # sent by the flusher, before close
    client.close()
    assert "nan-svc.response_time" in _sensors(service)


def test_a_record_sent_after_close_is_refused_not_queued_for_ever():
    # With batching, send_* after close()/aclose() queued the record and returned None: no
    # flusher and no final flush would ever send it, and it was not counted as dropped.
    url = f"http://{HOST}:{free_port()}"
    client = AnomalyClient(url, batching=True, timeout=0.3)
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.send_log("ERROR", "late", "svc")

    async def main() -> None:
        aclient = AsyncAnomalyClient(url, batching=True, timeout=0.3)
        await aclient.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await aclient.send_log("ERROR", "late", "svc")
        assert not aclient._queue

    asyncio.run(main())
    assert not client._queue
